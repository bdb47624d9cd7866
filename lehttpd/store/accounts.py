"""ACME accounts in certbot's layout: accounts/SERVER-HOST/SERVER-PATH/ID/{private_key,regr,meta}.json.

An account key signs every order and can revoke every certificate it obtained, so an account is read only from
folders and files nobody else can change (the same StrictModes test as renewal files): in an accounts/ tree
that an older version left world-writable, another user could plant an account of their own, which lehttpd
would then pick as the newest.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from lehttpd.errors import StorageError, UntrustedFileError
from lehttpd.fileio import atomic_write, read_regular
from lehttpd.store.trust import check_trusted, trust_problem

if TYPE_CHECKING:
    from lehttpd.store import CertStore


# The files of one ACME account, as certbot keeps them.
ACCOUNT_FILES = ("private_key.json", "regr.json", "meta.json")


def save_account(store: CertStore, server: str, account_id: str, files: dict[str, bytes]) -> Path:
    directory = store.ensure_private(store.account_dir(server) / _checked_id(account_id))
    for file_name, data in files.items():
        if file_name not in ACCOUNT_FILES:
            raise StorageError(f"unexpected account file {file_name}")
        atomic_write(directory / file_name, data, 0o600 if file_name == "private_key.json" else 0o644)
    return directory


def delete_account(store: CertStore, server: str, account_id: str) -> Path:
    """Remove one stored account (after its deactivation at the server); rmtree never follows a link."""
    directory = store.account_dir(server) / _checked_id(account_id)
    shutil.rmtree(directory)
    return directory


def load_accounts(store: CertStore, server: str) -> dict[str, dict[str, bytes]]:
    """Every complete account stored for this server, by id, newest first (a replaced account goes last)."""
    base = store.account_dir(server)
    if not os.path.isdir(base):
        return {}
    _check_account_folders(store, base)
    entries = [(check_trusted(base / entry, "account folder"), base / entry) for entry in os.listdir(base)]
    accounts = {}
    for _, directory in sorted(entries, key=lambda found: found[0].st_mtime, reverse=True):
        files = {}
        for name in ACCOUNT_FILES:
            try:
                data, info = read_regular(directory / name)  # never a link, a FIFO or a device
            except FileNotFoundError:
                continue
            problem = trust_problem(directory / name, info, "account file")
            if problem:
                raise UntrustedFileError(problem)
            files[name] = data
        if "private_key.json" in files and "regr.json" in files:
            accounts[directory.name] = files
    return accounts


def _check_account_folders(store: CertStore, base: Path) -> None:
    """The config dir and everything above it, accounts/ and the server's folders below it."""
    store.check_config_dir()
    folder = store.config_dir / "accounts"
    check_trusted(folder, "accounts folder")
    for part in base.relative_to(folder).parts:
        folder = folder / part
        check_trusted(folder, "accounts folder")


def _checked_id(account_id: str) -> str:
    from lehttpd.store import check_lineage_name

    return check_lineage_name(account_id)
