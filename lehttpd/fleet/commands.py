"""`lehttpd fleet init|join|status|agent`: flags in, one call, results out."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import ExitStatus, UsageError
from lehttpd.store import DEFAULT_CONFIG_DIR, CertStore


def register(subparsers, common: argparse.ArgumentParser) -> None:
    fleet = subparsers.add_parser("fleet", parents=[common], help="share certificates between servers through etcd",
                                  description="Several Apache servers behind a load balancer share their "
                                              "certificates through etcd; see the README's Fleet section.")
    actions = fleet.add_subparsers(dest="fleet_action", metavar="ACTION", required=True)
    for action, text in (("init", "start a fleet: import this node's certificates into etcd"),
                         ("join", "add this node to a fleet (needs a copy of the fleet key)")):
        p = actions.add_parser(action, parents=[common], help=text, description=text)
        p.add_argument("--etcd", required=True, metavar="URL[,URL...]", help="etcd client URLs")
        p.add_argument("--cacert", type=Path, metavar="FILE", help="CA that signed etcd's certificates")
        p.add_argument("--cert", type=Path, metavar="FILE", help="client certificate for etcd")
        p.add_argument("--key", type=Path, metavar="FILE", help="its private key")
        p.add_argument("--prefix", default="/lehttpd/", help="etcd key prefix (default /lehttpd/)")
        p.add_argument("--node", help="this node's name (default: the host name)")
        p.add_argument("--challenge-webroot", type=Path, metavar="DIR",
                       help="folder this node's Apache serves /.well-known/acme-challenge/ from")
        p.add_argument("--reload-command", metavar="COMMAND", help="run after new certificates arrive "
                                                                   "(e.g. 'apache2ctl graceful')")
        p.add_argument("--lock-ttl", type=int, default=15, metavar="SECONDS",
                       help="lease of a renewal lock: how long a dead renewer blocks its lineage (default 15)")
        if action == "join":
            p.add_argument("--fleet-key", type=Path, required=True, metavar="FILE",
                           help="a copy of CONFIG_DIR/.lehttpd/fleet.key from a node of the fleet")
        p.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                       help="the local store (certbot layout)")
        p.set_defaults(handler=run_init if action == "init" else run_join)
    imp = actions.add_parser("import", parents=[common], help="copy lineages made before joining into etcd",
                             description="Copy this node's lineages that the fleet does not have yet (made before "
                                         "it joined; `lehttpd issue` on a fleet node publishes by itself) into etcd.")
    imp.add_argument("--cert-name", action="append", default=[], metavar="NAME", help="only these (repeatable)")
    imp.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                     help="the local store (certbot layout)")
    imp.set_defaults(handler=run_import)
    status = actions.add_parser("status", parents=[common], help="nodes, lineages, who renews what, staleness")
    status.add_argument("--json", action="store_true", help="the status as JSON")
    status.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                        help="the local store (certbot layout)")
    status.set_defaults(handler=run_status)
    agent = actions.add_parser("agent", parents=[common], help="keep this node equal to etcd (a service)")
    agent.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                       help="the local store (certbot layout)")
    agent.set_defaults(handler=run_agent)


def _config(args: argparse.Namespace):
    from lehttpd.fleet.config import FleetConfig, check_etcd_ca

    for flag in ("cacert", "cert", "key"):
        path = getattr(args, flag)
        if path is not None and not path.is_file():
            raise UsageError(f"--{flag} {path}: no such file")
    if (args.cert is None) != (args.key is None):
        raise UsageError("--cert and --key go together")
    check_etcd_ca(args.cacert, "--cacert")
    if args.challenge_webroot is not None and not args.challenge_webroot.is_dir():
        raise UsageError(f"--challenge-webroot {args.challenge_webroot}: not a folder")
    extra = {"node": args.node} if args.node else {}
    return FleetConfig(
        endpoints=tuple(u.strip() for u in args.etcd.split(",") if u.strip()), prefix=args.prefix,
        cacert=_abs(args.cacert), cert=_abs(args.cert), key=_abs(args.key),
        challenge_webroot=_abs(args.challenge_webroot), reload_command=args.reload_command,
        lock_ttl=args.lock_ttl, **extra)


def run_init(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.fleet import setup

    config = _config(args)
    imported, present = setup.init(CertStore(args.config_dir), config, console)
    console.result(f"Fleet started under {config.prefix} on {', '.join(config.endpoints)}: {imported} lineage(s) "
                   f"imported{f', {present} already there' if present else ''}")
    console.step(f"On each other node: copy {args.config_dir}/.lehttpd/fleet.key (0600), then `lehttpd fleet join`")
    return ExitStatus.SUCCESS


def run_join(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.fleet import setup

    config = _config(args)
    pulled = setup.join(CertStore(args.config_dir), config, args.fleet_key.read_bytes(), console)
    console.result(f"Joined the fleet as {config.node}: {pulled} lineage(s) written from etcd")
    console.step("Start the agent (contrib/lehttpd-fleet-agent.service) to stay in sync")
    return ExitStatus.SUCCESS


def run_import(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.fleet import setup
    from lehttpd.fleet.shared import Fleet
    from lehttpd.store import check_lineage_name

    only = tuple(check_lineage_name(n) for n in args.cert_name)
    missing = [n for n in only if n not in CertStore(args.config_dir).names()]
    if missing:
        raise UsageError(f"no certificate named {missing[0]!r} under {args.config_dir}")
    imported, present = setup.import_local(Fleet.open(args.config_dir), console, only)
    console.result(f"{imported} lineage(s) imported{f', {present} already in etcd' if present else ''}")
    return ExitStatus.SUCCESS


def run_status(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.fleet.status import gather, show

    report = gather(Path(args.config_dir))
    show(report, console, args.json)
    return ExitStatus.SUCCESS if report.reachable else ExitStatus.NETWORK


def run_agent(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.fleet.agent import Agent
    from lehttpd.fleet.shared import Fleet

    fleet = Fleet.open(args.config_dir)
    console.step(f"fleet agent of {fleet.config.node} on {', '.join(fleet.config.endpoints)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # systemctl stop: clean up like Ctrl-C
    Agent(fleet, console).run()
    return ExitStatus.SUCCESS


def _abs(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None
