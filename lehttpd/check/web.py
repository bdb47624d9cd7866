"""The HTTP side of a check: http:// redirects permanently to https:// keeping path and query; the home page over
a verified https connection: Strict-Transport-Security, upgrade-insecure-requests, and its mixed content
(through `lehttpd scan`'s engine). An untrusted certificate means the page is not read: verification is never
turned off to look at it.
"""
from __future__ import annotations

import http.client
import re
import socket
import ssl
import time
from urllib.parse import urlsplit

from lehttpd.check.certs import connect_verified
from lehttpd.check.hello import Target
from lehttpd.check.model import HttpResult
from lehttpd.scan.pages import scan_bytes

PROBE_PATH = "/lehttpd-check/probe?x=1&y=2"
MAX_PAGE = 2 * 1024 * 1024
PERMANENT = (301, 308)
_MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:;|$)", re.IGNORECASE)


def examine(target: Target, options, deadline: float) -> HttpResult:
    name = target.sni or target.host
    status, location, note = _redirect(target, options.http_port, name, deadline)
    wanted = https_url(name, target.port, PROBE_PATH)
    redirect_ok = status in PERMANENT and redirect_keeps(location, wanted)
    if status is not None and not redirect_ok:
        note = _redirect_problem(status, location, wanted)
    elif redirect_ok and location != wanted:  # another https host (www. ↔ apex) is a choice, not a fault
        note = f"redirects to another https host: {location}"
    hsts, uir, mixed, https_note = None, False, (), ""
    try:
        headers, body = _fetch_home(target, options.ca_bundle, deadline)
        hsts = hsts_max_age(headers.get_all("Strict-Transport-Security") or [])
        uir = any("upgrade-insecure-requests" in v.lower() for v in headers.get_all("Content-Security-Policy") or [])
        if body is not None:
            mixed = mixed_content(body, https_url(name, target.port, "/"), headers.get_content_charset())
    except ssl.SSLCertVerificationError as error:
        https_note = f"home page not read: certificate not trusted ({error.verify_message})"
    except (ssl.SSLError, OSError, http.client.HTTPException) as error:
        https_note = f"home page not read: {type(error).__name__}: {error}"
    return HttpResult(status, location, redirect_ok, note, hsts, uir, mixed, https_note)


def https_url(name: str, port: int, path: str) -> str:
    host = f"[{name}]" if ":" in name else name
    return f"https://{host}{'' if port == 443 else f':{port}'}{path}"


def _redirect(target: Target, http_port: int | None, name: str, deadline: float
              ) -> tuple[int | None, str | None, str]:
    if not http_port:
        return None, None, "not tested (no http port given)"
    try:
        timeout = max(0.1, min(target.timeout, deadline - time.monotonic()))
        with socket.create_connection((target.host, http_port), timeout=timeout) as sock:
            response = _request(sock, name, PROBE_PATH)
            return response.status, response.getheader("Location"), ""
    except (OSError, http.client.HTTPException) as error:
        return None, None, f"nothing answers http://{name}:{http_port}/ ({type(error).__name__}: {error})"


def _redirect_problem(status: int, location: str | None, wanted: str) -> str:
    if status not in (301, 302, 303, 307, 308):
        return f"http:// answers {status} without redirecting to https://"
    if not location or not location.lower().startswith("https://"):
        return f"http:// redirects to {location!r}, not to https://"
    if status not in PERMANENT:
        return f"http:// redirects with {status} (temporary); browsers and search engines want 301 or 308"
    return f"the redirect loses the path or query: {PROBE_PATH} went to {location}"


def redirect_keeps(location: str | None, wanted: str) -> bool:
    """To https://, with the path and query of the request (the host may differ: www. to apex and back)."""
    if not location or not location.lower().startswith("https://"):
        return False
    parts, expected = urlsplit(location), urlsplit(wanted)
    return (parts.path, parts.query) == (expected.path, expected.query)


def _request(sock: socket.socket, name: str, path: str) -> http.client.HTTPResponse:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: lehttpd-check\r\n"
                 f"Accept: text/html\r\nConnection: close\r\n\r\n".encode("ascii", "replace"))
    response = http.client.HTTPResponse(sock, method="GET")
    response.begin()
    return response


def _fetch_home(target: Target, ca_bundle, deadline: float):
    timeout = max(0.1, min(target.timeout, deadline - time.monotonic()))
    with connect_verified(target, ca_bundle, timeout) as tls:
        response = _request(tls, target.sni or target.host, "/")
        body = None
        if response.status == 200 and "html" in (response.getheader("Content-Type") or "text/html").lower():
            body = _read_until(response, deadline)
        return response.headers, body


def _read_until(response: http.client.HTTPResponse, deadline: float) -> bytes:
    data = b""
    while len(data) < MAX_PAGE and time.monotonic() < deadline:
        chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
        if not chunk:
            break
        data += chunk
    return data[:MAX_PAGE]


def hsts_max_age(values: list[str]) -> int | None:
    """max-age of the first Strict-Transport-Security header (RFC 6797: later ones are ignored)."""
    if not values:
        return None
    match = _MAX_AGE.search(values[0])
    return int(match.group(1)) if match else None


def mixed_content(body: bytes, url: str, charset: str | None) -> tuple[tuple[str, str], ...]:
    result = scan_bytes(body, url, url, False, charset)
    return tuple((finding.cls, finding.resolved) for finding in result.findings)
