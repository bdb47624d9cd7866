"""`fleet init` and `fleet join`: the fleet key, the key check in etcd, this node's settings, the first sync."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import StorageError, UsageError
from lehttpd.fleet.config import KEY_BYTES, FleetConfig, is_fleet_node, save_config
from lehttpd.fleet.etcd import Etcd, compare_absent, op_put
from lehttpd.fleet.sealing import KEY_CHECK, new_fleet_key, seal, unseal
from lehttpd.fleet.shared import PARALLEL, Fleet
from lehttpd.store import CertStore


def init(store: CertStore, config: FleetConfig, console: Console) -> tuple[int, int]:
    """Create the fleet under config.prefix and import every local lineage; (imported, already there)."""
    _refuse_second_fleet(store)
    fleet_key = new_fleet_key()
    fleet = Fleet(store, config, fleet_key)
    meta = config.k("meta")
    ok, _ = fleet.etcd.txn([compare_absent(meta)],
                           [op_put(meta, json.dumps({"key_check": seal(fleet_key, KEY_CHECK, meta)}))])
    if not ok:
        raise UsageError(f"a fleet already exists under {config.prefix} in etcd: run `lehttpd fleet join` with its "
                         "fleet key (or choose another --prefix)")
    save_config(store, config, fleet_key)
    return import_local(fleet, console)


def import_local(fleet: Fleet, console: Console, only: tuple[str, ...] = ()) -> tuple[int, int]:
    """Copy this node's lineages (or `only` these) that etcd does not have yet; (imported, already there)."""
    store = fleet.store
    names = sorted((set(store.renewal_names()) & set(store.names())) & (set(only) or set(store.names())))
    with ThreadPoolExecutor(PARALLEL) as pool:  # etcd round trips and fsyncs: threads overlap them
        done = list(pool.map(lambda name: _import(fleet, store, name), names))
    for name, imported in zip(names, done):
        console.detail(f"  {'imported' if imported else 'already in etcd'}: {name}")
    return sum(done), len(done) - sum(done)


def _import(fleet: Fleet, store: CertStore, name: str) -> bool:
    if not fleet.import_lineage(name):
        return False
    # This node now answers http-01 the fleet's way (its challenge webroot) and renews under etcd locks.
    text = fleet.record(name, 1)["conf"]
    with store.lock(name):
        store.write_renewal_conf(name, fleet.local_conf(name, text, store.read_current("cert", name)))
    return True


def join(store: CertStore, config: FleetConfig, fleet_key: bytes, console: Console) -> int:
    """Check the fleet key against etcd, save this node's settings, write every lineage locally."""
    _refuse_second_fleet(store)
    if len(fleet_key) != KEY_BYTES:
        raise UsageError(f"--fleet-key holds {len(fleet_key)} bytes, not a fleet key ({KEY_BYTES} bytes)")
    etcd = Etcd(list(config.endpoints), *(Path(p) if p else None for p in (config.cacert, config.cert, config.key)))
    meta = etcd.get(config.k("meta"))
    if meta is None:
        raise UsageError(f"no fleet under {config.prefix} in etcd: start one with `lehttpd fleet init`")
    unseal(fleet_key, meta.json()["key_check"], config.k("meta"))  # raises when the key is not this fleet's
    save_config(store, config, fleet_key)
    fleet = Fleet(store, config, fleet_key, etcd)
    pulled, failed, _ = fleet.pull_all()
    for name in pulled:
        console.step(f"  wrote {name}")
    for name, why in sorted(failed.items()):
        console.warn(f"{name}: not written: {why}")
    if failed:
        raise StorageError(f"joined the fleet as {config.node}, but {len(failed)} lineage(s) could not be written "
                           f"from etcd (first: {min(failed)}): see the lines above")
    return len(pulled)


def _refuse_second_fleet(store: CertStore) -> None:
    if is_fleet_node(store.config_dir):
        raise UsageError(f"{store.config_dir} is already a fleet node ({store.config_dir}/.lehttpd/fleet.json)")
