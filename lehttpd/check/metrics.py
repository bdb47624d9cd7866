"""`check --all --prometheus FILE`: node_exporter's textfile collector format, written atomically (a scrape
never reads half a file; the temporary file is created exclusively, so no planted link is followed)."""
from __future__ import annotations

import time
from pathlib import Path

from lehttpd.check.grade import rank

METRICS = (
    ("lehttpd_certificate_expiry_timestamp_seconds", "notAfter of the certificate, as a Unix time"),
    ("lehttpd_check_grade", "the grade as a number: 8 = A+, 7 = A, 6 = A-, 5 = B … 1 = F, 0 = T, M or no grade"),
    ("lehttpd_certificate_served_current", "1 when Apache serves the current version of the lineage, else 0"),
    ("lehttpd_check_success", "1 when the name could be checked over TLS, else 0"),
    ("lehttpd_certificate_renewal_failed", "1 when the lineage's last renewal attempt failed, else 0"),
)


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{key}="{_label(value)}"' for key, value in labels.items() if value is not None) + "}"


def render(rows, now: float | None = None) -> str:
    samples: dict[str, list[str]] = {name: [] for name, _ in METRICS}
    for row in rows:
        labels = _labels(name=row.name, source=row.kind, endpoint=row.endpoint, lineage=row.lineage)
        if row.not_after is not None:
            samples["lehttpd_certificate_expiry_timestamp_seconds"].append(f"{labels} {row.not_after.timestamp():.0f}")
        if row.kind == "served":
            grade_labels = _labels(name=row.name, endpoint=row.endpoint, grade=row.grade or "none")
            samples["lehttpd_check_grade"].append(f"{grade_labels} {rank(row.grade)}")
            samples["lehttpd_check_success"].append(f"{labels} {0 if row.failure else 1}")
            if row.lineage is not None:
                current = int(row.served_version == row.current_version)
                samples["lehttpd_certificate_served_current"].append(f"{labels} {current}")
        else:
            samples["lehttpd_certificate_renewal_failed"].append(f"{labels} {1 if row.last_failure else 0}")
    lines = []
    for name, help_text in METRICS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"] + [name + s for s in samples[name]]
    lines += ["# HELP lehttpd_check_last_run_timestamp_seconds when check --all last ran",
              "# TYPE lehttpd_check_last_run_timestamp_seconds gauge",
              f"lehttpd_check_last_run_timestamp_seconds {now if now is not None else time.time():.0f}"]
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, rows) -> None:
    from lehttpd.errors import EnvironmentProblem
    from lehttpd.store import atomic_write

    try:
        atomic_write(Path(path), render(rows).encode(), 0o644)
    except OSError as error:
        raise EnvironmentProblem(f"--prometheus {path}: {error.strerror or error}") from None
