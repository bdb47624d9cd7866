"""Helpers for the renewal tests: lineages issued quickly against a real Pebble, and a fault-injecting proxy.

FaultProxy sits between the client and Pebble (HTTPS, Pebble's own throwaway certificate) and forwards every
request with its Host header, so Pebble signs URLs that point back at the proxy. It can be stopped (the
server is down), answer newOrder with rateLimited + Retry-After or rejectedIdentifier for chosen names,
and offer ACME Renewal Information (RFC 9773), which this Pebble lacks, including refusing `replaces`.
"""
from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import os
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cryptography import x509

from lehttpd.console import Console
from lehttpd.issuance import solvers
from lehttpd.issuance.account import Registration
from lehttpd.issuance.order import obtain
from lehttpd.model import ChallengeSetup, IssueRequest
from lehttpd.sandbox.pebble import Pebble, free_port
from lehttpd.store import KINDS, CertStore


class FaultProxy:
    def __init__(self, pebble: Pebble) -> None:
        self.pebble = pebble
        self.port = free_port()
        self.rate_limited: dict[str, int] = {}  # name -> Retry-After seconds
        self.rejected: set[str] = set()
        self.ari_window = None  # None, or a callable(cert id) -> (start, end)
        self.refuse_replaces = False
        self.profiles: dict[str, str] | None = None  # offered as the directory's meta.profiles
        self.new_orders: list[dict] = []
        self.requests = 0
        self._server = None
        self._lock = threading.Lock()
        directory = requests.get(pebble.directory_url, verify=str(pebble.ca_bundle), timeout=5).json()
        self.new_order_path = requests.utils.urlparse(directory["newOrder"]).path

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def reset(self) -> None:
        self.rate_limited, self.rejected, self.ari_window, self.refuse_replaces = {}, set(), None, False
        self.new_orders, self.profiles, self.requests = [], None, 0

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                proxy._handle(self, "GET")

            def do_HEAD(self):  # noqa: N802
                proxy._handle(self, "HEAD")

            def do_POST(self):  # noqa: N802
                proxy._handle(self, "POST")

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls = self.pebble.workdir / "tls"
        context.load_cert_chain(tls / "leaf.pem", tls / "leaf.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- request handling ---------------------------------------------------------------------------
    def _handle(self, handler, method: str) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) if method == "POST" else b""
        with self._lock:
            self.requests += 1
        if method == "GET" and handler.path.startswith("/renewal-info/") and self.ari_window:
            start, end = self.ari_window(handler.path.rsplit("/", 1)[1])
            payload = {"suggestedWindow": {"start": start.isoformat(), "end": end.isoformat()}}
            return self._send(handler, 200, json.dumps(payload).encode(),
                              {"Retry-After": "60", "Content-Type": "application/json"})
        if method == "POST" and handler.path == self.new_order_path:
            fault = self._order_fault(body)
            if fault is not None:
                return self._send(handler, *fault)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("content-length", "connection")}
        upstream = requests.request(method, f"https://127.0.0.1:{self.pebble.api_port}{handler.path}",
                                    headers=headers, data=body, verify=str(self.pebble.ca_bundle), timeout=30)
        content = upstream.content
        if handler.path == "/dir" and (self.ari_window or self.profiles):
            directory = upstream.json()
            if self.ari_window:
                directory["renewalInfo"] = f"https://127.0.0.1:{self.port}/renewal-info"
            if self.profiles:
                directory.setdefault("meta", {})["profiles"] = self.profiles
            content = json.dumps(directory).encode()
        extra = {k: v for k, v in upstream.headers.items()
                 if k.lower() not in ("content-length", "connection", "transfer-encoding", "content-encoding")}
        self._send(handler, upstream.status_code, content, extra)

    def _order_fault(self, body: bytes):
        payload = json.loads(_b64decode(json.loads(body)["payload"]) or b"{}")
        with self._lock:
            self.new_orders.append(payload)
        names = {i["value"] for i in payload.get("identifiers", [])}
        for name in names & set(self.rate_limited):
            return 429, _problem("rateLimited", f"too many certificates for {name}"), {
                "Retry-After": str(self.rate_limited[name]), **PROBLEM}
        for name in names & self.rejected:
            return 400, _problem("rejectedIdentifier", f"the CA policy forbids issuing for {name!r}"), PROBLEM
        if self.refuse_replaces and payload.get("replaces"):
            return 409, _problem("alreadyReplaced", f"certificate {payload['replaces']} was already replaced"), PROBLEM
        return None

    def _send(self, handler, status: int, content: bytes, headers: dict) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if status >= 400 and "Replay-Nonce" not in headers:
            handler.send_header("Replay-Nonce", _fresh_nonce(self.pebble))
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


PROBLEM = {"Content-Type": "application/problem+json"}


def _problem(kind: str, detail: str) -> bytes:
    return json.dumps({"type": f"urn:ietf:params:acme:error:{kind}", "detail": detail, "status": 400}).encode()


def _fresh_nonce(pebble: Pebble) -> str:
    response = requests.head(f"https://127.0.0.1:{pebble.api_port}/nonce-plz", verify=str(pebble.ca_bundle),
                             timeout=5)
    return response.headers["Replay-Nonce"]


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- lineages -------------------------------------------------------------------------------------------
def issue_lineages(config_dir: Path, names: list[tuple[str, ...]], server: str, ca_bundle: Path, http_port: int,
                   workers: int = 8) -> list[str]:
    """Issue one lineage per tuple of names through lehttpd's own pipeline (the account first, then in parallel)."""
    store = CertStore(config_dir)
    console = Console(quiet=True)
    registration = Registration(agree_tos=True)
    requests_ = [IssueRequest(names=n, server=server, ca_bundle=ca_bundle,
                              challenge=ChallengeSetup(http_port=http_port, http_address="127.0.0.1"))
                 for n in names]
    with solvers.standalone(http_port, "127.0.0.1") as solver:
        obtain(requests_[0], store, console, registration, solver=solver)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda r: obtain(r, store, console, registration, solver=solver), requests_[1:]))
    return [r.lineage_name for r in requests_]


def versions(config_dir: Path, name: str) -> list[int]:
    return CertStore(config_dir).complete_versions(name)


def live_target_versions(config_dir: Path, name: str) -> dict[str, int]:
    live = config_dir / "live" / name
    found = {}
    for kind in KINDS:
        target = os.readlink(live / f"{kind}.pem")
        found[kind] = int(Path(target).name[len(kind):-len(".pem")])
    return found


def live_serial(config_dir: Path, name: str) -> int:
    return x509.load_pem_x509_certificate((config_dir / "live" / name / "cert.pem").read_bytes()).serial_number


def wait_until_due(config_dir: Path, names: list[str]) -> None:
    """Sleep until every lineage has passed its renewal point (a real clock, a short-lived certificate)."""
    from lehttpd.renewal import renewal_time

    store = CertStore(config_dir)
    latest = max(renewal_time(l.not_before, l.not_after) for l in (store.load(n) for n in names))
    delay = (latest - dt.datetime.now(dt.timezone.utc)).total_seconds() + 0.5
    if delay > 0:
        time.sleep(delay)
