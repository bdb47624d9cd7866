"""Removing a lineage from the store: what `lehttpd delete` does to live/, archive/ and the renewal file.

Never through a link: a lineage folder that is a symlink is named and left alone, with what it points at.
Whatever could not be removed (an immutable key, a folder that vanished meanwhile) is returned with why, so
that the command never says "deleted" while a private key is still on disk.
"""
from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lehttpd.store import CertStore


def delete_lineage(store: "CertStore", name: str) -> list[str]:
    """Remove live/, archive/ and the renewal file of `name`; returns what could not be removed (with why)."""
    left: list[str] = []
    for folder in (store.live_dir(name), store.archive_dir(name)):
        if os.path.islink(folder):
            left.append(f"{folder} is a symlink to {os.readlink(folder)}: not followed, nothing removed "
                        "there; remove it and what it points at yourself")
            continue
        shutil.rmtree(folder, onerror=lambda _f, path, info: left.append(f"{path}: {_why(info[1])}"))
    try:
        os.unlink(store.renewal_conf(name))
    except FileNotFoundError:
        pass
    except OSError as error:
        left.append(f"{store.renewal_conf(name)}: {error.strerror}")
    return left


def _why(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "vanished meanwhile"
    return getattr(error, "strerror", None) or str(error)
