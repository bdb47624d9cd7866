"""The `lehttpd` command's entry point: the command line in lehttpd/cli.py."""
from __future__ import annotations

import sys


def main() -> int:
    from lehttpd.cli import run

    return run(sys.argv[1:])
