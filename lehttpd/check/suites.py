"""The cipher suites lehttpd offers when it enumerates a server's, and what each one is (policy as data).

Two sources, merged once: every suite the system OpenSSL knows (asked at security level 0, with the properties
it reports), every suite tlslite-ng can name, which adds what OpenSSL 3 no longer carries (RC4, 3DES with
ECDHE, static DH/ECDH), and RFC 2246's export and DES suites (LEGACY). A server linked to any OpenSSL can choose nothing outside that
union that a client of today would offer.
"""
from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass

from tlslite.constants import CipherSuite

TLS13_SUITES = {0x1301: ("TLS_AES_128_GCM_SHA256", 128), 0x1302: ("TLS_AES_256_GCM_SHA384", 256),
                0x1303: ("TLS_CHACHA20_POLY1305_SHA256", 256), 0x1304: ("TLS_AES_128_CCM_SHA256", 128),
                0x1305: ("TLS_AES_128_CCM_8_SHA256", 128)}
# RFC 2246's export, DES and IDEA suites: neither OpenSSL 3 nor tlslite-ng names them, and a server that still
# offers one is graded F, so they are offered too.
LEGACY = {0x0003: "TLS_RSA_EXPORT_WITH_RC4_40_MD5", 0x0006: "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5",
          0x0007: "TLS_RSA_WITH_IDEA_CBC_SHA", 0x0008: "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",
          0x0009: "TLS_RSA_WITH_DES_CBC_SHA", 0x000B: "TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA",
          0x000C: "TLS_DH_DSS_WITH_DES_CBC_SHA", 0x000E: "TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA",
          0x000F: "TLS_DH_RSA_WITH_DES_CBC_SHA", 0x0011: "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA",
          0x0012: "TLS_DHE_DSS_WITH_DES_CBC_SHA", 0x0014: "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA",
          0x0015: "TLS_DHE_RSA_WITH_DES_CBC_SHA", 0x0017: "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5",
          0x0019: "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA", 0x001A: "TLS_DH_anon_WITH_DES_CBC_SHA"}
SIGNALLING = {0x00FF, 0x5600}  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV, TLS_FALLBACK_SCSV: never chosen
_KEY_SIZE = re.compile(r"_(128|256)_")  # AES_128_, CAMELLIA_256_, ARIA_128_ (the MAC's SHA256 must not count)


@dataclass(frozen=True)
class Suite:
    code: int            # the two-byte IANA value
    name: str            # IANA name where known, else OpenSSL's
    bits: int            # symmetric strength
    forward_secret: bool
    aead: bool
    anonymous: bool

    @property
    def hex(self) -> str:
        return f"0x{self.code:04x}"

    @property
    def rc4(self) -> bool:
        return "RC4" in self.name

    @property
    def small_block(self) -> bool:
        """A 64-bit block cipher (SWEET32): 3DES, DES, IDEA, RC2."""
        return re.search(r"DES|IDEA|RC2", self.name) is not None

    @property
    def export(self) -> bool:
        return "EXPORT" in self.name or 0 < self.bits < 56

    @property
    def null(self) -> bool:
        return self.bits == 0

    def as_json(self) -> dict:
        return {"code": self.hex, "name": self.name, "bits": self.bits, "forward_secret": self.forward_secret,
                "aead": self.aead}


def _from_name(code: int, name: str) -> Suite:
    upper = name.upper()
    bits = _bits(upper)
    forward = any(kx in upper for kx in ("_DHE_", "_ECDHE_", "DHE-", "ECDHE-", "EDH-"))
    anonymous = "ANON" in upper or upper.startswith(("ADH", "AECDH"))
    aead = any(mode in upper for mode in ("GCM", "CCM", "POLY1305"))
    return Suite(code, name, bits, forward and not anonymous, aead, anonymous)


def _bits(upper: str) -> int:
    """Symmetric strength from an IANA name (only for suites OpenSSL no longer knows)."""
    if "NULL" in upper:
        return 0
    if "EXPORT" in upper or "_40_" in upper:
        return 40
    if "3DES" in upper or "DES_192_EDE3" in upper:
        return 112
    if "DES" in upper:
        return 56
    if "CHACHA20" in upper:
        return 256
    match = _KEY_SIZE.search(upper)
    return int(match.group(1)) if match else 128  # RC4_128, SEED, IDEA


def _from_openssl(entry: dict) -> Suite:
    code = entry["id"] & 0xFFFF
    kea = entry.get("kea") or ""
    anonymous = entry.get("auth") == "auth-null"
    return Suite(code, entry["name"], int(entry.get("strength_bits") or 0),
                 kea in ("kx-ecdhe", "kx-dhe", "kx-ecdhe-psk", "kx-dhe-psk") and not anonymous,
                 bool(entry.get("aead")), anonymous)


@functools.cache
def catalogue() -> dict[int, Suite]:
    """Every TLS 1.2-and-older suite lehttpd can offer, by code (TLS 1.3 suites are in TLS13_SUITES)."""
    found: dict[int, Suite] = {}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    except ssl.SSLError:  # an OpenSSL without security levels
        context.set_ciphers("ALL:COMPLEMENTOFALL")
    for entry in context.get_ciphers():
        code = entry["id"] & 0xFFFF
        if code not in TLS13_SUITES:
            found[code] = _from_openssl(entry)
    for code, name in {**LEGACY, **CipherSuite.ietfNames}.items():
        if code in SIGNALLING or code in TLS13_SUITES or code > 0xFFFF:
            continue
        iana = _from_name(code, name)
        known = found.get(code)
        # keep OpenSSL's measured properties, but the IANA name (what testssl.sh and SSL Labs print)
        found[code] = iana if known is None else Suite(code, name, known.bits, known.forward_secret,
                                                       known.aead, known.anonymous)
    return found


def suite(code: int) -> Suite:
    if code in TLS13_SUITES:
        name, bits = TLS13_SUITES[code]
        return Suite(code, name, bits, True, True, False)
    return catalogue().get(code) or Suite(code, f"UNKNOWN_0x{code:04x}", 0, False, False, False)
