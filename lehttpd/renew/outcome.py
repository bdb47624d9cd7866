"""The result of a renewal run: one Outcome per lineage, a Summary, and how both are shown."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lehttpd.console import Console
from lehttpd.errors import ExitStatus

RENEWED, NOT_DUE, FAILED, SKIPPED, SIMULATED = "renewed", "not_due", "failed", "skipped", "dry_run"


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # one of the constants above
    reason: str
    version: int | None = None
    not_after: dt.datetime | None = None
    hook_error: str | None = None
    retry_not_before: dt.datetime | None = None

    @property
    def failed(self) -> bool:
        return self.status in (FAILED, SKIPPED) or self.hook_error is not None


@dataclass(frozen=True)
class Summary:
    outcomes: tuple[Outcome, ...] = ()
    run_errors: tuple[str, ...] = ()  # pre/post hook failures: not tied to one lineage
    locked: bool = False  # another run held the lock and we chose not to wait
    dry_run: bool = False

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def exit_status(self) -> int:
        if any(outcome.failed for outcome in self.outcomes) or self.run_errors:
            return ExitStatus.PARTIAL
        return ExitStatus.SUCCESS

    @property
    def eventful(self) -> bool:
        """Something a person should read: a renewal or a failure (quiet runs print only then)."""
        return self.exit_status != ExitStatus.SUCCESS or any(
            o.status in (RENEWED, SIMULATED) for o in self.outcomes)

    def document(self) -> dict:
        counts = {status: self.count(status) for status in (RENEWED, NOT_DUE, FAILED, SKIPPED, SIMULATED)}
        return {
            "dry_run": self.dry_run, "locked_out": self.locked, "counts": counts,
            "exit_status": int(self.exit_status), "run_errors": list(self.run_errors),
            "lineages": [{k: v for k, v in _outcome_document(o).items() if v is not None} for o in self.outcomes],
        }


def _outcome_document(outcome: Outcome) -> dict:
    return {"name": outcome.name, "status": outcome.status, "reason": outcome.reason,
            "version": outcome.version, "hook_error": outcome.hook_error,
            "expiry": outcome.not_after.isoformat() if outcome.not_after else None,
            "retry_not_before": outcome.retry_not_before.isoformat() if outcome.retry_not_before else None}


def show(summary: Summary, console: Console, as_json: bool) -> None:
    if as_json:
        console.json(summary.document())
        return
    if summary.locked:
        console.step("Another lehttpd renew is running on this configuration; nothing done (--wait to wait)")
        return
    if console.quiet and not summary.eventful:
        return
    say = console.result if summary.eventful else console.step
    for outcome in summary.outcomes:
        _show_outcome(outcome, console, say)
    for error in summary.run_errors:  # failures go to stderr, where cron and scripts look for them
        console.error(f"hook failed: {error}")
    parts = [f"{summary.count(RENEWED)} renewed", f"{summary.count(NOT_DUE)} not due"]
    parts += [f"{summary.count(s)} {s.replace('_', '-')}" for s in (SIMULATED, FAILED, SKIPPED) if summary.count(s)]
    prefix = "Dry run (nothing saved): " if summary.dry_run else "Renewal: "
    say(prefix + ", ".join(parts))


def _show_outcome(outcome: Outcome, console: Console, say) -> None:
    if outcome.status == NOT_DUE:
        console.detail(f"  not due   {outcome.name}: {outcome.reason}")
        return
    if outcome.status in (RENEWED, SIMULATED):
        label = console.paint("renewed" if outcome.status == RENEWED else "dry run", "green")
        expiry = f", expires {outcome.not_after:%Y-%m-%d %H:%M} UTC" if outcome.not_after else ""
        version = f"version {outcome.version}" if outcome.version else "not saved"
        say(f"  {label:<9} {outcome.name} ({version}{expiry})")
        if outcome.hook_error:
            console.error(f"{outcome.name} renewed, but {outcome.hook_error}")
        return
    if outcome.status == FAILED:
        console.error(f"renewal of {outcome.name} failed: {outcome.reason}")
    else:
        console.error(f"{outcome.name} skipped: {outcome.reason}")
