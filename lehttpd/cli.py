"""Command line: parse flags, call one handler per command, map errors to one line and an exit code.

Each feature area registers its subcommands from its own `commands` module (listed in COMMAND_MODULES with
the commands it adds) with `register(subparsers, common)`; `common` is the parent parser holding -q/-v/--debug
so that they work after the subcommand too. A handler is `handler(args, console) -> int`.

Only the module of the command being run is imported: `lehttpd renew` from cron every few hours should not
pay for the scanner's or the Apache rewriter's imports. Help and unknown commands load them all.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Sequence

from lehttpd import __version__
from lehttpd.console import Console
from lehttpd.errors import ExitStatus, LehttpdError

COMMAND_MODULES = {
    "lehttpd.issuance.commands": ("issue", "certificates"),
    "lehttpd.apache.commands": ("apache", "install", "redirect", "harden", "rollback"),
    "lehttpd.scan.commands": ("scan",),
    "lehttpd.renew.commands": ("renew", "revoke", "delete", "timer"),
    "lehttpd.check.commands": ("check",),
    "lehttpd.fleet.commands": ("fleet",),
}


def modules_for(argv: Sequence[str]) -> list[str]:
    """The command modules needed to parse argv: the one owning its command, or all of them."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    owners = [module for module, commands in COMMAND_MODULES.items() if command in commands]
    return owners or list(COMMAND_MODULES)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("output")
    group.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="show more (the ACME exchange, without secrets); repeat for more")
    group.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    parser = argparse.ArgumentParser(
        prog="lehttpd", parents=[common],
        description="Take an Apache site from plain HTTP to hardened HTTPS, and keep it there.")
    parser.add_argument("--version", action="version", version=f"lehttpd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in modules_for(argv):
        importlib.import_module(module_name).register(subparsers, common)
    return parser


def run(argv: Sequence[str], console: Console | None = None) -> int:
    parser = build_parser(argv)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # argparse already printed its one-line message
        return int(exit_.code or 0)
    if console is None:
        console = Console(quiet=args.quiet, verbose=args.verbose, debug=args.debug)
    else:
        console.quiet, console.verbose, console.debug = args.quiet, args.verbose, args.debug
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(console.stderr)
        return ExitStatus.USAGE
    try:
        return int(handler(args, console))
    except LehttpdError as error:
        if console.debug:
            traceback.print_exc(file=console.stderr)
        console.error(error.message)
        return int(error.exit_status)
    except KeyboardInterrupt:
        console.error("interrupted")
        return ExitStatus.INTERRUPTED
    except Exception as error:  # a bug: one line unless --debug
        if console.debug:
            traceback.print_exc(file=console.stderr)
        console.error(f"unexpected {type(error).__name__}: {error} (rerun with --debug for details)")
        return ExitStatus.ERROR

