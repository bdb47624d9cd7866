"""What renewal remembers about a lineage between runs: failures (for back-off), ARI advice, revocation.

One small JSON file per lineage under CONFIG_DIR/.lehttpd/renew-state/NAME.json (outside renewal/, where
certbot reads every *.conf), written atomically under the lineage lock. A missing or unreadable file is an
empty state: losing it costs at most one early retry, never a certificate.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from lehttpd.renewal import AriWindow
from lehttpd.fileio import atomic_write
from lehttpd.store import check_lineage_name

STATE_DIR = Path(".lehttpd") / "renew-state"


@dataclass(frozen=True)
class AriAdvice:
    """The CA's last answer for one certificate (by serial), and when to ask again."""

    serial: str
    start: dt.datetime
    end: dt.datetime
    point: dt.datetime
    next_check: dt.datetime
    explanation: str | None = None

    @property
    def window(self) -> AriWindow:
        return AriWindow(self.start, self.end, self.point)


@dataclass(frozen=True)
class RenewState:
    failures: int = 0
    last_error: str | None = None
    last_failure: dt.datetime | None = None
    retry_not_before: dt.datetime | None = None
    ari: AriAdvice | None = None
    revoked_serial: str | None = None

    def failed(self, error: str, now: dt.datetime, retry_not_before: dt.datetime) -> "RenewState":
        return replace(self, failures=self.failures + 1, last_error=error, last_failure=now,
                       retry_not_before=retry_not_before)

    def succeeded(self) -> "RenewState":
        return RenewState()


def state_path(config_dir: Path, name: str) -> Path:
    return Path(config_dir) / STATE_DIR / f"{check_lineage_name(name)}.json"


def state_names(config_dir: Path) -> set[str]:
    """Lineages that have a state file (one directory listing instead of an open() per lineage)."""
    try:
        return {entry[:-len(".json")] for entry in os.listdir(Path(config_dir) / STATE_DIR) if entry.endswith(".json")}
    except OSError:
        return set()


def load_state(config_dir: Path, name: str) -> RenewState:
    try:
        data = json.loads(state_path(config_dir, name).read_text())
        return _from_json(data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return RenewState()


def save_state(config_dir: Path, name: str, state: RenewState) -> None:
    path = state_path(config_dir, name)
    if state == RenewState():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(asdict(state), default=_encode, indent=1, sort_keys=True).encode(), 0o600)


def delete_state(config_dir: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(config_dir, name).unlink()


def _encode(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _from_json(data: dict) -> RenewState:
    ari = data.get("ari")
    advice = None
    if ari:
        advice = AriAdvice(serial=str(ari["serial"]), start=_time(ari["start"]), end=_time(ari["end"]),
                           point=_time(ari["point"]), next_check=_time(ari["next_check"]),
                           explanation=ari.get("explanation"))
    return RenewState(failures=int(data.get("failures", 0)), last_error=data.get("last_error"),
                      last_failure=_time(data.get("last_failure")),
                      retry_not_before=_time(data.get("retry_not_before")), ari=advice,
                      revoked_serial=data.get("revoked_serial"))
