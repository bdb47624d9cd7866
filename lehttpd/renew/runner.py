"""One renewal run over many lineages: lock, read, decide, hooks, renew with bounded workers, summarise.

    process lock ─► discover renewal/*.conf ─► ARI advice ─► decide (pure) ─► pre-hooks ─► standalone
    listeners ─► workers: lineage lock ─► re-check ─► order ─► store ─► post-hooks ─► deploy hooks

Every lineage ends as one Outcome; one failing lineage never stops the others. The process lock keeps two
overlapping runs (cron and a person, two timers) apart; the lineage lock and the re-check inside it keep a
lineage from being renewed twice even by a `lehttpd issue` running at the same time. A run that finds the
process lock held longer than any run can take reports the holder and fails, so cron mails it.
"""
from __future__ import annotations

import datetime as dt
import random
import shlex
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

from lehttpd import checks
from lehttpd.console import Console
from lehttpd.errors import LehttpdError, LockHeldError
from lehttpd.hooks import HOOK_TIMEOUT
from lehttpd.model import LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING, Hooks, IssueRequest
from lehttpd.renew import hooks as run_hooks
from lehttpd.renew.index import Known, RenewIndex
from lehttpd.renew.lineages import Candidate, Unreadable, discover, read_candidate
from lehttpd.renew.outcome import FAILED, NOT_DUE, RENEWED, SIMULATED, SKIPPED, Outcome, Summary
from lehttpd.renew.responders import shared_responders, solver_key
from lehttpd.renew.state import load_servers, save_state
from lehttpd.renewal import Decision, backoff_delay, decide
from lehttpd.fileio import file_lock, lock_holder
from lehttpd.fleet.config import node_store
from lehttpd.store import HOOK_KINDS, CertStore, utcnow

DEFAULT_WORKERS = 8
MAX_WORKERS = 64
# Longer than any run takes (hooks time out after 5 minutes, orders after 90 s): a lock held this long
# belongs to a run that hangs, and cron (twice a day) must hear of it.
RUN_TOO_LONG = dt.timedelta(hours=3)
FLEET_RUN_WAIT = 120.0


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
    store = node_store(options.config_dir, console, "nothing renewed")  # a fleet node: under etcd locks
    if store.shared and options.wait is None:  # the fleet agent holds the run lock while it reloads Apache
        options = replace(options, wait=FLEET_RUN_WAIT)
    if not store.renewal_names() and not store.names() and not options.cert_names:
        return Summary(dry_run=options.dry_run)  # nothing was ever issued here
    store.check_config_dir()  # a config dir another user can change is never read, whatever it holds
    acquired = False
    try:
        store.ensure(".locks")
        with file_lock(store.run_lock_path(), options.wait or 0, f"renewal of {options.config_dir}"):
            acquired = True
            return _run(store, options, console)
    except LockHeldError:
        if acquired:
            raise
        _fail_if_hung(store)
        if options.wait is not None:
            raise
        return Summary(locked=True, dry_run=options.dry_run)


def _fail_if_hung(store: CertStore) -> None:
    """Raise when the process lock has been held for longer than a run can take (holder's PID, since when)."""
    holder = lock_holder(store.run_lock_path())
    if holder is None or time.time() - holder[1] < RUN_TOO_LONG.total_seconds():
        return
    pid, since = holder
    started = dt.datetime.fromtimestamp(since, dt.timezone.utc)
    hours = (time.time() - since) / 3600
    raise LockHeldError(f"{store.run_lock_path()} has been held by PID {pid} since {started:%Y-%m-%d %H:%M} UTC "
                        f"({hours:.1f} h), longer than a renewal run can take: that run seems to hang "
                        f"(see `ps -fp {pid}`; kill it, then run `lehttpd renew`)")


def _run(store: CertStore, options: RenewOptions, console: Console) -> Summary:
    now = utcnow()
    cache = load_servers(store)
    index = RenewIndex.load(store)
    found = discover(store, options.cert_names, index)
    if not options.dry_run:
        problem = index.save()  # optional: a full disk costs a full read of every lineage next time
        if problem:
            console.warn(problem)
    outcomes = {u.name: Outcome(u.name, SKIPPED, u.reason) for u in found if isinstance(u, Unreadable)}
    candidates = [c for c in found if not isinstance(c, Unreadable)]
    if options.ari and not options.force and not options.dry_run and candidates:
        from lehttpd.renew import ari
        bundles = {c.server: c.ca_bundle for c in candidates if c.ca_bundle}
        candidates, ari_servers = ari.refresh(candidates, store.config_dir,
                                              lambda server: _verify(options.ca_bundle or bundles.get(server)),
                                              _workers(options), console.detail, now, cache)
        problem = cache.save(store)  # optional: a full disk costs one more directory read next time
        if problem:
            console.warn(problem)
    else:
        ari_servers = set()
    due = []
    for candidate in candidates:
        decision = _decide(candidate, options, now)
        if decision.due and isinstance(candidate, Known):  # decided from the index: read it all before ordering
            candidate = _read_in_full(store, candidate)
            if isinstance(candidate, Unreadable):
                outcomes[candidate.name] = Outcome(candidate.name, SKIPPED, candidate.reason)
                continue
            decision = _decide(candidate, options, now)
        if decision.due:
            due.append((candidate, decision))
        else:
            outcomes[candidate.name] = Outcome(candidate.name, NOT_DUE, decision.reason, candidate.lineage.version,
                                               candidate.lineage.not_after, retry_not_before=_backing_off(
                                                   candidate, now))
    run_errors: list[str] = []
    if due:
        outcomes.update(_renew_due(store, due, options, console, ari_servers, run_errors))
    return Summary(tuple(outcomes[name] for name in sorted(outcomes)), tuple(run_errors), dry_run=options.dry_run)


def _read_in_full(store: CertStore, known: Known) -> Candidate | Unreadable:
    """A lineage the index decided is due, read with every check of a first read (its state as known)."""
    found = read_candidate(store, known.name)
    return replace(found, state=known.state) if isinstance(found, Candidate) else found


def _decide(candidate: Candidate | Known, options: RenewOptions, now: dt.datetime) -> Decision:
    lineage, state = candidate.lineage, candidate.state
    if options.dry_run and not options.force:  # as certbot's: a rehearsal of every renewal, due or not
        return Decision(True, "rehearsed (--dry-run rehearses every lineage)")
    advice = state.ari if state.ari is not None and state.ari.serial == hex(lineage.serial) else None
    return decide(lineage.not_before, lineage.not_after, now, force=options.force,
                  ari=advice.window if advice else None,
                  retry_not_before=state.retry_not_before, failures=state.failures,
                  revoked=state.revoked_serial == hex(lineage.serial))


def _backing_off(candidate: Candidate | Known, now: dt.datetime) -> dt.datetime | None:
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
    folder = _folder_hooks(store, run_errors)
    blocked = run_hooks.shared_hooks("pre", [r for _, r in plans], options.hook_timeout, console, run_errors,
                                     folder["pre"] or [])
    if folder["pre"] is None:  # untrusted pre-hooks (they may stop a server on port 80) block every lineage
        why = next(e for e in run_errors if e.startswith("renewal-hooks/pre"))
        blocked.update({r.lineage_name: f"not attempted: {why}" for _, r in plans})
    try:
        with shared_responders([r for c, r in plans if r.lineage_name not in blocked], console) as (servers, bind_errors):
            blocked.update(bind_errors)
            for candidate, request in plans:
                if request.lineage_name in blocked:
                    outcomes[candidate.name] = _failure(store, candidate, blocked[request.lineage_name],
                                                        None, options, console)
            todo = [(c, r) for c, r in plans if c.name not in outcomes]
            if store.shared:  # fleet nodes start on different lineages: their orders spread, not queue on locks
                random.shuffle(todo)
            outcomes.update(_in_workers(store, todo, options, console, servers, ari_servers))
    finally:
        run_hooks.shared_hooks("post", [r for _, r in plans], options.hook_timeout, console, run_errors,
                               folder["post"] or [])
    if not options.dry_run:
        renewed = [(c, r) for c, r in plans if outcomes[c.name].status == RENEWED]
        for candidate, request in renewed:
            error = _deploy(store, candidate, request, options, console, folder["deploy"])
            if error:
                outcomes[candidate.name] = replace(outcomes[candidate.name], hook_error=error)
        _reload_installers(store, renewed, outcomes, console)
    return outcomes


def _folder_hooks(store: CertStore, run_errors: list[str]) -> dict[str, list[str] | None]:
    """certbot's renewal-hooks/KIND/ scripts as commands; None for a kind with a script or folder that cannot
    be trusted (none of that kind runs then, and the reason goes to run_errors)."""
    commands: dict[str, list[str] | None] = {}
    for kind in HOOK_KINDS:
        scripts, problems = store.hook_scripts(kind)
        run_errors.extend(f"renewal-hooks/{kind} not run: {problem}" for problem in problems)
        commands[kind] = None if problems else [shlex.quote(str(script)) for script in scripts]
    return commands


def _deploy(store: CertStore, candidate: Candidate, request: IssueRequest, options: RenewOptions,
            console: Console, folder: list[str] | None) -> str | None:
    """Deploy hooks hand the lineage to Apache: only once its key and certificate are checked to match."""
    try:
        store.ready_for_apache(candidate.name)
    except LehttpdError as error:
        return f"deploy hooks not run: {error.message}"
    if folder is None:
        folder = []
        error = "renewal-hooks/deploy not run (see above)"
    else:
        error = None
    failed = run_hooks.deploy_hook(request, candidate.lineage.live_dir, options.hook_timeout, console, folder)
    return "; ".join(e for e in (error, failed) if e) or None


def _reload_installers(store: CertStore, renewed: list, outcomes: dict[str, Outcome], console: Console) -> None:
    """Each Apache serving a renewed lineage (installer = apache): reload once, check the new certificate."""
    from lehttpd.renew.installers import Installed, reload_installers

    installed, errors = [], {}
    for candidate, request in renewed:
        if request.installer == "apache":
            try:  # Apache gets the lineage only once its key and certificate are checked to match
                installed.append(Installed(request, store.ready_for_apache(candidate.name)))
            except LehttpdError as error:
                errors[candidate.name] = f"Apache not reloaded: {error.message}"
    errors.update(reload_installers(installed, console))
    for name, error in errors.items():
        previous = outcomes[name].hook_error
        outcomes[name] = replace(outcomes[name], hook_error=f"{previous}; {error}" if previous else error)


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
        if not options.ca_bundle:  # one given on the command line was checked there
            checks.check_ca_bundle(request.ca_bundle, f"{candidate.conf_path}: lehttpd_ca_bundle")
        replaces = _replaces(store, candidate) if offers_ari and not options.dry_run else None
        issued = obtain(request, store, console, Registration(agree_tos=True), solver=solver,
                        account_id=candidate.account_id, replaces=replaces, recheck=recheck,
                        dry_run=options.dry_run)
    except AlreadyRenewed as skipped:
        return Outcome(seen.name, NOT_DUE, str(skipped), seen.version, seen.not_after)
    except LehttpdError as error:
        return _failure(store, candidate, error.message, error, options, console)
    except Exception as error:  # noqa: BLE001 (a bug in one lineage must not stop the others)
        return _failure(store, candidate, f"unexpected {type(error).__name__}: {error}", error, options, console)
    if options.dry_run:
        return Outcome(seen.name, SIMULATED, f"a certificate was issued by {request.server} and discarded",
                       None, issued.lineage.not_after)
    _save_state(store, seen.name, candidate.state.succeeded(), console)
    lineage = issued.lineage
    return Outcome(seen.name, RENEWED, "renewed", lineage.version, lineage.not_after)


def _replaces(store: CertStore, candidate: Candidate) -> str | None:
    from cryptography import x509

    from lehttpd.renew.ari import cert_id
    try:
        return cert_id(x509.load_pem_x509_certificate(store.read_current("cert", candidate.name)))
    except (OSError, ValueError, LehttpdError, x509.ExtensionNotFound):
        return None


def _save_state(store: CertStore, name: str, state, console: Console) -> None:
    """Optional (a full disk, a state folder others can write): the run says so and goes on."""
    problem = save_state(store.config_dir, name, state)
    if problem:
        console.warn(f"{name}: {problem}")


def _failure(store: CertStore, candidate: Candidate, reason: str, error: BaseException | None,
             options: RenewOptions, console: Console) -> Outcome:
    """Record the failure for back-off (not in a dry run) and say when the next attempt will be."""
    if options.dry_run:
        return Outcome(candidate.name, FAILED, reason)
    now = utcnow()
    failures = candidate.state.failures + 1
    retry = now + backoff_delay(failures, random.random(), _retry_after(error))
    _save_state(store, candidate.name, candidate.state.failed(reason, now, retry), console)
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
