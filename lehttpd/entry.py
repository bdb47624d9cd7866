"""The `lehttpd` command's entry point.

A quiet `lehttpd renew` from cron with nothing due is answered from the quiet-until stamp before anything
else is imported (see lehttpd/renew/quiet.py); everything else goes to the command line in lehttpd/cli.py.
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    argv = sys.argv[1:]
    from lehttpd.renew.quiet import nothing_to_do

    if nothing_to_do(argv):
        return 0
    from lehttpd.cli import run
    from lehttpd.errors import ExitStatus

    status = run(argv)
    if status == ExitStatus.BROKEN_PIPE:  # nothing may be flushed at exit into the closed pipe (Python's advice)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return status
