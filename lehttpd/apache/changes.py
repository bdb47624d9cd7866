"""The value a plan produces: a list of file edits, built from byte splices on the files as read, and its diff.

Edits name the real file (a sites-enabled link is followed, the link itself stays), so nothing is ever written
through a symlink by accident.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Edit:
    path: Path
    before: bytes | None            # None: the file does not exist yet
    after: bytes | None             # None: a symlink (see link_target)
    link_target: str | None = None
    reason: str = ""

    @property
    def created(self) -> bool:
        return self.before is None


@dataclass(frozen=True)
class Check:
    """After applying: a TLS handshake with SNI `name` to address:port must present the lineage's certificate."""

    name: str
    address: str
    port: int


@dataclass(frozen=True)
class Plan:
    edits: tuple[Edit, ...]
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()
    full_restart: bool = False      # a change Apache cannot take on a graceful reload

    @property
    def empty(self) -> bool:
        return not self.edits

    def diff(self) -> str:
        return "".join(edit_diff(edit) for edit in self.edits)


def edit_diff(edit: Edit) -> str:
    if edit.link_target is not None:
        return f"--- /dev/null\n+++ {edit.path}\n@@ symlink @@\n+{edit.path} -> {edit.link_target}\n"
    before = (edit.before or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
    after = (edit.after or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, fromfile="/dev/null" if edit.created else str(edit.path),
                                 tofile=str(edit.path))
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


@dataclass
class Changes:
    """Accumulates splices per file (offsets in the file as read) and new files, then freezes into a Plan."""

    read: Callable[[Path], bytes | None]
    splices: dict[Path, list[tuple[int, int, bytes, int]]] = field(default_factory=dict)
    originals: dict[Path, bytes] = field(default_factory=dict)
    created: dict[Path, bytes] = field(default_factory=dict)
    links: dict[Path, str] = field(default_factory=dict)
    reasons: dict[Path, list[str]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    full_restart: bool = False
    _seq: int = 0

    def splice(self, path: Path, data: bytes, start: int, end: int, text: str | bytes, reason: str) -> None:
        path = real(path)
        self.originals.setdefault(path, data)
        self._seq += 1
        payload = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        if uses_crlf(data):  # what lehttpd inserts ends its lines like the file's own
            payload = payload.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self.splices.setdefault(path, []).append((start, end, payload, self._seq))
        self._reason(path, reason)

    def add_file(self, path: Path, text: str, reason: str) -> None:
        """Create `path`, or append to it when it exists already (on disk or earlier in this plan)."""
        path = real(path)
        if path in self.created:
            self.created[path] += b"\n" + text.encode("utf-8", "surrogateescape")
        elif (current := self.read(path)) is not None:
            sep = b"" if current.endswith(b"\n") or not current else b"\n"
            self.splice(path, current, len(current), len(current), sep + b"\n" + text.encode("utf-8", "surrogateescape"), reason)
            return
        else:
            self.created[path] = text.encode("utf-8", "surrogateescape")
        self._reason(path, reason)

    def replace_file(self, path: Path, text: str, reason: str) -> None:
        path = real(path)
        current = self.read(path)
        if current is None:
            self.created[path] = text.encode("utf-8", "surrogateescape")
        elif current != text.encode("utf-8", "surrogateescape"):
            self.splice(path, current, 0, len(current), text, reason)
            return
        self._reason(path, reason)

    def link(self, path: Path, target: str, reason: str) -> None:
        if not os.path.lexists(path):
            self.links[Path(path)] = target
            self._reason(Path(path), reason)

    def planned_text(self, path: Path) -> bytes | None:
        path = real(path)
        return self.created.get(path)

    def freeze(self) -> Plan:
        edits: list[Edit] = []
        for path, splices in self.splices.items():
            before = self.originals[path]
            after = apply_splices(before, splices)
            if after != before:
                edits.append(Edit(path, before, after, reason="; ".join(self.reasons.get(path, []))))
        for path, content in self.created.items():
            edits.append(Edit(path, None, content, reason="; ".join(self.reasons.get(path, []))))
        for path, target in self.links.items():
            edits.append(Edit(path, None, None, link_target=target, reason="; ".join(self.reasons.get(path, []))))
        checks = tuple(dict.fromkeys(self.checks))
        return Plan(edits=tuple(edits), checks=checks, notes=tuple(dict.fromkeys(self.notes)),
                    full_restart=self.full_restart and bool(edits))

    def _reason(self, path: Path, reason: str) -> None:
        if reason and reason not in self.reasons.setdefault(path, []):
            self.reasons[path].append(reason)


def uses_crlf(data: bytes) -> bool:
    return data.count(b"\r\n") * 2 > data.count(b"\n")


def apply_splices(data: bytes, splices) -> bytes:
    """Apply (start, end, text, seq) splices; inserts at one offset keep the order they were planned in."""
    result = data
    for start, end, text, _seq in sorted(splices, key=lambda s: (s[0], s[1], s[3]), reverse=True):
        result = result[:start] + text + result[end:]
    return result


def real(path: Path) -> Path:
    path = Path(path)
    return Path(os.path.realpath(path)) if path.exists() else path
