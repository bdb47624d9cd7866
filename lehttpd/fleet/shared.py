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
from typing import Callable, Iterator

from lehttpd import renewal_conf
from lehttpd.console import Console
from lehttpd.errors import LehttpdError, StorageError
from lehttpd.fileio import file_lock
from lehttpd.fleet.config import FleetConfig, load_config, load_key
from lehttpd.fleet.etcd import Etcd, EtcdUnavailable, KeyValue, compare_absent, compare_mod, op_delete, op_put
from lehttpd.fleet.lock import LeaseLock, LostLock
from lehttpd.fleet.sealing import record_binding, seal, token_tag, unseal
from lehttpd.model import ChallengeSetup, CertificateFiles, Hooks
from lehttpd.store import CertStore

LOCK_WAIT = 180.0  # a lineage locked by another node: wait for its order (90 s) or its lease to run out
TOKEN_TTL = 120
TOKEN_ACK_WAIT = 10.0  # how long a renewer waits for the other nodes' agents to serve its tokens
NODE_FRESH = 30.0
PARALLEL = 8  # a node whose agent has not reported for this long is not waited for
RUN_LOCK_WAIT = 120.0  # `issue` waits this long for a renewal run (or the agent's reload) on the same node


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
        """Version `version` of `name` as etcd has it, its private key unsealed into "key_pem": a record whose
        certificate, chain, renewal file or key was changed by someone without the fleet key does not open."""
        where = self.config.version_key(name, version)
        kv = self.etcd.get(where)
        if kv is None:
            raise StorageError(f"etcd has no {where} (current/{name} names it)")
        record = kv.json()
        if not isinstance(record.get("key"), str):
            raise StorageError(f"etcd {where} holds no sealed key: not a version record lehttpd wrote")
        record["key_pem"] = unseal(self.fleet_key, record["key"], record_binding(where, record))
        return record

    # -- writing etcd ----------------------------------------------------------------------------------
    def _record(self, name: str, version: int, files: CertificateFiles, conf: str | None, serial: str) -> bytes:
        where = self.config.version_key(name, version)
        record = {"cert": files.cert_pem.decode(), "chain": files.chain_pem.decode(),
                  "fullchain": files.fullchain_pem.decode(), "conf": _without_hooks(conf, name), "serial": serial,
                  "node": self.config.node, "at": time.time()}
        record["key"] = seal(self.fleet_key, files.key_pem, record_binding(where, record))
        return json.dumps(record).encode()

    def publish(self, name: str, files: CertificateFiles, conf: str | None, lock: LeaseLock) -> int:
        """Store a new version and point current/NAME at it, only while `lock` is still ours."""
        serial = _serial(files.cert_pem)
        key = self.config.current_key(name)
        pointer = self.etcd.get(key)
        version = pointer.json()["version"] + 1 if pointer else 1
        ok, _ = self.etcd.txn(
            lock.fence() + [compare_mod(key, pointer.mod_revision) if pointer else compare_absent(key)],
            [op_put(self.config.version_key(name, version), self._record(name, version, files, conf, serial)),
             op_put(key, json.dumps({"version": version, "serial": serial})),
             op_delete(self.config.deleted_key(name))])  # issued again after a `delete`: in the fleet again
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
            op_put(key, json.dumps({"version": 1, "serial": _serial(files.cert_pem)})),
            op_delete(self.config.deleted_key(name))])
        return ok

    def remove(self, name: str, lock: LeaseLock) -> bool:
        """`delete` on a fleet node: drop NAME's versions from etcd and leave a tombstone, so that the other
        nodes neither renew nor bring back their copies (which their Apache may still use: those stay until
        `lehttpd delete` runs there too). Only while `lock` is ours; False when etcd had no such lineage."""
        key = self.config.current_key(name)
        pointer = self.etcd.get(key)
        if pointer is None:
            return False
        tombstone = json.dumps({"node": self.config.node, "at": time.time(), "serial": pointer.json()["serial"]})
        ok, _ = self.etcd.txn(lock.fence() + [compare_mod(key, pointer.mod_revision)],
                              [op_delete(key), op_delete(self.config.k("versions", name, ""), prefix=True),
                               op_put(self.config.deleted_key(name), tombstone)])
        if not ok:
            raise LostLock(f"the etcd lock on {name} was lost before deleting: nothing deleted; run it again")
        return True

    def deleted(self, name: str) -> dict | None:
        """The tombstone `delete` on some node left for NAME, if any."""
        kv = self.etcd.get(self.config.deleted_key(name))
        return kv.json() if kv else None

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
        if not isinstance(wanted.get("version"), int) or not isinstance(wanted.get("serial"), str):
            raise StorageError(f"etcd {pointer.key} is not a version pointer: ignored")
        if self.local_serial(name) == wanted["serial"]:
            return False
        record = self.record(name, wanted["version"])
        if record["serial"] != wanted["serial"] or _serial(record["cert"].encode()) != wanted["serial"]:
            raise StorageError(f"etcd {self.config.current_key(name)} names serial {wanted['serial']}, but version "
                               f"{wanted['version']} holds {record['serial']}: not written here")
        files = CertificateFiles(record["cert"].encode(), record["chain"].encode(), record["key_pem"])
        conf = self.local_conf(name, record["conf"], files.cert_pem) if record.get("conf") else None
        # CertStore's own methods, not FleetStore's: pulling must neither re-publish nor take the etcd lock.
        with contextlib.nullcontext() if locked else CertStore.lock(self.store, name):
            if self.local_serial(name) == wanted["serial"]:
                return False  # the renewer on this node saved it while we waited for the lock
            if self._older_than_served(name, wanted["version"], files.cert_pem, renewing=locked):
                return False
            CertStore.save_version(self.store, name, files, conf)
        return True

    def _older_than_served(self, name: str, version: int, cert_pem: bytes, renewing: bool) -> bool:
        """A node never replaces what it serves with an older certificate: a pointer moved back in etcd (by
        someone who can write there and may hold an old, revoked key) or a lineage renewed on this node outside
        the fleet would be rolled back. A renewal under the lock keeps ours and goes on (its new version then
        becomes the fleet's); elsewhere it is an error the agent reports."""
        from cryptography import x509

        try:
            here = self.store.current(name) if self.store.exists(name) else None
        except LehttpdError:
            return False  # broken here: etcd's copy repairs it
        issued = x509.load_pem_x509_certificate(cert_pem).not_valid_before_utc
        if here is None or issued >= here.not_before:
            return False
        if renewing:
            return True
        raise StorageError(f"etcd's version {version} (issued {issued:%Y-%m-%d %H:%M:%S} UTC) is older than the "
                           f"certificate this node serves (issued {here.not_before:%Y-%m-%d %H:%M:%S} UTC): kept this "
                           f"node's; `lehttpd renew --cert-name {name} --force` here gives the fleet a new version")

    def catch_up(self, warn: Callable[[str], None] | None = None) -> list[str]:
        """Before a renewal run: write the lineages this node does not have yet, from one small etcd read (so an
        unreachable etcd stops the run before anything is ordered; see fleet/catchup.py). Lineages it has are
        not compared here: the agent keeps them equal, and a due one is pulled again under its lock before the
        re-check."""
        from lehttpd.fleet.catchup import catch_up
        return catch_up(self, warn)

    def pull_all(self) -> tuple[list[str], dict[str, str], int]:
        """Every lineage etcd has, written here where it differs (in parallel: etcd and fsync bound); the names
        written, why each one that could not be written was not, and the revision read."""
        pointers, revision = self.pointers()

        def one(item: tuple[str, KeyValue]) -> tuple[str, bool | str]:
            try:
                return item[0], self.pull(*item)
            except EtcdUnavailable:
                raise
            except LehttpdError as error:
                return item[0], error.message

        with ThreadPoolExecutor(PARALLEL) as pool:
            results = list(pool.map(one, sorted(pointers.items())))
        written = [name for name, outcome in results if outcome is True]
        failed = {name: outcome for name, outcome in results if isinstance(outcome, str)}
        return written, failed, revision

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
                value = json.dumps({"node": self.config.node, "validation": validation,
                                    "tag": token_tag(self.fleet_key, token, validation)})
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
    """The store `renew` and `issue` use on a fleet node: etcd lock + local lock, etcd first, then live locally."""

    shared = True
    revives_deleted = False  # renew: a lineage deleted from the fleet is not ordered again (issue: it is)

    def __init__(self, fleet: Fleet, console: Console | None = None) -> None:
        super().__init__(fleet.store.config_dir)
        self.fleet, self.console = fleet, console
        self._held: dict[str, LeaseLock] = {}

    @classmethod
    def open(cls, config_dir: Path, console: Console, nothing_done: str) -> "FleetStore":
        """Reach etcd before anything is ordered (else `nothing_done` is said) and write the lineages etcd
        has that this node lacks, so that what the command checks locally is the fleet's state."""
        fleet = Fleet.open(config_dir)
        try:
            fleet.catch_up(console.warn if console is not None else None)
        except EtcdUnavailable as error:
            raise EtcdUnavailable(f"{error.message}: {nothing_done}; this node keeps serving the certificates "
                                  "it has") from None
        return cls(fleet, console)

    @property
    def challenge_webroot(self) -> Path | None:
        """The folder every node's Apache serves http-01 tokens from (the agents write published ones there)."""
        return _path(self.fleet.config.challenge_webroot)

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        held = LeaseLock(self.fleet.etcd, self.fleet.config.lock_key(name), self.fleet.config.node,
                         self.fleet.config.lock_ttl)
        held.acquire(LOCK_WAIT)
        try:
            if not self.revives_deleted:
                self._refuse_deleted(name)
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

    def _refuse_deleted(self, name: str) -> None:
        tombstone = self.fleet.deleted(name)
        if tombstone is not None:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(tombstone.get("at", 0)))
            raise DeletedFromFleet(f"{name} was deleted from the fleet by node {tombstone.get('node', '?')} on "
                                   f"{when}: not renewed here; `lehttpd delete --cert-name {name}` removes this "
                                   "node's copy once no site uses it (`lehttpd issue` brings it back to the fleet)")

    def delete(self, name: str) -> list[str]:
        """Out of etcd first (under the lock `manage.delete` holds), then off this node."""
        held = self._held.get(name)
        if held is None:
            raise StorageError(f"{name}: a fleet node deletes a lineage only under its etcd lock")
        self.fleet.remove(name, held)
        return super().delete(name)

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


class RunLockingFleetStore(FleetStore):
    """The FleetStore of `issue` and `delete`, which hold no renewal-run lock as `renew` does: it takes it
    around each lineage lock (in renew's order: run, then lineage), because the agent's Apache reload holds it,
    and a graceful restart that read a lineage between its new fullchain and its new key would stop Apache.
    An explicit `issue` of a lineage deleted from the fleet brings it back."""

    revives_deleted = True

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        self.ensure(".locks")
        with file_lock(self.run_lock_path(), RUN_LOCK_WAIT, f"renewal of {self.config_dir}"), \
                super().lock(name, timeout):
            yield


class DeletedFromFleet(StorageError):
    """A lineage `delete` removed from the fleet on another node: this node's copy is not renewed."""


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
