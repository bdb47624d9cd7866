"""Resolve a reference against the page's future https URL and decide whether it is mixed content."""
from __future__ import annotations

import ipaddress
import operator
import re
from urllib.parse import unquote, urljoin

from lehttpd.scan.model import BLOCKABLE, INSECURE_BASE, UPGRADABLE, Finding, Ref, findings_of

_AUTHORITY = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://([^/?#]*)")
# http://host with nothing after the host that needs the slow path (userinfo, port, IPv6): possessive, so
# that "http://user@host" fails rather than matching a shorter host
_PLAIN_HOST = re.compile(r"http://([^/?#@:\[]*+)(?![@:\[])")
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
    https/relative under an https base or absolute http. The rest follows the WHATWG URL parser for special
    schemes: backslashes are slashes, any number of slashes before the host, and `http:x` without slashes is
    relative when the base is http too (otherwise x is the host)."""
    value = clean(value)
    if value.startswith("http://") and "\\" not in value and value[7:8] != "/":
        resolved = value  # already as the parser writes it (keeping the object halves what workers send)
    elif (m := _SCHEME.match(value)) is not None:
        if m.group(1).lower() != "http":
            return None
        rest = value[m.end():].replace("\\", "/")
        if base[:5].lower() == "http:" and not rest.startswith("//"):
            resolved = urljoin(base, rest)  # "special relative or authority state": same scheme as the base
        else:
            resolved = "http://" + rest.lstrip("/")  # "special authority ignore slashes state"
    elif base.startswith("http:"):
        resolved = urljoin(base, value.replace("\\", "/"))
    else:
        return None
    host = host_of(resolved)
    kind = _HOST_KINDS.get(host) or _host_kind(host)
    if not host or kind[0]:
        return None
    return resolved, kind[2] or host, kind[1]


def https_of(url: str) -> str:
    """The same URL over https: what a page's URL will be once the site has moved."""
    return "https:" + url[5:] if url.lower().startswith("http:") else url


def host_of(url: str) -> str:
    """The host of an http(s) URL, lower case, without userinfo, port or trailing dot (urlsplit is slow)."""
    plain = _PLAIN_HOST.match(url)  # the usual case: no userinfo, port or IPv6 literal
    if plain is not None:
        return plain.group(1).rstrip(".").lower()
    authority = _AUTHORITY.match(url)
    if authority is None:
        return ""
    host = authority.group(1).rpartition("@")[2]
    if host.startswith("["):
        return host[1:host.find("]")].lower() if "]" in host else ""
    return host.partition(":")[0].rstrip(".").lower()


_START = operator.itemgetter(8)  # a row's start offset, read in C
_HOST_KINDS: dict[str, tuple[bool, bool, str]] = {}
_FORBIDDEN_HOST = frozenset(" #%/:<>?@[\\]^|\x00\t\n\r")  # WHATWG forbidden domain code points (with %)
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)")


def _host_kind(host: str) -> tuple[bool, bool, str]:
    """(not mixed content, IP literal, the host as the URL parser writes it), cached: a site's hosts repeat
    from page to page. localhost and loopback addresses are potentially trustworthy: fetching them is not
    mixed content; a host the URL parser rejects is never fetched, so it is not mixed content either."""
    canonical = _canonical_host(host)
    if canonical is None:
        kind = (True, False, host)
    else:
        ip = ip_literal(canonical)
        kind = (canonical == "localhost" or canonical.endswith(".localhost") or (ip is not None and ip.is_loopback),
                ip is not None, canonical)
    if len(_HOST_KINDS) >= 4096:
        _HOST_KINDS.clear()
    _HOST_KINDS[host] = kind
    return kind


def _canonical_host(host: str) -> str | None:
    """The WHATWG host parser for the cases that change a host: percent-decoding, forbidden code points, and
    IPv4 addresses written as numbers in hex, octal or fewer than four parts (`0x7f.1` is 127.0.0.1). None
    when the parser fails (`09`, `example.255`, `ex ample.org`)."""
    if "%" in host:
        host = unquote(host).lower()
    if host.startswith("[") or ":" in host:  # an IPv6 literal, checked by ipaddress later
        return host
    if any(c in _FORBIDDEN_HOST for c in host):
        return None
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not _NUMBER.fullmatch(parts[-1]):
        return host  # a domain: the last label is not a number
    return _ipv4(parts)


def _ipv4(parts: list[str]) -> str | None:
    if len(parts) > 4:
        return None
    numbers = []
    for part in parts:
        if not _NUMBER.fullmatch(part):
            return None
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            if any(c in "89" for c in part):
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for index, n in enumerate(numbers[:-1]):
        value += n * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(value))


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
    for start, end, written, value, element, attribute, cls, at in refs:
        if cls == INSECURE_BASE:
            resolved, host, ip = base, host_of(base), False
        else:
            insecure = _insecure(value, base)
            if insecure is None:
                continue
            resolved, host, ip = insecure
        if ip and cls == UPGRADABLE:
            cls = BLOCKABLE  # browsers do not upgrade requests to IP literals
        where = start if at < 0 else at  # a URL in a nested document is shown at its attribute
        if where < counted:  # out of order (rare): count again from the start
            line, counted = 1, 0
        line += count("\n", counted, where)
        counted = where
        out.append((line, where - rfind("\n", 0, where), element, attribute, written, resolved, cls, host,
                    start, end))
    out.sort(key=_START)  # in page order (a <base> or a nested document can come out of order)
    return out
