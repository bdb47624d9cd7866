"""The `lehttpd` command's entry point: the command line in lehttpd/cli.py."""
from __future__ import annotations

import os
import sys


def main() -> int:
    from lehttpd.cli import run
    from lehttpd.errors import ExitStatus

    status = run(sys.argv[1:])
    if status == ExitStatus.BROKEN_PIPE:  # nothing may be flushed at exit into the closed pipe (Python's advice)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return status
