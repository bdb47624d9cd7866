"""Answering http-01: lehttpd's own HTTP server (standalone), or token files in a running site (webroot).

Both are context managers: whatever happens inside, the server is shut down and the files are removed.
"""
from __future__ import annotations

import contextlib
import errno
import http.server
import ipaddress
import os
import re
import socket
import socketserver
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

from lehttpd.errors import AcmeServerError, EnvironmentProblem, PortInUseError, UsageError

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
REQUEST_TIMEOUT = 10  # seconds a client may take to send its whole request (not per read: slowloris)
MAX_REQUEST_LINE = 1024  # a token path is ~90 bytes; anything much longer is not a validation request
MAX_CONNECTIONS = 128  # when full, the connection open longest is cut off to make room
# A client's share (per IPv4 address or IPv6 /64) once every slot is taken. Below that, one address may hold more:
# the CA validates every name of up to --workers lineages at once from the same few addresses.
MAX_PER_CLIENT = 8


class TokenHandler(http.server.BaseHTTPRequestHandler):
    """Serves exactly /.well-known/acme-challenge/<token> for the current tokens, 404 for everything else."""

    server: "_ChallengeServer"
    timeout = REQUEST_TIMEOUT
    server_version = "lehttpd"
    sys_version = ""

    def parse_request(self) -> bool:
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
            self.send_error(414)
            return False
        return super().parse_request()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        body = None
        if self.path.startswith(CHALLENGE_PREFIX):
            body = self.server.tokens.get(self.path[len(CHALLENGE_PREFIX):])
        status = 200 if body is not None else 404
        payload = (body or "not found\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if body is not None else "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if with_body:
            self.wfile.write(payload)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature from http.server)
        log = self.server.log
        if log is not None:
            log(f"  http-01 server: {self.client_address[0]} {format % args}")


class _ChallengeServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Threaded, with a cap on connections (overall and per client) and a deadline for each whole request.

    A handler's socket time-out bounds each read; the deadline bounds the request, so a client that sends one
    header line every few seconds is cut off too. Expired connections are shut down from the serving loop.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = MAX_CONNECTIONS  # the listen backlog: 5 by default, and a burst then delays the CA by 1 s
    tokens: dict[str, str]
    log = None

    def __init__(self, address: tuple[str, int], tokens: dict[str, str], log=None, ipv6: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.tokens, self.log = tokens, log
        self._guard = threading.Lock()
        self._open: dict[socket.socket, tuple[float, str]] = {}  # connection -> (deadline, client key)
        super().__init__(address, TokenHandler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # The IPv4 socket is separate: the IPv6 one must not claim IPv4 too, or that bind fails.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

    def process_request(self, request, client_address) -> None:
        client = _client_key(client_address[0])
        with self._guard:
            admitted, victim = self._admit(client)
            if victim is not None:
                self._open.pop(victim)
            if admitted:
                self._open[request] = (time.monotonic() + REQUEST_TIMEOUT, client)
        if victim is not None:
            _cut_off(victim)
        if not admitted:  # past its share, a client's new connection is dropped at once
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _admit(self, client: str) -> tuple[bool, socket.socket | None]:
        """(admit the new connection?, the open one to cut off for it). Called under the guard.

        While there is room, everyone is admitted. When every slot is taken, the client holding the most
        connections pays: past its share, its new connection is dropped, or its oldest one makes room. Among
        clients within their share, the connection open longest (the slowest: a validator sends its request at
        once) makes room, so neither one address nor a botnet can keep the CA out."""
        if len(self._open) < MAX_CONNECTIONS:
            return True, None
        held = Counter(key for _, key in self._open.values())
        heavy, count = held.most_common(1)[0]
        if count <= MAX_PER_CLIENT:
            return True, min(self._open, key=lambda conn: self._open[conn][0])
        if heavy == client:
            return False, None
        return True, min((conn for conn, (_, key) in self._open.items() if key == heavy),
                         key=lambda conn: self._open[conn][0])

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._guard:
                self._open.pop(request, None)

    def handle_error(self, request, client_address) -> None:
        # A client cut off at its deadline, or gone mid-answer: a line in -v output, not a traceback.
        if self.log is not None:
            self.log(f"  http-01 server: {client_address[0]} dropped: {sys.exc_info()[1]}")

    def service_actions(self) -> None:
        """Called by serve_forever between polls: cut off every connection past its deadline."""
        now = time.monotonic()
        with self._guard:
            expired = [conn for conn, (deadline, _) in self._open.items() if deadline <= now]
        for conn in expired:
            _cut_off(conn)


def _cut_off(conn: socket.socket) -> None:
    """End a connection from outside its handler thread: its blocked read returns, and it closes."""
    with contextlib.suppress(OSError):  # already closed by its handler
        conn.shutdown(socket.SHUT_RDWR)


def _client_key(address: str) -> str:
    """Whom a connection counts against: the IPv4 address, or the IPv6 /64 (one host usually holds one)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class StandaloneServer:
    """One listener on the port, shared by every order of a run; tokens are added and removed per order."""

    def __init__(self, port: int, address: str = "", log=None) -> None:
        self.tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._servers: list[_ChallengeServer] = []
        try:
            for bind_address, ipv6, required in _bind_plan(address):
                try:
                    self._servers.append(_ChallengeServer((bind_address, port), self.tokens, log, ipv6=ipv6))
                except OSError as error:
                    # A machine without IPv6 is fine when every address was asked for; a busy port is not.
                    if required or error.errno == errno.EADDRINUSE:
                        raise
                port = port or self._servers[0].server_address[1]
        except OSError as error:
            self.close()
            raise _bind_error(error, port, address) from None
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                         for s in self._servers]
        for thread in self._threads:
            thread.start()

    @property
    def port(self) -> int:
        return self._servers[0].server_address[1]

    @contextlib.contextmanager
    def serving(self, tokens: dict[str, str]) -> Iterator[None]:
        with self._lock:
            self.tokens.update(tokens)
        try:
            yield
        finally:
            with self._lock:
                for token in tokens:
                    self.tokens.pop(token, None)

    def close(self) -> None:
        for server in self._servers:
            if getattr(self, "_threads", None):
                server.shutdown()
            server.server_close()
        self._servers = []


@contextlib.contextmanager
def standalone(port: int, address: str = "", log=None) -> Iterator[StandaloneServer]:
    server = StandaloneServer(port, address, log)
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def webroot_files(webroot: Path, tokens: dict[str, str]) -> Iterator[None]:
    """Write token files under WEBROOT/.well-known/acme-challenge/ and remove them (and folders we made).

    The document root may be writable by the site's user, who could plant links there: the challenge folder
    must resolve inside the webroot, every step below the webroot is opened without following links, and
    token files are created new (O_EXCL|O_NOFOLLOW). Token files hold key authorizations, which are public.
    """
    if not webroot.is_dir():
        raise UsageError(f"webroot {webroot} is not a directory")
    root = webroot.resolve()
    for token in tokens:
        if not _TOKEN.match(token):
            raise AcmeServerError(f"the ACME server sent a challenge token that is not a file name: {token[:60]!r}")
    opened: list[tuple[int, str, bool]] = []  # (folder fd, its name in its parent, made by us)
    written: list[str] = []
    try:
        for attempt in range(WEBROOT_ATTEMPTS):
            try:
                _write_tokens(root, tokens, opened, written)
                break
            except FileNotFoundError:
                # Another writer of this webroot (a renew worker, the fleet agent) removed the empty folder it
                # had made between our open and our write: open the path again.
                _remove_tokens(opened, written)
                if attempt == WEBROOT_ATTEMPTS - 1:
                    raise EnvironmentProblem(f"--webroot {root}: the challenge folder kept vanishing while lehttpd "
                                             "wrote into it") from None
            except PermissionError as error:
                raise EnvironmentProblem(f"cannot write the challenge file in {root}/"
                                         f"{CHALLENGE_PREFIX.strip('/')}: {error.strerror}") from None
        yield
    finally:
        _remove_tokens(opened, written)


def _write_tokens(root: Path, tokens: dict[str, str], opened: list, written: list[str]) -> None:
    opened.append((_open_root(root), "", False))
    for part in _challenge_parts(root):
        opened.append(_open_folder(opened[-1][0], part, root))
    for token, validation in tokens.items():
        _write_token(opened[-1][0], token, validation, root)
        written.append(token)


def _remove_tokens(opened: list[tuple[int, str, bool]], written: list[str]) -> None:
    """Remove the token files and the folders we made, close every folder; `opened` and `written` end empty."""
    for token in written:
        with contextlib.suppress(OSError):
            os.unlink(token, dir_fd=opened[-1][0])
    for (parent_fd, _, _), (_, name, made) in reversed(list(zip(opened, opened[1:]))):
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=parent_fd)
    for fd, _, _ in opened:
        os.close(fd)
    opened.clear()
    written.clear()


WEBROOT_ATTEMPTS = 3
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # RFC 8555 8.3: base64url, so never a path
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _challenge_parts(root: Path) -> tuple[str, ...]:
    """The challenge folder as names below ROOT once links are resolved; refused when it leaves ROOT."""
    target = Path(os.path.realpath(root / CHALLENGE_PREFIX.strip("/")))
    if target == root or not target.is_relative_to(root):
        raise EnvironmentProblem(
            f"--webroot {root}: {CHALLENGE_PREFIX.strip('/')} leads to {target}, outside the document root; "
            f"lehttpd writes token files only inside the webroot (remove that link)")
    return target.relative_to(root).parts


def _open_root(root: Path) -> int:
    """The webroot as resolved a moment ago; a link swapped in since (its parent may be the site user's) is
    refused, not followed."""
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as error:
        if not isinstance(error, NotADirectoryError) and error.errno != errno.ELOOP:
            raise
        raise EnvironmentProblem(f"--webroot {root} changed into a link or a file while lehttpd was opening it; "
                                 "refusing to write there") from None


def _open_folder(parent: int, name: str, root: Path) -> tuple[int, str, bool]:
    """Open (or create, 0755 whatever the umask) one folder below PARENT without following a link."""
    made = False
    try:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            try:
                os.mkdir(name, 0o755, dir_fd=parent)
                made = True
            except FileExistsError:
                pass  # made meanwhile by another writer of this webroot (a worker, the fleet agent): opened as below
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            if made:
                os.fchmod(fd, 0o755)  # the web server's user must read it
    except OSError as error:
        # A link (ELOOP, or ENOTDIR with O_DIRECTORY) or a file appeared after the check: someone is racing us.
        if not isinstance(error, (NotADirectoryError, FileExistsError)) and error.errno != errno.ELOOP:
            raise
        raise EnvironmentProblem(f"--webroot {root}: {name!r} changed into a link or a file while lehttpd was "
                                 "opening it; refusing to write there") from None
    return fd, name, made


def _write_token(folder: int, token: str, validation: str, root: Path) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(token, flags, 0o644, dir_fd=folder)
    except FileExistsError:
        raise EnvironmentProblem(f"--webroot {root}: a file named like the challenge token {token} is already "
                                 "there; refusing to write through it") from None
    try:
        os.fchmod(fd, 0o644)  # the web server's user must read it whatever our umask
        os.write(fd, validation.encode())
    finally:
        os.close(fd)


def _bind_plan(address: str) -> list[tuple[str, bool, bool]]:
    """(address, is IPv6, must succeed) for each socket to open."""
    if address in ("", "*"):
        return [("0.0.0.0", False, True), ("::", True, False)]
    return [(address.strip("[]"), ":" in address, True)]


def _bind_error(error: OSError, port: int, address: str) -> Exception:
    where = f"{address or '*'}:{port}"
    if error.errno == errno.EADDRINUSE:
        owner = port_owner(port)
        by = f" by {owner}" if owner else ""
        return PortInUseError(
            f"port {port} is already in use{by}; stop that server around the order with "
            f"--pre-hook \"apache2ctl stop\" --post-hook \"apache2ctl start\", or answer through the running "
            f"site with --webroot PATH")
    if error.errno == errno.EACCES:
        return EnvironmentProblem(f"permission denied binding {where}: ports below 1024 need root")
    if error.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"cannot listen on {where}: address not available on this machine")
    return EnvironmentProblem(f"cannot listen on {where}: {error.strerror}")


def port_owner(port: int) -> str | None:
    """The process listening on a TCP port, as 'NAME (pid N)', from /proc; None when it can't be told."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    name = (proc / "comm").read_text().strip()
                    return f"{name} (pid {proc.name})"
    return None
