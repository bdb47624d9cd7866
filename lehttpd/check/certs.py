"""The certificate side of a check: is the chain trusted, complete, for this name, and the store's current one?

The verdict is OpenSSL's own verification (the system store, or --ca-bundle), never turned off. The certificates
are also read as sent, without verification, only to report on them (issuer, expiry, key, what is missing).
A chain that verifies only once the lineage's own chain.pem from lehttpd's store is added is trusted but
incomplete: browsers that do not fetch the missing intermediate themselves fail (SSL Labs caps it at B).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from lehttpd.check.hello import Target
from lehttpd.check.model import CertificateInfo, ChainResult, StoreMatch
from lehttpd.errors import LehttpdError
from lehttpd.fileio import read_regular
from lehttpd.issuance.keys import san_names
from lehttpd.store import CertStore

HOSTNAME_MISMATCH = 62
ISSUER_MISSING = {2, 20, 21}  # unable to get issuer certificate / local issuer / verify leaf signature


def verified_context(ca_bundle: Path | None, legacy: bool = False) -> ssl.SSLContext:
    """Full verification (chain and name). `legacy` lets the handshake itself reach TLS 1.0 servers with
    weak suites; it changes nothing in how the certificate is verified."""
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    if legacy:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def connect_verified(target: Target, ca_bundle: Path | None, timeout: float,
                     extra_cadata: str | None = None) -> ssl.SSLSocket:
    """A verified TLS connection; the legacy handshake is tried when the modern one fails for a reason other
    than the certificate. Raises ssl.SSLCertVerificationError, ssl.SSLError or OSError."""
    last: Exception | None = None
    for legacy in (False, True):
        context = verified_context(ca_bundle, legacy)
        if extra_cadata:
            context.load_verify_locations(cadata=extra_cadata)
        raw = socket.create_connection((target.host, target.port), timeout=timeout)
        try:
            return context.wrap_socket(raw, server_hostname=target.sni or target.host)
        except ssl.SSLCertVerificationError:
            raw.close()
            raise
        except (ssl.SSLError, OSError) as error:
            raw.close()
            last = error
    raise last  # type: ignore[misc]


def examine(target: Target, options, deadline: float) -> ChainResult:
    """Trust verdict and the served leaf (the full chain is added by `with_served_chain`)."""
    timeout = target.timeout
    index = options.store_index or store_index(options.config_dir)
    try:
        with connect_verified(target, options.ca_bundle, timeout) as tls:
            leaf = tls.getpeercert(binary_form=True)
        return _result([leaf], target, True, None, True, None, index)
    except ssl.SSLCertVerificationError as error:
        code, message = error.verify_code, error.verify_message
    except (ssl.SSLError, OSError) as error:
        code, message = None, f"no verified handshake: {getattr(error, 'reason', None) or error}"
    leaf = _unverified_leaf(target, timeout)
    ders = [leaf] if leaf else []
    if code == HOSTNAME_MISMATCH:  # the chain verified; only the name did not
        return _result(ders, target, True, message, True, None, index)
    store = index.match(leaf) if leaf and index.present else None
    if code in ISSUER_MISSING and store and store.lineage:
        missing = _issuer_of(leaf)
        helper = _lineage_chain(options.config_dir, store)  # the lineage's own intermediates
        if helper and _verifies_with(target, options.ca_bundle, timeout, helper):
            return _result(ders, target, True, None, False, missing, index, store)
    missing = _issuer_of(leaf) if code in ISSUER_MISSING and leaf else None
    return _result(ders, target, False, message, missing is None, missing, index, store)


def _result(ders, target: Target, trusted: bool, error: str | None, complete: bool, missing: str | None,
            index: "StoreIndex", store: StoreMatch | None = None) -> ChainResult:
    served = tuple(describe(der) for der in ders)
    if store is None and ders and index.present:
        store = index.match(ders[0])
    name = target.sni or target.host
    matches = bool(served) and name_matches(served[0].names, name)
    return ChainResult(served, trusted, error, matches, complete, missing, store)


def with_served_chain(result: ChainResult, ders: tuple[bytes, ...]) -> ChainResult:
    """The result with the certificates as sent (when a TLS 1.2-or-older handshake read them)."""
    if not ders or (result.served and hashlib.sha256(ders[0]).hexdigest() != result.served[0].fingerprint):
        return result
    served = tuple(describe(der) for der in ders)
    missing = result.missing
    if not result.complete and served and not served[-1].self_issued:
        missing = served[-1].issuer
    return replace(result, served=served, missing=missing)


def _unverified_leaf(target: Target, timeout: float) -> bytes | None:
    """The leaf as sent, for the report only (the verdict above came from a verified handshake)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=target.sni or None) as tls:
                return tls.getpeercert(binary_form=True)
    except (ssl.SSLError, OSError):
        return None


def _verifies_with(target: Target, ca_bundle: Path | None, timeout: float, cadata: str) -> bool:
    try:
        with connect_verified(target, ca_bundle, timeout, cadata):
            return True
    except (ssl.SSLError, OSError):
        return False


def describe(der: bytes) -> CertificateInfo:
    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        kind, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind, bits = f"EC {key.curve.name}", key.key_size
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        kind, bits = type(key).__name__.replace("PublicKey", ""), 256
    else:
        kind, bits = type(key).__name__, 0
    names = san_names(cert)
    oid = cert.signature_algorithm_oid
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(), names=names,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, key_type=kind, key_bits=bits,
        signature_algorithm=getattr(oid, "_name", None) or oid.dotted_string, serial=cert.serial_number,
        fingerprint=hashlib.sha256(der).hexdigest(), self_issued=cert.subject == cert.issuer)


def _issuer_of(der: bytes) -> str:
    return describe(der).issuer


def name_matches(names: tuple[str, ...], wanted: str) -> bool:
    """RFC 6125 matching: exact, or one wildcard as the whole left-most label."""
    wanted = wanted.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == name[2:]:
            return True
    return False


# -- lehttpd's store: which lineage and version a served certificate is -------------------------------------

@dataclass(frozen=True)
class StoreIndex:
    """Every certificate version in the store, by SHA-256 of its DER; read once per run."""

    versions: dict[str, tuple[str, int]]   # fingerprint → (lineage, version)
    current: dict[str, int]                # lineage → version live/ points at
    present: bool = True                   # False: no store there (nothing to say about the served certificate)

    def match(self, der: bytes) -> StoreMatch:
        found = self.versions.get(hashlib.sha256(der).hexdigest())
        if found is None:
            return StoreMatch(None, None, None)
        return StoreMatch(found[0], found[1], self.current.get(found[0]))


def store_index(config_dir: Path | None) -> StoreIndex:
    versions: dict[str, tuple[str, int]] = {}
    current: dict[str, int] = {}
    if config_dir is None or not (Path(config_dir) / "live").is_dir():
        return StoreIndex(versions, current, present=False)
    store = CertStore(config_dir)
    for name in store.names():
        try:  # a lineage the store refuses (a link out of archive/) is reported on its own row, not here
            current[name] = store.current_version(name)
            entries = sorted(os.listdir(store.archive_dir(name)))
        except (LehttpdError, OSError):
            continue
        for entry in entries:
            if not (entry.startswith("cert") and entry.endswith(".pem") and entry[4:-4].isdigit()):
                continue
            with contextlib.suppress(OSError, ValueError, LehttpdError):  # never a FIFO, a link, a huge file
                cert = x509.load_pem_x509_certificate(read_regular(store.archive_dir(name) / entry)[0])
                versions[hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()] = (name, int(entry[4:-4]))
    return StoreIndex(versions, current)


def _lineage_chain(config_dir: Path | None, store: StoreMatch) -> str | None:
    """The chain.pem stored beside the served version: the intermediates the server should have sent."""
    if config_dir is None or store.lineage is None:
        return None
    path = CertStore(config_dir).archive_dir(store.lineage) / f"chain{store.served_version}.pem"
    try:
        return read_regular(path)[0].decode()
    except (OSError, UnicodeDecodeError, LehttpdError):
        return None
