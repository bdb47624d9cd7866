"""The renewal index: what deciding needs from each lineage, kept between runs, so that a run where nothing
has changed costs a few lstat() calls per lineage instead of reading and parsing a renewal file and a
certificate (10,000 lineages: about 0.2 s instead of 1.5 s of CPU).

CONFIG_DIR/.lehttpd/renew-index.json (0600, written with fileio.atomic_write, read only through the store's
trust checks, like the renewal state). Per lineage: the certificate's facts (names, validity, serial, issuer,
key type, live version), the ACME server and CA bundle its renewal file names, and the identity of what they
were read from, (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) of:
    renewal/NAME.conf           its content (parsed and accepted)
    live/NAME/                  its links (a link is switched by renaming a new one in: the folder changes)
    archive/NAME/certN.pem      the certificate the links lead to

Trust is never cached. Each run lstat()s the three again plus archive/NAME/, and applies the same checks as a
full read: the config dir chain and the renewal folder (once), owner and mode of the renewal file and of both
certificate folders, a regular file and no link, the CA bundle's own check. A user cannot forge an identity:
a change in place or a replacement moves st_ctime, which only the kernel sets (utimensat sets atime and mtime
only). The identities are taken after the read, and an entry is stored only when every ctime is RACY_NS older
than the moment the read began (as git does for its index): a change during the read, or in the same clock tick,
could otherwise be indexed under the content read before it. Whatever does not
match, or fails a check, is read in full (lineages.read_candidate), which says what is wrong; a lineage decided
due from the index is read in full before anything is ordered.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lehttpd import __version__
from lehttpd.errors import LehttpdError
from lehttpd.fileio import atomic_write
from lehttpd.model import Lineage
from lehttpd.renew.state import RenewState
from lehttpd.store import CertStore, check_lineage_name
from lehttpd.store.trust import check_file_and_folders, check_trusted, trust_problem

FORMAT = 1
RACY_NS = 2_000_000_000  # a file changed less than this before it was read is not indexed (read again next run)
SIZE_LIMIT = 64 << 20  # about 500 bytes a lineage


@dataclass(frozen=True)
class Known:
    """A lineage unchanged since an earlier run read it in full: enough to decide, not to renew."""

    lineage: Lineage
    server: str
    ca_bundle: Path | None
    state: RenewState

    @property
    def name(self) -> str:
        return self.lineage.name

    @property
    def conf_path(self) -> Path:
        return self.lineage.config_dir / "renewal" / f"{self.name}.conf"


def identity(info: os.stat_result) -> str:
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


class RenewIndex:
    def __init__(self, store: CertStore, entries: dict[str, list] | None = None) -> None:
        self.store = store
        self.root = str(store.config_dir)
        self.entries: dict[str, list] = entries or {}
        self.changed = False
        self._folders_trusted: bool | None = None

    @classmethod
    def load(cls, store: CertStore) -> "RenewIndex":
        """The stored index, or an empty one (missing, corrupt, untrusted, another version's or folder's)."""
        try:
            document = json.loads(store.read_own_file(store.index_path(), SIZE_LIMIT))
            if (document.get("format") != FORMAT or document.get("lehttpd") != __version__
                    or document.get("config_dir") != str(store.config_dir)):
                raise ValueError("another version or folder")
            entries = document["lineages"]
            if not isinstance(entries, dict):
                raise ValueError("not an object")
            return cls(store, entries)
        except (OSError, LehttpdError, ValueError, TypeError, KeyError, AttributeError):
            return cls(store)

    # -- reading -------------------------------------------------------------------------------------
    def _trusted_folders(self) -> bool:
        """The config dir chain and renewal/, checked once per run (a full read checks them per file)."""
        if self._folders_trusted is None:
            try:
                self.store.check_config_dir()
                check_trusted(self.store.config_dir / "renewal", "renewal folder")
                self._folders_trusted = True
            except (OSError, LehttpdError):
                self._folders_trusted = False
        return self._folders_trusted

    def known(self, name: str, state: RenewState) -> Known | None:
        """The lineage from the index when its files are the ones indexed and pass every trust check."""
        entry = self.entries.get(name)
        if entry is None or not self._trusted_folders():
            return None
        try:
            conf_id, live_id, cert_id, version, names, not_before, not_after, key_type, serial, issuer, server, \
                bundle = entry
            check_lineage_name(name)
            if type(version) is not int:  # noqa: E721 (it names a file below: never a string, never a bool)
                return None
            conf, live = f"{self.root}/renewal/{name}.conf", f"{self.root}/live/{name}"
            archive = f"{self.root}/archive/{name}"
            conf_info, live_info, archive_info = os.lstat(conf), os.lstat(live), os.lstat(archive)
            cert_info = os.lstat(f"{archive}/cert{version}.pem")
            if (identity(conf_info) != conf_id or identity(live_info) != live_id or identity(cert_info) != cert_id
                    or not stat.S_ISREG(conf_info.st_mode) or not stat.S_ISREG(cert_info.st_mode)
                    or trust_problem(conf, conf_info, "renewal file")
                    or trust_problem(live, live_info, "certificate folder")
                    or trust_problem(archive, archive_info, "certificate folder")):
                return None
            ca_bundle = Path(bundle) if bundle else None
            if ca_bundle is not None and os.path.exists(ca_bundle):  # as renewal_conf._checked does on a read
                check_file_and_folders(ca_bundle, f"the CA bundle ({conf}: lehttpd_ca_bundle)")
            lineage = Lineage(name, self.store.config_dir, tuple(names), int(version),
                              dt.datetime.fromisoformat(not_before), dt.datetime.fromisoformat(not_after), key_type,
                              int(serial, 16), issuer)
        except (OSError, LehttpdError, ValueError, TypeError):
            return None
        return Known(lineage, server, ca_bundle, state)

    # -- writing -------------------------------------------------------------------------------------
    def remember(self, candidate, started_ns: int) -> None:
        """Index a lineage read in full (a lineages.Candidate) by a read that began at `started_ns` (time.time_ns()).
        Its files are lstat()ed now: a change made after the read began gives one of them a ctime past
        `started_ns - RACY_NS`, and such a lineage is not indexed (read again next run)."""
        name, lineage, request = candidate.name, candidate.lineage, candidate.request
        try:
            infos = [os.lstat(f"{self.root}/renewal/{name}.conf"), os.lstat(f"{self.root}/live/{name}"),
                     os.lstat(f"{self.root}/archive/{name}/cert{lineage.version}.pem")]
        except OSError:
            infos = []
        if not infos or any(info.st_ctime_ns > started_ns - RACY_NS for info in infos):
            self.forget(name)
            return
        entry = [*(identity(info) for info in infos), lineage.version, list(lineage.names),
                 lineage.not_before.isoformat(), lineage.not_after.isoformat(), lineage.key_type, hex(lineage.serial),
                 lineage.issuer, request.server, str(request.ca_bundle) if request.ca_bundle else None]
        if self.entries.get(name) != entry:
            self.entries[name] = entry
            self.changed = True

    def forget(self, name: str) -> None:
        if self.entries.pop(name, None) is not None:
            self.changed = True

    def keep_only(self, names: set[str]) -> None:
        for gone in set(self.entries) - names:
            self.forget(gone)

    def save(self) -> str | None:
        """Write it when it changed; returns the problem instead of raising (the index is optional)."""
        if not self.changed:
            return None
        path = self.store.index_path()
        document = {"format": FORMAT, "lehttpd": __version__, "config_dir": self.root, "lineages": self.entries}
        try:
            self.store.ensure(".lehttpd")
            atomic_write(path, json.dumps(document, separators=(",", ":")).encode(), 0o600)
        except LehttpdError as error:
            return f"renewal index not saved: {error.message}"
        except OSError as error:
            return f"renewal index not saved: {path}: {error.strerror}"
        self.changed = False
        return None
