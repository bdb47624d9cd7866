"""What renewal remembers between runs: per lineage, failures (for back-off), ARI advice, revocation; per
ACME server, whether its directory offers renewal information (read again after DIRECTORY_TTL).

One small JSON file per lineage under CONFIG_DIR/.lehttpd/renew-state/NAME.json (outside renewal/, where
certbot reads every *.conf), written atomically under the lineage lock, and .lehttpd/acme-servers.json (the
paths come from the store's key-builder). Both are optional: a missing or unreadable file is an empty state,
and a file that cannot be written (a full disk) is skipped with a warning; losing it costs at most one early
retry or one more directory read, never a certificate.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from lehttpd.errors import LehttpdError
from lehttpd.fileio import atomic_write
from lehttpd.renewal import AriWindow
from lehttpd.store import CertStore

DIRECTORY_TTL = dt.timedelta(hours=6)


@dataclass(frozen=True)
class AriAdvice:
    """The CA's last answer for one certificate (by serial), and when to ask again."""

    serial: str
    start: dt.datetime
    end: dt.datetime
    point: dt.datetime
    next_check: dt.datetime
    explanation: str | None = None

    @property
    def window(self) -> AriWindow:
        return AriWindow(self.start, self.end, self.point)


@dataclass(frozen=True)
class RenewState:
    failures: int = 0
    last_error: str | None = None
    last_failure: dt.datetime | None = None
    retry_not_before: dt.datetime | None = None
    ari: AriAdvice | None = None
    revoked_serial: str | None = None

    def failed(self, error: str, now: dt.datetime, retry_not_before: dt.datetime) -> "RenewState":
        return replace(self, failures=self.failures + 1, last_error=error, last_failure=now,
                       retry_not_before=retry_not_before)

    def succeeded(self) -> "RenewState":
        return RenewState()


def state_path(config_dir: Path, name: str) -> Path:
    return CertStore(config_dir).state_path(name)


def state_names(config_dir: Path) -> set[str]:
    """Lineages that have a state file (one directory listing instead of an open() per lineage)."""
    try:
        folder = CertStore(config_dir).state_path("x").parent
        return {entry[:-len(".json")] for entry in os.listdir(folder) if entry.endswith(".json")}
    except OSError:
        return set()


def load_state(config_dir: Path, name: str) -> RenewState:
    store = CertStore(config_dir)
    try:  # optional: a missing, corrupt or untrusted file is an empty state (the next save says what is wrong)
        data = json.loads(store.read_own_file(store.state_path(name)))
        return _from_json(data)
    except (OSError, LehttpdError, ValueError, TypeError, KeyError, AttributeError):
        return RenewState()


def save_state(config_dir: Path, name: str, state: RenewState) -> str | None:
    """Write (or remove) the state; returns the problem instead of raising when it cannot (a full disk)."""
    store = CertStore(config_dir)
    path = store.state_path(name)
    try:
        if state == RenewState():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        store.ensure_private(path.parent)
        atomic_write(path, json.dumps(asdict(state), default=_encode, indent=1, sort_keys=True).encode(), 0o600)
    except LehttpdError as error:
        return f"renewal state not saved: {error.message}"
    except OSError as error:
        return f"renewal state not saved: {path}: {error.strerror}"
    return None


def delete_state(config_dir: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(config_dir, name).unlink()


@dataclass
class ServerCache:
    """Per ACME server: where its renewal information is (None: it offers none), and when that was read."""

    path: Path
    servers: dict[str, dict] = field(default_factory=dict)
    changed: bool = False

    def renewal_info_url(self, server: str, now: dt.datetime) -> tuple[bool, str | None]:
        """(known, URL or None): known is False when the directory must be read again."""
        entry = self.servers.get(server)
        try:
            if entry and dt.datetime.fromisoformat(entry["checked"]) + DIRECTORY_TTL > now:
                return True, entry.get("renewal_info")
        except (KeyError, TypeError, ValueError):
            pass
        return False, None

    def remember_server(self, server: str, url: str | None, now: dt.datetime) -> None:
        self.servers[server] = {"renewal_info": url, "checked": now.isoformat()}
        self.changed = True

    def save(self, store: CertStore) -> str | None:
        """Write it when it changed; returns the problem instead of raising (the cache is optional)."""
        if not self.changed:
            return None
        try:
            store.ensure(".lehttpd")
            atomic_write(self.path, json.dumps(self.servers, separators=(",", ":")).encode(), 0o600)
        except LehttpdError as error:
            return f"cache not saved: {error.message}"
        except OSError as error:
            return f"cache not saved: {self.path}: {error.strerror}"
        self.changed = False
        return None


def load_servers(store: CertStore) -> ServerCache:
    path = store.servers_cache_path()
    try:
        document = json.loads(store.read_own_file(path))
        if not isinstance(document, dict):
            raise ValueError("not an object")
        return ServerCache(path, document)
    except (OSError, LehttpdError, ValueError):
        return ServerCache(path)


def _encode(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _from_json(data: dict) -> RenewState:
    ari = data.get("ari")
    advice = None
    if ari:
        advice = AriAdvice(serial=str(ari["serial"]), start=_time(ari["start"]), end=_time(ari["end"]),
                           point=_time(ari["point"]), next_check=_time(ari["next_check"]),
                           explanation=ari.get("explanation"))
    return RenewState(failures=int(data.get("failures", 0)), last_error=data.get("last_error"),
                      last_failure=_time(data.get("last_failure")),
                      retry_not_before=_time(data.get("retry_not_before")), ari=advice,
                      revoked_serial=data.get("revoked_serial"))
