"""The one atomic writer and the one lock every lehttpd writer uses (store, renew state, Apache, scan --fix).

Contract:
- `atomic_write` replaces the directory entry `path` (never what a symlink there points to) with a complete new
  file: a fresh temporary file beside it (O_EXCL|O_NOFOLLOW, so a planted name is never opened), written,
  fsync'ed, given its final mode (and owner, when it replaces a file whose owner should stay) before the rename,
  then the folder is fsync'ed. Readers see the old file or the new one, never a part. Modes never depend on the
  umask.
- `make_dir` creates a folder with an exact mode and refuses one that is a symlink.
- `file_lock` is an exclusive flock on a lock file opened without following links; a killed process never
  leaves a stale lock. The file holds the holder's PID and start time, for the "held since" message.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from pathlib import Path
from typing import Iterator

from lehttpd.errors import LockHeldError, StorageError


def make_dir(path: Path, mode: int = 0o755) -> Path:
    """Create `path` (and missing parents, 0755) with exactly `mode`; an existing folder keeps its mode."""
    path = Path(path)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    except FileNotFoundError:
        make_dir(path.parent)
        return make_dir(path, mode)
    else:
        os.chmod(path, mode)  # mkdir's mode is masked by the umask
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise StorageError(f"{path} is not a folder (a symlink or a file is in its place); remove it and retry")
    return path


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, like: Path | None = None) -> None:
    """Write `data` as the new file at `path`.

    The new file gets `mode`, or, when `like` names an existing regular file (usually the file being replaced),
    that file's mode, owner and group, so an edit never turns a www-data file into a root one. A missing parent
    folder is created 0755 (callers that need a private folder create it first with `make_dir`).
    """
    path = Path(path)
    if not path.parent.is_dir():
        make_dir(path.parent, 0o755)
    template = _regular_stat(like) if like is not None else None
    tmp = path.with_name(f".{path.name}.lehttpd-{os.getpid()}-{time.monotonic_ns()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if template is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(template.st_mode))
                if os.geteuid() == 0:
                    os.fchown(handle.fileno(), template.st_uid, template.st_gid)
            else:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_symlink(path: Path, target: str) -> None:
    """Point the link `path` at `target` in one rename (a new link beside, then over the old entry)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.lehttpd-link-{os.getpid()}-{time.monotonic_ns()}")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _regular_stat(path: Path) -> os.stat_result | None:
    try:
        info = os.stat(path)  # metadata only: the write itself never goes through a link
    except FileNotFoundError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """An exclusive flock on the lock file `path`; waits up to `timeout` seconds (0: do not wait)."""
    path = Path(path)
    make_dir(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise StorageError(f"{path} is a symlink; lehttpd never follows one for a lock: remove it") from None
        raise StorageError(f"cannot open the lock {path}: {error.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StorageError(f"{path} is not a regular file; remove it")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise StorageError(f"cannot lock {path}: {error.strerror}") from None
                if time.monotonic() >= deadline:
                    raise LockHeldError(f"{what} is locked by another lehttpd process ({path})") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {int(time.time())}\n".encode())
        yield
    finally:
        os.close(fd)
