"""Answering http-01: lehttpd's own HTTP server (standalone), or token files in a running site (webroot).

Both are context managers: whatever happens inside, the server is shut down and the files are removed.
"""
from __future__ import annotations

import contextlib
import errno
import http.server
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Iterator

from lehttpd.errors import EnvironmentProblem, PortInUseError, UsageError

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
REQUEST_TIMEOUT = 10  # seconds a client may take to send its request
MAX_REQUEST_LINE = 1024  # a token path is ~90 bytes; anything much longer is not a validation request
MAX_CONNECTIONS = 64


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
    daemon_threads = True
    allow_reuse_address = True
    tokens: dict[str, str]
    log = None

    def __init__(self, address: tuple[str, int], tokens: dict[str, str], log=None, ipv6: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.tokens, self.log = tokens, log
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, TokenHandler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # The IPv4 socket is separate: the IPv6 one must not claim IPv4 too, or that bind fails.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

    def process_request(self, request, client_address) -> None:
        # Bound the number of concurrent handler threads: past the limit a connection is dropped.
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


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
    """Write token files under WEBROOT/.well-known/acme-challenge/ and remove them (and folders we made)."""
    if not webroot.is_dir():
        raise UsageError(f"webroot {webroot} is not a directory")
    challenge_dir = webroot / ".well-known" / "acme-challenge"
    made = [d for d in (webroot / ".well-known", challenge_dir) if not d.exists()]
    written: list[Path] = []
    try:
        for directory in made:
            directory.mkdir(mode=0o755)
            os.chmod(directory, 0o755)  # the web server's user must read it whatever our umask
        for token, validation in tokens.items():
            path = challenge_dir / token
            path.write_text(validation)
            os.chmod(path, 0o644)
            written.append(path)
        yield
    except PermissionError as error:
        raise EnvironmentProblem(f"cannot write the challenge file in {challenge_dir}: {error.strerror}") from None
    finally:
        for path in written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()


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
