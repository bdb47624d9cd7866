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
    group.add_argument("--https-port", type=int, metavar="PORT",
                       help="HTTPS port (default: the one the configuration listens on for https, else 443)")
    group.add_argument("--http-port", type=int, metavar="PORT",
                       help="the HTTP port whose vhosts get an SSL twin and the redirect (default: 80, or the only "
                            "port the names are served on)")
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
    group.add_argument("--emit", action="store_true",
                       help="print the blocks to add by hand (for Apache 2.2 or 2.4), read and write nothing "
                            "(where Augeas is missing or too old)")
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
    install.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                         help="where the lineage's certificates live")
    install.add_argument("--redirect", action="store_true", help="also redirect HTTP to HTTPS")
    install.set_defaults(handler=cmd_install)

    redirect = subparsers.add_parser("redirect", parents=[common, apache_flags, change_flags],
                                     help="permanent HTTP -> HTTPS redirect in the :80 vhosts")
    redirect.add_argument("--cert-name", help="the names of this lineage")
    redirect.add_argument("-d", "--domain", action="append", default=[], metavar="NAME", help="a name (repeat)")
    redirect.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                          help="where the lineage given with --cert-name lives")
    redirect.set_defaults(handler=cmd_redirect)

    harden = subparsers.add_parser("harden", parents=[common, apache_flags, change_flags],
                                   help="TLS options from Mozilla's profiles for every SSL vhost Apache serves")
    harden.add_argument("--profile", choices=PROFILES,
                        help="Mozilla's server-side TLS profile (default: the last harden's, else intermediate)")
    harden.add_argument("--vhost", action="append", default=[], metavar="NAME",
                        help="harden only the SSL vhost serving NAME (or written at FILE:LINE); repeat; "
                             "default: every SSL vhost")
    # Each flag changes only what it names; the others stay as the last harden left them (harden_settings.py).
    harden.add_argument("--hsts", nargs="?", type=int, const=-1, metavar="MAX_AGE",
                        help="Strict-Transport-Security (default max-age: the profile's, two years)")
    harden.add_argument("--hsts-include-subdomains", action="store_true", default=None,
                        help="with --hsts: includeSubDomains")
    harden.add_argument("--hsts-preload", action="store_true", default=None,
                        help="with --hsts of at least one year (31536000): preload")
    harden.add_argument("--staple-ocsp", action="store_true", default=None, help="OCSP stapling (Apache >= 2.4.13)")
    harden.add_argument("--uir", action="store_true", default=None,
                        help="Content-Security-Policy: upgrade-insecure-requests")
    for name, what in (("hsts", "the Strict-Transport-Security header"), ("uir", "the Content-Security-Policy header"),
                       ("staple-ocsp", "OCSP stapling")):
        harden.add_argument(f"--no-{name}", dest="remove", action="append_const", const=name.replace("-", "_"),
                            default=[], help=f"remove {what} an earlier harden set (default: kept)")
    harden.add_argument("--log-format", choices=("vhost_combined",),
                        help="CustomLog format of the SSL vhosts (default: the last harden's, else unchanged)")
    harden.add_argument("--openssl-version", metavar="X.Y.Z",
                        help="the OpenSSL mod_ssl uses (default: read from the library mod_ssl.so links)")
    harden.set_defaults(handler=cmd_harden)

    back = subparsers.add_parser("rollback", parents=[common, apache_flags],
                                 help="undo the last Apache changes lehttpd made")
    back.add_argument("--checkpoints", type=int, default=1, metavar="N", help="how many changes (default 1)")
    back.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, metavar="DIR",
                      help="where the checkpoints are kept")
    back.add_argument("--no-reload", action="store_true", help="config test only; do not reload Apache")
    back.add_argument("--list", action="store_true", help="list the checkpoints (time, command, files), newest first")
    back.add_argument("--dry-run", action="store_true", help="print what rolling back would change, change nothing")
    back.set_defaults(handler=cmd_rollback)


def _source(args):
    from lehttpd.apache.discover import Source  # light: Apache's calls start before the work modules load

    return Source(apache_ctl=args.apache_ctl, server_root=args.server_root, config=args.apache_config,
                  apache_version=args.apache_version)


@contextmanager
def _started(args):
    """The source with Apache's discovery calls already running: the command imports its modules and reads its
    inputs meanwhile. They are stopped if the command fails before reading them."""
    from lehttpd.apache.configtest import BrokenBeforeUs

    source = _source(args).start()
    try:
        yield source
    except BrokenBeforeUs as broken:
        # the full output of Apache's config test goes to the work dir (never on a dry run: it writes nothing)
        if getattr(args, "work_dir", None) and not getattr(args, "dry_run", False):
            raise broken.save(args.work_dir / "apache") from None
        raise
    finally:
        source.cancel()


def _options(args, source):
    from lehttpd.apache.operations import Options

    return Options(source=source, https_port=args.https_port, http_port=args.http_port, work_dir=args.work_dir,
                   dry_run=args.dry_run, reload=not args.no_reload, force=args.force)


def _warn_errors(console: Console, errors) -> None:
    for error in errors:
        console.warn(error.message)


def cmd_vhosts(args, console: Console) -> int:
    with _started(args) as source:
        from lehttpd.apache.reading import list_vhosts

        info, vhosts, errors = list_vhosts(source, args.https_port or 443)
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


def undo_hint(work_dir: Path, apache_ctl: str | None, checkpoint) -> str:
    """The exact rollback command: with the --work-dir and --apache-ctl this change was made with."""
    flags = "".join(f" {flag} {value}" for flag, value, default in (
        ("--work-dir", work_dir, DEFAULT_WORK_DIR), ("--apache-ctl", apache_ctl, None)) if value and value != default)
    return f"undo with `lehttpd rollback{flags}` (checkpoint {checkpoint})"


def _report(outcome, console: Console, args) -> int:
    for note in outcome.plan.notes:
        console.step(note)
    if args.dry_run:
        text = outcome.plan.diff()
        console.result((text.rstrip("\n") if text else "nothing to change") + "\n--dry-run: nothing written")
    elif outcome.plan.empty:
        console.result("nothing to change: the configuration is already as asked")
    else:
        for edit in outcome.plan.edits:
            console.step(f"{'created' if edit.created else 'changed'} {edit.path}  ({edit.reason})")
        console.step(f"done; {undo_hint(args.work_dir, args.apache_ctl, outcome.checkpoint)}")  # quiet under -q
    return 0


def cmd_install(args, console: Console) -> int:
    if args.emit:
        return _emit_install(args, console, redirect=args.redirect)
    with _started(args) as source:
        from lehttpd.apache import operations
        from lehttpd.store import CertStore

        store = CertStore(args.config_dir)
        lineage = store.ready_for_apache(args.cert_name)  # key matches cert
        outcome, errors = operations.install(lineage, _options(args, source), args.redirect, console.step)
    _warn_errors(console, errors)
    if not args.dry_run and store.renewal_conf(lineage.name).exists():
        from lehttpd.issuance.commands import record_installer  # renew reloads Apache after renewing it

        record_installer(store, lineage.name, args.apache_ctl, console)
    return _report(outcome, console, args)


def _emit_install(args, console: Console, redirect: bool) -> int:
    from lehttpd.apache.emit import apache_version, emit_install
    from lehttpd.store import CertStore

    version, how = apache_version(args.apache_version, args.apache_ctl)
    lineage = CertStore(args.config_dir).load(args.cert_name)
    paths = {"cert": str(lineage.cert_path), "chain": str(lineage.chain_path),
             "fullchain": str(lineage.fullchain_path), "key": str(lineage.key_path)}
    console.step(f"Apache {'.'.join(map(str, version))} ({how})")
    console.result(emit_install(version, list(lineage.names), paths, lineage.name, args.https_port or 443, redirect)
                   + "--emit: nothing written")
    return 0


def cmd_redirect(args, console: Console) -> int:
    if not args.domain and not args.cert_name:
        raise UsageError("redirect: give --cert-name NAME or -d NAME")
    if args.emit:
        from lehttpd.apache.emit import apache_version, emit_redirect

        version, how = apache_version(args.apache_version, args.apache_ctl)
        console.step(f"Apache {'.'.join(map(str, version))} ({how})")
        console.result(emit_redirect(version, args.https_port or 443) + "--emit: nothing written")
        return 0
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
    return _report(outcome, console, args)


def cmd_harden(args, console: Console) -> int:
    from lehttpd.apache import operations
    from lehttpd.apache.discover import parse_version
    from lehttpd.apache.operations import HardenRequest

    request = HardenRequest(profile=args.profile, hsts=args.hsts, hsts_subdomains=args.hsts_include_subdomains,
                            hsts_preload=args.hsts_preload, staple_ocsp=args.staple_ocsp, uir=args.uir,
                            log_format=args.log_format, vhosts=tuple(args.vhost), remove=frozenset(args.remove),
                            openssl_version=parse_version(args.openssl_version) if args.openssl_version else None)
    change = request.change()  # contradicting flags refused before Apache is asked anything
    if args.emit:
        from lehttpd.apache.emit import apache_version, emit_options
        from lehttpd.apache.harden_settings import HardenSettings, merge
        from lehttpd.apache.layouts import layout_for, read_os_release
        from lehttpd.apache.policy import build_policy
        from lehttpd.apache.render import build_options_context

        version, how = apache_version(args.apache_version, args.apache_ctl)
        layout = layout_for(read_os_release())
        profile = args.profile or HardenSettings.profile
        policy = build_policy(profile, version, request.openssl_version, bool(args.staple_ocsp), layout.family)
        settings = merge(HardenSettings(), change, policy.hsts_min_age)  # nothing read: nothing remembered
        context = build_options_context(policy, version, request.openssl_version, settings.hsts,
                                        settings.hsts_subdomains, settings.hsts_preload, settings.uir,
                                        settings.log_format, settings=settings.line())
        console.step(f"Apache {'.'.join(map(str, version))} ({how})")
        for note in policy.notes:
            console.step(note)
        root = args.server_root or Path(layout.server_root)
        console.result(emit_options(version, context, str(root / "lehttpd" / "options-ssl.conf"))
                       + "--emit: nothing written")
        return 0
    with _started(args) as source:
        outcome, errors = operations.harden(request, _options(args, source), console.step)
    _warn_errors(console, errors)
    return _report(outcome, console, args)


def cmd_rollback(args, console: Console) -> int:
    from lehttpd.apache.checkpoints import Checkpoints

    if args.checkpoints < 1:
        raise UsageError("--checkpoints must be 1 or more")
    checkpoints = Checkpoints(args.work_dir)
    if args.list or args.dry_run:
        folders = checkpoints.latest(None if args.list else args.checkpoints)
        if not folders:
            console.result(f"no checkpoint in {checkpoints.root}")
            return 0
        for folder in folders:
            manifest = Checkpoints.manifest(folder)
            files = ", ".join(entry["path"] for entry in manifest["entries"])
            console.step(f"{_stamp(folder.name)}  {manifest['command']}  {folder.name}: {files}")
            if args.dry_run:
                console.step(Checkpoints.diff(folder).rstrip("\n") or "(the files are as the checkpoint has them)")
        console.result("--dry-run: nothing written" if args.dry_run else f"{len(folders)} checkpoint(s)")
        return 0
    from lehttpd.apache.apply import rollback
    from lehttpd.apache.reading import discover_source
    from lehttpd.apache.tree import ConfigReader

    reader = ConfigReader()
    try:
        info, _parsed, _errors = discover_source(_source(args), reader)
    finally:
        reader.close()
    folders = rollback(info, args.work_dir, args.checkpoints, do_reload=not args.no_reload, log=console.step)
    console.result(f"rolled back {len(folders)} change(s)")
    return 0


def _stamp(name: str) -> str:
    """20261129T051133.906080 -> 2026-11-29 05:11:33 UTC."""
    return f"{name[0:4]}-{name[4:6]}-{name[6:8]} {name[9:11]}:{name[11:13]}:{name[13:15]} UTC" if len(name) > 15 \
        else name
