"""Values checked the same way wherever they come from: the command line or a renewal file.

Each check raises UsageError naming where the value came from (`--http-port`, `renewal/NAME.conf:
http01_port`) and what is accepted, so a bad renewal file fails its lineage alone, with the line to fix.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path

from lehttpd.errors import UsageError


def check_server(url: str, where: str) -> str:
    """Only https ACME servers: the account key signs every request, and the answers name what to trust."""
    if not url.startswith("https://") or len(url) <= len("https://"):
        raise UsageError(f"{where} must be an https:// ACME directory URL, not {url!r}")
    return url


def check_port(value: str | int, where: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where} {value!r}: not a port number") from None
    if not 0 < port < 65536:
        raise UsageError(f"{where} {port}: not a port number (1 to 65535)")
    return port


def check_address(value: str, where: str) -> str:
    if value:
        try:
            ipaddress.ip_address(value.strip("[]"))
        except ValueError:
            raise UsageError(f"{where} {value!r}: not an IP address") from None
    return value


def check_ca_bundle(path: Path | None, where: str) -> Path | None:
    if path is not None and not path.is_file():
        raise UsageError(f"{where} {path}: no such file")
    return path


def check_absolute(path: Path | None, where: str) -> Path | None:
    """A path stored in a renewal file must not depend on the directory cron happens to start in."""
    if path is not None and not path.is_absolute():
        raise UsageError(f"{where} {path}: not an absolute path")
    return path
