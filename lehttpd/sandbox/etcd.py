"""A throwaway etcd cluster (Debian's `etcd-server`) on loopback for tests and bench: 1 or 3 members, random ports.

Short heartbeat and election timeouts so a killed leader is replaced in well under a second. With `tls=True`
every client URL is https with a throwaway CA (sandbox/tls.py) and clients must present a certificate.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from lehttpd.sandbox.pebble import free_port
from lehttpd.sandbox.tls import write_tls_pair

ETCD = "/usr/bin/etcd"


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    proc: subprocess.Popen | None = None


@dataclass
class EtcdCluster:
    workdir: Path
    size: int = 3
    tls: bool = False
    members: list[Member] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.members = [Member(f"m{i}", free_port(), free_port()) for i in range(self.size)]

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def endpoints(self) -> list[str]:
        return [f"{self.scheme}://127.0.0.1:{m.client_port}" for m in self.members]

    @property
    def tls_files(self) -> tuple[Path, Path, Path]:
        """(CA, client/server certificate, its key); the one leaf serves both ends in the sandbox."""
        folder = self.workdir / "tls"
        return folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"

    def start(self) -> "EtcdCluster":
        if not shutil.which(ETCD):
            raise RuntimeError("etcd is not installed (Debian package 'etcd-server')")
        if self.tls:
            write_tls_pair(self.workdir / "tls")
        cluster = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.members)
        for member in self.members:
            self._launch(member, cluster)
        self.wait_ready()
        return self

    def _launch(self, member: Member, cluster: str, state: str = "new") -> None:
        url = f"{self.scheme}://127.0.0.1:{member.client_port}"
        args = [ETCD, "--name", member.name, "--data-dir", str(self.workdir / member.name),
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", f"http://127.0.0.1:{member.peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{member.peer_port}",
                "--initial-cluster", cluster, "--initial-cluster-state", state,
                "--initial-cluster-token", f"lehttpd-{os.getpid()}-{self.members[0].peer_port}",
                "--heartbeat-interval", "50", "--election-timeout", "400", "--logger", "zap",
                "--log-outputs", str(self.workdir / f"{member.name}.log")]
        if self.tls:
            ca, leaf, key = self.tls_files
            args += ["--cert-file", str(leaf), "--key-file", str(key), "--trusted-ca-file", str(ca),
                     "--client-cert-auth"]
        self.workdir.mkdir(parents=True, exist_ok=True)
        member.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the sandbox CA
        if self.tls:
            ca, leaf, key = self.tls_files
            session.verify, session.cert = str(ca), (str(leaf), str(key))
        return session

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        session = self.session()
        while time.monotonic() < deadline:
            try:
                if self.leader() is not None:
                    session.post(self.endpoints[0] + "/v3/kv/range", json={"key": "eA=="}, timeout=2)
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"etcd did not elect a leader within {timeout} s; see {self.workdir}/*.log")

    def leader(self) -> Member | None:
        """The member that is the Raft leader now (asked of each running member)."""
        session = self.session()
        for member, endpoint in zip(self.members, self.endpoints):
            if member.proc is None or member.proc.poll() is not None:
                continue
            try:
                status = session.post(endpoint + "/v3/maintenance/status", json={}, timeout=2).json()
            except (requests.RequestException, ValueError):
                continue
            if status.get("leader") and status.get("leader") == status.get("header", {}).get("member_id"):
                return member
        return None

    def kill(self, member: Member) -> None:
        if member.proc is not None and member.proc.poll() is None:
            member.proc.send_signal(signal.SIGKILL)
            member.proc.wait(timeout=10)

    def restart(self, member: Member) -> None:
        cluster = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.members)
        self._launch(member, cluster, state="existing")

    def stop(self) -> None:
        for member in self.members:
            if member.proc is not None and member.proc.poll() is None:
                member.proc.terminate()
        for member in self.members:
            if member.proc is not None:
                try:
                    member.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    member.proc.kill()
                member.proc = None

    def __enter__(self) -> "EtcdCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
