"""A cache that makes a run where nothing is due cheap: no certificate parsed, no network call.

CONFIG_DIR/.lehttpd/renew-index.json keeps, per lineage, what renewal reads from the current certificate
(dates, serial, names, version), keyed by the live/NAME folder's modification time (every link switch
renames into it) and the certificate file's inode, size and modification time: a new version, a half-done
switch, or any change to the file misses the cache, and the links are checked and the certificate parsed
again. It also keeps, per ACME server, whether its directory offers renewal
information (RFC 9773) and where, for DIRECTORY_TTL. Renewal files themselves are parsed every run (cheap,
and a corrupt one must be reported every time). The index is only a cache: unreadable means empty, and it is
rewritten (atomically, under the renewal lock) only when something changed.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lehttpd.model import Lineage
from lehttpd.fileio import atomic_write

INDEX = Path(".lehttpd") / "renew-index.json"
FORMAT = 1
DIRECTORY_TTL = dt.timedelta(hours=6)


@dataclass
class Index:
    path: Path
    lineages: dict[str, dict] = field(default_factory=dict)
    servers: dict[str, dict] = field(default_factory=dict)
    changed: bool = False

    # -- lineages ------------------------------------------------------------------------------------
    def cached(self, config_dir: Path, name: str) -> Lineage | None:
        """The lineage as last seen, if neither its live/ links nor the certificate file changed since."""
        entry = self.lineages.get(name)
        if entry is None or entry.get("sig") != signature(config_dir, name):
            return None
        try:
            return _lineage(entry, name, config_dir)
        except (KeyError, TypeError, ValueError):
            return None

    def remember(self, config_dir: Path, name: str, lineage: Lineage, seen: list | None) -> None:
        """Cache a lineage just read, if the files did not change while it was read (`seen`: signature before)."""
        if seen is not None and seen == signature(config_dir, name):
            self.lineages[name] = {"sig": seen, **_entry(lineage)}
            self.changed = True

    def forget_missing(self, names: set[str]) -> None:
        for name in set(self.lineages) - names:
            del self.lineages[name]
            self.changed = True

    # -- servers -------------------------------------------------------------------------------------
    def renewal_info_url(self, server: str, now: dt.datetime) -> tuple[bool, str | None]:
        """(known, URL or None): known is False when the directory must be read again."""
        entry = self.servers.get(server)
        try:
            if entry and dt.datetime.fromisoformat(entry["checked"]) + DIRECTORY_TTL > now:
                return True, entry.get("renewal_info")
        except (KeyError, TypeError, ValueError):
            pass
        return False, None

    def directory_expires(self, server: str) -> dt.datetime | None:
        """When the cached directory answer for this server must be read again (None: not cached)."""
        entry = self.servers.get(server)
        try:
            return dt.datetime.fromisoformat(entry["checked"]) + DIRECTORY_TTL if entry else None
        except (KeyError, TypeError, ValueError):
            return None

    def remember_server(self, server: str, url: str | None, now: dt.datetime) -> None:
        self.servers[server] = {"renewal_info": url, "checked": now.isoformat()}
        self.changed = True

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            document = {"format": FORMAT, "lineages": self.lineages, "servers": self.servers}
            atomic_write(self.path, json.dumps(document, separators=(",", ":")).encode(), 0o600)
            self.changed = False


def load_index(config_dir: Path) -> Index:
    path = Path(config_dir) / INDEX
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") != FORMAT:
            raise ValueError("another format")
        return Index(path, dict(document["lineages"]), dict(document["servers"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Index(path)


def signature(config_dir: Path, name: str) -> list | None:
    """What must stay the same for a cached entry to hold: the live/ folder (any link switch renames into it,
    changing its mtime) and the certificate file the cert.pem link points at (inode, size, mtime)."""
    live = os.path.join(config_dir, "live", name)
    try:
        folder = os.stat(live)
        cert = os.stat(os.path.join(live, "cert.pem"))  # follows the link: the archive file itself
    except OSError:
        return None
    return [folder.st_mtime_ns, cert.st_ino, cert.st_size, cert.st_mtime_ns]


def _entry(lineage: Lineage) -> dict:
    return {"names": list(lineage.names), "version": lineage.version, "not_before": lineage.not_before.isoformat(),
            "not_after": lineage.not_after.isoformat(), "key_type": lineage.key_type, "serial": str(lineage.serial),
            "issuer": lineage.issuer}


def _lineage(entry: dict, name: str, config_dir: Path) -> Lineage:
    return Lineage(name=name, config_dir=config_dir, names=tuple(entry["names"]), version=int(entry["version"]),
                   not_before=dt.datetime.fromisoformat(entry["not_before"]),
                   not_after=dt.datetime.fromisoformat(entry["not_after"]), key_type=str(entry["key_type"]),
                   serial=int(entry["serial"]), issuer=str(entry["issuer"]))
