"""Where `scan --fix` may write: only regular files inside the scanned folder, never through a link to outside.

A page is reached by its path in the walk, which follows symlinked folders. What --fix rewrites is the file the
path resolves to, and only when that file is inside the scanned folder (resolved too): a symlinked page inside
the folder stays a symlink and its target is edited; a page reached through a link that leaves the folder is
skipped. A file with other hard links is skipped unless every one of its names is inside the folder (counted
by device and inode over the folder), since the other names would otherwise keep a copy nobody reviewed — or,
for a writer that edits in place, be changed outside the folder.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The real file to rewrite, or why the page is left alone."""

    path: str | None
    reason: str = ""


class Guard:
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._names: dict[tuple[int, int], int] | None = None  # (dev, ino) → names inside the root

    def inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root.rstrip(os.sep) + os.sep)

    def check(self, path: str) -> Verdict:
        try:
            link = stat.S_ISLNK(os.lstat(path).st_mode)
            real = os.path.realpath(path)
            info = os.lstat(real)
        except OSError as error:
            return Verdict(None, f"cannot check the file: {error.strerror}")
        if not self.inside(real):
            what = "a symlink" if link else "reached through a symlinked folder"
            return Verdict(None, f"{what} to {_shown(real)}, outside the scanned folder")
        if not stat.S_ISREG(info.st_mode):
            return Verdict(None, "not a regular file")
        if info.st_nlink > 1 and self._names_inside(info) < info.st_nlink:
            return Verdict(None, f"hard-linked ({info.st_nlink} names), not all of them inside the scanned folder")
        return Verdict(real)

    def still_same(self, real: str) -> bool:
        """Just before the write: the resolved path still resolves to itself (no folder swapped for a link)."""
        return os.path.realpath(real) == real and self.inside(real)

    def _names_inside(self, info: os.stat_result) -> int:
        if self._names is None:  # built once, and only when a hard-linked page needs fixing
            self._names = {}
            for directory, _, files in os.walk(self.root):  # not following links: names, not targets
                for name in files:
                    try:
                        st = os.lstat(os.path.join(directory, name))
                    except OSError:
                        continue
                    if st.st_nlink > 1 and stat.S_ISREG(st.st_mode):
                        key = (st.st_dev, st.st_ino)
                        self._names[key] = self._names.get(key, 0) + 1
        return self._names.get((info.st_dev, info.st_ino), 0)


def _shown(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")
