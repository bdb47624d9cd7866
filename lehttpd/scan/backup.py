"""The originals of the pages `scan --fix` rewrites, kept outside every served tree, and `scan --undo`.

Layout: <work_dir>/scan/runs/<stamp>/{manifest.json, files/N}, every folder 0700 and every file 0600 (a page can
hold a password: a PHP page's source must never be served). The manifest is rewritten after each page, so that
a run cut short still lists every file it changed. It records, per file, the exact path as bytes (base64: file
names need not be UTF-8), the mode, owner and group, and a SHA-256 of the original and of what --fix wrote.
Undo puts back the original bytes, mode, owner and group of every file still as --fix left it; a file changed
since is left alone and named.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lehttpd.errors import ScanError
from lehttpd.fileio import atomic_write, make_dir


def runs_folder(work_dir: Path) -> Path:
    return Path(work_dir) / "scan" / "runs"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shown(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


class BackupRun:
    """One --fix run: created on the first page it backs up, so a run that changes nothing leaves nothing."""

    def __init__(self, work_dir: Path, root: str, command: str) -> None:
        self.parent = runs_folder(work_dir)
        self.root, self.command = root, command
        self.folder: Path | None = None
        self.entries: list[dict] = []
        self.by_path: dict[str, dict] = {}

    @property
    def name(self) -> str | None:
        return self.folder.name if self.folder else None

    def changed(self) -> list[str]:
        return [entry["path"] for entry in self.entries if entry.get("written")]

    def keep(self, real: str, original: bytes) -> dict:
        """Save the original of `real` before it is rewritten; returns its manifest entry. A file met again in
        the same run (a second path to it) keeps its first original."""
        if real in self.by_path:
            return self.by_path[real]
        if self.folder is None:
            self._create()
        info = os.lstat(real)
        index = len(self.entries)
        raw = os.fsencode(real)
        entry = {"path": _shown(raw), "path_b64": base64.b64encode(raw).decode("ascii"), "backup": f"files/{index}",
                 "mode": stat.S_IMODE(info.st_mode), "uid": info.st_uid, "gid": info.st_gid,
                 "sha256_before": _digest(original), "written": False}
        atomic_write(self.folder / "files" / str(index), original, 0o600)
        self.entries.append(entry)
        self.by_path[real] = entry
        self._save()
        return entry

    def written(self, entry: dict, new: bytes) -> None:
        entry.update(written=True, sha256_after=_digest(new))
        self._save()

    def _create(self) -> None:
        make_dir(self.parent.parent.parent, 0o700)
        make_dir(self.parent.parent, 0o700)
        make_dir(self.parent, 0o700)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        folder = self.parent / stamp
        os.mkdir(folder, 0o700)  # a new name: never an existing run, never a planted link
        os.chmod(folder, 0o700)
        make_dir(folder / "files", 0o700)
        self.folder = folder

    def _save(self) -> None:
        manifest = {"root": _shown(os.fsencode(self.root)), "command": self.command, "run": self.name,
                    "files": self.entries}
        atomic_write(self.folder / "manifest.json", json.dumps(manifest, indent=1).encode(), 0o600)


@dataclass(frozen=True)
class RunInfo:
    name: str
    root: str
    files: int


def list_runs(work_dir: Path) -> list[RunInfo]:
    """The runs kept, oldest first."""
    parent = runs_folder(work_dir)
    if not parent.is_dir():
        return []
    runs = []
    for folder in sorted(parent.iterdir()):
        try:
            manifest = json.loads((folder / "manifest.json").read_bytes())
        except (OSError, ValueError):
            continue
        runs.append(RunInfo(folder.name, manifest.get("root", "?"),
                            sum(1 for e in manifest.get("files", ()) if e.get("written"))))
    return runs


@dataclass(frozen=True)
class UndoOutcome:
    run: str
    restored: tuple[str, ...]
    left: tuple[tuple[str, str], ...]  # (path, why it was not restored)


def undo(work_dir: Path, name: str) -> UndoOutcome:
    """Restore every file of run `name` that is still as --fix left it, byte for byte, with its mode and owner."""
    folder = runs_folder(work_dir) / name
    if os.sep in name or name in ("", ".", "..") or not (folder / "manifest.json").is_file():
        known = ", ".join(r.name for r in list_runs(work_dir)) or "none"
        raise ScanError(f"no scan --fix run {name!r} in {runs_folder(work_dir)} (runs: {known})")
    manifest = json.loads((folder / "manifest.json").read_bytes())
    restored, left = [], []
    for entry in reversed(manifest["files"]):
        path = os.fsdecode(base64.b64decode(entry["path_b64"]))
        why = _restore(folder, entry, path)
        (left.append((entry["path"], why)) if why else restored.append(entry["path"]))
    return UndoOutcome(name, tuple(reversed(restored)), tuple(reversed(left)))


def _restore(folder: Path, entry: dict, path: str) -> str | None:
    """None when restored, else the reason it was not."""
    original = (folder / entry["backup"]).read_bytes()
    if _digest(original) != entry["sha256_before"]:
        return "the backup copy does not match its checksum"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "the file is gone"
    if not stat.S_ISREG(info.st_mode) or os.path.realpath(path) != path:
        return "no longer a regular file at that path (a symlink is in its place)"
    with open(path, "rb") as handle:
        current = handle.read()
    if current == original:
        return None  # already the original (undone before, or never written)
    if not entry.get("written") or _digest(current) != entry.get("sha256_after"):
        return "changed since --fix rewrote it; restore by hand from " + str(folder / entry["backup"])
    atomic_write(Path(path), original, entry["mode"])
    if os.geteuid() == 0:  # chown clears set-id bits: the mode goes back after it
        os.chown(path, entry["uid"], entry["gid"], follow_symlinks=False)
        os.chmod(path, entry["mode"])
    return None
