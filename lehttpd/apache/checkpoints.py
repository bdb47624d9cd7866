"""Checkpoints: what a change replaced, kept so that it can be undone byte for byte, owner, group and mode included.

Layout: <work_dir>/apache/checkpoints/<stamp>/{manifest.json, files/N}; an undone checkpoint moves to
../rolled-back/. A checkpoint exists only for a change that was (at least partly) made: one whose creation failed is
removed, and apply.py retires the one of a change it fully undid itself.
"""
from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import shutil
from pathlib import Path

from lehttpd.apache.changes import Plan
from lehttpd.fileio import atomic_symlink, atomic_write, make_dir


class Checkpoints:
    def __init__(self, work_dir: Path) -> None:
        self.root = work_dir / "apache" / "checkpoints"

    def create(self, plan: Plan, command: str, server_root: Path) -> Path:
        """Copy every file the plan touches (with its owner, group and mode), record created files and links."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
        folder = self.root / stamp
        make_dir(self.root, 0o700)
        make_dir(folder, 0o700)
        try:
            entries = [self._entry(folder, index, edit.path) for index, edit in enumerate(plan.edits)]
            manifest = {"command": command, "server_root": str(server_root), "created": stamp, "entries": entries}
            atomic_write(folder / "manifest.json", json.dumps(manifest, indent=2).encode(), 0o600)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # no checkpoint for a change that will not happen
            raise
        return folder

    @staticmethod
    def _entry(folder: Path, index: int, path: Path) -> dict:
        entry = {"path": str(path), "existed": os.path.lexists(path), "link": path.is_symlink()}
        if entry["link"]:
            entry["target"] = os.readlink(path)
        elif entry["existed"]:
            info = os.stat(path)
            backup = folder / "files" / str(index)
            atomic_write(backup, path.read_bytes(), 0o600)
            os.chown(backup, info.st_uid, info.st_gid)  # so that a restore `like` it keeps them
            os.chmod(backup, info.st_mode & 0o7777)
            entry.update(backup=f"files/{index}", uid=info.st_uid, gid=info.st_gid, mode=info.st_mode & 0o7777)
        return entry

    def latest(self, count: int | None = None) -> list[Path]:
        if not self.root.is_dir():
            return []
        folders = sorted((p for p in self.root.iterdir() if (p / "manifest.json").exists()), reverse=True)
        return folders if count is None else folders[:count]

    @staticmethod
    def manifest(folder: Path) -> dict:
        return json.loads((folder / "manifest.json").read_text())

    @staticmethod
    def restore(folder: Path, only: set[str] | None = None) -> list[str]:
        """Put every entry back (or only the paths in `only`); returns one line per file saying what was done."""
        done = []
        for entry in reversed(Checkpoints.manifest(folder)["entries"]):
            path = Path(entry["path"])
            if only is not None and str(path) not in only:
                continue
            if not entry["existed"]:
                if os.path.lexists(path):
                    os.unlink(path)
                    done.append(f"removed {path} (created by that change)")
            elif entry["link"]:
                atomic_symlink(path, entry["target"])
                done.append(f"restored the link {path} -> {entry['target']}")
            else:
                backup = folder / entry["backup"]
                atomic_write(path, backup.read_bytes(), like=backup)
                done.append(f"restored {path}")
        return done

    @staticmethod
    def diff(folder: Path) -> str:
        """What restoring would change, as a unified diff from the files as they are now."""
        out = []
        for entry in reversed(Checkpoints.manifest(folder)["entries"]):
            path = Path(entry["path"])
            now = path.read_bytes() if path.is_file() and not entry["link"] else None
            if entry["link"]:
                out.append(f"link {path} -> {entry['target'] if entry['existed'] else '(removed)'}\n")
                continue
            before = (folder / entry["backup"]).read_bytes() if entry["existed"] else None
            if now == before:
                continue
            out += difflib.unified_diff(_lines(now), _lines(before), fromfile=str(path) if now is not None else
                                        "/dev/null", tofile=str(path) if before is not None else "/dev/null")
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)

    def retire(self, folder: Path) -> None:
        done = make_dir(self.root.parent / "rolled-back", 0o700)
        folder.rename(done / folder.name)


def _lines(data: bytes | None) -> list[str]:
    return (data or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
