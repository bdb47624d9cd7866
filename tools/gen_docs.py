"""Generate the man page and the shell completions of lehttpd from its own argument parser.

    python tools/gen_docs.py --man DIR --completions DIR

The man page comes from argparse-manpage, the completions (bash, zsh, tcsh) from shtab: maintained generators
reading the same parser as the command line, so neither can drift from the flags. `make man completions`
writes them under build/; `make install-docs` copies them where man, bash-completion and zsh look.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from argparse_manpage.manpage import Manpage  # noqa: E402
import shtab  # noqa: E402

from lehttpd import errors  # noqa: E402
from lehttpd.cli import build_parser  # noqa: E402

COMPLETIONS = {"bash": "lehttpd", "zsh": "_lehttpd", "tcsh": "lehttpd.tcsh"}
FILES = """.SH FILES
.TP
/etc/letsencrypt
certificates, keys, accounts and renewal files, in certbot's layout (\\-\\-config\\-dir)
.TP
/var/lib/lehttpd
Apache checkpoints, for rollback (\\-\\-work\\-dir)
.TP
/var/log/lehttpd/lehttpd.log
what every command that changed something did; rotated by size, 5 old files kept (\\-\\-log\\-dir)
"""


def exit_status_section() -> str:
    lines = [".SH EXIT STATUS"]
    for line in (errors.__doc__ or "").splitlines():
        code, _, meaning = line.strip().partition("  ")
        if code.isdigit():
            lines += [".TP", code, meaning.strip().replace("-", "\\-")]
    return "\n".join(lines) + "\n"


def man_page() -> str:
    parser = build_parser()
    page = str(Manpage(parser, _data={"project_name": "lehttpd", "manual_title": "lehttpd manual",
                                      "description": "take an Apache site from plain HTTP to hardened HTTPS"}))
    return page + exit_status_section() + FILES


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def completions(shell: str) -> str:
    """shtab's script, with folders completed for DIR flags and files for FILE and PATH ones."""
    parser = build_parser()
    for each in _parsers(parser):
        for action in each._actions:
            if action.metavar == "DIR":
                action.complete = shtab.DIRECTORY
            elif action.metavar in ("FILE", "PATH"):
                action.complete = shtab.FILE
    return shtab.complete(parser, shell=shell)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--man", type=Path, metavar="DIR", help="write lehttpd.1 here")
    parser.add_argument("--completions", type=Path, metavar="DIR", help="write the bash, zsh and tcsh completions here")
    args = parser.parse_args()
    if args.man:
        args.man.mkdir(parents=True, exist_ok=True)
        (args.man / "lehttpd.1").write_text(man_page())
    if args.completions:
        args.completions.mkdir(parents=True, exist_ok=True)
        for shell, name in COMPLETIONS.items():
            (args.completions / name).write_text(completions(shell))
    return 0


if __name__ == "__main__":
    sys.exit(main())
