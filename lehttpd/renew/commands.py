"""`lehttpd renew`, `revoke`, `delete`, `timer`: flags in, one call, results out.

Imports stay light at the top: a run where nothing is due must start fast (cron runs it twice a day on
machines with thousands of lineages); the ACME machinery is imported only when something is due.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from lehttpd import checks
from lehttpd.console import Console
from lehttpd.errors import ExitStatus, StorageError, UsageError
from lehttpd.fleet.config import is_fleet_node, node_store
from lehttpd.hooks import HOOK_TIMEOUT
from lehttpd.issuance.commands import add_server_options, server_url
from lehttpd.model import Hooks
from lehttpd.store import DEFAULT_CONFIG_DIR, CertStore, check_lineage_name


def register(subparsers, common: argparse.ArgumentParser) -> None:
    _register_renew(subparsers, common)
    revoke = subparsers.add_parser("revoke", parents=[common], help="revoke a lineage's current certificate",
                                   description="Revoke the current certificate of a lineage at its ACME server.")
    revoke.add_argument("--cert-name", required=True, metavar="NAME", help="lineage whose certificate to revoke")
    from lehttpd.renew.manage import REASONS
    revoke.add_argument("--reason", choices=sorted(REASONS), default="unspecified", type=str.lower,
                        help="RFC 5280 revocation reason")
    revoke.add_argument("--delete-after-revoke", action="store_true",
                        help="delete the lineage afterwards (otherwise the next renew replaces it)")
    revoke.add_argument("--ca-bundle", type=Path, metavar="FILE", help="CA certificate(s) for the ACME server's TLS")
    revoke.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                        help="where certificates, accounts and renewal files live")
    revoke.set_defaults(handler=run_revoke)

    delete = subparsers.add_parser("delete", parents=[common], help="delete a lineage (certificates, keys, renewal)",
                                   description="Delete a lineage: live/, archive/ and its renewal file.")
    delete.add_argument("--cert-name", required=True, action="append", metavar="NAME",
                        help="lineage to delete (repeatable)")
    delete.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                        help="where certificates, accounts and renewal files live")
    delete.add_argument("-y", "--yes", action="store_true",
                        help="do not ask for confirmation (needed when not on a terminal; -n does the same)")
    delete.set_defaults(handler=run_delete)

    timer = subparsers.add_parser("timer", parents=[common], help="install or remove the twice-daily renewal",
                                  description="Install a systemd timer or a cron file running `lehttpd renew "
                                              "--quiet` twice a day with a random delay.")
    timer.add_argument("action", choices=("install", "remove"), help="install or remove the timer (or cron file)")
    timer.add_argument("--kind", choices=("auto", "systemd", "cron"), default="auto",
                       help="auto: systemd when it runs this machine, cron otherwise")
    timer.add_argument("--root", type=Path, default=Path("/"), help="install under this root (default /)")
    timer.add_argument("--lehttpd", metavar="PATH", help="the lehttpd command to run (default: this one)")
    timer.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                       help="passed to the renew command when not the default")
    timer.add_argument("--no-enable", action="store_true", help="only write the files (no systemctl)")
    timer.add_argument("--check", action="store_true",
                       help="after each renewal run, whatever its outcome, run `lehttpd check --all --quiet`")
    timer.add_argument("--prometheus", type=Path, metavar="FILE",
                       help="with --check: also write node_exporter's textfile there (implies --check)")
    timer.set_defaults(handler=run_timer)


def _register_renew(subparsers, common: argparse.ArgumentParser) -> None:
    renew = subparsers.add_parser(
        "renew", parents=[common], help="renew every certificate that is due (run it from cron or a timer)",
        description="Renew every lineage in renewal/*.conf that is due, with what it was issued with.")
    renew.add_argument("--cert-name", action="append", default=[], metavar="NAME",
                       help="only these lineages (repeatable, or comma-separated)")
    renew.add_argument("--force", "--force-renewal", "--renew-by-default", action="store_true", dest="force",
                       help="renew even when not due (and ignore back-off)")
    renew.add_argument("--dry-run", action="store_true",
                       help="rehearse every lineage, due or not, against the staging server (or --server): "
                            "nothing saved, no deploy hooks")
    add_server_options(renew)
    for action in renew._actions:  # same flags as `issue`, but here they only steer a rehearsal
        if action.dest in ("server", "staging"):
            action.help = "with --dry-run: rehearse against this server (default: staging for Let's Encrypt)" \
                if action.dest == "server" else "with --dry-run: rehearse against Let's Encrypt's staging server"
    hooks = renew.add_argument_group("hooks (remembered in the renewal file of each lineage renewed)")
    hooks.add_argument("--pre-hook", help="run once before the first renewal, when something is due")
    hooks.add_argument("--post-hook", help="run once after the renewals, when something was due")
    hooks.add_argument("--deploy-hook", help="run once per renewed lineage, with RENEWED_LINEAGE and "
                                             "RENEWED_DOMAINS set (e.g. 'apache2ctl graceful')")
    hooks.add_argument("--hook-timeout", type=float, default=HOOK_TIMEOUT, metavar="SECONDS",
                       help=f"give up on a hook after this long (default {HOOK_TIMEOUT:.0f})")
    run = renew.add_argument_group("run")
    run.add_argument("--workers", type=int, default=8, metavar="N", help="renew up to N lineages at once (default 8)")
    run.add_argument("--wait", type=float, nargs="?", const=3600.0, default=None, metavar="SECONDS",
                     help="when another renew is running, wait for it (default: exit at once, status 0)")
    run.add_argument("--no-ari", action="store_true", help="do not ask the CA for renewal information (RFC 9773)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--work-dir", type=Path, metavar="DIR",
                     help="lineages answered through Apache (authenticator = apache) without a stored folder: "
                          "serve the challenge files from DIR/http-01 (default /var/lib/lehttpd)")
    renew.set_defaults(handler=run_renew)


def build_options(args: argparse.Namespace):
    from lehttpd.renew.runner import RenewOptions

    names = tuple(dict.fromkeys(check_lineage_name(n.strip()) for value in args.cert_name
                                for n in value.split(",") if n.strip()))
    if (args.server or args.staging) and not args.dry_run:
        raise UsageError("--server and --staging only apply to --dry-run; "
                         "a renewal uses the server each lineage was issued by")
    checks.check_ca_bundle(args.ca_bundle, "--ca-bundle")
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers {args.workers}: use 1 to 64")
    if args.hook_timeout <= 0:
        raise UsageError("--hook-timeout must be positive")
    if args.wait is not None and args.wait < 0:
        raise UsageError("--wait must not be negative")
    return RenewOptions(
        config_dir=args.config_dir, cert_names=names, force=args.force, dry_run=args.dry_run,
        server=server_url(args) if (args.server or args.staging) else None,
        ca_bundle=args.ca_bundle.resolve() if args.ca_bundle else None,
        hooks=Hooks(args.pre_hook, args.post_hook, args.deploy_hook), hook_timeout=args.hook_timeout,
        workers=args.workers, wait=args.wait, ari=not args.no_ari,
        token_root=args.work_dir.absolute() / "http-01" if args.work_dir else None)


def run_renew(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.renew.outcome import show
    from lehttpd.renew.runner import renew_all

    # With --json, stdout is the one JSON document: the steps (hooks running…) go to stderr.
    steps = dataclasses.replace(console, stdout=console.stderr) if args.json else console
    summary = renew_all(build_options(args), steps)
    show(summary, console, args.json)
    return summary.exit_status


def run_revoke(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.issuance.status import serial_text
    from lehttpd.renew import manage

    checks.check_ca_bundle(args.ca_bundle, "--ca-bundle")
    store = CertStore(args.config_dir)
    serial = manage.revoke(store, args.cert_name, args.reason, args.ca_bundle, console)
    console.result(f"Revoked {args.cert_name} (serial {serial_text(int(serial, 16))}, reason {args.reason})")
    if args.delete_after_revoke:
        _delete(_deleting_store(args.config_dir, console), [args.cert_name], console)
    elif is_fleet_node(args.config_dir):  # the other nodes serve it until a renewal here publishes
        console.step(f"The other nodes of the fleet serve it until this node renews it: `lehttpd renew --cert-name "
                     f"{args.cert_name}` here now replaces it on every node; or remove it with `lehttpd delete`")
    else:
        console.step("The next `lehttpd renew` replaces it; or remove it with `lehttpd delete`")
    return ExitStatus.SUCCESS


def run_delete(args: argparse.Namespace, console: Console) -> int:
    names = [check_lineage_name(n) for n in args.cert_name]
    if not (args.yes or args.non_interactive) and not _confirmed(names, console):
        console.result("Nothing deleted")
        return ExitStatus.SUCCESS
    _delete(_deleting_store(args.config_dir, console), names, console)
    console.step("Any Apache configuration still pointing at these files must be changed before its next reload")
    return ExitStatus.SUCCESS


def _deleting_store(config_dir: Path, console: Console) -> CertStore:
    """On a fleet node, a delete also removes the lineage from etcd (the other nodes keep their copies, but
    neither renew nor bring it back); elsewhere the plain store."""
    return node_store(config_dir, console, "nothing deleted", in_run=False)


def _delete(store: CertStore, names: list[str], console: Console) -> None:
    """Delete each lineage; what could not be removed is listed and makes the command fail."""
    from lehttpd.renew import manage

    left: list[str] = []
    for name in names:
        problems = manage.delete(store, name)
        if problems:
            left += problems
            console.warn(f"{name} only partly deleted; not removed:")
            for problem in problems:
                console.warn(f"  {problem}")
        else:
            console.result(f"Deleted {name}: live/, archive/ and renewal/{name}.conf")
    if left:
        raise StorageError(f"{len(left)} file(s) or folder(s) could not be removed (listed above); private keys "
                           "may still be on disk")


def _confirmed(names: list[str], console: Console) -> bool:
    """certbot asks on a terminal; lehttpd also refuses to guess when nobody can answer (a script: --yes)."""
    what = ", ".join(names)
    if not console.can_ask:
        raise UsageError(f"delete {what}: not on a terminal, so nobody can confirm; add --yes (or -n) to delete")
    answer = console.ask(f"Delete {what}: its certificates, private keys and renewal file? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def run_timer(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.renew import timer

    root = args.root.resolve()
    enable = not args.no_enable and root == Path("/")
    if args.action == "remove":
        removed = timer.remove(root, enable)
        console.result("Removed " + ", ".join(map(str, removed)) if removed else "Nothing installed")
        return ExitStatus.SUCCESS
    kind = timer.default_kind(root) if args.kind == "auto" else args.kind
    lehttpd = args.lehttpd or timer.lehttpd_path()
    command = timer.renew_command(lehttpd, args.config_dir)
    check = None
    if args.check or args.prometheus:
        prometheus = args.prometheus.absolute() if args.prometheus else None  # cron starts in another folder
        check = timer.check_command(lehttpd, args.config_dir, prometheus)
    installed = timer.install(kind, root, command, enable, check)
    for path in installed.paths:
        console.result(f"Wrote {path}")
    if installed.enabled:
        console.result(f"Enabled and started {timer.TIMER} (systemctl list-timers {timer.TIMER})")
    console.step(f"It runs: {command}" + (f", then {check}" if check else ""))
    return ExitStatus.SUCCESS

