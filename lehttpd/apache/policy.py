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
    "session_tickets": (2, 4, 11),  # SSLSessionTickets (2.2: APACHE22_CAPS)
    "fullchain": (2, 4, 8),         # SSLCertificateFile may hold the chain; SSLCertificateChainFile obsolete
    "require": (2, 3, 0),           # mod_authz_core `Require all granted` (2.2: Order/Allow)
    "rewrite_end": (2, 3, 9),       # the [END] flag
}
# The 2.2 branch (read against its CHANGES): where a feature arrived there, and distribution builds known to have it
# earlier (backports), by (version, family of the -V "Server version" tag / layout).
APACHE22_CAPS: dict[str, Version] = {
    "tls12": (2, 2, 23),            # SSLProtocol +TLSv1.1 +TLSv1.2 ("Illegal protocol" before)
    "ecdh": (2, 2, 26),             # a temporary ECDH key: before it, OpenSSL 1.0.x refuses every ECDHE suite
    "compression_directive": (2, 2, 24),  # SSLCompression (default on in 2.2.24-2.2.25: CRIME)
    "session_tickets": (2, 2, 30),  # SSLSessionTickets
}
BACKPORTS: dict[tuple[Version, str], frozenset[str]] = {
    ((2, 2, 22), "debian"): frozenset({"tls12"}),   # Debian 7 (wheezy), 2.2.22-13
    ((2, 2, 15), "rhel"): frozenset({"tls12"}),     # RHEL/CentOS 6, httpd-2.2.15-29 and later
}
RSA_KEY_EXCHANGE = ("AES128-GCM-SHA256", "AES256-GCM-SHA384")  # what is left without ECDHE (no forward secrecy)
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
    compression_off: bool = False   # write `SSLCompression off` (2.2.24-2.2.x, where it may default to on)
    notes: tuple[str, ...] = ()     # what the versions took away from the profile, and why


@lru_cache(maxsize=1)
def load_profiles(path: Path = DATA) -> dict:
    return json.loads(path.read_text())


def has(version: Version | None, minimum: Version) -> bool:
    return version is not None and tuple(version) >= minimum


def build_policy(profile: str, apache: Version, openssl: Version | None, staple_ocsp: bool = False,
                 family: str = "") -> TlsPolicy:
    """The profile as this Apache (and OpenSSL, when known) can apply it; `family`: the distribution family of
    the build (for the backports known as data)."""
    data = load_profiles()
    if profile not in data["profiles"]:
        raise UsageError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    spec = data["profiles"][profile]
    apache = tuple(apache)
    is22 = apache < (2, 3, 0)
    if is22 and (openssl is None or has(openssl, (1, 1, 0))):
        openssl = None if openssl is None else (1, 0, 2)  # 2.2 cannot use OpenSSL 1.1.0: its mod_ssl is not this one
    tls13 = has(apache, APACHE_CAPS["tls13"]) and (openssl is None or has(openssl, OPENSSL_CAPS["tls13"]))
    if profile == "modern" and not tls13:
        raise UsageError(f"profile 'modern' needs Apache >= 2.4.36 and OpenSSL >= 1.1.1 (TLS 1.3 only); this is "
                         f"Apache {_v(apache)} with OpenSSL {_v(openssl)}: use --profile intermediate")
    versions = [v for v in spec["tls_versions"] if v != "TLSv1.3" or tls13]
    notes: list[str] = []
    backported = BACKPORTS.get((apache, family), frozenset())
    if is22 and not (has(apache, APACHE22_CAPS["tls12"]) or "tls12" in backported):
        versions = [v for v in versions if v not in ("TLSv1.1", "TLSv1.2")]
        if not versions:
            raise UsageError(f"Apache {_v(apache)} knows TLS 1.1/1.2 only from 2.2.23 (no backport known for this "
                             f"build): profile {profile!r} needs TLS 1.2; upgrade Apache, or use --profile old")
    protocol = "-all " + " ".join("+" + v for v in versions)
    suites = list(spec["ciphers"])
    if is22 or (openssl is not None and not has(openssl, (1, 1, 0))):
        suites = [c for c in suites if "CHACHA20" not in c]  # OpenSSL 1.1.0 names; dead entries before it
    if is22 and not (has(apache, APACHE22_CAPS["ecdh"]) or "ecdh" in backported):
        suites = [c for c in suites if not c.startswith("ECDHE")] or list(RSA_KEY_EXCHANGE)
        notes.append(f"Apache {_v(apache)} sets no ECDH key before 2.2.26: ECDHE suites cannot work there, so the "
                     f"list is {':'.join(suites)} and forward secrecy is lost; upgrade Apache to keep it")
    ciphers = ":".join(suites) or None
    if ciphers and "TLSv1.1" in versions and not is22 and has(openssl, OPENSSL_CAPS["seclevel"]):
        ciphers = "@SECLEVEL=0:" + ciphers
    curves = None
    if has(apache, APACHE_CAPS["openssl_conf_cmd"]):
        pq = set(data["pq_curves"]) if not has(openssl, OPENSSL_CAPS["pq_curves"]) else set()
        curves = ":".join(c for c in data["curves"] if c not in pq)
    tickets = has(apache, APACHE_CAPS["session_tickets"]) and (openssl is None or
                                                              has(openssl, OPENSSL_CAPS["session_tickets"]))
    tickets = tickets or (is22 and has(apache, APACHE22_CAPS["session_tickets"]))
    policy = TlsPolicy(
        profile=profile, guideline=data["guideline"], protocol=protocol, cipher_suite=ciphers,
        tls13_suites=data["tls13_ciphersuites"] if tls13 else None, curves=curves,
        honor_order=bool(spec["server_preferred_order"]), session_tickets_off=tickets,
        stapling=staple_ocsp and has(apache, APACHE_CAPS["ocsp_stapling"]), hsts_min_age=spec["hsts_min_age"],
        compression_off=is22 and has(apache, APACHE22_CAPS["compression_directive"]), notes=tuple(notes))
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
