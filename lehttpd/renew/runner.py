"""One renewal run over many lineages: lock, read, decide, hooks, renew with bounded workers, summarise.

    process lock ─► discover renewal/*.conf ─► ARI advice ─► decide (pure) ─► pre-hooks ─► standalone
    listeners ─► workers: lineage lock ─► re-check ─► order ─► store ─► post-hooks ─► deploy hooks

Every lineage ends as one Outcome; one failing lineage never stops the others. The process lock keeps two
overlapping runs (cron and a person, two timers) apart; the lineage lock and the re-check inside it keep a
lineage from being renewed twice even by a `lehttpd issue` running at the same time.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from lehttpd.console import Console
from lehttpd.errors import LehttpdError, LockHeldError
from lehttpd.hooks import HOOK_TIMEOUT
from lehttpd.model import LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING, Hooks, IssueRequest
from lehttpd.renew import hooks as run_hooks
from lehttpd.renew.index import load_index
from lehttpd.renew.lineages import Candidate, Unreadable, discover
from lehttpd.renew.outcome import FAILED, NOT_DUE, RENEWED, SIMULATED, SKIPPED, Outcome, Summary
from lehttpd.renew.state import save_state
from lehttpd.renewal import Decision, backoff_delay, decide
from lehttpd.store import CertStore, file_lock, utcnow

DEFAULT_WORKERS = 8
MAX_WORKERS = 64
QUIET_AT_MOST = dt.timedelta(days=1)  # a quiet-until stamp never spans more than this, whatever the lineages


@dataclass(frozen=True)
class RenewOptions:
    config_dir: Path
    cert_names: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    server: str | None = None  # dry run only: the server to rehearse against
    ca_bundle: Path | None = None
    hooks: Hooks = field(default_factory=Hooks)  # from the command line; override (and replace) the stored ones
    hook_timeout: float = HOOK_TIMEOUT
    workers: int = DEFAULT_WORKERS
    wait: float | None = None  # seconds to wait for another run's lock; None: exit at once
    ari: bool = True
    token_root: Path | None = None  # apache-mode lineages: where challenge files go (overrides the stored one)


class AlreadyRenewed(Exception):
    """Raised under the lineage lock when another process renewed the lineage since we decided."""


def renew_all(options: RenewOptions, console: Console) -> Summary:
    if not (options.config_dir / "renewal").is_dir() and not options.cert_names:
        return Summary(dry_run=options.dry_run)  # nothing was ever issued here
    acquired = False
    try:
        with file_lock(options.config_dir / ".locks" / "renew.lock", options.wait or 0,
                       f"renewal of {options.config_dir}"):
            acquired = True
            return _run(CertStore(options.config_dir), options, console)
    except LockHeldError:
        if acquired or options.wait is not None:
            raise
        return Summary(locked=True, dry_run=options.dry_run)


def _run(store: CertStore, options: RenewOptions, console: Console) -> Summary:
    now = utcnow()
    index = load_index(store.config_dir)
    found = discover(store, options.cert_names, index)
    outcomes = {u.name: Outcome(u.name, SKIPPED, u.reason) for u in found if isinstance(u, Unreadable)}
    candidates = [c for c in found if isinstance(c, Candidate)]
    ari_servers: set[str] = set()
    if options.ari and not options.force and not options.dry_run and candidates:
        from lehttpd.renew import ari
        bundles = {c.request.server: c.request.ca_bundle for c in candidates if c.request.ca_bundle}
        candidates, ari_servers = ari.refresh(candidates, store.config_dir,
                                              lambda server: _verify(options.ca_bundle or bundles.get(server)),
                                              _workers(options), console.detail, now, index)
    if not options.dry_run:
        index.save()
    due, wakeups = [], []
    for candidate in candidates:
        decision = _decide(candidate, options, now)
        if decision.due:
            due.append((candidate, decision))
        else:
            wakeups.append(decision.when)
            outcomes[candidate.name] = Outcome(candidate.name, NOT_DUE, decision.reason, candidate.lineage.version,
                                               candidate.lineage.not_after, retry_not_before=_backing_off(
                                                   candidate, now))
    run_errors: list[str] = []
    if due:
        outcomes.update(_renew_due(store, due, options, console, ari_servers, run_errors))
    _stamp_quiet_until(store.config_dir, options, now, candidates, wakeups, ari_servers, index,
                       clean=not due and len(outcomes) == len(candidates) and not run_errors)
    return Summary(tuple(outcomes[name] for name in sorted(outcomes)), tuple(run_errors), dry_run=options.dry_run)


def _stamp_quiet_until(config_dir: Path, options: RenewOptions, now: dt.datetime, candidates: list[Candidate],
                       wakeups: list, ari_servers: set[str], index, clean: bool) -> None:
    """After a full, clean run with nothing due, tell later cron runs until when they have nothing to do."""
    from lehttpd.renew import quiet

    full_run = not (options.dry_run or options.force or options.cert_names) and options.ari
    until = [*wakeups, now + QUIET_AT_MOST]
    for candidate in candidates:
        advice = candidate.state.ari
        if candidate.request.server in ari_servers:
            if advice is None or advice.serial != hex(candidate.lineage.serial) or advice.next_check <= now:
                clean = False  # the CA's advice could not be refreshed: the next run must ask again
            else:
                until.append(advice.next_check)
        expires = index.directory_expires(candidate.request.server)
        if expires is None:
            clean = False
        else:
            until.append(expires)
    if not full_run:
        return  # a partial run proves nothing about the other lineages: leave the stamp to full runs
    if clean and all(when is not None for when in until):
        quiet.write_stamp(config_dir, min(until))
    else:
        quiet.clear_stamp(config_dir)


def _decide(candidate: Candidate, options: RenewOptions, now: dt.datetime) -> Decision:
    lineage, state = candidate.lineage, candidate.state
    advice = state.ari if state.ari is not None and state.ari.serial == hex(lineage.serial) else None
    return decide(lineage.not_before, lineage.not_after, now, force=options.force,
                  ari=advice.window if advice else None,
                  retry_not_before=state.retry_not_before, failures=state.failures,
                  revoked=state.revoked_serial == hex(lineage.serial))


def _backing_off(candidate: Candidate, now: dt.datetime) -> dt.datetime | None:
    until = candidate.state.retry_not_before
    return until if until is not None and until > now else None


def _verify(ca_bundle: Path | None) -> bool | str:
    return str(ca_bundle) if ca_bundle else True


def _workers(options: RenewOptions) -> int:
    return max(1, min(options.workers, MAX_WORKERS))


def effective_request(candidate: Candidate, options: RenewOptions) -> IssueRequest:
    """What the lineage was issued with, plus the command line's hooks and CA bundle, or the dry-run server."""
    request, cli = candidate.request, options.hooks
    hooks = Hooks(pre=cli.pre or request.hooks.pre, post=cli.post or request.hooks.post,
                  deploy=cli.deploy or request.hooks.deploy)
    server = request.server
    if options.dry_run:
        server = options.server or (LETSENCRYPT_STAGING if request.server == LETSENCRYPT_PRODUCTION
                                    else request.server)
    request = replace(request, hooks=hooks, server=server, ca_bundle=options.ca_bundle or request.ca_bundle)
    if options.token_root is not None and request.challenge.mode == "apache":
        request = replace(request, challenge=replace(request.challenge, token_root=options.token_root))
    return request


def _renew_due(store: CertStore, due: list[tuple[Candidate, Decision]], options: RenewOptions,
               console: Console, ari_servers: set[str], run_errors: list[str]) -> dict[str, Outcome]:
    plans = [(candidate, effective_request(candidate, options)) for candidate, _ in due]
    for candidate, decision in due:
        console.detail(f"  due       {candidate.name}: {decision.reason}")
    outcomes: dict[str, Outcome] = {}
    folder = {kind: run_hooks.directory_hooks(store.config_dir, kind) for kind in ("pre", "post", "deploy")}
    blocked = run_hooks.pre_hooks([r for _, r in plans], options.hook_timeout, console, run_errors, folder["pre"])
    try:
        with _listeners([r for c, r in plans if r.lineage_name not in blocked], console) as (servers, bind_errors):
            blocked.update(bind_errors)
            for candidate, request in plans:
                if request.lineage_name in blocked:
                    outcomes[candidate.name] = _failure(store, candidate, blocked[request.lineage_name],
                                                        None, options)
            todo = [(c, r) for c, r in plans if c.name not in outcomes]
            outcomes.update(_in_workers(store, todo, options, console, servers, ari_servers))
    finally:
        run_hooks.post_hooks([r for _, r in plans], options.hook_timeout, console, run_errors, folder["post"])
    if not options.dry_run:
        renewed = [(c, r) for c, r in plans if outcomes[c.name].status == RENEWED]
        for candidate, request in renewed:
            error = run_hooks.deploy_hook(request, candidate.lineage.live_dir, options.hook_timeout, console,
                                          folder["deploy"])
            if error:
                outcomes[candidate.name] = replace(outcomes[candidate.name], hook_error=error)
        _reload_installers(store, renewed, outcomes, console)
    return outcomes


def _reload_installers(store: CertStore, renewed: list, outcomes: dict[str, Outcome], console: Console) -> None:
    """Each Apache serving a renewed lineage (installer = apache): reload once, check the new certificate."""
    from lehttpd.renew.installers import Installed, reload_installers

    installed = [Installed(r, store.load(c.name)) for c, r in renewed if r.installer == "apache"]
    for name, error in reload_installers(installed, console).items():
        previous = outcomes[name].hook_error
        outcomes[name] = replace(outcomes[name], hook_error=f"{previous}; {error}" if previous else error)


@contextlib.contextmanager
def _listeners(requests: list[IssueRequest], console: Console) -> Iterator[tuple[dict, dict[str, str]]]:
    """One standalone http-01 listener per (port, address) any due lineage needs, shared by its orders.

    Yields (listeners by (port, address), bind errors by lineage name).
    """
    from lehttpd.issuance import solvers

    servers: dict[tuple[int, str], solvers.StandaloneServer] = {}
    failed: dict[tuple[int, str], str] = {}
    errors: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        _apache_responders(requests, stack, servers, errors, console)
        for request in requests:
            if request.challenge.mode != "standalone":
                continue
            where = (request.challenge.http_port, request.challenge.http_address)
            if where not in servers and where not in failed:
                try:
                    servers[where] = stack.enter_context(solvers.standalone(*where, console.detail))
                except LehttpdError as error:
                    failed[where] = error.message
            if where in failed:
                errors[request.lineage_name] = failed[where]
        yield servers, errors


def solver_key(request: IssueRequest) -> tuple:
    """Which shared responder answers for a request: per (port, address) standalone, per Apache otherwise."""
    setup = request.challenge
    if setup.mode == "apache":
        return ("apache", setup.apache_ctl, setup.http_port)
    return (setup.http_port, setup.http_address)


def _apache_responders(requests: list[IssueRequest], stack: contextlib.ExitStack, servers: dict,
                       errors: dict[str, str], console: Console) -> None:
    """One temporary include per Apache for the whole run (two reloads, however many lineages)."""
    from lehttpd.issuance.answering import start_apache_responder

    groups: dict[tuple, list[IssueRequest]] = {}
    for request in requests:
        if request.challenge.mode == "apache":
            groups.setdefault(solver_key(request), []).append(request)
    for key, group in groups.items():
        names = tuple(name for request in group for name in request.names)
        try:
            servers[key] = stack.enter_context(start_apache_responder(group[0].challenge, names, console))
        except LehttpdError as error:
            errors.update({request.lineage_name: error.message for request in group})


def _in_workers(store: CertStore, todo: list[tuple[Candidate, IssueRequest]], options: RenewOptions,
                console: Console, servers: dict, ari_servers: set[str]) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    if not todo:
        return outcomes
    order_console = replace(console, quiet=console.verbose < 1)
    with ThreadPoolExecutor(max_workers=min(_workers(options), len(todo))) as pool:
        futures = [pool.submit(renew_one, store, candidate, request, options, order_console,
                               servers.get(solver_key(request)),
                               request.server in ari_servers)
                   for candidate, request in todo]
        for done, future in enumerate(as_completed(futures), 1):
            outcome = future.result()
            outcomes[outcome.name] = outcome
            if len(todo) >= 5:
                console.progress(done, len(todo), outcome.name)
    return outcomes


def renew_one(store: CertStore, candidate: Candidate, request: IssueRequest, options: RenewOptions,
              console: Console, solver, offers_ari: bool) -> Outcome:
    """Renew one lineage; never raises for a renewal failure (it becomes the Outcome)."""
    from lehttpd.issuance.account import Registration
    from lehttpd.issuance.order import obtain

    seen = candidate.lineage

    def recheck() -> None:
        current = store.load(seen.name)
        if not options.dry_run and (current.version, current.serial) != (seen.version, seen.serial):
            raise AlreadyRenewed(f"renewed meanwhile by another process (now version {current.version})")

    try:
        replaces = _replaces(candidate) if offers_ari and not options.dry_run else None
        issued = obtain(request, store, console, Registration(agree_tos=True), solver=solver,
                        account_id=candidate.account_id, replaces=replaces, recheck=recheck,
                        dry_run=options.dry_run)
    except AlreadyRenewed as skipped:
        return Outcome(seen.name, NOT_DUE, str(skipped), seen.version, seen.not_after)
    except LehttpdError as error:
        return _failure(store, candidate, error.message, error, options)
    except Exception as error:  # noqa: BLE001 (a bug in one lineage must not stop the others)
        return _failure(store, candidate, f"unexpected {type(error).__name__}: {error}", error, options)
    if options.dry_run:
        return Outcome(seen.name, SIMULATED, f"a certificate was issued by {request.server} and discarded",
                       None, issued.lineage.not_after)
    save_state(store.config_dir, seen.name, candidate.state.succeeded())
    lineage = issued.lineage
    return Outcome(seen.name, RENEWED, "renewed", lineage.version, lineage.not_after)


def _replaces(candidate: Candidate) -> str | None:
    from cryptography import x509

    from lehttpd.renew.ari import cert_id
    try:
        return cert_id(x509.load_pem_x509_certificate(candidate.lineage.cert_path.read_bytes()))
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None


def _failure(store: CertStore, candidate: Candidate, reason: str, error: BaseException | None,
             options: RenewOptions) -> Outcome:
    """Record the failure for back-off (not in a dry run) and say when the next attempt will be."""
    if options.dry_run:
        return Outcome(candidate.name, FAILED, reason)
    now = utcnow()
    failures = candidate.state.failures + 1
    retry = now + backoff_delay(failures, random.random(), _retry_after(error))
    save_state(store.config_dir, candidate.name, candidate.state.failed(reason, now, retry))
    return Outcome(candidate.name, FAILED, reason, retry_not_before=retry if retry > now else None)


def _retry_after(error: BaseException | None) -> dt.timedelta | None:
    """The server's Retry-After, carried by the RateLimitedError the order raised."""
    from lehttpd.issuance.network import RateLimitedError

    seen = 0
    while error is not None and seen < 10:
        delay = error.retry_after if isinstance(error, RateLimitedError) else None
        if delay:
            return dt.timedelta(seconds=delay)
        error, seen = error.__context__, seen + 1
    return None
