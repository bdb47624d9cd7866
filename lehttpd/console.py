"""Where output goes: one short line per step on a terminal, only errors with --quiet, JSON for scripts.

Commands never print directly; they call a Console, which tests replace by one writing to StringIO.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Console:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    verbose: int = 0
    debug: bool = False
    color: bool | None = None  # None: decide from the terminal

    def __post_init__(self) -> None:
        if self.color is None:
            self.color = self.is_tty and "NO_COLOR" not in os.environ

    @property
    def is_tty(self) -> bool:
        return _isatty(self.stdout)

    def step(self, message: str) -> None:
        """One short line saying what is happening now."""
        if not self.quiet:
            print(message, file=self.stdout, flush=True)

    def result(self, text: str) -> None:
        """The answer a command was asked for: printed even with --quiet."""
        print(text, file=self.stdout, flush=True)

    def detail(self, message: str, level: int = 1) -> None:
        """Shown with -v (level 1) or -vv (level 2), on stderr so that stdout stays parseable."""
        if self.verbose >= level and not self.quiet:
            print(message, file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"lehttpd: warning: {message}", file=self.stderr, flush=True)

    def error(self, message: str) -> None:
        print(f"lehttpd: error: {message}", file=self.stderr, flush=True)

    def json(self, document: Any) -> None:
        json.dump(document, self.stdout, indent=2, sort_keys=True, default=str)
        self.stdout.write("\n")
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
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        self.stderr.write(f"\r[{bar}] {done}/{total} {label}"[:120] + end)
        self.stderr.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
