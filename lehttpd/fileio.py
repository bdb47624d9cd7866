"""The one atomic writer and the one lock every lehttpd writer uses (store, renew state, Apache, scan --fix).

Contract:
- `atomic_write` replaces the directory entry `path` (never what a symlink there points to) with a complete new
  file: a fresh temporary file beside it (O_EXCL|O_NOFOLLOW, so a planted name is never opened), written,
  fsync'ed, given its final mode (and owner, when it replaces a file whose owner should stay) before the rename,
  then the folder is fsync'ed. Readers see the old file or the new one, never a part. Modes never depend on the
  umask.
- `make_dir` creates a folder with an exact mode and refuses one that is a symlink.
- `file_lock` is an exclusive flock on a lock file opened without following links; a killed process never
  leaves a stale lock. The file holds the holder's PID and start time, for the "held since" message
  (`lock_holder`).
- `read_regular` reads a file lehttpd did not write itself (renewal files, certificates, state): never through
  a link, never a FIFO or a device (O_NONBLOCK, then fstat), never more than a size cap.
- A full disk (ENOSPC, EDQUOT) is a `DiskFullError` naming the device and the file, never a traceback; the
  file being replaced is left as it was.
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

from lehttpd.errors import DiskFullError, LockHeldError, StorageError


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
READ_LIMIT = 1 << 20  # no file lehttpd reads (renewal file, certificate, state) is anywhere near 1 MiB


def make_dir(path: Path, mode: int = 0o755) -> Path:
    """Create `path` (and missing parents, 0755) with exactly `mode`; an existing folder keeps its mode."""
    path = Path(path)
    try:
        with disk_full_is_an_error(path):
            os.mkdir(path, mode)
    except FileExistsError:
        pass
    except FileNotFoundError:
        make_dir(path.parent)
        return make_dir(path, mode)
    else:
        _fchmod_folder(path, mode)  # mkdir's mode is masked by the umask
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise StorageError(f"{path} is not a folder (a symlink or a file is in its place); remove it and retry")
    return path


def _fchmod_folder(path: Path, mode: int) -> None:
    """chmod the folder just made through a descriptor: a chmod by name would follow a link swapped in."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        raise StorageError(f"{path} was replaced by a link or a file just after lehttpd created it; "
                           "someone is racing lehttpd there: nothing was changed") from None
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


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
    with disk_full_is_an_error(path):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with disk_full_is_an_error(path), os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if template is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(template.st_mode))
                if os.geteuid() == 0:
                    os.fchown(handle.fileno(), template.st_uid, template.st_gid)
            else:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        with disk_full_is_an_error(path):  # rename(2) too may find no room for the new entry
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def switch_links(folder: Path, targets: dict[str, str]) -> None:
    """Point the links FOLDER/NAME at their new targets together (a certificate and its key must never part).

    Every new link is made first, beside its final name, with a spare link to the old target: that is the step
    that needs disk space, and a failure there changes nothing. Then each is renamed over the old entry; should
    a rename fail, the links already moved are put back from the spares. Only a kill between the renames can
    leave the links apart, and the store's repair() finishes that under the lineage lock.
    """
    fresh: list[tuple[Path, Path]] = []  # (new link beside, final name)
    spare: dict[Path, Path] = {}          # final name -> a link to its old target
    try:
        for name, target in targets.items():
            path = Path(folder) / name
            fresh.append((_link_beside(path, target), path))
            with contextlib.suppress(FileNotFoundError):
                spare[path] = _link_beside(path, os.readlink(path), "old")
        moved: list[Path] = []
        try:
            for tmp, path in fresh:
                with disk_full_is_an_error(path):
                    os.replace(tmp, path)
                moved.append(path)
        except BaseException:
            for path in moved:
                if path in spare:
                    with contextlib.suppress(OSError):
                        os.replace(spare[path], path)
            raise
    finally:
        for tmp in [tmp for tmp, _ in fresh] + list(spare.values()):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _link_beside(path: Path, target: str, what: str = "link") -> Path:
    tmp = path.with_name(f".{path.name}.lehttpd-{what}-{os.getpid()}-{time.monotonic_ns()}")
    with disk_full_is_an_error(path):
        os.symlink(target, tmp)
    return tmp


def atomic_symlink(path: Path, target: str) -> None:
    """Point the link `path` at `target` in one rename (a new link beside, then over the old entry)."""
    path = Path(path)
    tmp = _link_beside(path, target)
    try:
        with disk_full_is_an_error(path):
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def disk_full_is_an_error(path: Path) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT into one line naming the device and the file being written."""
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        what = "no space left" if error.errno == errno.ENOSPC else "disk quota exceeded"
        raise DiskFullError(f"{what} on {device_of(Path(path))} while writing {path}") from None


def device_of(path: Path) -> str:
    """'SOURCE (mounted on MOUNT POINT)' for the filesystem holding `path`, from /proc/self/mounts."""
    real = os.path.realpath(path)
    best = ("", "")
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 2:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best[1]):
                    best = (fields[0], point)
    except OSError:
        pass
    return f"{best[0]} (mounted on {best[1]})" if best[1] else os.path.dirname(real)


def read_regular(path: Path, limit: int = READ_LIMIT, *, follow: bool = False) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file `path` and its fstat; anything else (a link unless `follow`, a FIFO, a
    device, a folder, a file over `limit` bytes) raises StorageError without blocking."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise StorageError(f"{path} is a symlink; lehttpd does not follow one here: replace it with the file")
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"{path} is not a regular file (a FIFO, a device or a folder?): remove it")
        if info.st_size > limit:
            raise StorageError(f"{path} is {info.st_size} bytes, more than the {limit} expected: not read")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise StorageError(f"{path} grew past {limit} bytes while being read: not read")
        return b"".join(chunks), info
    finally:
        os.close(fd)


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
        with contextlib.suppress(OSError):  # who holds it is for messages only: a full disk must not stop us
            os.write(fd, f"{os.getpid()} {int(time.time())}\n".encode())
        yield
    finally:
        os.close(fd)


def lock_holder(path: Path) -> tuple[int, float] | None:
    """(PID, epoch seconds since when) written by the process holding the lock `path`, when readable."""
    try:
        data, _ = read_regular(path, 256)
        pid, since = data.split()[:2]
        return int(pid), float(since)
    except (OSError, StorageError, ValueError):
        return None

