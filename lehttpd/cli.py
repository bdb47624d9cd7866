"""Command line: parse flags, call one handler per command, map errors to one line and an exit code.

Each feature area registers its subcommands from its own `commands` module (listed in COMMAND_MODULES with
the commands it adds) with `register(subparsers, common)`; `common` is the parent parser holding -q/-v/--debug
so that they work after the subcommand too. A handler is `handler(args, console) -> int`.

Only the module of the command being run is imported: `lehttpd renew` from cron every few hours should not
pay for the scanner's or the Apache rewriter's imports. Help and unknown commands load them all.

Conventions every command gets from here: certbot's flag names (lehttpd/certbot_flags.py), a help line with its
default for every flag, a usage error that shows the usage of the subcommand at fault, the operations log
(lehttpd/oplog.py) for commands that change something, and a quiet exit when the reader of stdout goes away.
"""
from __future__ import annotations

import argparse
import importlib
import traceback
from pathlib import Path
from typing import Sequence

from lehttpd import __version__
from lehttpd.certbot_flags import translate_certbot_flags
from lehttpd.console import Console
from lehttpd.errors import ExitStatus, LehttpdError

COMMAND_MODULES = {
    "lehttpd.issuance.commands": ("issue", "certificates"),
    "lehttpd.apache.commands": ("apache", "install", "redirect", "harden", "rollback"),
    "lehttpd.scan.commands": ("scan",),
    "lehttpd.renew.commands": ("renew", "revoke", "delete", "timer"),
    "lehttpd.check.commands": ("check",),
    "lehttpd.issuance.account_commands": ("account",),
    "lehttpd.fleet.commands": ("fleet",),
}
# Commands that change something write the operations log (never with --dry-run).
LOGGED_COMMANDS = {"issue", "renew", "revoke", "delete", "install", "redirect", "harden", "rollback", "timer"}
_PARSER_ATTR = "_lehttpd_parser"  # the innermost (sub)parser that read the command line


class HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to a flag's help unless the text already gives it ("default …" or "(X)")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if not action.option_strings or default in (None, False, [], (), "", argparse.SUPPRESS):
            return text
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        if "default" in text or f"({shown})" in text:
            return text
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands report unknown flags with their own usage, not the top-level one."""

    common_defaults: dict = {}  # the top parser fills these in once everything is parsed

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        for name, default in self.common_defaults.items():
            if not hasattr(namespace, name):
                setattr(namespace, name, default)
        if not hasattr(namespace, _PARSER_ATTR):  # the innermost subparser returns first
            setattr(namespace, _PARSER_ATTR, self)
        return namespace, extras


def modules_for(argv: Sequence[str]) -> list[str]:
    """The command modules needed to parse argv: the one owning its command, or all of them."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    owners = [module for module, commands in COMMAND_MODULES.items() if command in commands]
    return owners or list(COMMAND_MODULES)


# The flags every command takes, before or after its name. They have no default of their own (a subparser's would
# overwrite what was given before the command: `lehttpd -q renew`); the top parser fills these in at the end.
COMMON_DEFAULTS = {"quiet": False, "verbose": 0, "debug": False, "non_interactive": False, "log_dir": None}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = common.add_argument_group("output")
    group.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    group.add_argument("-v", "--verbose", action="count",
                       help="show more (the ACME exchange, without secrets); repeat for more")
    group.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    group.add_argument("-n", "--non-interactive", action="store_true",
                       help="never ask (certbot's -n): delete and account deactivate go ahead, anything else "
                            "that would ask (the terms of service) is an error")
    group.add_argument("--log-dir", "--logs-dir", type=Path, metavar="DIR",
                       help="where commands that change something append lehttpd.log "
                            "(default: $LEHTTPD_LOG_DIR or /var/log/lehttpd)")

    parser = Parser(
        prog="lehttpd", parents=[common],
        description="Take an Apache site from plain HTTP to hardened HTTPS, and keep it there.")
    parser.common_defaults = COMMON_DEFAULTS
    parser.add_argument("--version", action="version", version=f"lehttpd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in modules_for(argv):
        importlib.import_module(module_name).register(subparsers, common)
    return parser


def changes_something(args: argparse.Namespace) -> bool:
    if getattr(args, "dry_run", False):
        return False
    if args.command == "scan":
        return bool(getattr(args, "fix", False))
    if args.command == "account":
        return getattr(args, "account_command", None) in ("update", "deactivate")
    return args.command in LOGGED_COMMANDS


def run(argv: Sequence[str], console: Console | None = None) -> int:
    try:
        argv = translate_certbot_flags(argv)
    except LehttpdError as error:
        (console or Console()).error(error.message)
        return int(error.exit_status)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its one-line message
        return int(exit_.code or 0)
    except BrokenPipeError:  # `lehttpd issue --help | head -3`
        return ExitStatus.BROKEN_PIPE
    if console is None:
        console = Console(quiet=args.quiet, verbose=args.verbose, debug=args.debug)
    else:
        console.quiet, console.verbose, console.debug = args.quiet, args.verbose, args.debug
    if getattr(args, "handler", None) is None:
        getattr(args, _PARSER_ATTR, parser).print_help(console.stderr)
        return ExitStatus.USAGE
    if changes_something(args):
        from lehttpd.oplog import default_log_dir, open_log  # logging is imported only for the log

        try:
            console.log = open_log(args.log_dir or default_log_dir(), argv)
        except LehttpdError as error:
            console.warn(f"{error.message}; going on without it")
    status = _call(args, console)
    if console.log is not None:
        from lehttpd.oplog import close_log

        close_log(console.log, status)
        console.log = None
    return status


def _call(args: argparse.Namespace, console: Console) -> int:
    try:
        return int(args.handler(args, console))
    except LehttpdError as error:
        if console.debug:
            traceback.print_exc(file=console.stderr)
        console.error(error.message)
        return int(error.exit_status)
    except KeyboardInterrupt:
        console.error("interrupted")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:  # `lehttpd scan … | head -1`: the reader has what it wanted; stop quietly
        return ExitStatus.BROKEN_PIPE
    except Exception as error:  # a bug: one line unless --debug (the log always gets the traceback)
        if console.debug:
            traceback.print_exc(file=console.stderr)
        if console.log is not None:
            console.log.debug("%s", traceback.format_exc())
        console.error(f"unexpected {type(error).__name__}: {error} (rerun with --debug for details)")
        return ExitStatus.ERROR
