"""From findings to a grade, A+ to F, following the public SSL Labs rating guide (2009q) and its later caps.

The score is 30 % protocol + 30 % key exchange + 40 % cipher strength (A from 80, B 65, C 50, D 35, E 20). Then
every rule of CAPS that holds lowers the grade to its cap; each is one line saying why, and the lehttpd command
that lifts it. A+ is an A with no warning and HSTS of at least 180 days (SSL Labs and testssl.sh agree).
Trust problems give T (untrusted) and M (name mismatch), shown with the grade the site would have without them.
The rules are data: a row is (id, cap, test, why, fix); a test returns None when the rule does not apply.
Rows marked "lehttpd" are lehttpd's own additions (the redirect and mixed content are no part of SSL Labs' grade).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from lehttpd.check.model import Findings

GRADES = ("A+", "A", "A-", "B", "C", "D", "E", "F")
TRUST_GRADES = ("T", "M")
HSTS_MIN = 15552000  # 180 days
PROTOCOL_SCORE = {"SSLv2": 0, "SSLv3": 80, "TLSv1.0": 90, "TLSv1.1": 95, "TLSv1.2": 100, "TLSv1.3": 100}
SCORE_GRADES = ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"), (0, "F"))
HARDEN = "lehttpd harden --profile intermediate"


@dataclass(frozen=True)
class Rule:
    id: str
    cap: str                                     # a grade from GRADES, or T / M
    test: Callable[[Findings], str | None]       # the detail when the rule holds, else None
    why: str                                     # one line; {detail} is replaced by the test's answer
    fix: str                                     # the command that lifts the cap; {name} is the site's name


@dataclass(frozen=True)
class Cap:
    id: str
    cap: str
    why: str
    fix: str

    def as_json(self) -> dict:
        return {"id": self.id, "cap": self.cap, "why": self.why, "fix": self.fix}


@dataclass(frozen=True)
class Grade:
    letter: str                 # A+ … F, or T / M
    score: int                  # 0–100 before caps
    caps: tuple[Cap, ...]       # every rule that holds, worst first
    without_trust_issues: str   # the letter if T / M were set aside

    def as_json(self) -> dict:
        return {"grade": self.letter, "score": self.score, "without_trust_issues": self.without_trust_issues,
                "caps": [c.as_json() for c in self.caps]}


def _offered(*names: str) -> Callable[[Findings], str | None]:
    return lambda f: ", ".join(n for n in names if f.offered(n)) or None


def _suites(predicate, protocols=None) -> Callable[[Findings], str | None]:
    def test(f: Findings) -> str | None:
        found = sorted({s.name for p, s in f.suites() if predicate(s) and (protocols is None or p in protocols)})
        return ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "") if found else None
    return test


def _none_of(predicate) -> Callable[[Findings], str | None]:
    return lambda f: "none" if f.suites() and not any(predicate(s) for _, s in f.suites()) else None


def _leaf(test) -> Callable[[Findings], str | None]:
    return lambda f: test(f.chain.leaf) if f.chain and f.chain.leaf else None


def _sslv3_only(f: Findings) -> str | None:
    return "SSLv3" if f.offered_protocols and max(f.offered_protocols, key=PROTOCOL_SCORE.get) == "SSLv3" \
        and all(n in ("SSLv2", "SSLv3") for n in f.offered_protocols) else None


def _sha1_signed(f: Findings) -> str | None:
    if not f.chain:
        return None
    weak = [c.subject for c in f.chain.served if not c.self_issued and "sha1" in c.signature_algorithm.lower()]
    return ", ".join(weak) or None


def _untrusted(f: Findings) -> str | None:
    return (f.chain.trust_error or "not trusted") if f.chain and not f.chain.trusted else None


def _expired(f: Findings) -> str | None:
    leaf = f.chain.leaf if f.chain else None
    now = dt.datetime.now(dt.timezone.utc)
    if leaf and (leaf.not_after < now or leaf.not_before > now):
        return f"valid {leaf.not_before:%Y-%m-%d} to {leaf.not_after:%Y-%m-%d}"
    return None


def _hsts_short(f: Findings) -> str | None:
    if f.http is None or f.http.https_note:
        return None if f.http is None else "not read"
    age = f.http.hsts_max_age
    return "missing" if age is None else f"max-age={age}" if age < HSTS_MIN else None


def _rsa_bits(limit: int) -> Callable[[Findings], str | None]:
    return _leaf(lambda c: f"{c.key_type} {c.key_bits}" if c.key_type == "RSA" and c.key_bits < limit else None)


def _blockable_mixed(f: Findings) -> str | None:
    if f.http is None or f.http.upgrade_insecure_requests:
        return None
    found = [url for cls, url in f.http.mixed_content if cls == "blockable"]
    return f"{len(found)}, e.g. {found[0]}" if found else None


CAPS: tuple[Rule, ...] = (
    Rule("sslv2", "F", _offered("SSLv2"), "SSLv2 is offered (DROWN)", HARDEN),
    Rule("weak-cipher", "F", _suites(lambda s: s.export or s.bits < 112),
         "export, NULL or under-112-bit suites: {detail}", HARDEN),
    Rule("anonymous", "F", _suites(lambda s: s.anonymous), "anonymous suites (no authentication): {detail}",
         HARDEN),
    Rule("sslv3-only", "F", _sslv3_only, "SSLv3 is the best protocol offered", HARDEN),
    Rule("rsa-1024", "F", _rsa_bits(1024), "certificate key under 1024 bits ({detail})",
         "lehttpd issue {name} --install  (a new ECDSA P-256 key)"),
    Rule("dh-1024", "F", lambda f: f"{f.dh_bits} bits" if f.dh_bits and f.dh_bits < 1024 else None,
         "DHE prime under 1024 bits ({detail}, Logjam)", HARDEN),
    Rule("md5", "F", _leaf(lambda c: c.signature_algorithm if "md5" in c.signature_algorithm.lower() else None),
         "certificate signed with MD5 ({detail})", "lehttpd issue {name} --install"),
    Rule("no-tls12", "C", lambda f: None if f.offered("TLSv1.2") or f.offered("TLSv1.3") else "none",
         "neither TLS 1.2 nor TLS 1.3 is offered", HARDEN),
    Rule("poodle", "C", _suites(lambda s: not s.aead and not s.rc4, ("SSLv3",)),
         "SSLv3 with CBC suites (POODLE): {detail}", HARDEN),
    Rule("rc4-modern", "C", _suites(lambda s: s.rc4, ("TLSv1.1", "TLSv1.2")), "RC4 with TLS 1.1 or later: {detail}",
         HARDEN),
    Rule("sweet32", "C", _suites(lambda s: s.small_block, ("TLSv1.1", "TLSv1.2")),
         "64-bit block ciphers with TLS 1.1 or later (SWEET32): {detail}", HARDEN),
    Rule("sslv3", "B", _offered("SSLv3"), "SSLv3 is offered", HARDEN),
    Rule("tls10-11", "B", _offered("TLSv1.0", "TLSv1.1"), "{detail} offered (deprecated by RFC 8996)", HARDEN),
    Rule("rc4", "B", _suites(lambda s: s.rc4), "RC4 offered: {detail}", HARDEN),
    Rule("no-forward-secrecy", "B", _none_of(lambda s: s.forward_secret), "no forward-secret suite", HARDEN),
    Rule("no-aead", "B", _none_of(lambda s: s.aead), "no AEAD suite (GCM, ChaCha20-Poly1305): CBC only", HARDEN),
    Rule("incomplete-chain", "B", lambda f: f.chain.missing if f.chain and f.chain.trusted and not f.chain.complete
         else None, "chain incomplete: the server does not send {detail}",
         "lehttpd install --cert-name {name}  (serves fullchain.pem)"),
    Rule("rsa-2048", "B", _rsa_bits(2048), "certificate key under 2048 bits ({detail})",
         "lehttpd issue {name} --install  (a new ECDSA P-256 key)"),
    Rule("dh-2048", "B", lambda f: f"{f.dh_bits} bits" if f.dh_bits and f.dh_bits < 2048 else None,
         "DHE prime under 2048 bits ({detail})", HARDEN),
    Rule("untrusted", "T", _untrusted, "certificate not trusted: {detail}",
         "lehttpd issue {name} --install  (or pass the private CA with --ca-bundle)"),
    Rule("expired", "T", _expired, "certificate not valid now ({detail})", "lehttpd renew --cert-name {name}"),
    Rule("sha1", "T", _sha1_signed, "certificate signed with SHA-1: {detail}", "lehttpd issue {name} --install"),
    Rule("name-mismatch", "M", lambda f: None if not f.chain or not f.chain.leaf or f.chain.name_matches
         else ", ".join(f.chain.leaf.names) or f.chain.leaf.subject,
         "certificate is not for this name (it names {detail})", "lehttpd issue {name} --install"),
    Rule("insecure-renegotiation", "A-", lambda f: "none" if f.secure_renegotiation is False else None,
         "secure renegotiation (RFC 5746) not supported", "upgrade Apache/OpenSSL"),
    Rule("no-fallback-scsv", "A", lambda f: "none" if f.fallback_scsv is False else None,
         "downgrade protection (TLS_FALLBACK_SCSV) missing", HARDEN),
    Rule("hsts", "A", _hsts_short, "Strict-Transport-Security {detail} (A+ needs max-age >= 180 days)",
         HARDEN + " --hsts"),
    Rule("redirect", "A", lambda f: f.http.redirect_note or None if f.http and f.http.redirect_status is not None
         and not f.http.redirect_ok else None, "{detail} [lehttpd]", "lehttpd redirect -d {name}"),
    Rule("mixed-content", "A", _blockable_mixed, "blockable mixed content on the home page: {detail} [lehttpd]",
         "lehttpd scan --vhost {name} --fix  (or lehttpd harden --uir)"),
)


def score(findings: Findings) -> int:
    offered = findings.offered_protocols
    protocol = (max(PROTOCOL_SCORE[p] for p in offered) + min(PROTOCOL_SCORE[p] for p in offered)) / 2
    suites = [s for _, s in findings.suites()]
    if suites:
        strengths = [_cipher_score(s.bits) for s in suites]
        cipher = (max(strengths) + min(strengths)) / 2
    else:  # SSLv2 only: its suites are not enumerated, and it is F whatever they are
        cipher = 0
    exchange = 0 if any(s.anonymous for s in suites) else _key_score(findings)
    return round(0.3 * protocol + 0.3 * exchange + 0.4 * cipher)


def _cipher_score(bits: int) -> int:
    return 0 if bits == 0 else 20 if bits < 128 else 80 if bits < 256 else 100


def _key_score(findings: Findings) -> int:
    """The weaker of the certificate's key and the DHE prime, in RSA-equivalent bits."""
    leaf = findings.chain.leaf if findings.chain else None
    if leaf is None:
        return 90  # unknown: do not let a missing certificate read as a strength
    bits = leaf.key_bits
    if leaf.key_type.startswith("EC") or leaf.key_type.startswith("Ed"):  # RSA-equivalent strength (NIST SP 800-57)
        bits = 1024 if bits < 224 else 2048 if bits < 256 else 3072 if bits < 384 else 7680
    if findings.dh_bits:
        bits = min(bits, findings.dh_bits)
    return 20 if bits < 512 else 40 if bits < 1024 else 80 if bits < 2048 else 90 if bits < 4096 else 100


def grade(findings: Findings, name: str | None = None) -> Grade:
    """The grade of an endpoint that speaks TLS (findings.failure is None)."""
    points = score(findings)
    letter = next(g for floor, g in SCORE_GRADES if points >= floor)
    target = name or findings.sni or findings.host
    caps: list[Cap] = []
    for rule in CAPS:
        detail = rule.test(findings)
        if detail is not None:
            caps.append(Cap(rule.id, rule.cap, rule.why.format(detail=detail), rule.fix.format(name=target)))
    plain = [c.cap for c in caps if c.cap in GRADES]
    worst = max([GRADES.index(letter), *(GRADES.index(c) for c in plain)])
    if GRADES[worst] == "A" and not plain:
        worst = 0  # A+: an A that no rule held back
    capped = GRADES[worst]
    trust = [c.cap for c in caps if c.cap in TRUST_GRADES]
    caps.sort(key=lambda c: (c.cap not in TRUST_GRADES, -GRADES.index(c.cap) if c.cap in GRADES else 0))
    return Grade(trust[0] if trust else capped, points, tuple(caps), capped)


def rank(letter: str | None) -> int:
    """Higher is better; T, M and no grade at all rank below F."""
    return len(GRADES) - GRADES.index(letter) if letter in GRADES else 0


def parse_grade(text: str) -> str:
    from lehttpd.errors import UsageError

    wanted = text.strip().upper()
    if wanted not in GRADES:
        raise UsageError(f"--min-grade {text!r}: use one of {', '.join(GRADES)}")
    return wanted
