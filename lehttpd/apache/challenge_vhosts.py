"""The two temporary lines `ApacheResponder` adds to a vhost that has no mod_rewrite directive of its own.

mod_rewrite runs inherited rules only in a vhost with a mod_rewrite directive, so such a vhost (serving the
names on the http-01 port, or that port's default vhost) gets, right after its `<VirtualHost>` line, a marker
comment naming the owner process and `RewriteEngine On` (harmless if ever left behind). The file is replaced
whole (written beside under a name carrying the pid, then renamed), keeping its mode and owner; the lines are
taken out again by their marker, so edits made meanwhile by someone else are kept.
"""
from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from lehttpd.apache.discover import ApacheInfo, VhostLocation
from lehttpd.errors import ApacheConfigError

FILE_PREFIX = "lehttpd-http01-"
VHOST_MARK = "# lehttpd temporary http-01, owner pid {pid}: lets the rules above run here; removed after the order"
VHOST_MARK_RE = re.compile(rb"^[ \t]*# lehttpd temporary http-01, owner pid (\d+):.*\n(?:[ \t]*RewriteEngine On\n)?", re.M)
_REWRITE = re.compile(rb"(?im)^[ \t]*Rewrite(?:Engine|Rule|Cond|Options|Map|Base)\b")
_VHOST_END = re.compile(rb"(?im)^[ \t]*</VirtualHost\s*>")


def vhosts_to_open(info: ApacheInfo, names: tuple[str, ...], http_port: int) -> list[VhostLocation]:
    """The port-80 vhosts serving the names (or the port's default vhost) that have no mod_rewrite directive."""
    on_port = [loc for loc in info.locations if http_port in loc.ports]
    serving = [loc for loc in on_port if any(_serves(loc, name) for name in names)]
    chosen = serving or on_port[:1]
    # another run's temporary lines do not count: that run takes them out when it ends, maybe before this one
    return [loc for loc in dict.fromkeys(chosen)
            if not _REWRITE.search(VHOST_MARK_RE.sub(b"", _block(loc.file, loc.line)))]


def _serves(location: VhostLocation, name: str) -> bool:
    return any(pattern.lower() == name or fnmatch.fnmatchcase(name, pattern.lower())
               for pattern in (location.name, *location.aliases))


def _block(path: Path, line: int) -> bytes:
    try:
        data = path.read_bytes()
    except OSError:
        return b""
    start = sum(len(piece) for piece in data.splitlines(keepends=True)[:line - 1])
    end = _VHOST_END.search(data, start)
    return data[start:end.start() if end else len(data)]


def _replace(path: Path, data: bytes, pid: int) -> None:
    """Write beside under a name that says whose it is (so a killed run's half-written copy is found), then
    rename over; the file keeps its mode and owner."""
    status = os.stat(path)
    tmp = path.parent / f".{FILE_PREFIX}{pid}-{path.name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, status.st_mode & 0o7777)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if os.geteuid() == 0:
            os.chown(tmp, status.st_uid, status.st_gid)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def open_vhost(path: Path, line: int, pid: int) -> Path:
    """Insert the marker and `RewriteEngine On` after the <VirtualHost> line; returns the real file changed."""
    real = path.resolve()  # sites-enabled/x.conf is a link: change the file, keep the link
    lines = real.read_bytes().splitlines(keepends=True)
    opening = lines[line - 1] if 0 < line <= len(lines) else b""
    if not opening.lstrip().lower().startswith(b"<virtualhost"):
        raise ApacheConfigError(f"{path}:{line}: Apache lists a vhost here, but the line is not <VirtualHost>")
    indent = opening[:len(opening) - len(opening.lstrip())] + b"    "
    added = [indent + VHOST_MARK.format(pid=pid).encode() + b"\n", indent + b"RewriteEngine On\n"]
    if not opening.endswith(b"\n"):
        lines[line - 1] = opening + b"\n"
    _replace(real, b"".join(lines[:line] + added + lines[line:]), pid)
    return real


def close_vhost(path: Path, pid: int | None) -> bool:
    """Take out the two lines `_open_vhost` added (for `pid`, or for any dead owner when None)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False

    def keep(match: re.Match) -> bytes:
        owner = int(match.group(1))
        return b"" if owner == pid or (pid is None and not alive(owner)) else match.group(0)

    cleaned = VHOST_MARK_RE.sub(keep, data)
    if cleaned == data:
        return False
    _replace(path, cleaned, os.getpid())
    return True


def alive(pid: int) -> bool:
    try:
        comm = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"lehttpd" in comm or b"python" in comm




def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
