"""Where output goes: one short line per step on a terminal, only errors with --quiet, JSON for scripts.

Commands never print directly; they call a Console, which tests replace by one writing to StringIO. When a command
changes something, `log` is the operations log (lehttpd/oplog.py): every line shown, and the -v detail, go there too.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # logging is imported only by the commands that write the log (lehttpd/oplog.py)
    import logging

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # logging's levels


@dataclass
class Console:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    quiet: bool = False
    verbose: int = 0
    debug: bool = False
    color: bool | None = None  # None: decide from the terminal
    log: logging.Logger | None = None

    def __post_init__(self) -> None:
        if self.color is None:
            self.color = self.is_tty and "NO_COLOR" not in os.environ
        self._bar_shown = False  # a progress bar is on the terminal's last line: erase it before printing

    @property
    def is_tty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def can_ask(self) -> bool:
        """Someone is there to answer: stdin is a terminal."""
        return _isatty(self.stdin)

    def ask(self, question: str) -> str:
        """One answer typed on the terminal ("" at end of input)."""
        self.stderr.write(question)
        self.stderr.flush()
        return self.stdin.readline()

    def step(self, message: str) -> None:
        """One short line saying what is happening now."""
        self._log(INFO, message)
        if not self.quiet:
            self._clear_bar()
            print(message, file=self.stdout, flush=True)

    def result(self, text: str) -> None:
        """The answer a command was asked for: printed even with --quiet."""
        self._log(INFO, text)
        self._clear_bar()
        print(text, file=self.stdout, flush=True)

    def detail(self, message: str, level: int = 1) -> None:
        """Shown with -v (level 1) or -vv (level 2), on stderr so that stdout stays parseable; the log always gets
        level 1 (a cron job runs with -q, and its failures are what the log is read for)."""
        if level <= max(1, self.verbose):
            self._log(DEBUG, message)
        if self.verbose >= level and not self.quiet:
            self._clear_bar()
            print(message, file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        self._log(WARNING, message)
        self._clear_bar()
        print(f"lehttpd: warning: {message}", file=self.stderr, flush=True)

    def error(self, message: str) -> None:
        self._log(ERROR, message)
        self._clear_bar()
        print(f"lehttpd: error: {message}", file=self.stderr, flush=True)

    def _log(self, level: int, message: str) -> None:
        if self.log is not None:
            self.log.log(level, "%s", message)

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.stderr.write("\r\x1b[K")
            self.stderr.flush()
            self._bar_shown = False

    def json(self, document: Any) -> None:
        self._clear_bar()
        # one write: json.dump writes every token on its own (240,000 writes for `renew --json` on 10,000 lineages)
        self.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
        self.stdout.flush()

    def paint(self, text: str, colour: str) -> str:
        codes = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}
        if not self.color or colour not in codes:
            return text
        return f"\x1b[{codes[colour]}m{text}\x1b[0m"

    def progress(self, done: int, total: int, label: str = "") -> None:
        """A one-line progress bar, redrawn in place; only on a terminal and never with --quiet."""
        if self.quiet or not _isatty(self.stderr) or total <= 0:
            return
        if done >= total:  # finished: erase it, the summary says the rest
            self._clear_bar()
            return
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        self.stderr.write(f"\r[{bar}] {done}/{total} {label}"[:120])
        self.stderr.flush()
        self._bar_shown = True


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
