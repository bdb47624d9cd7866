"""TLS policy: Mozilla's profiles (data, lehttpd/data/mozilla-tls-profiles.json) gated by Apache/OpenSSL versions.

APACHE_CAPS is the table of the first Apache version that has each feature (from ssl-config-generator's
configs.js and Apache's docs). `build_policy` is the only place that decides; templates just print the result.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lehttpd.errors import UsageError

Version = tuple[int, int, int]
DATA = Path(__file__).resolve().parent.parent / "data" / "mozilla-tls-profiles.json"

APACHE_CAPS: dict[str, Version] = {
    "tls13": (2, 4, 36),            # SSLProtocol +TLSv1.3, SSLCipherSuite TLSv1.3 ...
    "ocsp_stapling": (2, 4, 13),    # as ssl-config-generator gates it (the directive exists since 2.3.3)
    "openssl_conf_cmd": (2, 4, 11),  # SSLOpenSSLConfCmd (Curves)
    "session_tickets": (2, 4, 11),  # SSLSessionTickets (2.2 has it from 2.2.30)
    "fullchain": (2, 4, 8),         # SSLCertificateFile may hold the chain; SSLCertificateChainFile obsolete
    "require": (2, 3, 0),           # mod_authz_core `Require all granted` (2.2: Order/Allow)
    "rewrite_end": (2, 3, 9),       # the [END] flag
}
OPENSSL_CAPS: dict[str, Version] = {"tls13": (1, 1, 1), "pq_curves": (3, 5, 0), "session_tickets": (1, 0, 2),
                                    "seclevel": (3, 0, 0)}
FORBIDDEN = ("SSLv2", "SSLv3", "RC4", "DES-CBC3", "3DES", "EXP", "NULL", "aNULL", "eNULL", "MD5")
PROFILES = ("modern", "intermediate", "old")


@dataclass(frozen=True)
class TlsPolicy:
    profile: str
    guideline: str
    protocol: str                 # the SSLProtocol value
    cipher_suite: str | None      # SSLCipherSuite for TLS <= 1.2
    tls13_suites: str | None      # SSLCipherSuite TLSv1.3 ...
    curves: str | None            # SSLOpenSSLConfCmd Curves ...
    honor_order: bool
    session_tickets_off: bool
    stapling: bool
    hsts_min_age: int


@lru_cache(maxsize=1)
def load_profiles(path: Path = DATA) -> dict:
    return json.loads(path.read_text())


def has(version: Version | None, minimum: Version) -> bool:
    return version is not None and tuple(version) >= minimum


def build_policy(profile: str, apache: Version, openssl: Version | None, staple_ocsp: bool = False) -> TlsPolicy:
    data = load_profiles()
    if profile not in data["profiles"]:
        raise UsageError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    spec = data["profiles"][profile]
    tls13 = has(apache, APACHE_CAPS["tls13"]) and (openssl is None or has(openssl, OPENSSL_CAPS["tls13"]))
    if profile == "modern" and not tls13:
        raise UsageError(f"profile 'modern' needs Apache >= 2.4.36 and OpenSSL >= 1.1.1 (TLS 1.3 only); this is "
                         f"Apache {_v(apache)} with OpenSSL {_v(openssl)}: use --profile intermediate")
    versions = [v for v in spec["tls_versions"] if v != "TLSv1.3" or tls13]
    protocol = "-all " + " ".join("+" + v for v in versions)
    ciphers = ":".join(spec["ciphers"]) or None
    if ciphers and "TLSv1.1" in versions and has(openssl, OPENSSL_CAPS["seclevel"]):
        ciphers = "@SECLEVEL=0:" + ciphers
    curves = None
    if has(apache, APACHE_CAPS["openssl_conf_cmd"]):
        pq = set(data["pq_curves"]) if not has(openssl, OPENSSL_CAPS["pq_curves"]) else set()
        curves = ":".join(c for c in data["curves"] if c not in pq)
    tickets = has(apache, APACHE_CAPS["session_tickets"]) and (openssl is None or
                                                              has(openssl, OPENSSL_CAPS["session_tickets"]))
    tickets = tickets or ((2, 2, 30) <= tuple(apache) < (2, 3, 0))
    policy = TlsPolicy(
        profile=profile, guideline=data["guideline"], protocol=protocol, cipher_suite=ciphers,
        tls13_suites=data["tls13_ciphersuites"] if tls13 else None, curves=curves,
        honor_order=bool(spec["server_preferred_order"]), session_tickets_off=tickets,
        stapling=staple_ocsp and has(apache, APACHE_CAPS["ocsp_stapling"]), hsts_min_age=spec["hsts_min_age"])
    check_policy(policy)
    return policy


def check_policy(policy: TlsPolicy) -> None:
    """No profile may ever let SSLv2/SSLv3, RC4, 3DES, export or NULL through (a guard on the data file)."""
    text = " ".join(filter(None, [policy.protocol, policy.cipher_suite]))
    for word in FORBIDDEN:
        if word.lower() in text.lower().replace("-all", ""):
            raise UsageError(f"profile {policy.profile} in {DATA.name} allows {word}: refusing")


def _v(version: Version | None) -> str:
    return ".".join(map(str, version)) if version else "unknown"
