"""A fleet on loopback for the fault tests and the bench: Pebble, a three-member etcd cluster, three private
Apache instances serving the same names (each from its own config dir), haproxy on Pebble's http-01 port in
front of them, and one `lehttpd fleet agent` process per node."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from lehttpd.fleet.etcd import Etcd
from lehttpd.sandbox.apache import ApacheInstance, make_instance
from lehttpd.sandbox.etcd import EtcdCluster
from lehttpd.sandbox.haproxy import Haproxy
from lehttpd.sandbox.pebble import Pebble
from tests.integration.fleet_fixtures import etcd_flags, run_cli
from tests.integration.renew_fixtures import issue_lineages

SITES = """\
Listen 127.0.0.1:{https}
<VirtualHost 127.0.0.1:{http}>
    ServerName fleet-node
    DocumentRoot {webroot}
    <Directory {webroot}>
        Require all granted
    </Directory>
</VirtualHost>
"""
TLS_SITE = """\
<VirtualHost 127.0.0.1:{https}>
    ServerName {name}
    SSLEngine on
    SSLCertificateFile {config}/live/{name}/fullchain.pem
    SSLCertificateKeyFile {config}/live/{name}/privkey.pem
</VirtualHost>
"""


@dataclass
class Node:
    name: str
    config_dir: Path
    apache: ApacheInstance
    webroot: Path
    agent: subprocess.Popen | None = None

    def renew(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "lehttpd", "renew", "--config-dir", str(self.config_dir),
                                 "--no-ari", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@dataclass
class FleetLab:
    base: Path
    pebble: Pebble
    etcd: EtcdCluster
    names: list[str]
    nodes: list[Node] = field(default_factory=list)
    haproxy: Haproxy | None = None
    apache_base: Path | None = None

    def client(self) -> Etcd:
        return Etcd(self.etcd.endpoints)

    def versions(self, name: str) -> int:
        return len(self.client().get_prefix(f"/lehttpd/versions/{name}/", keys_only=True)[0])

    def current_serial(self, name: str) -> int:
        return int(json.loads(self.client().get(f"/lehttpd/current/{name}").value)["serial"], 16)

    def served_serial(self, node: Node, name: str) -> int:
        """The serial the node's Apache sends for `name`, checked against Pebble's root (no verification off)."""
        context = ssl.create_default_context(cadata=self.pebble.root_pem().decode())
        with socket.create_connection(("127.0.0.1", node.apache.https_port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number

    def serial_served_yet(self, node: Node, name: str) -> int | None:
        """served_serial, or None while the node's Apache does not serve a valid certificate for `name` yet (its
        reload after a new lineage is still to come: the default site answers, for another name)."""
        try:
            return self.served_serial(node, name)
        except ssl.SSLCertVerificationError:
            return None

    def wait_served_everywhere(self, deadline: float = 10.0, names: list[str] | None = None) -> dict[str, list[str]]:
        """Wait up to `deadline` s for every node to serve etcd's current certificate of `names` (default: all);
        what still differs."""
        names = names or self.names
        end = time.monotonic() + deadline
        while True:
            wanted = {name: self.current_serial(name) for name in names}
            behind = {n.name: [name for name in names if self.serial_served_yet(n, name) != wanted[name]]
                      for n in self.nodes}
            behind = {k: v for k, v in behind.items() if v}
            if not behind or time.monotonic() >= end:
                return behind
            time.sleep(0.2)

    def current_record(self, name: str) -> dict:
        version = json.loads(self.client().get(f"/lehttpd/current/{name}").value)["version"]
        return json.loads(self.client().get(f"/lehttpd/versions/{name}/{version:08d}").value)

    def renewed_first(self, count: int, last: bool = False) -> list[str]:
        """The `count` lineages whose current version is oldest (the first to be due again), or newest."""
        ordered = sorted(self.names, key=lambda name: self.current_record(name)["at"])
        return ordered[-count:] if last else ordered[:count]

    def wait_due(self, names: list[str] | None = None) -> None:
        """Sleep until the current certificate of every one of `names` (default: all) has passed its renewal
        point (half its lifetime)."""
        from lehttpd.renewal import renewal_time

        latest = 0.0
        for name in names or self.names:
            parsed = x509.load_pem_x509_certificate(self.current_record(name)["cert"].encode())
            latest = max(latest, renewal_time(parsed.not_valid_before_utc, parsed.not_valid_after_utc).timestamp())
        time.sleep(max(0.0, latest - time.time() + 1.0))

    def watching_links(self) -> "LinkWatch":
        return LinkWatch(self)

    def stop(self) -> None:
        for node in self.nodes:
            if node.agent is not None and node.agent.poll() is None:
                node.agent.terminate()
                node.agent.wait(timeout=10)
            node.apache.stop()
        if self.haproxy is not None:
            self.haproxy.stop()
        self.etcd.stop()
        self.pebble.stop()
        if self.apache_base is not None:
            for node in self.nodes:  # kept beside the agents' logs, for a failure's post-mortem
                (self.base / f"{node.name}-apache-error.log").write_text(node.apache.error_log())
            shutil.rmtree(self.apache_base, ignore_errors=True)


class LinkWatch(threading.Thread):
    """While in use, notes when each node's live/NAME/cert.pem first leads to another version than when it
    started: the moment that node took the new version (its agent's pull, or its own renewal), to compare with
    the time the version was published in etcd (the record's "at", same clock)."""

    def __init__(self, lab: FleetLab, interval: float = 0.2) -> None:
        super().__init__(name="link watch", daemon=True)
        self.lab, self.interval = lab, interval
        self.links = {(node.name, name): node.config_dir / "live" / name / "cert.pem"
                      for node in lab.nodes for name in lab.names}
        self.started = {key: os.readlink(link) for key, link in self.links.items()}
        self.changed_at: dict[tuple[str, str], float] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            now = time.time()
            for key, link in self.links.items():
                if key not in self.changed_at and os.readlink(link) != self.started[key]:
                    self.changed_at[key] = now

    def lags(self) -> dict[tuple[str, str], float]:
        """Seconds from publication in etcd to the node's store, for every (node, lineage) that changed."""
        published = {name: self.lab.current_record(name)["at"] for name in self.lab.names}
        return {key: seen - published[key[1]] for key, seen in self.changed_at.items()}

    def __enter__(self) -> "LinkWatch":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join(timeout=5)


def start_lab(base: Path, lineages: int, validity: int = 40, lock_ttl: int = 3) -> FleetLab:
    from lehttpd.sandbox.pebble import free_port

    pebble = Pebble(base / "pebble", http_port=free_port(), validity_seconds=validity).start()
    lab = FleetLab(base, pebble, EtcdCluster(base / "etcd", size=3), [f"s{i}.fleet.test" for i in range(lineages)])
    try:
        lab.etcd.start()
        _make_nodes(lab, lock_ttl)
        for node in lab.nodes:
            _configure_apache(lab, node)
            node.apache.start()
            node.apache.wait_port(node.apache.https_port)
            _wait_running(node.apache)
            node.agent = subprocess.Popen(
                [sys.executable, "-m", "lehttpd", "fleet", "agent", "--config-dir", str(node.config_dir)],
                stdout=open(base / f"{node.name}-agent.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        lab.haproxy = Haproxy(base / "haproxy", pebble.http_port, [n.apache.http_port for n in lab.nodes]).start()
    except BaseException:
        lab.stop()
        raise
    return lab


def _make_nodes(lab: FleetLab, lock_ttl: int) -> None:
    # Apache's folders live outside pytest's base dir: another pytest session on this machine resets
    # /tmp/pytest-of-root to 0700, and www-data could then no longer reach the challenge webroot (403).
    lab.apache_base = Path(tempfile.mkdtemp(prefix="lehttpd-fleet-apache-"))
    for index in range(3):
        apache = make_instance(lab.apache_base / f"n{index}")
        webroot = apache.base / "www" / "acme"
        webroot.mkdir(mode=0o755, parents=True)
        lab.nodes.append(Node(f"n{index}", lab.base / f"n{index}" / "config", apache, webroot))
    first = lab.nodes[0]
    # The first certificates come from node 0 alone (standalone on Pebble's port, before haproxy takes it).
    issue_lineages(first.config_dir, [(name,) for name in lab.names], lab.pebble.directory_url,
                   lab.pebble.ca_bundle, lab.pebble.http_port)
    for node in lab.nodes:
        action = ["init"] if node is first else ["join", "--fleet-key", first.config_dir / ".lehttpd" / "fleet.key"]
        code, out, err = run_cli("fleet", *action, *etcd_flags(lab.etcd.endpoints), "--node", node.name,
                                 "--challenge-webroot", node.webroot, "--reload-command", f"{node.apache.ctl} graceful",
                                 "--lock-ttl", str(lock_ttl), "--config-dir", node.config_dir)
        if code != 0:
            raise RuntimeError(f"fleet {action[0]} on {node.name}: {err}")


def _configure_apache(lab: FleetLab, node: Node) -> None:
    node.apache.enable_module("socache_shmcb")
    node.apache.enable_module("ssl")
    text = SITES.format(https=node.apache.https_port, http=node.apache.http_port, webroot=node.webroot)
    text += "".join(TLS_SITE.format(https=node.apache.https_port, name=name, config=node.config_dir)
                    for name in lab.names)
    node.apache.add_site("fleet", text)


def _wait_running(apache: ApacheInstance, timeout: float = 10.0) -> None:
    """Until Apache logs that its MPM runs: a graceful signal (the agent's first reload) that arrives while
    the parent is still starting, before its handlers are set, kills it instead of reloading it."""
    end = time.monotonic() + timeout
    while "resuming normal operations" not in apache.error_log():
        if time.monotonic() >= end:
            raise RuntimeError(f"apache did not finish starting: {apache.error_log()}")
        time.sleep(0.05)


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
