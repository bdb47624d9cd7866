"""`lehttpd fleet status`: the nodes (when each last synced), the lineages (version, who renewed it, who holds
its lock now) and this node's own staleness, read from its disk when etcd cannot be reached."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import LehttpdError
from lehttpd.fleet.config import sync_path
from lehttpd.fleet.etcd import EtcdUnavailable
from lehttpd.fleet.shared import NODE_FRESH, Fleet


@dataclass(frozen=True)
class NodeRow:
    node: str
    synced_ago: float | None  # seconds since its agent last reported
    revision: int
    fresh: bool


@dataclass(frozen=True)
class LineageRow:
    name: str
    version: int
    serial: str
    renewed_by: str
    locked_by: str | None
    here: bool  # this node serves the current version


@dataclass(frozen=True)
class DeletedRow:
    name: str
    deleted_by: str
    deleted_ago: float
    here: bool  # this node still has a copy (not renewed any more)


@dataclass(frozen=True)
class Report:
    node: str
    reachable: bool
    problem: str | None = None
    local_synced_ago: float | None = None
    nodes: list[NodeRow] = field(default_factory=list)
    lineages: list[LineageRow] = field(default_factory=list)
    deleted: list[DeletedRow] = field(default_factory=list)


def gather(config_dir: Path) -> Report:
    fleet = Fleet.open(config_dir)
    fleet.etcd.retry_for = 2.0
    local_ago = _local_synced_ago(fleet)
    try:
        now = time.time()
        nodes = [NodeRow(node, now - beat.get("synced_at", 0), beat.get("revision", 0),
                         now - beat.get("synced_at", 0) < NODE_FRESH) for node, beat in sorted(fleet.nodes().items())]
        pointers, _ = fleet.pointers()
        locks, _ = fleet.etcd.get_prefix(fleet.config.k("locks", ""))
        holders = {kv.key.rsplit("/", 1)[1]: kv.json().get("node") for kv in locks}
        rows = []
        for name, kv in sorted(pointers.items()):
            pointer = kv.json()
            record = fleet.record(name, pointer["version"])
            rows.append(LineageRow(name, pointer["version"], pointer["serial"], record.get("node", "?"),
                                   holders.get(name), fleet.local_serial(name) == pointer["serial"]))
        tombstones, _ = fleet.etcd.get_prefix(fleet.config.k("deleted", ""))
        deleted = [DeletedRow(name, t.get("node", "?"), now - t.get("at", 0), fleet.store.exists(name))
                   for name, t in sorted((kv.key.rsplit("/", 1)[1], kv.json()) for kv in tombstones)]
    except EtcdUnavailable as error:
        return Report(fleet.config.node, False, error.message, local_ago)
    return Report(fleet.config.node, True, None, local_ago, nodes, rows, deleted)


def _local_synced_ago(fleet: Fleet) -> float | None:
    try:
        return time.time() - json.loads(sync_path(fleet.store).read_text())["synced_at"]
    except (OSError, ValueError, KeyError, LehttpdError):
        return None


def show(report: Report, console: Console, as_json: bool) -> None:
    if as_json:
        console.json(asdict(report))
        return
    here = "never" if report.local_synced_ago is None else f"{_ago(report.local_synced_ago)} ago"
    if not report.reachable:
        console.error(f"{report.problem}")
        console.result(f"this node ({report.node}) keeps serving what it has; its agent last synced {here}")
        return
    console.result(f"this node: {report.node}, agent last synced {here}")
    console.result("nodes:")
    for node in report.nodes:
        state = "ok" if node.fresh else console.paint("STALE", "red")
        console.result(f"  {node.node:<20} synced {_ago(node.synced_ago or 0)} ago (revision {node.revision}) {state}")
    console.result("lineages:")
    for row in report.lineages:
        lock = f", being renewed by {row.locked_by}" if row.locked_by else ""
        served = "" if row.here else console.paint(" (not yet on this node)", "yellow")
        console.result(f"  {row.name:<30} version {row.version} serial {row.serial[:14]} renewed by "
                       f"{row.renewed_by}{lock}{served}")
    if report.deleted:
        console.result("deleted from the fleet (not renewed by any node):")
    for gone in report.deleted:
        copy = console.paint(" (a copy is still here: `lehttpd delete` removes it)", "yellow") if gone.here else ""
        console.result(f"  {gone.name:<30} by {gone.deleted_by}, {_ago(gone.deleted_ago)} ago{copy}")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
