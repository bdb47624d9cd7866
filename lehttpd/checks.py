"""Values checked the same way wherever they come from: the command line or a renewal file.

Each check raises UsageError naming where the value came from (`--http-port`, `renewal/NAME.conf:
http01_port`) and what is accepted, in one line, so a bad renewal file fails its lineage alone, with the line to fix.
"""
from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

from lehttpd.errors import UntrustedFileError, UsageError
from lehttpd.store.trust import check_file_and_folders

MAX_CA_BUNDLE_BYTES = 16 * 1024 * 1024  # Debian's whole ca-certificates.crt is ~220 kB


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
    """A CA bundle must be a readable regular file that OpenSSL loads as PEM certificates (as requests will)."""
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not hang the run
    except FileNotFoundError:
        raise UsageError(f"{where} {path}: no such file") from None
    except OSError as error:
        raise UsageError(f"{where} {path}: cannot read it ({error.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UsageError(f"{where} {path}: not a regular file")
    try:  # whoever can change the bundle decides which ACME server lehttpd believes it is talking to
        check_file_and_folders(Path(path), f"the CA bundle ({where})", info)
    except UntrustedFileError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as bundle:
        try:
            data = bundle.read(MAX_CA_BUNDLE_BYTES + 1)
        except OSError as error:
            raise UsageError(f"{where} {path}: cannot read it ({error.strerror})") from None
    import ssl  # here, not at the top: a renew run with nothing due loads no TLS

    if len(data) > MAX_CA_BUNDLE_BYTES:
        raise UsageError(f"{where} {path}: over {MAX_CA_BUNDLE_BYTES // 2**20} MB, not a CA bundle")
    try:
        ssl.create_default_context(cafile=None).load_verify_locations(cadata=data.decode("latin-1"))
    except (ssl.SSLError, ValueError):
        raise UsageError(f"{where} {path}: not a PEM file of CA certificates "
                         "(-----BEGIN CERTIFICATE----- blocks)") from None
    return path


def check_absolute(path: Path | None, where: str) -> Path | None:
    """A path stored in a renewal file must not depend on the directory cron happens to start in."""
    if path is not None and not path.is_absolute():
        raise UsageError(f"{where} {path}: not an absolute path")
    return path
