"""Certificate storage: the one owner of the config dir, and the one place that decides what may be trusted.

Layout (compatible with certbot's, so a certbot user can switch without touching Apache):

    CONFIG_DIR/                                                   0755
    CONFIG_DIR/archive/NAME/{cert,chain,fullchain,privkey}N.pem   0700 folders; every version, never rewritten
    CONFIG_DIR/live/NAME/{cert,chain,fullchain,privkey}.pem       0700 folders; relative links to one version
    CONFIG_DIR/renewal/NAME.conf                                  0755 / 0644: what a later renewal needs
    CONFIG_DIR/renewal-hooks/{pre,post,deploy}/                   certbot's hook folders (read, never written)
    CONFIG_DIR/accounts/SERVER-HOST/SERVER-PATH/ID/               0700: account key, registration, meta
    CONFIG_DIR/.locks/{NAME,renew}.lock                           0700 / 0600
    CONFIG_DIR/.lehttpd/                                          0700: renewal state (back-off, ARI, directory)

Contract:
- Writing: every file through fileio's one atomic writer, with its final mode whatever the umask; a folder
  that is a symlink, belongs to someone else or is writable by others is refused, never written into. A new
  version is complete in archive/ before the renewal file, and the renewal file before the live/ links, so a
  crash at any point leaves the old version live or a renewal file `repair()` can finish from.
- Trusting (like sshd's StrictModes): a file that can name a command or a path (a renewal file, a
  renewal-hooks script) and every folder above it up to / must be owned by root (or the running user) and not
  writable by group or others (a root-owned sticky folder such as /tmp is fine above the config dir).
  `trust.trust_problem()` is the one test; what fails is refused with one line saying how to fix it.
- `current(name)` is the one answer to "which version is live": it checks the links (real live/ folder,
  every link into archive/NAME, one version) and finishes an interrupted switch under the lineage lock.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

from lehttpd.errors import StorageError, UntrustedFileError, UsageError
from lehttpd.fileio import READ_LIMIT, atomic_write, file_lock, fsync_dir, make_dir, read_regular, switch_links
from lehttpd.model import CertificateFiles, Lineage
from lehttpd.store.trust import (check_before_creating, check_folder_chain, check_trusted, trust_problem,
                                 trusted_executable)

if TYPE_CHECKING:  # cryptography is imported where certificates are read, not when the CLI starts
    from cryptography import x509

KINDS = ("cert", "chain", "fullchain", "privkey")
DEFAULT_CONFIG_DIR = Path("/etc/letsencrypt")
HOOK_KINDS = ("pre", "post", "deploy")
# Every folder lehttpd creates, with its exact mode: key-holding folders 0700, the rest 0755.
FOLDER_MODES = {"": 0o755, "live": 0o700, "archive": 0o700, "renewal": 0o755, "accounts": 0o700,
                ".locks": 0o700, ".lehttpd": 0o700}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")  # \Z: `$` would let a final newline in
_VERSION = re.compile(r"^(cert|chain|fullchain|privkey)(\d+)\.pem$")
RENEWAL_FILE_LIMIT = 64 * 1024


def check_lineage_name(name: str) -> str:
    if not _SAFE_NAME.match(name) or ".." in name:
        raise UsageError(f"invalid certificate name {name!r}: use letters, digits, dots, hyphens and underscores")
    return name


class CertStore:
    shared = False  # True for a fleet node's store (fleet/shared.py), whose lineages other machines renew too

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = Path(config_dir).absolute()  # renewal files and links must not depend on the cwd
        self._chain_checked = False

    # -- the key-builder: every path under the config dir is built here ---------------------------------
    def archive_dir(self, name: str) -> Path:
        return self.config_dir / "archive" / check_lineage_name(name)

    def live_dir(self, name: str) -> Path:
        return self.config_dir / "live" / check_lineage_name(name)

    def renewal_conf(self, name: str) -> Path:
        return self.config_dir / "renewal" / f"{check_lineage_name(name)}.conf"

    def hooks_dir(self, kind: str) -> Path:
        return self.config_dir / "renewal-hooks" / kind

    def account_dir(self, server: str) -> Path:
        """accounts/HOST/PATH, as certbot names it, so both tools share accounts."""
        parts = urlsplit(server)
        path = parts.path.strip("/") or "directory"
        if any(piece in (".", "..") for piece in (parts.netloc, *path.split("/"))):
            # `https://ca/../../../tmp/x` would put the account key outside accounts/
            raise UsageError(f"ACME server URL {server!r}: a '.' or '..' path segment is not allowed")
        return self.config_dir / "accounts" / parts.netloc / path

    def lock_path(self, name: str) -> Path:
        return self.config_dir / ".locks" / f"{check_lineage_name(name)}.lock"

    def run_lock_path(self) -> Path:
        return self.config_dir / ".locks" / "renew.lock"

    def state_path(self, name: str) -> Path:
        return self.config_dir / ".lehttpd" / "renew-state" / f"{check_lineage_name(name)}.json"

    def servers_cache_path(self) -> Path:
        return self.config_dir / ".lehttpd" / "acme-servers.json"

    def index_path(self) -> Path:
        return self.config_dir / ".lehttpd" / "renew-index.json"

    def ensure(self, area: str) -> Path:
        """The folder `area` of FOLDER_MODES (and the config dir), created with its mode or checked."""
        base = self._ensure_folder(self.config_dir, FOLDER_MODES[""])
        return self._ensure_folder(base / area, FOLDER_MODES[area]) if area else base

    def ensure_private(self, folder: Path) -> Path:
        """A 0700 folder inside a 0700 area (archive/NAME, live/NAME, an account, the state folder)."""
        area = folder.relative_to(self.config_dir).parts[0]
        parent = self.ensure(area)
        for part in folder.relative_to(parent).parts:
            parent = self._ensure_folder(parent / part, 0o700)
        return parent

    def _ensure_folder(self, folder: Path, mode: int) -> Path:
        if folder == self.config_dir:
            if not os.path.isdir(folder):  # a config dir that is a link to a folder is fine (judged below)
                check_before_creating(folder)
                make_dir(folder, mode)
            self.check_config_dir()
            return folder
        make_dir(folder, mode)  # refuses a symlink or a file in its place
        check_trusted(folder, "folder")
        return folder

    def check_config_dir(self) -> None:
        """The config dir and everything above it (once per store): called before reading what it names."""
        if not self._chain_checked:
            check_folder_chain(self.config_dir)
            self._chain_checked = True

    # -- reading -------------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return os.path.lexists(self.live_dir(name) / "cert.pem")

    def names(self, without: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Lineages with a live/NAME/cert.pem link (but those in `without`)."""
        live = os.path.join(self.config_dir, "live")  # strings, not Paths: cron runs this for every lineage
        try:
            entries = os.listdir(live)
        except OSError:
            return []
        return sorted(n for n in entries if n not in without and _SAFE_NAME.match(n)
                      and os.path.lexists(os.path.join(live, n, "cert.pem")))

    def renewal_names(self) -> list[str]:
        """Lineages with a renewal/NAME.conf."""
        try:
            entries = os.listdir(self.config_dir / "renewal")
        except OSError:
            return []
        return sorted(e[:-len(".conf")] for e in entries if e.endswith(".conf") and _SAFE_NAME.match(e[:-5]))

    def not_renewable(self) -> list[str]:
        """Lineages live/ serves that no renewal file renews (an interrupted first issuance, a lost file)."""
        return self.names(without=set(self.renewal_names()))

    def read_renewal_file(self, name: str) -> str:
        """The renewal file's text, once its owner, mode and every folder above it were checked."""
        self.check_config_dir()
        check_trusted(self.config_dir / "renewal", "renewal folder")
        path = self.renewal_conf(name)
        data, info = read_regular(path, RENEWAL_FILE_LIMIT)  # never a link, a FIFO or a device
        problem = trust_problem(path, info, "renewal file")
        if problem:
            raise UntrustedFileError(problem)
        return data.decode("utf-8")

    def read_own_file(self, path: Path, limit: int = READ_LIMIT) -> bytes:
        """A file lehttpd wrote itself below the config dir (renewal state, the servers cache), read only when it
        and every folder from the config dir down are root's (or ours) and nobody else's to change: a tree an
        older version left world-writable must not let another user plant a back-off until 2099."""
        self.check_config_dir()
        folder = self.config_dir
        for part in path.relative_to(self.config_dir).parts[:-1]:
            folder = folder / part
            check_trusted(folder, "folder")
        data, info = read_regular(path, limit)  # never a link, a FIFO or a device
        problem = trust_problem(path, info, "file")
        if problem:
            raise UntrustedFileError(problem)
        return data

    def hook_scripts(self, kind: str) -> tuple[list[Path], list[str]]:
        """certbot's renewal-hooks/KIND/ executables in name order, and why any of it cannot be trusted."""
        folder = self.hooks_dir(kind)
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            return [], []
        try:
            self.check_config_dir()
            check_trusted(folder.parent, "renewal-hooks folder")
            check_trusted(folder, f"renewal-hooks/{kind} folder")
        except UntrustedFileError as error:
            return [], [error.message]
        scripts, problems = [], []
        for entry in entries:
            try:
                if trusted_executable(folder / entry):
                    scripts.append(folder / entry)
            except UntrustedFileError as error:
                problems.append(error.message)
        return scripts, problems

    def current(self, name: str) -> Lineage:
        """The live version of `name`, its links checked; an interrupted link switch is finished first."""
        versions = self._link_versions(name)
        if versions is None:
            if not self.exists(name) and not os.path.lexists(self.renewal_conf(name)):
                raise UsageError(f"no certificate named {name!r} under {self.config_dir}")
            with self.lock(name):  # the lock repairs
                pass
            versions = self._link_versions(name)
        if versions is None and not self.exists(name):
            raise UsageError(f"no certificate named {name!r} under {self.config_dir} (no {self.live_dir(name)}/"
                             f"cert.pem, no complete version in {self.archive_dir(name)})")
        if versions is None:
            raise StorageError(f"{self.live_dir(name)}: the links point at different versions and no complete "
                               f"version is in {self.archive_dir(name)}")
        return lineage_from_cert(name, self.config_dir, self._load_cert(name, versions), versions)

    def load(self, name: str) -> Lineage:
        return self.current(name)

    def current_version(self, name: str) -> int:
        return self._link_versions(name) or 0

    def read_current(self, kind: str, name: str) -> bytes:
        version = self.current_version(name)
        return read_regular(self.archive_dir(name) / f"{kind}{version}.pem")[0]

    def ready_for_apache(self, name: str) -> Lineage:
        """`current(name)`, after checking the live key belongs to the live certificate (a mismatch, which
        would stop Apache at its next reload, is repaired to the newest matching version or refused)."""
        lineage = self.current(name)
        if self._key_matches(name, lineage.version):
            return lineage
        with self.lock(name):
            good = [v for v in reversed(self.complete_versions(name)) if self._key_matches(name, v)]
            if not good:
                raise StorageError(f"{self.live_dir(name)}: privkey.pem does not belong to cert.pem, and no "
                                   "version in archive/ has a matching pair: issue it again")
            self._point_live(name, good[0])
        return self.current(name)

    def complete_versions(self, name: str) -> list[int]:
        """Versions in archive/ that have all four files."""
        found: dict[int, set[str]] = {}
        archive = self.archive_dir(name)
        if archive.is_dir() and not archive.is_symlink():
            for entry in os.listdir(archive):
                match = _VERSION.match(entry)
                if match:
                    found.setdefault(int(match.group(2)), set()).add(match.group(1))
        return sorted(v for v, kinds in found.items() if kinds == set(KINDS))

    def _link_versions(self, name: str) -> int | None:
        """The one version every live/ link points at; None when they disagree or one is missing.

        Raises StorageError for what lehttpd did not write: a live/ or archive/ folder that is a symlink, a
        link leading outside archive/NAME.
        """
        check_lineage_name(name)
        root = str(self.config_dir)  # strings, not Paths: this runs for every lineage of every cron run
        live, archive = os.path.join(root, "live", name), os.path.join(root, "archive", name)
        for folder in (live, archive):
            with contextlib.suppress(FileNotFoundError):
                check_trusted(folder, "certificate folder")
        seen = set()
        for kind in KINDS:
            link = os.path.join(live, f"{kind}.pem")
            try:
                target = os.readlink(link)
            except FileNotFoundError:
                return None
            except OSError:
                raise StorageError(f"{link} is not a link into {archive}") from None
            resolved = os.path.normpath(os.path.join(live, target))
            match = _VERSION.match(os.path.basename(resolved))
            if os.path.dirname(resolved) != archive or not match or match.group(1) != kind:
                raise StorageError(f"{link} points at {target}, outside {archive}: "
                                   "lehttpd does not follow it; remove the link and run `lehttpd renew`")
            seen.add(int(match.group(2)))
        return seen.pop() if len(seen) == 1 else None

    def _load_cert(self, name: str, version: int) -> x509.Certificate:
        from cryptography import x509

        path = self.archive_dir(name) / f"cert{version}.pem"
        try:
            return x509.load_pem_x509_certificate(read_regular(path)[0])
        except FileNotFoundError:
            raise UsageError(f"no certificate named {name!r} under {self.config_dir}") from None
        except (OSError, ValueError) as error:
            raise StorageError(f"cannot read {path}: {error}") from None

    def _key_matches(self, name: str, version: int) -> bool:
        from cryptography.hazmat.primitives import serialization

        archive = self.archive_dir(name)
        try:
            cert = self._load_cert(name, version)
            key = serialization.load_pem_private_key(read_regular(archive / f"privkey{version}.pem")[0], None)
        except (OSError, ValueError, TypeError, StorageError, UsageError):
            return False
        der = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cert.public_key().public_bytes(*der) == key.public_key().public_bytes(*der)

    # -- writing -------------------------------------------------------------------------------------
    def save_version(self, name: str, files: CertificateFiles, renewal_conf: str | None = None) -> Lineage:
        """Write a new version beside the old ones, then the renewal file, then move the live/ links to it.

        Call under lock(). A crash before the links move leaves the previous version live (or, on a first
        issuance, a renewal file and a complete archive that `repair()` links).
        """
        archive = self.ensure_private(self.archive_dir(name))
        self.ensure_private(self.live_dir(name))
        # Number after everything present, complete or not: a half-written version is never reused.
        present = [int(m.group(2)) for e in os.listdir(archive) if (m := _VERSION.match(e))]
        version = max(present, default=0) + 1
        contents = {"privkey": files.key_pem, "cert": files.cert_pem, "chain": files.chain_pem,
                    "fullchain": files.fullchain_pem}
        for kind, data in contents.items():
            atomic_write(archive / f"{kind}{version}.pem", data, 0o600 if kind == "privkey" else 0o644)
        if renewal_conf is not None:
            self.write_renewal_conf(name, renewal_conf)
        self._point_live(name, version)
        return self.current(name)

    def write_renewal_conf(self, name: str, text: str) -> None:
        self.ensure("renewal")
        atomic_write(self.renewal_conf(name), text.encode(), 0o644)

    def _point_live(self, name: str, version: int) -> None:
        live = self.ensure_private(self.live_dir(name))
        # all four together: a full disk half-way must not leave cert.pem at N+1 and privkey.pem at N
        switch_links(live, {f"{kind}.pem": os.path.join("..", "..", "archive", name, f"{kind}{version}.pem")
                            for kind in KINDS})
        fsync_dir(live)

    def repair(self, name: str) -> bool:
        """Finish a link switch a crash interrupted: all four links to the newest complete version pointed at
        (or to the newest complete one when no link exists yet but the renewal file does: a first issuance
        interrupted between the two). Returns True when something was fixed.

        Versions newer than the newest complete one are leftovers of an interrupted write; they stay on disk
        (never deleted) and are skipped.
        """
        live = self.live_dir(name)
        if os.path.isdir(live) and not os.path.islink(live):
            for stale in [*live.glob(".*.tmp-*"), *live.glob(".*.lehttpd-*")]:  # older versions used .tmp-
                stale.unlink()
        complete = self.complete_versions(name)
        if not complete or self._link_versions(name) in complete:
            return False
        if not self.exists(name) and not os.path.lexists(self.renewal_conf(name)):
            return False  # a first issuance that stopped before its renewal file: never made live
        pointed = []
        for kind in KINDS:
            with contextlib.suppress(OSError):
                match = _VERSION.match(os.path.basename(os.readlink(live / f"{kind}.pem")))
                if match and int(match.group(2)) in complete:
                    pointed.append(int(match.group(2)))
        self._point_live(name, max(pointed) if pointed else complete[-1])
        return True

    def delete(self, name: str) -> list[str]:
        """Remove live/, archive/ and the renewal file; returns what could not be removed (with why)."""
        from lehttpd.store.removal import delete_lineage

        return delete_lineage(self, name)

    @contextlib.contextmanager
    def answering(self, tokens: dict[str, str]) -> Iterator[None]:
        """While an order's http-01 tokens are served here: nothing more for one machine (a fleet store
        publishes them for its other nodes, see fleet/shared.py)."""
        yield

    # -- locking -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        """Hold the lineage's lock: two lehttpd processes never write one lineage at once."""
        self.ensure(".locks")
        with file_lock(self.lock_path(name), timeout, f"certificate {name!r}"):
            self.repair(name)
            yield


def lineage_from_cert(name: str, config_dir: Path, cert: x509.Certificate, version: int) -> Lineage:
    from lehttpd.issuance.keys import key_type_of, san_names

    return Lineage(
        name=name, config_dir=config_dir, names=san_names(cert), version=version,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        key_type=key_type_of(cert), serial=cert.serial_number, issuer=cert.issuer.rfc4514_string())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# Accounts live in store/accounts.py; imported last, as they use CertStore.
from lehttpd.store.accounts import ACCOUNT_FILES, delete_account, load_accounts, save_account  # noqa: E402
