"""`lehttpd check --all`: the expiry monitor. Every https name Apache serves (from the same discovery the other
commands use) is checked live, and every lineage in the store is read: one row each with grade, days left,
issuer, whether Apache serves the lineage's current version, and the renewal state (next due, last failure).

A row is a problem, and the exit code 8, when a certificate expires within --warn-days, a served certificate is
not the current version of its lineage (a renewal without a reload), or a name cannot be checked at all.
Since Let's Encrypt sends no expiry e-mail any more (2025), this is what tells anyone a renewal silently broke.
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from lehttpd.check.certs import store_index
from lehttpd.check.grade import grade, rank
from lehttpd.check.probe import CheckOptions, check
from lehttpd.console import Console
from lehttpd.errors import ExitStatus

WILDCARD = set("*?[")
PARALLEL = 8  # endpoints checked at once; each check runs its own probes in parallel too


@dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    port: int


@dataclass(frozen=True)
class Row:
    kind: str                          # "served" (a name Apache serves) or "lineage" (a stored certificate)
    name: str
    endpoint: str | None = None        # host:port for served rows
    grade: str | None = None
    failure: str | None = None
    not_after: dt.datetime | None = None
    days_left: float | None = None
    issuer: str | None = None
    lineage: str | None = None
    served_version: int | None = None
    current_version: int | None = None
    next_due: dt.datetime | None = None
    due_reason: str | None = None
    last_failure: dt.datetime | None = None
    last_error: str | None = None
    problems: tuple[str, ...] = ()

    def as_json(self) -> dict:
        document = {key: getattr(self, key) for key in self.__dataclass_fields__}
        for key in ("not_after", "next_due", "last_failure"):
            document[key] = document[key].isoformat() if document[key] else None
        document["days_left"] = round(self.days_left, 2) if self.days_left is not None else None
        document["problems"] = list(self.problems)
        return document


def endpoints(apache_ctl: str | None, default_address: str) -> list[Endpoint]:
    """Every (name, address, port) an SSL vhost answers for; wildcard names cannot be connected to."""
    from lehttpd.apache.discover import discover, port_of
    from lehttpd.apache.vhosts import read_listing

    vhosts, _errors = read_listing(discover(apache_ctl))
    found: dict[tuple[str, str, int], Endpoint] = {}
    for vhost in vhosts:
        if not vhost.ssl:
            continue
        for address in vhost.addresses:
            host = address.rpartition(":")[0] if ":" in address else address
            host = host.strip("[]")
            if host in ("*", "_default_", "0.0.0.0", "::", ""):
                host = default_address
            port = port_of(address) or 443
            for name in vhost.names:
                if not WILDCARD & set(name):
                    found.setdefault((name, host, port), Endpoint(name, host, port))
    return sorted(found.values(), key=lambda e: (e.name, e.port))


def served_row(endpoint: Endpoint, options: CheckOptions, now: dt.datetime, warn_days: float) -> Row:
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        findings = check(endpoint.host, endpoint.port, endpoint.name, options)
    except Exception as error:  # a bug must not hide the other names from the monitor: reported on this row
        failure = f"check failed: {type(error).__name__}: {error} (a bug: please report it)"
        return Row("served", endpoint.name, where, failure=failure, problems=(f"{endpoint.name} ({where}): {failure}",))
    if findings.failure:
        return Row("served", endpoint.name, where, failure=findings.failure,
                   problems=(f"{endpoint.name} ({where}): {findings.failure}",))
    leaf = findings.chain.leaf if findings.chain else None
    store = findings.chain.store if findings.chain else None
    row = Row("served", endpoint.name, where, grade(findings).letter,
              not_after=leaf.not_after if leaf else None, days_left=leaf.days_left(now) if leaf else None,
              issuer=leaf.issuer if leaf else None, lineage=store.lineage if store else None,
              served_version=store.served_version if store else None,
              current_version=store.current_version if store else None)
    problems = list(_expiry_problems(row, warn_days))
    if store is not None and store.current is False:
        problems.append(f"{endpoint.name} ({where}) serves version {store.served_version} of {store.lineage}, "
                        f"current is {store.current_version}: reload Apache (apache2ctl graceful)")
    return replace(row, problems=tuple(problems))


def lineage_rows(config_dir: Path, now: dt.datetime, warn_days: float) -> list[Row]:
    from lehttpd.errors import LehttpdError
    from lehttpd.renew.state import load_state
    from lehttpd.renewal import decide
    from lehttpd.store import CertStore

    store = CertStore(config_dir)
    renewable = set(store.renewal_names())
    rows = []
    for name in store.names():
        try:
            lineage = store.load(name)
        except LehttpdError as error:
            rows.append(Row("lineage", name, failure=error.message, problems=(error.message,)))
            continue
        state = load_state(config_dir, name)
        decision = decide(lineage.not_before, lineage.not_after, now, ari=state.ari.window if state.ari else None,
                          retry_not_before=state.retry_not_before, failures=state.failures)
        row = Row("lineage", name, not_after=lineage.not_after, days_left=lineage.days_left(now),
                  issuer=lineage.issuer, lineage=name, current_version=lineage.version,
                  next_due=decision.when, due_reason=decision.reason, last_failure=state.last_failure,
                  last_error=state.last_error)
        problems = [*_expiry_problems(row, warn_days), *_renewal_problems(store, name, renewable)]
        rows.append(replace(row, problems=tuple(problems)))
    return rows


def _renewal_problems(store, name: str, renewable: set[str]):
    """What would make `lehttpd renew` pass this lineage by: no renewal file, or one it would skip (untrusted,
    corrupt, a value it refuses). The certificate then expires without a word: the monitor says so now."""
    from lehttpd.renew.lineages import Unreadable, not_renewable, read_candidate

    if name not in renewable:
        yield f"{name}: {not_renewable(store, name)}"
        return
    found = read_candidate(store, name, stateful=set())
    if isinstance(found, Unreadable):
        yield f"{name}: renew skips it: {found.reason}"


def _expiry_problems(row: Row, warn_days: float):
    if row.days_left is not None and row.days_left < warn_days:
        what = "expired" if row.days_left < 0 else f"expires in {row.days_left:.1f} days"
        yield f"{row.name}{f' ({row.endpoint})' if row.endpoint else ''}: {what} ({row.not_after:%Y-%m-%d %H:%M} UTC)"


def collect(args, options: CheckOptions, console: Console) -> list[Row]:
    now = dt.datetime.now(dt.timezone.utc)
    found = [] if args.no_apache else endpoints(args.apache_ctl, args.address)
    options = replace(options, store_index=store_index(args.config_dir))
    rows: list[Row] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = [pool.submit(served_row, e, options, now, args.warn_days) for e in found]
        for done, future in enumerate(futures, 1):
            rows.append(future.result())
            console.progress(done, len(futures), "names")
    return rows + lineage_rows(args.config_dir, now, args.warn_days)


def run_all(args, options: CheckOptions, console: Console, minimum: str | None) -> int:
    rows = collect(args, options, console)
    if minimum:
        rows = [replace(r, problems=r.problems + (f"{r.name} ({r.endpoint}): grade {r.grade} below {minimum}",))
                if r.kind == "served" and r.grade and rank(r.grade) < rank(minimum) else r for r in rows]
    problems = [p for row in rows for p in row.problems]
    if args.prometheus:
        from lehttpd.check.metrics import write_textfile

        write_textfile(args.prometheus, rows)
    if args.json:
        console.json({"rows": [r.as_json() for r in rows], "problems": problems, "warn_days": args.warn_days})
    else:
        if not console.quiet:  # under cron with --quiet, only the problems (on stderr)
            console.result(table(rows) if rows else "no https name in Apache and no lineage in the store")
        for problem in problems:
            console.warn(problem)
    return ExitStatus.FINDINGS if problems else ExitStatus.SUCCESS


def table(rows: list[Row]) -> str:
    lines = []
    for row in rows:
        days = f"{row.days_left:6.1f} d" if row.days_left is not None else "     - "
        if row.kind == "served":
            version = "" if row.lineage is None else f"  {row.lineage} v{row.served_version}" + (
                " (current)" if row.served_version == row.current_version else f" (current: v{row.current_version})")
            what = row.failure or f"{row.grade or '-':<3} {days}  {row.issuer}{version}"
            lines.append(f"{row.name:<30} {row.endpoint:<22} {what}")
        else:
            state = f"  next due {row.next_due:%Y-%m-%d}" if row.next_due else ""
            if row.last_failure:
                state += f"  last failure {row.last_failure:%Y-%m-%d %H:%M}: {row.last_error}"
            what = row.failure or f"{'':<3} {days}  {row.issuer}  v{row.current_version}{state}"
            lines.append(f"{row.name:<30} {'(lineage)':<22} {what}")
    return "\n".join(lines)
