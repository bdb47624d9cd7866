"""CLI for the Apache rewriter: `apache vhosts`, `install`, `redirect`, `harden`, `rollback`."""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import UsageError

# Only what building the parser needs is imported here; the work modules are imported by the handlers, so that
# `lehttpd --help` and the other areas' commands do not pay for Augeas, Jinja2 and the planner.
DEFAULT_WORK_DIR = Path("/var/lib/lehttpd")
DEFAULT_CONFIG_DIR = Path("/etc/letsencrypt")
PROFILES = ("modern", "intermediate", "old")


def _apache_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("Apache")
    group.add_argument("--apache-ctl", metavar="PATH", help="apache2ctl/apachectl/httpd to use (default: found)")
    group.add_argument("--server-root", type=Path, metavar="DIR",
                       help="read this tree without running Apache (static mode: listing and --dry-run only)")
    group.add_argument("--apache-config", type=Path, metavar="FILE", help="main config file in static mode")
    group.add_argument("--apache-version", metavar="X.Y.Z", help="override the Apache version (2.2 or 2.4 output)")
    group.add_argument("--https-port", type=int, default=443, metavar="PORT", help="HTTPS port (default 443)")
    return flags


def _change_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("changes")
    group.add_argument("--dry-run", action="store_true", help="print the unified diff, change nothing")
    group.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, metavar="DIR",
                       help=f"where checkpoints are kept (default {DEFAULT_WORK_DIR})")
    group.add_argument("--no-reload", action="store_true", help="config test only; do not reload Apache")
    group.add_argument("--force", action="store_true",
                       help="overwrite a hand-edited managed file; redirect without an HTTPS vhost")
    return flags


def register(subparsers, common) -> None:
    apache_flags, change_flags = _apache_flags(), _change_flags()
    apache = subparsers.add_parser("apache", parents=[common], help="inspect the Apache configuration")
    inner = apache.add_subparsers(dest="apache_command", metavar="SUBCOMMAND")
    vhosts = inner.add_parser("vhosts", parents=[common, apache_flags], help="list the virtual hosts found")
    vhosts.add_argument("--json", action="store_true", help="machine-readable output")
    vhosts.set_defaults(handler=cmd_vhosts)

    install = subparsers.add_parser("install", parents=[common, apache_flags, change_flags],
                                    help="serve a stored certificate over HTTPS from Apache")
    install.add_argument("--cert-name", required=True, help="lineage to install")
    install.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR")
    install.add_argument("--redirect", action="store_true", help="also redirect HTTP to HTTPS")
    install.set_defaults(handler=cmd_install)

    redirect = subparsers.add_parser("redirect", parents=[common, apache_flags, change_flags],
                                     help="permanent HTTP -> HTTPS redirect in the :80 vhosts")
    redirect.add_argument("--cert-name", help="the names of this lineage")
    redirect.add_argument("-d", "--domain", action="append", default=[], metavar="NAME", help="a name (repeat)")
    redirect.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR")
    redirect.set_defaults(handler=cmd_redirect)

    harden = subparsers.add_parser("harden", parents=[common, apache_flags, change_flags],
                                   help="TLS options from Mozilla's profiles for every SSL vhost lehttpd manages")
    harden.add_argument("--profile", choices=PROFILES, default="intermediate")
    harden.add_argument("--hsts", nargs="?", type=int, const=63072000, metavar="MAX_AGE",
                        help="Strict-Transport-Security (default max-age 63072000 s, two years)")
    harden.add_argument("--hsts-include-subdomains", action="store_true")
    harden.add_argument("--hsts-preload", action="store_true")
    harden.add_argument("--staple-ocsp", action="store_true", help="OCSP stapling (Apache >= 2.4.13)")
    harden.add_argument("--uir", action="store_true", help="Content-Security-Policy: upgrade-insecure-requests")
    harden.add_argument("--log-format", choices=("vhost_combined",), help="CustomLog format of the SSL vhosts")
    harden.add_argument("--openssl-version", metavar="X.Y.Z", help="override the OpenSSL version mod_ssl uses")
    harden.set_defaults(handler=cmd_harden)

    back = subparsers.add_parser("rollback", parents=[common, apache_flags],
                                 help="undo the last Apache changes lehttpd made")
    back.add_argument("--checkpoints", type=int, default=1, metavar="N", help="how many changes (default 1)")
    back.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, metavar="DIR")
    back.add_argument("--no-reload", action="store_true")
    back.set_defaults(handler=cmd_rollback)


def _source(args):
    from lehttpd.apache.discover import Source  # light: Apache's calls start before the work modules load

    return Source(apache_ctl=args.apache_ctl, server_root=args.server_root, config=args.apache_config,
                  apache_version=args.apache_version)


@contextmanager
def _started(args):
    """The source with Apache's discovery calls already running: the command imports its modules and reads its
    inputs meanwhile. They are stopped if the command fails before reading them."""
    source = _source(args).start()
    try:
        yield source
    finally:
        source.cancel()


def _options(args, source):
    from lehttpd.apache.operations import Options

    return Options(source=source, https_port=args.https_port, work_dir=args.work_dir,
                   dry_run=args.dry_run, reload=not args.no_reload, force=args.force)


def _warn_errors(console: Console, errors) -> None:
    for error in errors:
        console.warn(error.message)


def cmd_vhosts(args, console: Console) -> int:
    with _started(args) as source:
        from lehttpd.apache.session import list_vhosts

        info, vhosts, errors = list_vhosts(source, args.https_port)
    _warn_errors(console, errors)
    if args.json:
        console.json({"server_root": str(info.server_root), "version": ".".join(map(str, info.version)),
                      "layout": info.layout.family, "vhosts": [v.as_json() for v in vhosts],
                      "errors": [e.message for e in errors]})
        return 0
    lines = []
    for v in vhosts:
        ssl = f"SSL {v.cert_file or '(no certificate)'}" if v.ssl else "http"
        names = " ".join([v.server_name or "-"] + [f"+{a}" for a in v.aliases])
        lines.append(f"{v.file}:{v.line}  {' '.join(v.addresses)}  {names}  root={v.document_root or '-'}  {ssl}")
    console.result("\n".join(lines) if lines else f"no virtual hosts found under {info.server_root}")
    _mention_leftovers(info, console)
    return 0


def _mention_leftovers(info, console: Console) -> None:
    """A temporary http-01 include (or vhost line) of a killed `lehttpd issue`: said here, removed by the next issue."""
    from lehttpd.apache.challenge import leftovers

    for item in leftovers(info):
        console.warn(f"{item.path}: temporary http-01 configuration left behind by an interrupted lehttpd run "
                     f"(pid {item.owner_pid}); the next `lehttpd issue` or `renew` through Apache removes it")


def _report(outcome, console: Console, dry_run: bool) -> int:
    for note in outcome.plan.notes:
        console.step(note)
    if dry_run:
        text = outcome.plan.diff()
        console.result(text.rstrip("\n") if text else "nothing to change")
    elif outcome.plan.empty:
        console.result("nothing to change: the configuration is already as asked")
    else:
        for edit in outcome.plan.edits:
            console.step(f"{'created' if edit.created else 'changed'} {edit.path}  ({edit.reason})")
        console.result(f"done; undo with `lehttpd rollback` (checkpoint {outcome.checkpoint})")
    return 0


def cmd_install(args, console: Console) -> int:
    with _started(args) as source:
        from lehttpd.apache import operations
        from lehttpd.store import CertStore

        store = CertStore(args.config_dir)
        lineage = store.load(args.cert_name)
        outcome, errors = operations.install(lineage, _options(args, source), args.redirect, console.step)
    _warn_errors(console, errors)
    if not args.dry_run and store.renewal_conf(lineage.name).exists():
        from lehttpd.issuance.commands import record_installer  # renew reloads Apache after renewing it

        record_installer(store, lineage.name, args.apache_ctl, console)
    return _report(outcome, console, args.dry_run)


def cmd_redirect(args, console: Console) -> int:
    if not args.domain and not args.cert_name:
        raise UsageError("redirect: give --cert-name NAME or -d NAME")
    with _started(args) as source:
        from lehttpd.apache import operations
        from lehttpd.store import CertStore

        names = list(args.domain)
        if args.cert_name:
            names += list(CertStore(args.config_dir).load(args.cert_name).names)
        if not names:
            raise UsageError("redirect: give --cert-name NAME or -d NAME")
        outcome, errors = operations.redirect(names, _options(args, source), console.step)
    _warn_errors(console, errors)
    return _report(outcome, console, args.dry_run)


def cmd_harden(args, console: Console) -> int:
    from lehttpd.apache import operations
    from lehttpd.apache.discover import parse_version
    from lehttpd.apache.operations import HardenRequest

    request = HardenRequest(profile=args.profile, hsts=args.hsts, hsts_subdomains=args.hsts_include_subdomains,
                            hsts_preload=args.hsts_preload, staple_ocsp=args.staple_ocsp, uir=args.uir,
                            log_format=args.log_format,
                            openssl_version=parse_version(args.openssl_version) if args.openssl_version else None)
    with _started(args) as source:
        outcome, errors = operations.harden(request, _options(args, source), console.step)
    _warn_errors(console, errors)
    return _report(outcome, console, args.dry_run)


def cmd_rollback(args, console: Console) -> int:
    from lehttpd.apache.apply import rollback
    from lehttpd.apache.session import discover_source
    from lehttpd.apache.tree import ConfigReader

    if args.checkpoints < 1:
        raise UsageError("--checkpoints must be 1 or more")
    reader = ConfigReader()
    try:
        info, _parsed, _errors = discover_source(_source(args), reader)
    finally:
        reader.close()
    folders = rollback(info, args.work_dir, args.checkpoints, do_reload=not args.no_reload)
    for folder in folders:
        console.step(f"restored {folder.name}")
    console.result(f"rolled back {len(folders)} change(s)")
    return 0
