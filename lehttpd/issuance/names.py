"""Validating the names a certificate is asked for, before any network call.

Names are untrusted input: each one is checked on its own and refused with an error that names it.
Unicode names are converted with IDNA 2008 (UTS #46 mapping, as browsers do), not refused.
"""
from __future__ import annotations

import ipaddress
import re

import idna

from lehttpd.errors import InvalidDomainError

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAME_LENGTH = 253
MAX_NAMES = 100  # names per certificate at Let's Encrypt (and most public CAs)


def normalize_names(raw_names: list[str], *, allow_ip: bool, challenge: str = "http-01") -> tuple[str, ...]:
    """Validate and normalise every name; keep the order given, drop exact duplicates; at most MAX_NAMES."""
    if not raw_names:
        raise InvalidDomainError("no domain name given")
    result: dict[str, None] = {}
    for raw in raw_names:
        result[normalize_name(raw, allow_ip=allow_ip, challenge=challenge)] = None
        if len(result) > MAX_NAMES:  # stop at once: the rest need not be read to refuse
            raise InvalidDomainError(
                f"more than {MAX_NAMES} names: a certificate holds at most {MAX_NAMES}; "
                "split them over several certificates (each with its own --cert-name)")
    return tuple(result)


def normalize_name(raw: str, *, allow_ip: bool, challenge: str = "http-01") -> str:
    shown = _shown(raw)
    name = raw.strip().rstrip(".").lower()
    if not name:
        raise InvalidDomainError(f"invalid domain name {shown}: empty")
    ip = _as_ip(name)
    if ip is not None:
        if not allow_ip:
            raise InvalidDomainError(
                f"invalid domain name {shown}: this ACME server does not issue certificates for IP addresses")
        return ip
    if name.startswith("*."):
        if challenge == "http-01":
            raise InvalidDomainError(
                f"invalid domain name {shown}: wildcard certificates need the dns-01 challenge, "
                "and lehttpd validates with http-01")
    if "*" in name:
        raise InvalidDomainError(f"invalid domain name {shown}: '*' is only allowed as a whole first label")
    ascii_name = _to_ascii(name, shown)
    if len(ascii_name) > MAX_NAME_LENGTH:
        raise InvalidDomainError(
            f"invalid domain name {shown}: {len(ascii_name)} characters, at most {MAX_NAME_LENGTH} are allowed")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidDomainError(f"invalid domain name {shown}: a certificate needs a fully qualified name")
    for label in labels:
        if not label:
            raise InvalidDomainError(f"invalid domain name {shown}: empty label")
        if len(label) > 63:
            raise InvalidDomainError(f"invalid domain name {shown}: label {label[:20]}… is over 63 characters")
        if not _LABEL.match(label):
            raise InvalidDomainError(
                f"invalid domain name {shown}: label {label!r} may hold only letters, digits and inner hyphens")
    if labels[-1].isdigit():
        raise InvalidDomainError(f"invalid domain name {shown}: the last label cannot be all digits")
    return ascii_name


def _shown(raw: str) -> str:
    """The name as the user typed it, quoted when blanks matter and cut when absurdly long."""
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    return repr(shown) if shown != shown.strip() or not shown else shown


def _as_ip(name: str) -> str | None:
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return None


def _to_ascii(name: str, shown: str) -> str:
    if name.isascii():
        return name
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise InvalidDomainError(f"invalid domain name {shown}: not a valid internationalised name ({error})")
