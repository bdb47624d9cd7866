"""`lehttpd check`: grade one live HTTPS endpoint, or (--all) every name Apache serves and every stored lineage."""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import ExitStatus, UsageError

DEFAULT_CONFIG_DIR = Path("/etc/letsencrypt")


def register(subparsers, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "check", parents=[common], help="grade a live HTTPS site (A+ to F), or watch every certificate (--all)",
        description="Probe protocols, suites, the certificate chain and the HTTP side of a live HTTPS endpoint and "
                    "grade it as the SSL Labs rating guide does; with --all, one line per name Apache serves and "
                    "per stored lineage: grade, days left, issuer, whether the current version is served.")
    p.add_argument("target", nargs="?", metavar="HOST[:PORT]", help="the endpoint (port 443 by default)")
    p.add_argument("--sni", metavar="NAME", help="server name to ask for (default: HOST, none for an address)")
    p.add_argument("--ca-bundle", type=Path, metavar="FILE", help="trust this CA bundle instead of the system store")
    p.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                   help=f"lehttpd's store: is the served certificate the current one? (default {DEFAULT_CONFIG_DIR})")
    p.add_argument("--http-port", type=int, default=80, metavar="PORT",
                   help="where http:// is served, to test the redirect (default 80; 0: do not test)")
    p.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="per connection (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument("--min-grade", metavar="GRADE", help="exit 8 when the grade is below this one (A+ … F)")
    watch = p.add_argument_group("every certificate (--all)")
    watch.add_argument("--all", action="store_true",
                       help="every https name Apache serves and every lineage in the store")
    watch.add_argument("--apache-ctl", metavar="PATH", help="apache2ctl/apachectl/httpd to ask (default: found)")
    watch.add_argument("--no-apache", action="store_true", help="with --all: the store's lineages only")
    watch.add_argument("--address", default="127.0.0.1", metavar="IP",
                       help="with --all: where to connect for vhosts on * or _default_ (default 127.0.0.1)")
    watch.add_argument("--warn-days", type=float, default=14, metavar="DAYS",
                       help="with --all: exit 8 when a certificate expires within DAYS (default 14)")
    watch.add_argument("--prometheus", type=Path, metavar="FILE",
                       help="with --all: write node_exporter textfile metrics to FILE (atomically)")
    p.set_defaults(handler=run_check)


def _validate(args: argparse.Namespace) -> None:
    if args.all == bool(args.target):
        raise UsageError("check needs HOST[:PORT] or --all (not both)")
    if not args.all and (args.prometheus or args.apache_ctl or args.no_apache):
        raise UsageError("--prometheus, --apache-ctl and --no-apache go with --all")
    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    if not 0 < args.timeout <= 60:
        raise UsageError("--timeout must be between 0 and 60 seconds")
    if not 0 <= args.http_port < 65536:
        raise UsageError("--http-port must be a port number (0: do not test)")
    if args.sni is not None:
        args.sni = _idna(args.sni)


def _idna(name: str) -> str:
    try:
        encoded = name.strip().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise UsageError(f"--sni {name!r} is not a valid host name") from None
    if not encoded or any(c.isspace() or c in "/:@" for c in encoded):
        raise UsageError(f"--sni {name!r} is not a valid host name")
    return encoded


def options_from(args: argparse.Namespace):
    from lehttpd.check.probe import CheckOptions

    return CheckOptions(ca_bundle=args.ca_bundle, config_dir=args.config_dir, http_port=args.http_port or None,
                        timeout=args.timeout, deadline=max(20.0, 4 * args.timeout))


def run_check(args: argparse.Namespace, console: Console) -> int:
    _validate(args)
    from lehttpd.check.grade import parse_grade

    minimum = parse_grade(args.min_grade) if args.min_grade else None
    if args.all:
        from lehttpd.check.watch import run_all

        return run_all(args, options_from(args), console, minimum)
    from lehttpd.check.grade import grade, rank
    from lehttpd.check.probe import check, parse_target
    from lehttpd.check.report import as_json, text

    host, port = parse_target(args.target)
    if args.sni is None and not _is_address(host):
        host = _idna(host)
    findings = check(host, port, args.sni, options_from(args))
    result = grade(findings) if findings.failure is None else None
    if args.json:
        console.json(as_json(findings, result))
    elif result is not None:
        console.result(text(findings, result, dt.datetime.now(dt.timezone.utc), console.paint))
    if result is None:
        if not args.json:
            console.error(f"{f'[{host}]' if ':' in host else host}:{port}: {findings.failure}")
        return ExitStatus.NETWORK
    if minimum and rank(result.letter) < rank(minimum):
        if not args.json:
            console.warn(f"grade {result.letter} is below --min-grade {minimum}")
        return ExitStatus.FINDINGS
    return ExitStatus.SUCCESS


def _is_address(host: str) -> bool:
    from lehttpd.check.probe import is_ip

    return is_ip(host)
