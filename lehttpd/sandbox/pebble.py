"""A throwaway local ACME CA: Debian's Pebble and pebble-challtestsrv on loopback, for tests, demo and bench.

pebble-challtestsrv runs as DNS only and answers every name with 127.0.0.1, so Pebble validates http-01 by
connecting to 127.0.0.1:<http_port>, where the client under test listens. Pebble's API needs a TLS
certificate that Debian's package does not ship: a throwaway CA and leaf are made here, and the client trusts
that CA explicitly (never by turning verification off).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from lehttpd.sandbox.tls import write_tls_pair

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Pebble:
    """A running Pebble; `directory_url` and `ca_bundle` are what a client needs."""

    workdir: Path
    http_port: int
    validity_seconds: int | None = None
    env: dict[str, str] | None = None
    eab_keys: dict[str, str] | None = None  # kid -> base64url HMAC key; makes external account binding required

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api_port, self.management_port = free_port(), free_port()
        self.dns_port, self.dns_management_port = free_port(), free_port()
        self._procs: list[subprocess.Popen] = []

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}/dir"

    @property
    def ca_bundle(self) -> Path:
        return self.workdir / "tls" / "ca.pem"

    def start(self) -> "Pebble":
        if not (shutil.which(PEBBLE) and shutil.which(CHALLTESTSRV)):
            raise RuntimeError("Pebble is not installed (Debian package 'pebble')")
        ca, leaf, key = write_tls_pair(self.workdir / "tls")
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.api_port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(leaf), "privateKey": str(key),
            "httpPort": self.http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": bool(self.eab_keys),
            "externalAccountMACKeys": self.eab_keys or {},
        }}
        if self.validity_seconds:
            config["pebble"]["certificateValidityPeriod"] = self.validity_seconds
        (self.workdir / "pebble.json").write_text(json.dumps(config, indent=2))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0",
               **(self.env or {})}
        log = open(self.workdir / "pebble.log", "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self._procs.append(subprocess.Popen(
            [CHALLTESTSRV, "-dns01", f"127.0.0.1:{self.dns_port}",
             "-management", f"127.0.0.1:{self.dns_management_port}",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", ""],
            stdout=log, stderr=log, env=env))
        self._procs.append(subprocess.Popen(
            [PEBBLE, "-config", str(self.workdir / "pebble.json"), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
            stdout=log, stderr=log, env=env, cwd=self.workdir))
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"Pebble exited early; see {self.workdir / 'pebble.log'}")
            try:
                requests.get(self.directory_url, verify=str(self.ca_bundle), timeout=2).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"Pebble did not start within {timeout} s; see {self.workdir / 'pebble.log'}")

    def client_args(self, config_dir: Path) -> list[str]:
        """The flags that point `lehttpd issue` at this Pebble (standalone on its http-01 port)."""
        return ["--server", self.directory_url, "--ca-bundle", str(self.ca_bundle), "--config-dir", str(config_dir),
                "--http-port", str(self.http_port), "--http-address", "127.0.0.1", "--agree-tos"]

    def root_pem(self, index: int = 0) -> bytes:
        url = f"https://127.0.0.1:{self.management_port}/roots/{index}"
        response = requests.get(url, verify=str(self.ca_bundle), timeout=5)
        response.raise_for_status()
        return response.content

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._procs = []

    def __enter__(self) -> "Pebble":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    """`python -m lehttpd.sandbox.pebble`: run a local Pebble until Ctrl-C and print the flags to use it."""
    import argparse

    parser = argparse.ArgumentParser(description="Run a throwaway Pebble ACME server on loopback.")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/lehttpd-pebble"), help="working folder")
    parser.add_argument("--http-port", type=int, default=5002, help="where Pebble looks for http-01 answers")
    parser.add_argument("--config-dir", type=Path, default=Path("/tmp/lehttpd-pebble/letsencrypt"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop Pebble on SIGTERM too, not only Ctrl-C
    with Pebble(args.dir, args.http_port) as pebble:
        print("Pebble is running; issue with:\n  lehttpd issue a.example.test " + " ".join(
            pebble.client_args(args.config_dir)) + "\nCtrl-C stops it.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
