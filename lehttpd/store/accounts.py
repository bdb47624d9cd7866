"""ACME accounts in certbot's layout: accounts/SERVER-HOST/SERVER-PATH/ID/{private_key,regr,meta}.json."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from lehttpd.errors import StorageError
from lehttpd.fileio import atomic_write, read_regular

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
    if not base.is_dir():
        return {}
    accounts = {}
    for directory in sorted(base.iterdir(), key=lambda d: d.stat().st_mtime, reverse=True):
        files = {}
        for name in ACCOUNT_FILES:
            with contextlib.suppress(FileNotFoundError):
                files[name] = read_regular(directory / name)[0]
        if "private_key.json" in files and "regr.json" in files:
            accounts[directory.name] = files
    return accounts


def _checked_id(account_id: str) -> str:
    from lehttpd.store import check_lineage_name

    return check_lineage_name(account_id)
