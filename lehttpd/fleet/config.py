"""This node's fleet settings, the fleet key, and the layout of what the fleet keeps in etcd.

On the node (under the config dir, built by the store's key-builder):
    .lehttpd/fleet.json   0600: endpoints, prefix, TLS files, node name, challenge webroot, reload command
    .lehttpd/fleet.key    0600: 32 random bytes, the same on every node (AES-256-GCM for private keys)
    .lehttpd/fleet-sync.json  what the agent last applied, and when (status reads it when etcd is down)
    .lehttpd/fleet-catch-up.json  the etcd revision `renew` last caught up at (fleet/catchup.py)
fleet.json names a command and paths, and the key decrypts every private key: both are trust-checked
(owner root, not writable, the key not readable, by group or others) before use, like a renewal file.

In etcd, under PREFIX (default /lehttpd/):
    meta                     {"key_check": sealed known text}: join refuses a fleet key that does not fit
    current/NAME             {"version": N, "serial": hex}: which version every node serves
    versions/NAME/N          {"cert", "chain", "fullchain", "key" (sealed), "conf", "serial", "node", "at"}
    locks/NAME               {"node", "pid", "since"}, attached to the holder's lease
    tokens/TOKEN             the http-01 key authorization, attached to a lease (gone if the renewer dies)
    deleted/NAME             {"node", "at", "serial"}: `delete` on a node removed NAME from the fleet
    nodes/NODE               {"revision", "synced_at", "lineages", "pid"}: the agent's heartbeat
"""
from __future__ import annotations

import json
import os
import socket
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import UntrustedFileError, UsageError
from lehttpd.fileio import atomic_write, read_regular
from lehttpd.store import CertStore
from lehttpd.store.trust import trust_problem

DEFAULT_PREFIX = "/lehttpd/"
KEY_BYTES = 32


@dataclass(frozen=True)
class FleetConfig:
    endpoints: tuple[str, ...]
    prefix: str = DEFAULT_PREFIX
    node: str = field(default_factory=socket.gethostname)
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    challenge_webroot: str | None = None  # the folder every node's Apache serves /.well-known/acme-challenge/ from
    reload_command: str | None = None  # e.g. "apache2ctl graceful"; run without a shell
    lock_ttl: int = 15  # seconds a dead renewer's lock outlives it

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or not self.prefix.endswith("/"):
            raise UsageError(f"fleet prefix {self.prefix!r} must start and end with '/'")
        for url in self.endpoints:
            if not url.startswith(("http://", "https://")):
                raise UsageError(f"etcd endpoint {url!r}: use http://HOST:PORT or https://HOST:PORT")

    # -- the key-builder for etcd ----------------------------------------------------------------------
    def k(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def current_key(self, name: str) -> str:
        return self.k("current", name)

    def version_key(self, name: str, version: int) -> str:
        return self.k("versions", name, f"{version:08d}")

    def lock_key(self, name: str) -> str:
        return self.k("locks", name)

    def token_key(self, token: str) -> str:
        return self.k("tokens", token)

    def deleted_key(self, name: str) -> str:
        return self.k("deleted", name)

    def node_key(self, node: str | None = None) -> str:
        return self.k("nodes", node or self.node)


def config_path(store: CertStore) -> Path:
    return store.config_dir / ".lehttpd" / "fleet.json"


def key_path(store: CertStore) -> Path:
    return store.config_dir / ".lehttpd" / "fleet.key"


def sync_path(store: CertStore) -> Path:
    return store.config_dir / ".lehttpd" / "fleet-sync.json"


def catch_up_path(store: CertStore) -> Path:
    return store.config_dir / ".lehttpd" / "fleet-catch-up.json"


def is_fleet_node(config_dir: Path) -> bool:
    return os.path.lexists(Path(config_dir) / ".lehttpd" / "fleet.json")


def node_store(config_dir: Path, console: Console, nothing_done: str, in_run: bool = True) -> CertStore:
    """The store `issue` and `renew` use: a plain CertStore, or on a fleet node its FleetStore (etcd reached
    and this node caught up first; `nothing_done` says what an unreachable etcd stopped). `in_run`: the caller
    saves under the node's renewal-run lock (renew); else the store takes it around each lineage lock (issue)."""
    if not is_fleet_node(config_dir):
        return CertStore(config_dir)
    from lehttpd.fleet.shared import FleetStore, RunLockingFleetStore  # etcd's client: on fleet nodes only

    return (FleetStore if in_run else RunLockingFleetStore).open(config_dir, console, nothing_done)


def save_config(store: CertStore, config: FleetConfig, fleet_key: bytes) -> None:
    store.ensure(".lehttpd")
    atomic_write(key_path(store), fleet_key, 0o600)
    atomic_write(config_path(store), json.dumps(asdict(config), indent=2).encode(), 0o600)


def load_config(store: CertStore) -> FleetConfig:
    data = json.loads(_read_private(store, config_path(store), "fleet settings"))
    data["endpoints"] = tuple(data["endpoints"])
    config = FleetConfig(**data)
    check_etcd_ca(config.cacert, f"{config_path(store)}: cacert")
    return config


def check_etcd_ca(cacert: str | Path | None, where: str) -> None:
    """Whoever can change the CA that signs etcd's certificates decides which server a node takes for etcd:
    judged like a CA bundle for the ACME server (owner root, not writable by others, in folders others cannot
    change)."""
    from lehttpd.checks import check_ca_bundle

    check_ca_bundle(Path(cacert) if cacert else None, where)


def load_key(store: CertStore) -> bytes:
    key = _read_private(store, key_path(store), "fleet key")
    if len(key) != KEY_BYTES:
        raise UntrustedFileError(f"{key_path(store)} holds {len(key)} bytes, not a {KEY_BYTES}-byte fleet key: "
                                 "copy it again from a node of the fleet")
    return key


def _read_private(store: CertStore, path: Path, what: str) -> bytes:
    """A regular file only root can change or read, in a trusted config dir."""
    store.check_config_dir()
    try:
        data, info = read_regular(path, 64 * 1024)
    except FileNotFoundError:
        raise UsageError(f"{path} is missing: this node is not in a fleet (run `lehttpd fleet join`)") from None
    problem = trust_problem(path, info, what)
    if problem is None and stat.S_IMODE(info.st_mode) & 0o077:
        problem = (f"{path} ({what}) is readable by group or others (mode {stat.S_IMODE(info.st_mode):04o}): "
                   f"`chmod 600 {path}`, and replace the fleet key if someone may have read it")
    if problem:
        raise UntrustedFileError(problem)
    return data
