"""The fleet's copy of every lineage in etcd, and the node's local store kept equal to it.

`Fleet` publishes a new version (a fenced transaction: only while the renewer holds the lineage's lock),
imports the local store (`fleet init`), and pulls what etcd has into the local certbot-layout store through
the store's own atomic rules (`pull`). `FleetStore` is the CertStore a fleet node's `renew` uses: its lineage
lock is the etcd lock plus the local one, a new version goes to etcd before it goes live locally, and http-01
tokens are published for the other nodes' agents to serve.

Hooks never travel through etcd: a renewal file written from etcd keeps this node's own hooks (or none), so
whoever can write to etcd cannot make every node run a command.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from lehttpd import renewal_conf
from lehttpd.console import Console
from lehttpd.errors import LehttpdError, StorageError
from lehttpd.fleet.config import FleetConfig, load_config, load_key
from lehttpd.fleet.etcd import Etcd, KeyValue, compare_absent, compare_mod, op_delete, op_put
from lehttpd.fleet.lock import LeaseLock, LostLock
from lehttpd.fleet.sealing import seal, unseal
from lehttpd.model import ChallengeSetup, CertificateFiles, Hooks
from lehttpd.store import CertStore

LOCK_WAIT = 180.0  # a lineage locked by another node: wait for its order (90 s) or its lease to run out
TOKEN_TTL = 120
TOKEN_ACK_WAIT = 10.0  # how long a renewer waits for the other nodes' agents to serve its tokens
NODE_FRESH = 30.0
PARALLEL = 8  # a node whose agent has not reported for this long is not waited for


class Fleet:
    """This node's view of the fleet: its settings, the fleet key and an etcd client."""

    def __init__(self, store: CertStore, config: FleetConfig, fleet_key: bytes, etcd: Etcd | None = None) -> None:
        self.store, self.config, self.fleet_key = store, config, fleet_key
        self.etcd = etcd or Etcd(list(config.endpoints), _path(config.cacert), _path(config.cert), _path(config.key))

    @classmethod
    def open(cls, config_dir: Path) -> "Fleet":
        store = CertStore(config_dir)
        return cls(store, load_config(store), load_key(store))

    # -- reading etcd ----------------------------------------------------------------------------------
    def pointers(self) -> tuple[dict[str, KeyValue], int]:
        """current/NAME of every lineage, and the revision they were read at."""
        kvs, revision = self.etcd.get_prefix(self.config.k("current", ""))
        return {kv.key.rsplit("/", 1)[1]: kv for kv in kvs}, revision

    def record(self, name: str, version: int) -> dict:
        kv = self.etcd.get(self.config.version_key(name, version))
        if kv is None:
            raise StorageError(f"etcd has no {self.config.version_key(name, version)} (current/{name} names it)")
        return kv.json()

    # -- writing etcd ----------------------------------------------------------------------------------
    def _record(self, name: str, version: int, files: CertificateFiles, conf: str | None, serial: str) -> bytes:
        where = self.config.version_key(name, version)
        return json.dumps({"cert": files.cert_pem.decode(), "chain": files.chain_pem.decode(),
                           "fullchain": files.fullchain_pem.decode(), "conf": _without_hooks(conf, name),
                           "key": seal(self.fleet_key, files.key_pem, where), "serial": serial,
                           "node": self.config.node, "at": time.time()}).encode()

    def publish(self, name: str, files: CertificateFiles, conf: str | None, lock: LeaseLock) -> int:
        """Store a new version and point current/NAME at it, only while `lock` is still ours."""
        serial = _serial(files.cert_pem)
        key = self.config.current_key(name)
        pointer = self.etcd.get(key)
        version = pointer.json()["version"] + 1 if pointer else 1
        ok, _ = self.etcd.txn(
            lock.fence() + [compare_mod(key, pointer.mod_revision) if pointer else compare_absent(key)],
            [op_put(self.config.version_key(name, version), self._record(name, version, files, conf, serial)),
             op_put(key, json.dumps({"version": version, "serial": serial}))])
        if not ok:
            now = self.etcd.get(key)
            if now is not None and now.json().get("serial") == serial:
                return version  # our first attempt committed; only its answer was lost (leader change)
            raise LostLock(f"the etcd lock on {name} was lost before saving (lease expired while the order ran): "
                           "this certificate was not saved anywhere; the next run orders again")
        return version

    def import_lineage(self, name: str) -> bool:
        """Copy the local current version of `name` into etcd unless the fleet already has the lineage."""
        files = CertificateFiles(self.store.read_current("cert", name), self.store.read_current("chain", name),
                                 self.store.read_current("privkey", name))
        conf = self.local_conf(name, self.store.read_renewal_file(name), files.cert_pem)
        key = self.config.current_key(name)
        ok, _ = self.etcd.txn([compare_absent(key)], [
            op_put(self.config.version_key(name, 1), self._record(name, 1, files, conf, _serial(files.cert_pem))),
            op_put(key, json.dumps({"version": 1, "serial": _serial(files.cert_pem)}))])
        return ok

    # -- etcd into the local store ---------------------------------------------------------------------
    def local_serial(self, name: str) -> str | None:
        try:
            return hex(self.store.current(name).serial) if self.store.exists(name) else None
        except LehttpdError:
            return None  # broken locally: written again from etcd

    def pull(self, name: str, pointer: KeyValue | None = None, *, locked: bool = False) -> bool:
        """Make the local store serve etcd's current version of `name`; True when something was written."""
        pointer = pointer or self.etcd.get(self.config.current_key(name))
        if pointer is None:
            return False
        wanted = pointer.json()
        if self.local_serial(name) == wanted["serial"]:
            return False
        record = self.record(name, wanted["version"])
        key_pem = unseal(self.fleet_key, record["key"], self.config.version_key(name, wanted["version"]))
        files = CertificateFiles(record["cert"].encode(), record["chain"].encode(), key_pem)
        conf = self.local_conf(name, record["conf"], files.cert_pem) if record.get("conf") else None
        # CertStore's own methods, not FleetStore's: pulling must neither re-publish nor take the etcd lock.
        with contextlib.nullcontext() if locked else CertStore.lock(self.store, name):
            if self.local_serial(name) == wanted["serial"]:
                return False  # the renewer on this node saved it while we waited for the lock
            CertStore.save_version(self.store, name, files, conf)
        return True

    def catch_up(self) -> list[str]:
        """Before a renewal run: write the lineages this node does not have yet, from one small etcd read (so an
        unreachable etcd stops the run before anything is ordered; see fleet/catchup.py). Lineages it has are
        not compared here: the agent keeps them equal, and a due one is pulled again under its lock before the
        re-check."""
        from lehttpd.fleet.catchup import catch_up
        return catch_up(self)

    def pull_all(self) -> tuple[list[str], int]:
        """Every lineage etcd has, written here where it differs (in parallel: etcd and fsync bound)."""
        pointers, revision = self.pointers()
        with ThreadPoolExecutor(PARALLEL) as pool:
            written = pool.map(lambda item: item[0] if self.pull(item[0], item[1]) else None, sorted(pointers.items()))
            return [name for name in written if name], revision

    def local_conf(self, name: str, text: str, cert_pem: bytes) -> str:
        """The renewal file for this node: its paths, its challenge webroot, its own hooks (never etcd's)."""
        from cryptography import x509

        from lehttpd.store import lineage_from_cert
        where = f"etcd {self.config.current_key(name)}"
        conf = renewal_conf.parse(text, where)
        names = lineage_from_cert(name, self.store.config_dir, x509.load_pem_x509_certificate(cert_pem), 0).names
        request = renewal_conf.to_request(conf, names, name, where)
        request = replace(request, hooks=self._local_hooks(name, names))
        if self.config.challenge_webroot:
            request = replace(request, challenge=ChallengeSetup(mode="webroot",
                                                                webroot=Path(self.config.challenge_webroot)))
        return renewal_conf.render(request, conf.params.get("account", ""), self.store.config_dir)

    def _local_hooks(self, name: str, names: tuple[str, ...]) -> Hooks:
        if not os.path.lexists(self.store.renewal_conf(name)):
            return Hooks()
        path = str(self.store.renewal_conf(name))
        local = renewal_conf.parse(self.store.read_renewal_file(name), path)
        return renewal_conf.to_request(local, names, name, path).hooks

    # -- http-01 tokens --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def tokens_published(self, tokens: dict[str, str], console: Console | None = None) -> Iterator[None]:
        """Put the tokens in etcd (on a lease, so they vanish with a dead renewer), wait until every live
        node's agent has applied that revision, and delete them afterwards."""
        if not tokens:
            yield
            return
        lease = self.etcd.grant(TOKEN_TTL)
        try:
            revision = 0
            for token, validation in tokens.items():
                value = json.dumps({"node": self.config.node, "validation": validation})
                revision = self.etcd.put(self.config.token_key(token), value, lease)
            lagging = self.wait_for_nodes(revision)
            if lagging and console is not None:
                console.warn(f"nodes {', '.join(lagging)} did not confirm the http-01 tokens in "
                             f"{TOKEN_ACK_WAIT:.0f} s; validation may fail if the CA reaches them")
            yield
        finally:
            with contextlib.suppress(LehttpdError):
                for token in tokens:
                    self.etcd.txn([], [op_delete(self.config.token_key(token))])
                self.etcd.revoke(lease)

    def nodes(self) -> dict[str, dict]:
        kvs, _ = self.etcd.get_prefix(self.config.k("nodes", ""))
        return {kv.key.rsplit("/", 1)[1]: kv.json() for kv in kvs}

    def wait_for_nodes(self, revision: int) -> list[str]:
        """Wait until every other live node reports it applied `revision`; the names of those that did not."""
        deadline = time.monotonic() + TOKEN_ACK_WAIT
        while True:
            lagging = [node for node, beat in self.nodes().items()
                       if node != self.config.node and time.time() - beat.get("synced_at", 0) < NODE_FRESH
                       and beat.get("revision", 0) < revision]
            if not lagging or time.monotonic() >= deadline:
                return lagging
            time.sleep(0.1)


class FleetStore(CertStore):
    """The store `renew` uses on a fleet node: etcd lock + local lock, etcd first, then live locally."""

    shared = True

    def __init__(self, fleet: Fleet, console: Console | None = None) -> None:
        super().__init__(fleet.store.config_dir)
        self.fleet, self.console = fleet, console
        self._held: dict[str, LeaseLock] = {}

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        held = LeaseLock(self.fleet.etcd, self.fleet.config.lock_key(name), self.fleet.config.node,
                         self.fleet.config.lock_ttl)
        held.acquire(LOCK_WAIT)
        try:
            with super().lock(name, timeout):
                # Another node may have renewed while we waited: bring it here, so the caller's re-check sees it.
                self.fleet.pull(name, locked=True)
                self._held[name] = held
                try:
                    yield
                finally:
                    self._held.pop(name, None)
        finally:
            held.release()

    def save_version(self, name: str, files: CertificateFiles, renewal_conf: str | None = None):
        held = self._held.get(name)
        if held is None:
            raise StorageError(f"{name}: a fleet node saves a version only under the lineage's etcd lock")
        self.fleet.publish(name, files, renewal_conf, held)
        return super().save_version(name, files, renewal_conf)

    @contextlib.contextmanager
    def answering(self, tokens: dict[str, str]) -> Iterator[None]:
        with self.fleet.tokens_published(tokens, self.console):
            yield


def _serial(cert_pem: bytes) -> str:
    from cryptography import x509
    return hex(x509.load_pem_x509_certificate(cert_pem).serial_number)


def _without_hooks(conf: str | None, name: str) -> str | None:
    if conf is None:
        return None
    lines = [line for line in conf.splitlines()
             if line.split("=", 1)[0].strip() not in ("pre_hook", "post_hook", "renew_hook", "deploy_hook")]
    return "\n".join(lines) + "\n"


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
