"""Applying a plan: the only code that writes Apache files.

Order: lock the tree, checkpoint (a copy of every touched file, a record of every created one), atomic writes,
Apache's own config test, graceful reload, then a TLS handshake with SNI per changed name that must present the
lineage's certificate. Any failure restores the checkpoint byte for byte, reloads, and raises with Apache's own
message. `rollback` replays checkpoints backwards.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from lehttpd.apache.changes import Check, Edit, Plan
from lehttpd.apache.discover import ApacheInfo, apache_message
from lehttpd.errors import ApacheConfigError, LockHeldError, UsageError
from lehttpd.fileio import atomic_symlink, atomic_write


@contextmanager
def tree_lock(server_root: Path):
    """An exclusive flock on the server root directory itself: one lehttpd at a time per Apache tree."""
    fd = os.open(server_root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeldError(f"{server_root}: another lehttpd is changing this Apache tree") from None
        yield
    finally:
        os.close(fd)


class Checkpoints:
    """<work_dir>/apache/checkpoints/<stamp>/{manifest.json, files/N}."""

    def __init__(self, work_dir: Path) -> None:
        self.root = work_dir / "apache" / "checkpoints"

    def create(self, plan: Plan, command: str, server_root: Path) -> Path:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
        folder = self.root / stamp
        (folder / "files").mkdir(parents=True, mode=0o700)
        entries = []
        for index, edit in enumerate(plan.edits):
            path = edit.path
            entry = {"path": str(path), "existed": os.path.lexists(path), "link": path.is_symlink()}
            if entry["link"]:
                entry["target"] = os.readlink(path)
            elif entry["existed"]:
                shutil.copy2(path, folder / "files" / str(index))
                entry["backup"] = f"files/{index}"
            entries.append(entry)
        manifest = {"command": command, "server_root": str(server_root), "created": stamp, "entries": entries}
        atomic_write(folder / "manifest.json", json.dumps(manifest, indent=2).encode(), 0o600)
        return folder

    def latest(self, count: int) -> list[Path]:
        if not self.root.is_dir():
            return []
        folders = sorted((p for p in self.root.iterdir() if (p / "manifest.json").exists()), reverse=True)
        return folders[:count]

    @staticmethod
    def restore(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        for entry in reversed(manifest["entries"]):
            path = Path(entry["path"])
            if not entry["existed"]:
                if os.path.lexists(path):
                    os.unlink(path)
            elif entry["link"]:
                atomic_symlink(path, entry["target"])
            else:
                backup = folder / entry["backup"]
                atomic_write(path, backup.read_bytes(), like=backup)

    def retire(self, folder: Path) -> None:
        done = self.root.parent / "rolled-back"
        done.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.rename(done / folder.name)


def write_edits(edits: tuple[Edit, ...]) -> None:
    for edit in edits:
        if edit.link_target is not None:
            atomic_symlink(edit.path, edit.link_target)
        else:
            atomic_write(edit.path, edit.after or b"", like=edit.path)


def _ctl(info: ApacheInfo, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    if info.ctl is None:
        raise UsageError("this tree was read without an Apache control program: only --dry-run is possible "
                         "(give --apache-ctl to apply)")
    return subprocess.run([*info.ctl, *args], capture_output=True, text=True, errors="replace", timeout=timeout,
                          stdin=subprocess.DEVNULL)


def configtest(info: ApacheInfo) -> None:
    result = _ctl(info, "-t")
    if result.returncode != 0:
        raise ApacheConfigError(f"Apache config test failed: {apache_message(result.stderr + result.stdout)}")


def reload(info: ApacheInfo) -> None:
    name = Path(info.ctl[0]).name if info.ctl else ""
    args = ("-k", "graceful") if name.startswith(("httpd", "apache2")) and "ctl" not in name else ("graceful",)
    result = _ctl(info, *args)
    if result.returncode != 0:
        raise ApacheConfigError(f"Apache graceful reload failed: {apache_message(result.stderr + result.stdout)}")


def served_certificate(check: Check, timeout: float = 3.0) -> bytes:
    """The leaf certificate (DER) the server presents for SNI check.name.

    Verification here is an exact match against the lineage's own certificate, which is stricter than chain
    validation (and works for a private CA whose root is not installed), so the handshake itself does not verify.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((check.address, check.port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=check.name) as tls:
            return tls.getpeercert(binary_form=True) or b""


def verify(checks, expected_der: bytes | None, deadline_s: float = 15.0) -> None:
    """Each check's handshake must succeed and, when `expected_der` is given, present that certificate."""
    for check in checks:
        deadline = time.monotonic() + deadline_s
        last = "no answer"
        while True:
            try:
                served = served_certificate(check)
                if expected_der is None or served == expected_der:
                    break
                last = "a different certificate is served"
            except (OSError, ssl.SSLError) as error:
                last = str(error) or type(error).__name__
            if time.monotonic() > deadline:
                raise ApacheConfigError(f"HTTPS check failed for {check.name} on {check.address}:{check.port}: {last}")
            time.sleep(0.2)


def apply_plan(plan: Plan, info: ApacheInfo, work_dir: Path, command: str, expected_der: bytes | None = None,
               do_reload: bool = True, log=lambda message: None) -> Path | None:
    """Apply or roll back entirely. Returns the checkpoint folder (None when there was nothing to do)."""
    if plan.empty:
        return None
    if info.ctl is None:
        _ctl(info)
    checkpoints = Checkpoints(work_dir)
    with tree_lock(info.server_root):
        folder = checkpoints.create(plan, command, info.server_root)
        log(f"checkpoint {folder}")
        try:
            write_edits(plan.edits)
            configtest(info)
            log("Apache config test passed")
            if do_reload:
                reload(info)
                log("Apache reloaded gracefully")
                if plan.checks:
                    if expected_der is None:  # nothing tells new children from old ones: let the reload settle
                        time.sleep(0.5)
                    verify(plan.checks, expected_der, 15.0 if expected_der is not None else 5.0)
                    log(f"HTTPS with SNI verified for {', '.join(c.name for c in plan.checks)}")
        except BaseException as error:
            Checkpoints.restore(folder)
            checkpoints.retire(folder)
            message = error.message if isinstance(error, ApacheConfigError) else f"{type(error).__name__}: {error}"
            if do_reload:
                _reload_quietly(info)
            if isinstance(error, KeyboardInterrupt):
                raise
            raise ApacheConfigError(f"{message} (every change rolled back)") from error
    return folder


def _reload_quietly(info: ApacheInfo) -> None:
    try:
        configtest(info)
        reload(info)
    except (ApacheConfigError, UsageError, OSError, subprocess.SubprocessError):
        pass


def rollback(info: ApacheInfo, work_dir: Path, count: int, do_reload: bool = True) -> list[Path]:
    checkpoints = Checkpoints(work_dir)
    folders = checkpoints.latest(count)
    if not folders:
        raise UsageError(f"no checkpoint in {checkpoints.root}: nothing to roll back")
    with tree_lock(info.server_root):
        for folder in folders:
            Checkpoints.restore(folder)
            checkpoints.retire(folder)
        if info.ctl is not None:
            configtest(info)
            if do_reload:
                reload(info)
    return folders
