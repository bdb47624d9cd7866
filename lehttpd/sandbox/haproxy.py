"""A throwaway haproxy (Debian package) on loopback: one HTTP frontend, round-robin over backends (tests)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

HAPROXY = "/usr/sbin/haproxy"
CONFIG = """\
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fleet
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance roundrobin
{servers}
"""


class Haproxy:
    def __init__(self, workdir: Path, port: int, backends: list[int]) -> None:
        self.workdir, self.port, self.backends = Path(workdir), port, backends
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Haproxy":
        if not shutil.which(HAPROXY):
            raise RuntimeError("haproxy is not installed (Debian package 'haproxy')")
        self.workdir.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"    server n{i} 127.0.0.1:{port}" for i, port in enumerate(self.backends))
        config = self.workdir / "haproxy.cfg"
        config.write_text(CONFIG.format(port=self.port, servers=servers))
        log = open(self.workdir / "haproxy.log", "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"haproxy exited; see {self.workdir / 'haproxy.log'}") from None
                time.sleep(0.05)
        raise RuntimeError("haproxy did not listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
