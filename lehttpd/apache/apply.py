"""Applying a plan: the only code that writes Apache files.

Order: lock the tree, checkpoint (a copy of every touched file, a record of every created one), atomic writes,
Apache's own config test, graceful reload, then a TLS handshake with SNI per changed name that must present the
lineage's certificate. Any failure restores the checkpoint byte for byte, reloads, and raises with Apache's own
message. `rollback` replays checkpoints backwards.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import ssl
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from lehttpd.apache.changes import Check, Edit, Plan
from lehttpd.apache.checkpoints import Checkpoints
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


def check_unchanged(edits: tuple[Edit, ...]) -> None:
    """Each file must still be as it was read when the plan was made (else another writer was faster)."""
    for edit in edits:
        if edit.link_target is not None or edit.before is None:
            now = os.path.lexists(edit.path)
        else:
            try:
                now = edit.path.read_bytes() != edit.before
            except FileNotFoundError:
                now = True
        if now:
            raise ApacheConfigError(f"{edit.path} changed since lehttpd read it (another lehttpd, or an editor): "
                                    "nothing written; run the command again")


def write_edits(edits: tuple[Edit, ...], written: list[str]) -> None:
    for edit in edits:
        if edit.link_target is not None:
            atomic_symlink(edit.path, edit.link_target)
        else:
            atomic_write(edit.path, edit.after or b"", like=edit.path)
        written.append(str(edit.path))  # after: a failed atomic write leaves the old file as it was


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


def _verb(info: ApacheInfo, verb: str) -> tuple[str, ...]:
    name = Path(info.ctl[0]).name if info.ctl else ""
    return ("-k", verb) if name.startswith(("httpd", "apache2")) and "ctl" not in name else (verb,)


def reload(info: ApacheInfo, full: bool = False) -> None:
    """A graceful reload; `full`: stop, wait for the old server to be gone, start (a change Apache cannot take on a
    reload, such as dropping SSLStaplingCache: mod_ssl keeps the old cache and exits with AH01872)."""
    if full:
        return _stop_start(info)
    result = _ctl(info, *_verb(info, "graceful"))
    if result.returncode != 0:
        raise ApacheConfigError(f"Apache graceful reload failed: {apache_message(result.stderr + result.stdout)}")


def _stop_start(info: ApacheInfo, timeout: float = 30.0) -> None:
    pid = None
    if info.pid_file is not None:
        try:
            pid = int(info.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
    _ctl(info, *_verb(info, "stop"))
    deadline = time.monotonic() + timeout
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    result = _ctl(info, *_verb(info, "start"))
    if result.returncode != 0:
        raise ApacheConfigError(f"Apache did not start again: {apache_message(result.stderr + result.stdout)}")


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
               do_reload: bool = True, log=lambda message: None, locked: bool = False) -> Path | None:
    """Apply or roll back entirely. Returns the checkpoint folder (None when there was nothing to do).
    `locked`: the caller holds tree_lock already (it planned under it)."""
    if plan.empty:
        return None
    if info.ctl is None:
        _ctl(info)
    with contextlib.nullcontext() if locked else tree_lock(info.server_root):
        check_unchanged(plan.edits)
        checkpoints = Checkpoints(work_dir)
        folder = checkpoints.create(plan, command, info.server_root)
        log(f"checkpoint {folder}")
        written: list[str] = []
        try:
            write_edits(plan.edits, written)
            configtest(info)
            log("Apache config test passed")
            if do_reload:
                reload(info, full=plan.full_restart)
                log("Apache restarted (stop, start)" if plan.full_restart else "Apache reloaded gracefully")
                if plan.checks:
                    if expected_der is None:  # nothing tells new children from old ones: let the reload settle
                        time.sleep(0.5)
                    verify(plan.checks, expected_der, 15.0 if expected_der is not None else 5.0)
                    log(f"HTTPS with SNI verified for {', '.join(c.name for c in plan.checks)}")
        except BaseException as error:
            _undo(checkpoints, folder, written, info, do_reload)
            message = error.message if isinstance(error, ApacheConfigError) else f"{type(error).__name__}: {error}"
            if isinstance(error, KeyboardInterrupt):
                raise
            raise ApacheConfigError(f"{message} (every change rolled back)") from error
    return folder


def _undo(checkpoints: Checkpoints, folder: Path, written: list[str], info: ApacheInfo, do_reload: bool) -> None:
    """Restore what was written; the checkpoint is retired once nothing of the change is left. If even the restore
    fails, the checkpoint stays for `lehttpd rollback` and the error says so."""
    try:
        Checkpoints.restore(folder, only=set(written))
    except OSError as error:
        raise ApacheConfigError(f"a change failed and undoing it failed too ({error}); the checkpoint {folder} is "
                                "kept: fix the cause and run `lehttpd rollback`") from error
    checkpoints.retire(folder)
    if do_reload and written:
        _reload_quietly(info)


def _stapling_caches(paths) -> int:
    count = 0
    for path in paths:
        try:
            count += path.read_bytes().count(b"SSLStaplingCache") if path.is_file() else 0
        except OSError:
            pass
    return count


def _reload_quietly(info: ApacheInfo) -> None:
    try:
        configtest(info)
        reload(info)
    except (ApacheConfigError, UsageError, OSError, subprocess.SubprocessError):
        pass


def rollback(info: ApacheInfo, work_dir: Path, count: int, do_reload: bool = True, log=lambda message: None
             ) -> list[Path]:
    """Undo the last `count` checkpoints, newest first, then the config test and the reload (each said in `log`)."""
    checkpoints = Checkpoints(work_dir)
    folders = checkpoints.latest(count)
    if not folders:
        raise UsageError(f"no checkpoint in {checkpoints.root}: nothing to roll back")
    with tree_lock(info.server_root):
        paths = {Path(e["path"]) for folder in folders for e in Checkpoints.manifest(folder)["entries"]}
        caches_before = _stapling_caches(paths)
        for folder in folders:
            log(f"undoing {Checkpoints.manifest(folder)['command']!r} ({folder.name})")
            for line in Checkpoints.restore(folder):
                log(f"  {line}")
            checkpoints.retire(folder)
        if info.ctl is not None:
            configtest(info)
            log("Apache config test passed")
            if do_reload:
                full = _stapling_caches(paths) < caches_before  # see reload()
                reload(info, full=full)
                log("Apache restarted (stop, start)" if full else "Apache reloaded gracefully")
    return folders
