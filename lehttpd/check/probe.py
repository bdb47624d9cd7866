"""Probing one HTTPS endpoint: protocols, suites per protocol, server order, groups, then the certificate chain and
the HTTP side, all in parallel threads, every step under one deadline. Returns a `Findings`; never raises on
what a server does (only on bad input from the user, before any connection).

Suites are enumerated as testssl.sh and sslyze do: offer every suite lehttpd knows, note the one the server
picks, offer the rest again, until it refuses. TLS 1.3 suites and groups come from HelloRetryRequests (no key
share is sent), so no probe computes a key.
"""
from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

from lehttpd.check import certs, hello, web
from lehttpd.check.hello import (ACCEPTED, GARBAGE, PLAIN_HTTP, PROTOCOLS, SSL2, TIMEOUT, TLS10, TLS11, TLS12,
                                 TLS13, UNREACHABLE, Answer, Offer, Target)
from lehttpd.check.model import Findings, ProtocolResult
from lehttpd.check.suites import TLS13_SUITES, catalogue, suite

# Groups offered (tlslite's names are IANA's): everything a server may pick, newest first.
GROUPS = {0x11EC: "X25519MLKEM768", 0x001D: "x25519", 0x001E: "x448", 0x0017: "secp256r1",
          0x0018: "secp384r1", 0x0019: "secp521r1", 0x001A: "brainpoolP256r1", 0x001B: "brainpoolP384r1",
          0x001C: "brainpoolP512r1", 0x0016: "secp256k1", 0x0015: "secp224r1", 0x0013: "secp192r1",
          0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096", 0x0103: "ffdhe6144",
          0x0104: "ffdhe8192"}
INAPPROPRIATE_FALLBACK = 86


@dataclass(frozen=True)
class CheckOptions:
    ca_bundle: Path | None = None
    config_dir: Path | None = None   # lehttpd's store, to say whether the served certificate is the current one
    http_port: int | None = 80       # None: do not test the http:// redirect
    timeout: float = 3.0             # per connection
    deadline: float = 20.0           # for the whole check
    http: bool = True                # HSTS, upgrade-insecure-requests, mixed content, redirect
    store_index: object | None = None  # a certs.StoreIndex read once for many checks (--all); else read here


def parse_target(text: str, default_port: int = 443) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6]:PORT → (host, port); a UsageError on anything else."""
    from lehttpd.errors import UsageError

    text = text.strip()
    if text.lower().startswith(("https://", "http://")):
        text = text.split("://", 1)[1].split("/", 1)[0]
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise UsageError(f"{text!r}: expected [ADDRESS]:PORT")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        if not number.isdigit():
            raise UsageError(f"{text!r}: the port must be a number")
        port = int(number)
    if not host or not 0 < port < 65536 or any(c.isspace() or c in "/?#@" for c in host):
        raise UsageError(f"{text!r} is not HOST[:PORT]")
    return host, port


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def check(host: str, port: int, sni: str | None = None, options: CheckOptions = CheckOptions()) -> Findings:
    """Everything `lehttpd check` reports about one endpoint."""
    started = time.monotonic()
    deadline = started + options.deadline
    name = sni or (None if is_ip(host) else host)
    address = resolve(host, port)
    if address is None:
        return Findings(host, port, name, f"cannot resolve {host}", elapsed=time.monotonic() - started)
    target = Target(address, port, name, min(options.timeout, options.deadline))
    first = hello.probe(target, Offer(TLS12, tuple(catalogue()), tuple(GROUPS)))
    failure = _hopeless(first)
    if failure:
        return Findings(host, port, name, failure, elapsed=time.monotonic() - started)
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        versions = {p: pool.submit(enumerate_protocol, target, p, deadline) for p in PROTOCOLS}
        groups = pool.submit(enumerate_groups, target, deadline)
        chain = pool.submit(certs.examine, target, options, deadline)
        http = pool.submit(web.examine, target, options, deadline) if options.http else None
        protocols = tuple(versions[p].result() for p in PROTOCOLS)
        fallback = pool.submit(fallback_scsv, target, protocols)
        offered = [p for p in protocols if p.offered]
        if not offered:
            why = next((p.note for p in protocols if p.name == TLS12), "")
            return Findings(host, port, name, "the server accepts no protocol lehttpd offered (SSLv2 to TLS 1.3, "
                                              f"every known suite; TLS 1.2: {why})", protocols,
                            elapsed=time.monotonic() - started)
        chain_result = chain.result()
        if not chain_result.served or len(chain_result.served) == 1:
            chain_result = certs.with_served_chain(chain_result, served_chain(target, protocols))
        dh = pool.submit(dh_size, target, protocols)
        findings = Findings(host, port, name, None, protocols, groups.result(),
                            secure_renegotiation=renegotiation(target, protocols), fallback_scsv=fallback.result(),
                            chain=chain_result, http=http.result() if http else None, dh_bits=dh.result())
    return replace(findings, elapsed=time.monotonic() - started)


def resolve(host: str, port: int) -> str | None:
    """One address for every probe: a name is looked up once, not once per ClientHello."""
    if is_ip(host):
        return host
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    except (OSError, UnicodeError):
        return None


def _hopeless(answer: Answer) -> str | None:
    """Why no TLS probe can succeed, judged from the first one; None when it is worth going on."""
    if answer.kind == UNREACHABLE:
        return f"cannot connect: {answer.detail}"
    if answer.kind == PLAIN_HTTP:
        return f"the port speaks plain HTTP, not TLS (it answered {answer.detail!r}): use the https port"
    if answer.kind == GARBAGE:
        return f"the server answered something that is not TLS ({answer.detail})"
    if answer.kind == TIMEOUT:
        return "no TLS answer in time (the server accepted the connection and said nothing)"
    return None


def enumerate_protocol(target: Target, protocol: str, deadline: float) -> ProtocolResult:
    """Whether `protocol` is accepted, and with which suites (in the server's order when it keeps one)."""
    if protocol == TLS13:
        remaining = list(TLS13_SUITES)
    elif protocol == SSL2:
        return _sslv2(target)
    else:
        remaining = list(catalogue())
    chosen: list[int] = []
    note = ""
    while remaining:
        if time.monotonic() > deadline:
            note = "stopped at the deadline"
            break
        answer = hello.probe(target, Offer(protocol, tuple(remaining), tuple(GROUPS)))
        if not answer.accepted:
            note = "" if chosen else (answer.detail or answer.kind)
            break
        if answer.suite not in remaining:  # a suite it was not offered: a broken server, stop here
            note = f"chose suite 0x{answer.suite or 0:04x}, which was not offered"
            break
        chosen.append(answer.suite)
        remaining.remove(answer.suite)
    order = server_order(target, protocol, chosen) if len(chosen) > 1 else None
    return ProtocolResult(protocol, bool(chosen), tuple(suite(code) for code in chosen), order, note)


def _sslv2(target: Target) -> ProtocolResult:
    # SSLv2 kinds: RC4/RC2/IDEA/DES/3DES with MD5, and their export forms
    answer = hello.probe(target, Offer(SSL2, (0x010080, 0x020080, 0x030080, 0x040080, 0x050080,
                                              0x060040, 0x0700C0)))
    return ProtocolResult(SSL2, answer.accepted, (), None, "" if answer.accepted else answer.detail or answer.kind)


def server_order(target: Target, protocol: str, chosen: list[int]) -> bool | None:
    """Offered in reverse, does the server still pick its first choice? (None: no clear answer.)"""
    answer = hello.probe(target, Offer(protocol, tuple(reversed(chosen)), tuple(GROUPS)))
    if not answer.accepted:
        return None
    return answer.suite == chosen[0]


def enumerate_groups(target: Target, deadline: float) -> tuple[str, ...]:
    """The groups the server accepts, in its order of preference: from TLS 1.3 HelloRetryRequests, or, without
    TLS 1.3, from the curve of each TLS 1.2-or-older ECDHE ServerKeyExchange."""
    found = _groups(target, TLS13, tuple(TLS13_SUITES), deadline)
    for older in (TLS12, TLS11, TLS10):
        if found:
            break
        ecdhe = tuple(code for code, s in catalogue().items() if s.forward_secret and "ECDH" in s.name.upper())
        found = _groups(target, older, ecdhe, deadline)
    return tuple(GROUPS.get(g, f"0x{g:04x}") for g in found)


def _groups(target: Target, protocol: str, suites: tuple[int, ...], deadline: float) -> list[int]:
    remaining, chosen = list(GROUPS), []
    while remaining and time.monotonic() < deadline:
        answer = hello.probe(target, Offer(protocol, suites, tuple(remaining), want_key_exchange=True))
        if not answer.accepted or answer.group not in remaining:
            break
        chosen.append(answer.group)
        remaining.remove(answer.group)
    return chosen


def dh_size(target: Target, protocols: tuple[ProtocolResult, ...]) -> int | None:
    """Size of the server's DHE prime when it offers DHE suites (TLS 1.2 and older), else None."""
    for protocol in reversed([p for p in protocols if p.offered and p.name not in (SSL2, TLS13)]):
        dhe = tuple(s.code for s in protocol.suites if s.forward_secret and "ECDH" not in s.name.upper())
        if dhe:
            answer = hello.probe(target, Offer(protocol.name, dhe, tuple(GROUPS), want_key_exchange=True))
            return answer.dh_bits if answer.accepted else None
    return None


def fallback_scsv(target: Target, protocols: tuple[ProtocolResult, ...]) -> bool | None:
    """Does the server refuse a downgraded retry (TLS_FALLBACK_SCSV, RFC 7507)? None with one protocol."""
    offered = [p for p in protocols if p.offered and p.name != SSL2]
    if len(offered) < 2:
        return None
    lower = offered[-2]
    answer = hello.probe(target, Offer(lower.name, tuple(s.code for s in lower.suites) or tuple(catalogue()),
                                       tuple(GROUPS), fallback_scsv=True))
    return answer.kind != ACCEPTED and answer.alert == INAPPROPRIATE_FALLBACK


def renegotiation(target: Target, protocols: tuple[ProtocolResult, ...]) -> bool | None:
    """Secure renegotiation (RFC 5746) where renegotiation exists (TLS 1.2 and older); None when TLS 1.3 only."""
    older = [p for p in protocols if p.offered and p.name not in (SSL2, TLS13)]
    if not older:
        return None
    best = older[-1]
    answer = hello.probe(target, Offer(best.name, tuple(s.code for s in best.suites), tuple(GROUPS)))
    return answer.secure_renegotiation if answer.accepted else None


def served_chain(target: Target, protocols: tuple[ProtocolResult, ...]) -> tuple[bytes, ...]:
    """The certificates as sent, read in clear from a TLS 1.2-or-older handshake (empty when TLS 1.3 only)."""
    older = [p for p in protocols if p.offered and p.name not in (SSL2, TLS13)]
    if not older:
        return ()
    best = older[-1]
    answer = hello.probe(target, Offer(best.name, tuple(s.code for s in best.suites), tuple(GROUPS),
                                       want_certificates=True))
    return answer.certificates
