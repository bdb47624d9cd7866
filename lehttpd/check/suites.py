"""The cipher suites lehttpd offers when it enumerates a server's, and what each one is (policy as data).

Two sources, merged once: every suite the system OpenSSL knows (asked at security level 0, with the properties
it reports), and every suite tlslite-ng can name, which adds what OpenSSL 3 no longer carries (RC4, export,
3DES with ECDHE, static DH/ECDH, SSLv2 kinds). A server linked to any OpenSSL can choose nothing outside that
union that a client of today would offer.
"""
from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass

TLS13_SUITES = {0x1301: ("TLS_AES_128_GCM_SHA256", 128), 0x1302: ("TLS_AES_256_GCM_SHA384", 256),
                0x1303: ("TLS_CHACHA20_POLY1305_SHA256", 256), 0x1304: ("TLS_AES_128_CCM_SHA256", 128),
                0x1305: ("TLS_AES_128_CCM_8_SHA256", 128)}
SIGNALLING = {0x00FF, 0x5600}  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV, TLS_FALLBACK_SCSV: never chosen
_BITS = (("NULL", 0), ("EXPORT", 40), ("_40_", 40), ("DES40", 40), ("3DES", 112), ("DES_192_EDE3", 112),
         ("DES-CBC3", 112), ("DES_64", 56), ("DES", 56), ("RC4_128", 128), ("RC4", 128), ("CHACHA20", 256),
         ("256", 256), ("128", 128), ("SEED", 128), ("IDEA", 128), ("RC2", 128))


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
    bits = next((value for marker, value in _BITS if marker in upper), 128)
    forward = any(kx in upper for kx in ("_DHE_", "_ECDHE_", "DHE-", "ECDHE-", "EDH-"))
    anonymous = "ANON" in upper or upper.startswith(("ADH", "AECDH"))
    aead = any(mode in upper for mode in ("GCM", "CCM", "POLY1305"))
    return Suite(code, name, bits, forward and not anonymous, aead, anonymous)


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
    from tlslite.constants import CipherSuite

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
    for code, name in CipherSuite.ietfNames.items():
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
