"""Certificate storage: the only code that writes certificates, keys and accounts.

Layout (compatible with certbot's, so a certbot user can switch without touching Apache):

    CONFIG_DIR/archive/NAME/{cert,chain,fullchain,privkey}N.pem   every version, never rewritten
    CONFIG_DIR/live/NAME/{cert,chain,fullchain,privkey}.pem       relative links to the newest complete version
    CONFIG_DIR/renewal/NAME.conf                                  what a later renewal needs
    CONFIG_DIR/accounts/SERVER-HOST/SERVER-PATH/ID/               account key, registration, meta

Contract: every file is written atomically (temporary file, fsync, rename) with its final mode from the start;
private keys are 0600 in 0700 folders; a new version is written completely into archive/ before any live/
link moves; a link switch interrupted by a crash is completed (or undone) by `repair()`, which every
lineage lock runs first. Locks are `flock`s, so a killed process never leaves a stale lock.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from typing import TYPE_CHECKING

from lehttpd.errors import StorageError, UsageError
from lehttpd.fileio import atomic_symlink, atomic_write, file_lock, fsync_dir
from lehttpd.model import CertificateFiles, Lineage

if TYPE_CHECKING:  # cryptography is imported where certificates are read, not when the CLI starts
    from cryptography import x509

KINDS = ("cert", "chain", "fullchain", "privkey")
DEFAULT_CONFIG_DIR = Path("/etc/letsencrypt")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_VERSION = re.compile(r"^(cert|chain|fullchain|privkey)(\d+)\.pem$")


def check_lineage_name(name: str) -> str:
    if not _SAFE_NAME.match(name) or ".." in name:
        raise UsageError(f"invalid certificate name {name!r}: use letters, digits, dots, hyphens and underscores")
    return name


class CertStore:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = Path(config_dir).absolute()  # renewal files and links must not depend on the cwd

    # -- paths ---------------------------------------------------------------------------------------
    def archive_dir(self, name: str) -> Path:
        return self.config_dir / "archive" / check_lineage_name(name)

    def live_dir(self, name: str) -> Path:
        return self.config_dir / "live" / check_lineage_name(name)

    def renewal_conf(self, name: str) -> Path:
        return self.config_dir / "renewal" / f"{check_lineage_name(name)}.conf"

    def account_dir(self, server: str) -> Path:
        """accounts/HOST/PATH, as certbot names it, so both tools share accounts."""
        parts = urlsplit(server)
        path = parts.path.strip("/") or "directory"
        return self.config_dir / "accounts" / parts.netloc / path

    # -- reading -------------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return (self.live_dir(name) / "cert.pem").exists()

    def names(self) -> list[str]:
        live = self.config_dir / "live"
        if not live.is_dir():
            return []
        return sorted(p.name for p in live.iterdir() if (p / "cert.pem").exists() and _SAFE_NAME.match(p.name))

    def load(self, name: str) -> Lineage:
        from cryptography import x509

        cert_path = self.live_dir(name) / "cert.pem"
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except FileNotFoundError:
            raise UsageError(f"no certificate named {name!r} under {self.config_dir}") from None
        except (OSError, ValueError) as error:
            raise StorageError(f"cannot read {cert_path}: {error}") from None
        return lineage_from_cert(name, self.config_dir, cert, self.current_version(name))

    def current_version(self, name: str) -> int:
        target = os.readlink(self.live_dir(name) / "cert.pem") if (self.live_dir(name) / "cert.pem").is_symlink() else ""
        match = _VERSION.match(os.path.basename(target))
        return int(match.group(2)) if match else 0

    def read_current(self, kind: str, name: str) -> bytes:
        return (self.live_dir(name) / f"{kind}.pem").read_bytes()

    def complete_versions(self, name: str) -> list[int]:
        """Versions in archive/ that have all four files."""
        found: dict[int, set[str]] = {}
        archive = self.archive_dir(name)
        if archive.is_dir():
            for entry in archive.iterdir():
                match = _VERSION.match(entry.name)
                if match:
                    found.setdefault(int(match.group(2)), set()).add(match.group(1))
        return sorted(v for v, kinds in found.items() if kinds == set(KINDS))

    # -- writing -------------------------------------------------------------------------------------
    def save_version(self, name: str, files: CertificateFiles, renewal_conf: str | None = None) -> Lineage:
        """Write a new version beside the old ones, then move the live/ links to it. Call under lock()."""
        archive, live = self.archive_dir(name), self.live_dir(name)
        for directory in (archive, live):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)
        # Number after everything present, complete or not: a half-written version is never reused.
        present = [int(m.group(2)) for e in archive.iterdir() if (m := _VERSION.match(e.name))]
        version = max(present, default=0) + 1
        contents = {"privkey": files.key_pem, "cert": files.cert_pem, "chain": files.chain_pem,
                    "fullchain": files.fullchain_pem}
        for kind, data in contents.items():
            atomic_write(archive / f"{kind}{version}.pem", data, 0o600 if kind == "privkey" else 0o644)
        self._point_live(name, version)
        if renewal_conf is not None:
            self.write_renewal_conf(name, renewal_conf)
        return self.load(name)

    def write_renewal_conf(self, name: str, text: str) -> None:
        atomic_write(self.renewal_conf(name), text.encode(), 0o644)

    def _point_live(self, name: str, version: int) -> None:
        live = self.live_dir(name)
        for kind in KINDS:
            target = os.path.join("..", "..", "archive", name, f"{kind}{version}.pem")
            atomic_symlink(live / f"{kind}.pem", target)
        fsync_dir(live)

    def repair(self, name: str) -> bool:
        """Finish a link switch a crash interrupted: all four links to the newest complete version.

        Returns True when something had to be fixed. Versions newer than the newest complete one are
        leftovers of an interrupted write; they stay on disk (never deleted) and are skipped.
        """
        live = self.live_dir(name)
        if not live.is_dir():
            return False
        for stale in [*live.glob(".*.tmp-*"), *live.glob(".*.lehttpd-*")]:  # older versions used .tmp-
            stale.unlink()
        targets = {}
        for kind in KINDS:
            link = live / f"{kind}.pem"
            match = _VERSION.match(os.path.basename(os.readlink(link))) if link.is_symlink() else None
            targets[kind] = int(match.group(2)) if match else None
        complete = self.complete_versions(name)
        if not complete:
            return False
        consistent = len(set(targets.values())) == 1 and targets["cert"] in complete
        if consistent:
            return False
        pointed = [v for v in targets.values() if v is not None and v in complete]
        self._point_live(name, max(pointed) if pointed else complete[-1])
        return True

    def delete(self, name: str) -> None:
        """Remove a lineage: live/, archive/ and its renewal file."""
        for directory in (self.live_dir(name), self.archive_dir(name)):
            shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.renewal_conf(name).unlink()

    # -- locking -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        """Hold the lineage's lock: two lehttpd processes never write one lineage at once."""
        with file_lock(self.config_dir / ".locks" / f"{check_lineage_name(name)}.lock", timeout,
                       f"certificate {name!r}"):
            self.repair(name)
            yield


def lineage_from_cert(name: str, config_dir: Path, cert: x509.Certificate, version: int) -> Lineage:
    from cryptography import x509

    from lehttpd.issuance.keys import key_type_of

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName)) + tuple(
            str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        names = ()
    return Lineage(
        name=name, config_dir=config_dir, names=names, version=version,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        key_type=key_type_of(cert), serial=cert.serial_number, issuer=cert.issuer.rfc4514_string())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# The files of one ACME account, as certbot keeps them.
ACCOUNT_FILES = ("private_key.json", "regr.json", "meta.json")


def save_account(store: CertStore, server: str, account_id: str, files: dict[str, bytes]) -> Path:
    directory = store.account_dir(server) / check_lineage_name(account_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    for file_name, data in files.items():
        if file_name not in ACCOUNT_FILES:
            raise StorageError(f"unexpected account file {file_name}")
        atomic_write(directory / file_name, data, 0o600 if file_name == "private_key.json" else 0o644)
    return directory


def delete_account(store: CertStore, server: str, account_id: str) -> Path:
    """Remove one stored account (after its deactivation at the server)."""
    directory = store.account_dir(server) / check_lineage_name(account_id)
    shutil.rmtree(directory)
    return directory


def load_accounts(store: CertStore, server: str) -> dict[str, dict[str, bytes]]:
    """Every complete account stored for this server, by id, newest first (a replaced account goes last)."""
    base = store.account_dir(server)
    if not base.is_dir():
        return {}
    accounts = {}
    for directory in sorted(base.iterdir(), key=lambda d: d.stat().st_mtime, reverse=True):
        files = {name: (directory / name).read_bytes() for name in ACCOUNT_FILES if (directory / name).is_file()}
        if "private_key.json" in files and "regr.json" in files:
            accounts[directory.name] = files
    return accounts
