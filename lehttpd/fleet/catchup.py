"""Before a renewal run on a fleet node: write the lineages the fleet has and this node lacks, for one small etcd
read.

A pointer (current/NAME) is created once per lineage and only modified by its renewals, so the pointers this
node may lack are those created since its last catch-up: one range read with min_create_revision (keys only)
returns them, with the count of all pointers. The stamp of the last catch-up (etcd's cluster id, the revision
read at, the prefix) is CONFIG_DIR/.lehttpd/fleet-catch-up.json (0600, read through the store's trust checks).
Every pointer is read (keys only) instead when there is no usable stamp, when etcd is another cluster or has not
reached its revision (a rebuilt cluster), or when live/ holds fewer lineages than etcd had pointers at the
stamp (one was deleted here). An unreachable etcd raises EtcdUnavailable, so the run stops before anything is
ordered.
"""
from __future__ import annotations

import json
import os
from typing import Callable

from lehttpd.errors import LehttpdError
from lehttpd.fileio import atomic_write
from lehttpd.fleet.config import catch_up_path
from lehttpd.fleet.etcd import EtcdUnavailable, KeyValue, b64, header_revision, prefix_end


def catch_up(fleet, warn: Callable[[str], None] | None = None) -> list[str]:
    """The lineages written from etcd (a fleet.shared.Fleet's store; the agent keeps the others equal). One that
    cannot be written (a record that does not open with the fleet key) is `warn`ed about, not the run's end."""
    store, prefix = fleet.store, fleet.config.k("current", "")
    stamp = _load_stamp(fleet)
    answer = _pointers(fleet, prefix, stamp["revision"] + 1 if stamp else 0)
    older = int(answer.get("count", 0)) - len(answer.get("kvs") or [])  # pointers this node had at its stamp
    if stamp and (_cluster(answer) != stamp["cluster"] or header_revision(answer) < stamp["revision"]
                  or _live_count(store) < older):
        answer = _pointers(fleet, prefix, 0)
    names = sorted({KeyValue.from_json(kv).key.rsplit("/", 1)[1] for kv in answer.get("kvs") or []})
    written = []
    for name in names:
        try:
            if not store.exists(name) and fleet.pull(name):
                written.append(name)
        except EtcdUnavailable:
            raise
        except LehttpdError as error:
            if warn is not None:
                warn(f"{name}: not written from etcd: {error.message}")
    now = {"cluster": _cluster(answer), "revision": header_revision(answer), "prefix": prefix}
    if now != stamp:  # unchanged: no write (and no fsync) on a quiet fleet
        _save_stamp(fleet, now)
    return written


def _pointers(fleet, prefix: str, min_create_revision: int) -> dict:
    body = {"key": b64(prefix), "range_end": prefix_end(prefix), "keys_only": True}
    if min_create_revision:
        body["min_create_revision"] = str(min_create_revision)
    return fleet.etcd.call("/v3/kv/range", body)


def _cluster(answer: dict) -> str:
    return str((answer.get("header") or {}).get("cluster_id", ""))


def _live_count(store) -> int:
    try:
        return len(os.listdir(store.config_dir / "live"))
    except OSError:
        return 0


def _load_stamp(fleet) -> dict | None:
    try:
        stamp = json.loads(fleet.store.read_own_file(catch_up_path(fleet.store)))
        if stamp["prefix"] != fleet.config.k("current", "") or not stamp["cluster"]:
            return None
        return {"cluster": str(stamp["cluster"]), "revision": int(stamp["revision"]), "prefix": stamp["prefix"]}
    except (OSError, LehttpdError, ValueError, TypeError, KeyError):
        return None


def _save_stamp(fleet, stamp: dict) -> None:
    """Optional: when it cannot be written, the next run reads every pointer again."""
    try:
        fleet.store.ensure(".lehttpd")
        atomic_write(catch_up_path(fleet.store), json.dumps(stamp).encode(), 0o600)
    except (OSError, LehttpdError):
        pass
