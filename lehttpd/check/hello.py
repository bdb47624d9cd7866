"""One raw handshake probe: send a ClientHello built by tlslite-ng, read what comes back, close.

No key is ever exchanged: the ServerHello (or a TLS 1.3 HelloRetryRequest, asked for by sending no key share)
already says which version, suite and group the server picks, and in TLS 1.2 and older the certificates follow
in clear. This reaches what the system OpenSSL can no longer offer (SSLv2, SSLv3, RC4, export suites, TLS 1.0
at a low security level). Every answer, including silence, a dropped connection, plain HTTP and garbage,
becomes an `Answer`; nothing here raises on what a server sends. Each probe has one deadline for everything.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, replace

# tlslite-ng is imported here, once, by whoever imports this module: a first import racing in the probe threads
# can see a half-initialised tlslite module (NameError inside tlslite.utils.cryptomath).
from tlslite import extensions as ext
from tlslite.constants import AlertDescription, ECPointFormat, ExtensionType
from tlslite.messages import ClientHello, ServerHello
from tlslite.utils.codec import Parser

from lehttpd.check.suites import suite

SSL2, SSL3, TLS10, TLS11, TLS12, TLS13 = "SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"
PROTOCOLS = (SSL2, SSL3, TLS10, TLS11, TLS12, TLS13)
WIRE = {SSL3: (3, 0), TLS10: (3, 1), TLS11: (3, 2), TLS12: (3, 3), TLS13: (3, 4)}
NAME_OF = {wire: name for name, wire in WIRE.items()}
FALLBACK_SCSV = 0x5600
RENEGOTIATION_SCSV = 0x00FF

# Kinds of answer
ACCEPTED = "accepted"      # a ServerHello (or HelloRetryRequest) for the version offered
REFUSED = "refused"        # an alert, or a ServerHello for another version
CLOSED = "closed"          # the connection was closed (or reset) without a word
TIMEOUT = "timeout"        # no complete answer before the deadline
PLAIN_HTTP = "plain-http"  # the port speaks HTTP without TLS
GARBAGE = "garbage"        # bytes that are not TLS
UNREACHABLE = "unreachable"

MAX_READ = 256 * 1024  # a certificate chain is far smaller; anything longer is not an answer to us


@dataclass(frozen=True)
class Target:
    host: str           # what to connect to (name or address)
    port: int
    sni: str | None     # the server name sent (None for an IP literal)
    timeout: float = 3.0


@dataclass(frozen=True)
class Offer:
    version: str
    suites: tuple[int, ...]
    groups: tuple[int, ...] = ()
    fallback_scsv: bool = False
    want_certificates: bool = False
    want_key_exchange: bool = False  # read on to the ServerKeyExchange: the (EC)DHE group, the DH prime's size


@dataclass(frozen=True)
class Answer:
    kind: str
    version: str | None = None
    suite: int | None = None
    group: int | None = None                 # TLS 1.3 HelloRetryRequest's group, or the ECDHE curve (1.2)
    dh_bits: int | None = None               # size of the DHE prime (TLS 1.2 and older, when asked)
    secure_renegotiation: bool = False       # renegotiation_info in the ServerHello
    alert: int | None = None
    certificates: tuple[bytes, ...] = ()     # DER, as sent (TLS 1.2 and older, when asked)
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.kind == ACCEPTED


def probe(target: Target, offer: Offer) -> Answer:
    deadline = time.monotonic() + target.timeout
    try:
        sock = socket.create_connection((target.host, target.port), timeout=target.timeout)
    except OSError as error:
        return Answer(UNREACHABLE, detail=_reason(error))
    try:
        sock.sendall(client_hello(target.sni, offer))
        return read_answer(_Reader(sock, deadline), offer)
    except OSError as error:  # reset while sending or reading
        return Answer(CLOSED, detail=_reason(error))
    finally:
        sock.close()


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def client_hello(sni: str | None, offer: Offer) -> bytes:
    """The wire bytes of a ClientHello record for `offer`."""
    suites = list(offer.suites) + [RENEGOTIATION_SCSV] + ([FALLBACK_SCSV] if offer.fallback_scsv else [])
    if offer.version == SSL2:
        hello = ClientHello(ssl2=True).create((0, 2), os.urandom(16), b"", suites)
        body = hello.write()
        return bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    wire = WIRE[offer.version]
    legacy = min(wire, (3, 3))
    extensions = _extensions(sni, offer) if offer.version != SSL3 else None
    hello = ClientHello().create(legacy, os.urandom(32), os.urandom(32) if offer.version == TLS13 else b"",
                                 suites, extensions=extensions)
    body = hello.write()
    record_version = (3, 1) if wire >= (3, 1) else (3, 0)
    return bytes([22, *record_version, len(body) >> 8, len(body) & 0xFF]) + body


def _extensions(sni: str | None, offer: Offer) -> list:
    found = []
    if sni:
        try:
            name = sni.encode("idna")
        except UnicodeError:  # a name IDNA refuses (a label over 63 characters…): sent as it is
            name = sni.encode("utf-8", "replace")
        found.append(ext.SNIExtension().create(name))
    groups = list(offer.groups)
    if groups:
        found.append(ext.SupportedGroupsExtension().create(groups))
        found.append(ext.ECPointFormatsExtension().create([ECPointFormat.uncompressed]))
    if offer.version in (TLS12, TLS13):
        found.append(ext.SignatureAlgorithmsExtension().create(SIGNATURE_SCHEMES))
    if offer.version == TLS13:
        found.append(ext.SupportedVersionsExtension().create([(3, 4)]))
        found.append(ext.ClientKeyShareExtension().create([]))  # no share: the server answers with an HRR
        found.append(ext.TLSExtension(extType=ExtensionType.psk_key_exchange_modes).create(b"\x01\x01"))
    return found


# TLS 1.2/1.3 signature schemes, including the SHA-1 and SHA-224 ones old servers need
SIGNATURE_SCHEMES = [(4, 3), (5, 3), (6, 3), (8, 7), (8, 8), (8, 4), (8, 5), (8, 6), (8, 9), (8, 10), (8, 11),
                     (4, 1), (5, 1), (6, 1), (3, 3), (3, 1), (2, 3), (2, 1), (2, 2), (3, 2), (4, 2)]


class _Reader:
    """Bytes from the socket, never past the deadline nor past MAX_READ."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.data, self.eof = sock, deadline, b"", False

    def need(self, size: int) -> bool:
        while len(self.data) < size and not self.eof:
            left = self.deadline - time.monotonic()
            if left <= 0 or len(self.data) > MAX_READ:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            if not chunk:
                self.eof = True
            self.data += chunk
        return len(self.data) >= size


def read_answer(reader: _Reader, offer: Offer) -> Answer:
    if not reader.need(5):
        return _incomplete(reader)
    head = reader.data
    if head[:5] in (b"HTTP/", b"<!DOC", b"<html") or head[:4] == b"HTTP":
        return Answer(PLAIN_HTTP, detail=head.split(b"\r\n", 1)[0].decode("latin-1")[:80])
    if offer.version == SSL2 and head[0] & 0x80 and len(head) > 2 and head[2] == 4:
        return Answer(ACCEPTED, version=SSL2)
    if head[0] not in (21, 22) or head[1] != 3:
        return Answer(GARBAGE, detail=head[:16].hex())
    handshake = b""
    hello: Answer | None = None
    while True:
        if not reader.need(5):
            return hello or _incomplete(reader)
        kind, length = reader.data[0], int.from_bytes(reader.data[3:5], "big")
        if kind not in (21, 22) or length > 2 ** 14 + 2048:
            return hello or Answer(GARBAGE, detail=reader.data[:16].hex())
        if not reader.need(5 + length):
            return hello or _incomplete(reader)
        payload, reader.data = reader.data[5:5 + length], reader.data[5 + length:]
        if kind == 21:
            return hello or Answer(REFUSED, alert=payload[1] if len(payload) > 1 else None,
                                   detail=_alert_name(payload))
        handshake += payload
        while len(handshake) >= 4 and len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big"):
            size = int.from_bytes(handshake[1:4], "big")
            message, handshake = handshake[:4 + size], handshake[4 + size:]
            if hello is None:
                if message[0] != 2:
                    return Answer(GARBAGE, detail=f"handshake message {message[0]} before the ServerHello")
                hello = _server_hello(message, offer)
                if not hello.accepted or hello.version == TLS13 or not (
                        offer.want_certificates or offer.want_key_exchange):
                    return hello
            elif message[0] == 11:
                hello = _with_certificates(hello, message)
                if not offer.want_key_exchange:
                    return hello
            elif message[0] == 12:
                return _with_key_exchange(hello, message)
            elif message[0] == 14:  # ServerHelloDone: no (more) key exchange to read
                return hello


def _incomplete(reader: _Reader) -> Answer:
    if reader.eof:
        return Answer(CLOSED, detail="the server closed the connection" if not reader.data
                      else "the server closed the connection in the middle of a message")
    return Answer(TIMEOUT, detail="no complete answer in time")


def _server_hello(message: bytes, offer: Offer) -> Answer:
    try:
        hello = ServerHello().parse(Parser(bytearray(message[1:])))
    except Exception as error:  # tlslite raises assorted errors on malformed input
        return Answer(GARBAGE, detail=f"malformed ServerHello ({type(error).__name__})")
    version = tuple(hello.server_version)
    versions = hello.getExtension(ExtensionType.supported_versions)
    if versions is not None and getattr(versions, "version", None):
        version = tuple(versions.version)
    name = NAME_OF.get(version, f"{version}")
    if name != offer.version:
        return Answer(REFUSED, version=name, suite=hello.cipher_suite, detail=f"answered with {name}")
    group = None
    key_share = hello.getExtension(ExtensionType.key_share)
    if key_share is not None:
        group = getattr(key_share, "selected_group", None) or getattr(getattr(key_share, "server_share", None),
                                                                       "group", None)
    renegotiation = hello.getExtension(ExtensionType.renegotiation_info) is not None
    return Answer(ACCEPTED, version=name, suite=hello.cipher_suite, group=group,
                  secure_renegotiation=renegotiation)


def _with_certificates(hello: Answer, message: bytes) -> Answer:
    body, certificates = message[4:], []
    total = int.from_bytes(body[:3], "big")
    position = 3
    while position + 3 <= min(len(body), 3 + total):
        size = int.from_bytes(body[position:position + 3], "big")
        certificates.append(bytes(body[position + 3:position + 3 + size]))
        position += 3 + size
    return replace(hello, certificates=tuple(certificates))


def _with_key_exchange(hello: Answer, message: bytes) -> Answer:
    """The ECDHE named curve, or the size of the DHE prime, from a ServerKeyExchange (its first fields)."""
    body = message[4:]
    name = suite(hello.suite or 0).name.upper()
    if ("ECDHE" in name or "ECDH_ANON" in name or "AECDH" in name) and len(body) >= 3 and body[0] == 3:
        return replace(hello, group=int.from_bytes(body[1:3], "big"))
    if "ECDH" not in name and ("DHE" in name or "ANON" in name or name.startswith("ADH")) and len(body) >= 2:
        prime = body[2:2 + int.from_bytes(body[:2], "big")].lstrip(b"\x00")
        return replace(hello, dh_bits=len(prime) * 8 - (8 - prime[0].bit_length()) if prime else 0)
    return hello


def _alert_name(payload: bytes) -> str:
    if len(payload) < 2:
        return "alert"
    return f"alert {AlertDescription.toRepr(payload[1]) or payload[1]}"
