"""How a check is shown: a few aligned lines for people, one JSON document for scripts."""
from __future__ import annotations

import datetime as dt

from lehttpd.check.grade import Grade
from lehttpd.check.hello import PROTOCOLS
from lehttpd.check.model import Findings


def as_json(findings: Findings, result: Grade | None) -> dict:
    chain, http = findings.chain, findings.http
    return {"host": findings.host, "port": findings.port, "sni": findings.sni, "failure": findings.failure,
            "grade": result.letter if result else None, "rating": result.as_json() if result else None,
            "protocols": [p.as_json() for p in findings.protocols],
            "offered_protocols": list(findings.offered_protocols), "groups": list(findings.groups),
            "secure_renegotiation": findings.secure_renegotiation, "dh_bits": findings.dh_bits, "fallback_scsv": findings.fallback_scsv,
            "certificate": chain.as_json() if chain else None, "http": http.as_json() if http else None,
            "elapsed_seconds": round(findings.elapsed, 3)}


def text(findings: Findings, result: Grade | None, now: dt.datetime, paint=lambda text, colour: text) -> str:
    where = f"{findings.sni or findings.host} ({findings.host}:{findings.port})"
    if findings.failure or result is None:
        return f"{where}  no grade: {findings.failure}"
    colour = "green" if result.letter in ("A+", "A") else "yellow" if result.letter in ("A-", "B") else "red"
    head = f"{where}  grade {paint(result.letter, colour)}"
    if result.letter != result.without_trust_issues:
        head += f" ({result.without_trust_issues} if trust issues are fixed)"
    lines = [f"{head}  score {result.score}  in {findings.elapsed:.2f} s"]
    offered = findings.offered_protocols
    refused = [p for p in PROTOCOLS if p not in offered]
    lines.append(_row("protocols", " ".join(offered) + (f"   (refused: {', '.join(refused)})" if refused else "")))
    for protocol in findings.protocols:
        if protocol.offered and protocol.suites:
            order = {True: "server order", False: "client order", None: ""}[protocol.server_order]
            names = ", ".join(s.name for s in protocol.suites)
            lines.append(_row(protocol.name, f"{len(protocol.suites)} suites{', ' + order if order else ''}: {names}"))
    suites = [s for _, s in findings.suites()]
    if suites:
        fs = sum(s.forward_secret for s in suites)
        aead = sum(s.aead for s in suites)
        lines.append(_row("suites", f"forward secrecy {fs}/{len(suites)}, AEAD {aead}/{len(suites)}"
                                    f"{' (CBC too)' if aead < len(suites) else ''}"))
    if findings.groups or findings.dh_bits:
        dh = f"   DHE prime {findings.dh_bits} bits" if findings.dh_bits else ""
        lines.append(_row("groups", " ".join(findings.groups) + dh))
    lines.extend(_certificate_lines(findings, now))
    lines.extend(_http_lines(findings))
    for cap in result.caps:
        lines.append(f"  {paint(cap.cap.ljust(2), 'bold')}  {cap.why}  ->  {cap.fix}")
    return "\n".join(lines)


def _row(label: str, value: str) -> str:
    return f"  {label:<11} {value}"


def _certificate_lines(findings: Findings, now: dt.datetime) -> list[str]:
    chain = findings.chain
    if chain is None or chain.leaf is None:
        return [_row("certificate", "not read")]
    leaf = chain.leaf
    trust = "trusted" if chain.trusted else f"NOT trusted ({chain.trust_error})"
    complete = "chain complete" if chain.complete else f"chain incomplete (missing {chain.missing})"
    names = "name matches" if chain.name_matches else "NAME MISMATCH"
    lines = [_row("certificate", f"{leaf.subject}  {leaf.key_type} {leaf.key_bits}  {leaf.signature_algorithm}"),
             _row("", f"issuer {leaf.issuer}, {leaf.days_left(now):.0f} days left "
                      f"(until {leaf.not_after:%Y-%m-%d}), {_sent(findings)}"),
             _row("", f"{trust}, {complete}, {names}")]
    store = chain.store
    if store is not None:
        if store.lineage is None:
            lines.append(_row("store", "not a certificate from lehttpd's store"))
        elif store.current:
            lines.append(_row("store", f"lineage {store.lineage}, version {store.served_version} (current)"))
        else:
            lines.append(_row("store", f"lineage {store.lineage}: serves version {store.served_version}, current "
                                       f"is {store.current_version} (reload Apache: apache2ctl graceful)"))
    return lines


def _sent(findings: Findings) -> str:
    if any(p.offered for p in findings.protocols if p.name not in ("SSLv2", "TLSv1.3")):
        return f"{len(findings.chain.served)} sent"
    return "leaf shown (over TLS 1.3 only the rest of the chain is encrypted; it verified)" \
        if findings.chain.trusted else "leaf shown (over TLS 1.3 only the rest of the chain is encrypted)"


def _http_lines(findings: Findings) -> list[str]:
    http = findings.http
    if http is None:
        return []
    if http.redirect_ok:
        redirect = f"http:// -> {http.redirect_status} {http.redirect_location} (path and query kept)"
        if http.redirect_note:
            redirect += f"; {http.redirect_note}"
    else:
        redirect = http.redirect_note or f"http:// answered {http.redirect_status}"
    lines = [_row("http", redirect)]
    if http.https_note:
        return lines + [_row("", http.https_note)]
    hsts = f"HSTS max-age={http.hsts_max_age}" if http.hsts_max_age is not None else "no HSTS"
    uir = "upgrade-insecure-requests" if http.upgrade_insecure_requests else "no upgrade-insecure-requests"
    mixed = f"{len(http.mixed_content)} insecure reference(s) on the home page" if http.mixed_content \
        else "no mixed content on the home page"
    return lines + [_row("", f"{hsts}; {uir}; {mixed}")]
