"""The state `lehttpd certificates` shows for a lineage: VALID, EXPIRED, REVOKED or INVALID, with the reason.

REVOKED comes from what `lehttpd revoke` remembered (renewal state, by serial), EXPIRED from the certificate's
dates, INVALID from the files themselves: a private key that does not belong to the certificate, or a chain that
did not issue it. A revoked certificate is never shown with its "days left": it is dead whatever its dates say.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lehttpd.model import Lineage

VALID, EXPIRED, REVOKED, INVALID = "VALID", "EXPIRED", "REVOKED", "INVALID"


@dataclass(frozen=True)
class LineageStatus:
    state: str
    reason: str = ""


def serial_text(serial: int) -> str:
    """The one way lehttpd prints a serial: lower-case hexadecimal, as certbot and openssl's -serial show it."""
    return format(serial, "x")


def status_of(lineage: Lineage, now: dt.datetime) -> LineageStatus:
    from lehttpd.renew.state import load_state

    if load_state(lineage.config_dir, lineage.name).revoked_serial == hex(lineage.serial):
        return LineageStatus(REVOKED, "revoked with `lehttpd revoke`; the next `lehttpd renew` replaces it")
    broken = _files_problem(lineage)
    if broken:
        return LineageStatus(INVALID, broken)
    if lineage.not_after < now:
        return LineageStatus(EXPIRED, f"expired on {lineage.not_after:%Y-%m-%d}")
    if lineage.not_before > now:
        return LineageStatus(INVALID, f"not valid before {lineage.not_before:%Y-%m-%d %H:%M} UTC")
    return LineageStatus(VALID)


def _files_problem(lineage: Lineage) -> str:
    """Why the live files cannot be served together, or ""."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(lineage.cert_path.read_bytes())
        key = serialization.load_pem_private_key(lineage.key_path.read_bytes(), password=None)
        chain = x509.load_pem_x509_certificates(lineage.chain_path.read_bytes())
    except PermissionError:
        return ""  # not root: the key cannot be checked, which says nothing about the lineage
    except (OSError, ValueError) as error:
        return f"unreadable file: {error}"
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != \
            cert.public_key().public_bytes(serialization.Encoding.DER, public):
        return f"{lineage.key_path} is not the key of {lineage.cert_path}"
    if chain:
        try:
            cert.verify_directly_issued_by(chain[0])  # issuer name and signature
        except (ValueError, TypeError, InvalidSignature):
            return f"{lineage.chain_path} does not start with the certificate's issuer"
    return ""
