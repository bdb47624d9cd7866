"""The frozen values of the check stage: what the probes found (`Findings`), and what the grader made of it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lehttpd.check.suites import Suite


@dataclass(frozen=True)
class ProtocolResult:
    name: str                      # "SSLv2" … "TLSv1.3"
    offered: bool
    suites: tuple[Suite, ...] = ()  # in the server's order when it has one, else in the order lehttpd offered
    server_order: bool | None = None  # None: fewer than two suites, nothing to order
    note: str = ""                 # how it refused, or why the enumeration stopped early

    def as_json(self) -> dict:
        return {"protocol": self.name, "offered": self.offered, "server_order": self.server_order,
                "suites": [s.as_json() for s in self.suites], "note": self.note}


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str                  # "RSA", "EC", "Ed25519", …
    key_bits: int
    signature_algorithm: str       # "sha256WithRSAEncryption", "ecdsa-with-SHA256", …
    serial: int
    fingerprint: str               # SHA-256 of the DER, hex
    self_issued: bool

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def as_json(self) -> dict:
        return {"subject": self.subject, "issuer": self.issuer, "names": list(self.names),
                "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
                "key": f"{self.key_type} {self.key_bits}", "signature_algorithm": self.signature_algorithm,
                "serial": f"{self.serial:x}", "sha256": self.fingerprint}


@dataclass(frozen=True)
class StoreMatch:
    """Where the served certificate sits in lehttpd's store (certbot layout)."""

    lineage: str | None            # None: not from the store
    served_version: int | None
    current_version: int | None

    @property
    def current(self) -> bool | None:
        if self.lineage is None:
            return None
        return self.served_version == self.current_version

    def as_json(self) -> dict:
        return {"lineage": self.lineage, "served_version": self.served_version,
                "current_version": self.current_version, "current": self.current}


@dataclass(frozen=True)
class ChainResult:
    served: tuple[CertificateInfo, ...]   # as the server sent them, leaf first (only the leaf over TLS 1.3 only)
    trusted: bool                         # OpenSSL's verification, with the system store or --ca-bundle
    trust_error: str | None
    name_matches: bool
    complete: bool                        # the served certificates reach a trust anchor on their own
    missing: str | None                   # the issuer the server should have sent
    store: StoreMatch | None = None

    @property
    def leaf(self) -> CertificateInfo | None:
        return self.served[0] if self.served else None

    def as_json(self) -> dict:
        return {"served": [c.as_json() for c in self.served], "trusted": self.trusted,
                "trust_error": self.trust_error, "name_matches": self.name_matches, "complete": self.complete,
                "missing_issuer": self.missing, "store": self.store.as_json() if self.store else None}


@dataclass(frozen=True)
class HttpResult:
    redirect_status: int | None       # what http:// answered (None: nothing listens, or it failed)
    redirect_location: str | None
    redirect_ok: bool                 # permanent, to https://, same host, path and query kept
    redirect_note: str
    hsts_max_age: int | None          # None: no (valid) Strict-Transport-Security header
    upgrade_insecure_requests: bool
    mixed_content: tuple[tuple[str, str], ...]  # (class, URL) of the home page's insecure references
    https_note: str                   # why the https page was not read, if it was not

    def as_json(self) -> dict:
        return {"redirect": {"status": self.redirect_status, "location": self.redirect_location,
                             "ok": self.redirect_ok, "note": self.redirect_note},
                "hsts_max_age": self.hsts_max_age, "upgrade_insecure_requests": self.upgrade_insecure_requests,
                "mixed_content": [{"class": c, "url": u} for c, u in self.mixed_content],
                "https_note": self.https_note}


@dataclass(frozen=True)
class Findings:
    host: str
    port: int
    sni: str | None
    failure: str | None                  # set when no TLS handshake was possible at all: why
    protocols: tuple[ProtocolResult, ...] = ()
    groups: tuple[str, ...] = ()
    secure_renegotiation: bool | None = None
    fallback_scsv: bool | None = None    # None: not applicable (one protocol only)
    chain: ChainResult | None = None
    http: HttpResult | None = None
    elapsed: float = 0.0
    dh_bits: int | None = None           # the DHE prime's size, when DHE suites are offered

    def offered(self, name: str) -> bool:
        return any(p.name == name and p.offered for p in self.protocols)

    @property
    def offered_protocols(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.protocols if p.offered)

    def suites(self) -> tuple[tuple[str, Suite], ...]:
        return tuple((p.name, s) for p in self.protocols if p.offered for s in p.suites)
