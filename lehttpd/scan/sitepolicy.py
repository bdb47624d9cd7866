"""What `scan --crawl` may fetch, and fetching only there.

- Same site: the same scheme, host and port as the start URL (or --site-url), or a name Apache serves for the
  same vhost (--vhost), on that scheme and port. Another port on the same host is another site.
- Addresses: a name is resolved once and the answer checked; loopback, private, link-local, cloud-metadata and
  other non-public addresses are refused unless the site's own name resolved to that very address (a site on an
  intranet or on this machine), and metadata addresses always. The connection then goes to the checked address
  (`PinnedAdapter`): no second DNS lookup that a rebinding name could answer differently. The Host header, the
  TLS server name and the certificate check stay those of the name; TLS verification is never turned off.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud metadata services (AWS/GCP/Azure/OpenStack, Alibaba, AWS over IPv6): never fetched.
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254"))
Resolver = Callable[[str, int], list[str]]


class Refused(Exception):
    """A URL the crawler will not fetch, and why (reported as the page's problem)."""


class Unreachable(Refused):
    """A URL the crawler cannot fetch: its host does not resolve (a network failure, not a policy)."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin | None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return None
        return cls(scheme, parts.hostname.rstrip(".").lower(), port or _DEFAULT_PORTS[scheme])

    def netloc(self, host: str | None = None) -> str:
        host = host or self.host
        if ":" in host:
            host = f"[{host}]"
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (one lookup)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unreachable(f"cannot resolve {host}: {error}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def _not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address is not a public one, or None."""
    mapped = getattr(ip, "ipv4_mapped", None)
    ip = mapped or ip
    if ip in METADATA:
        return "a cloud metadata address"
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return "not a public address"
    return None


class SitePolicy:
    def __init__(self, start: str, extra_names: tuple[str, ...] = (), resolver: Resolver = resolve) -> None:
        origin = Origin.of(start)
        if origin is None:
            raise Refused(f"{start} is not an http(s) URL with a host")
        self.origin, self.resolver = origin, resolver
        self.names = frozenset((origin.host, *(n.rstrip(".").lower() for n in extra_names if "*" not in n)))
        self._pinned: dict[str, str] = {}
        self._resolved: dict[str, list[str]] = {}
        self.site_addresses: frozenset[str] | None = None  # None: the site's own name, any address but metadata
        self.address(origin.host)
        self.site_addresses = frozenset(a for a in self._resolved[origin.host] if _ip(a) not in METADATA)

    def same_site(self, url: str) -> bool:
        other = Origin.of(url)
        return other is not None and other.scheme == self.origin.scheme and other.port == self.origin.port \
            and other.host in self.names

    def address(self, host: str) -> str:
        """The checked address to connect to for host (resolved once, then always the same)."""
        if host not in self._pinned:
            self._pinned[host] = self._check(host)
        return self._pinned[host]

    def _check(self, host: str) -> str:
        addresses = [host] if _ip(host) is not None else self.resolver(host, self.origin.port)
        self._resolved[host] = addresses
        # the site's own name may be anywhere but on a metadata address; other names where the site is
        return first_allowed(host, addresses, self.site_addresses)


def first_allowed(host: str, addresses: list[str], also: frozenset[str] | None = frozenset()) -> str:
    """The first public address of host, or one of `also` (None: any non-metadata address); else Refused."""
    reasons = []
    for address in addresses:
        ip = _ip(address)
        why = "not an IP address" if ip is None else _not_public(ip)
        if why is None:
            return address
        if ip is not None and ip not in METADATA and (also is None or address in also):
            return address
        reasons.append(f"{address} is {why}")
    raise Refused(f"{host} resolves to {', '.join(reasons) or 'nothing'}")


def public_address(host: str, port: int, resolver: Resolver = resolve, trusted: frozenset[str] = frozenset()) -> str:
    """A public (or trusted) address of host, resolved once, to connect to; Refused for any other address."""
    return first_allowed(host, [host] if _ip(host) is not None else resolver(host, port), trusted)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None


class PinnedAdapter(HTTPAdapter):
    """A requests adapter that connects to one checked address for one name: the URL sent holds the address,
    the Host header, the TLS server name (SNI) and the certificate's name check are the name's."""

    def __init__(self, origin: Origin, host: str, address: str, pool_size: int) -> None:
        self.origin, self.host, self.address = origin, host, address
        super().__init__(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        if self.origin.scheme == "https":
            pool_kwargs.update(server_hostname=self.host, assert_hostname=self.host)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def get(self, path: str, headers: dict, timeout: float, verify: bool | str,
            method: str = "GET") -> requests.Response:
        """GET (or HEAD) path, with its query, on this name, streamed; redirects are the caller's to check."""
        url = f"{self.origin.scheme}://{self.origin.netloc(self.address)}{path}"
        prepared = requests.Request(method, url, headers={**headers, "Host": self.origin.netloc(self.host)}).prepare()
        return self.send(prepared, stream=True, timeout=timeout, verify=verify)
