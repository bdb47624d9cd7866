"""Resolve a reference against the page's future https URL and decide whether it is mixed content."""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import urljoin

from lehttpd.scan.model import BLOCKABLE, INSECURE_BASE, UPGRADABLE, Finding, Ref, findings_of

_AUTHORITY = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://([^/?#]*)")
_PLAIN_HOST = re.compile(r"[^/?#@:\[]*")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
URL_STRIP = "".join(chr(c) for c in range(0x21))  # the URL parser strips C0 controls and spaces…
URL_REMOVED = str.maketrans("", "", "\t\n\r")       # …and removes tabs and newlines anywhere


def clean(value: str) -> str:
    value = value.strip(URL_STRIP)
    return value.translate(URL_REMOVED) if ("\n" in value or "\t" in value or "\r" in value) else value


def insecure_url(value: str, base: str) -> tuple[str, str] | None:
    """(resolved URL, host) when fetching `value` from a page at `base` would use plain http, else None."""
    insecure = _insecure(value, base)
    return None if insecure is None else insecure[:2]


def _insecure(value: str, base: str) -> tuple[str, str, bool] | None:
    """insecure_url, and whether the host is an IP literal. Fast path first: nearly every reference is either
    https/relative under an https base or absolute http."""
    value = clean(value)
    if value.startswith("http://") and "\\" not in value:
        resolved = value  # already as the parser writes it (keeping the object halves what workers send)
    elif (m := _SCHEME.match(value)) is not None:
        if m.group(1).lower() != "http":
            return None
        rest = value[m.end():].replace("\\", "/")
        resolved = "http://" + rest.lstrip("/") if not rest.startswith("//") else "http:" + rest
    elif base.startswith("http:"):
        resolved = urljoin(base, value.replace("\\", "/"))
    else:
        return None
    host = host_of(resolved)
    kind = _HOST_KINDS.get(host) or _host_kind(host)
    if not host or kind[0]:
        return None
    return resolved, host, kind[1]


def https_of(url: str) -> str:
    """The same URL over https: what a page's URL will be once the site has moved."""
    return "https:" + url[5:] if url.lower().startswith("http:") else url


def host_of(url: str) -> str:
    """The host of an http(s) URL, lower case, without userinfo, port or trailing dot (urlsplit is slow)."""
    if url.startswith("http://"):  # the usual case: no userinfo, port or IPv6 literal
        host = _PLAIN_HOST.match(url, 7).group()
        if url[7 + len(host):8 + len(host)] not in ("@", ":", "["):
            return host.rstrip(".").lower()
    authority = _AUTHORITY.match(url)
    if authority is None:
        return ""
    host = authority.group(1).rpartition("@")[2]
    if host.startswith("["):
        return host[1:host.find("]")].lower() if "]" in host else ""
    return host.partition(":")[0].rstrip(".").lower()


_HOST_KINDS: dict[str, tuple[bool, bool]] = {}


def _host_kind(host: str) -> tuple[bool, bool]:
    """(potentially trustworthy, IP literal), cached: a site's hosts repeat from page to page. localhost and
    loopback addresses are potentially trustworthy: fetching them is not mixed content."""
    ip = ip_literal(host)
    kind = (host == "localhost" or host.endswith(".localhost") or (ip is not None and ip.is_loopback),
            ip is not None)
    if len(_HOST_KINDS) >= 4096:
        _HOST_KINDS.clear()
    _HOST_KINDS[host] = kind
    return kind


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not host or not (host[0].isdigit() or ":" in host):
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def findings_for(refs: list[Ref], base_ref: Ref | None, page_url: str, page: str, text: str) -> list[Finding]:
    """The refs that are mixed content once resolved against the page URL and its <base>."""
    return list(findings_of(page, finding_rows(refs, base_ref, page_url, text)))


def finding_rows(refs: list[Ref], base_ref: Ref | None, page_url: str, text: str) -> list[tuple]:
    """findings_for as plain tuples, a Finding's fields after `page`, in the order of the page. Line and
    column are 1-based and counted in characters, lines counted forward from the previous finding."""
    base = page_url
    out: list[tuple] = []
    if base_ref is not None:
        base = urljoin(page_url, clean(base_ref.value)) or page_url
        if not base.lower().startswith(("http:", "https:")):
            base = page_url
        refs = [base_ref, *refs] if base.lower().startswith("http:") else refs
    count, rfind = text.count, text.rfind
    line, counted = 1, 0  # the line of offset `counted`
    for start, end, written, value, element, attribute, cls in refs:
        if cls == INSECURE_BASE:
            resolved, host, ip = base, host_of(base), False
        else:
            insecure = _insecure(value, base)
            if insecure is None:
                continue
            resolved, host, ip = insecure
        if ip and cls == UPGRADABLE:
            cls = BLOCKABLE  # browsers do not upgrade requests to IP literals
        if start < counted:  # out of order (rare): count again from the start
            line, counted = 1, 0
        line += count("\n", counted, start)
        counted = start
        out.append((line, start - rfind("\n", 0, start), element, attribute, written, resolved, cls, host,
                    start, end))
    out.sort(key=_start)
    return out


def _start(row: tuple) -> int:
    return row[8]
