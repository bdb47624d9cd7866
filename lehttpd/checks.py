"""Values checked the same way wherever they come from: the command line or a renewal file.

Each check raises UsageError naming where the value came from (`--ca-bundle`, `renewal/NAME.conf:
lehttpd_ca_bundle`) and what is wrong, in one line.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from lehttpd.errors import UsageError

MAX_CA_BUNDLE_BYTES = 16 * 1024 * 1024  # Debian's whole ca-certificates.crt is ~220 kB


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
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{where} {path}: not a regular file")
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
