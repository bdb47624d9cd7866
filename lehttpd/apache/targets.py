"""Following what Apache serves (pure): which :80 vhosts a name is routed to, which addresses Apache listens on, and
which Listen lines an SSL vhost on given addresses still needs.

A name goes to the vhost whose ServerName/ServerAlias matches on that address and port; when none does, Apache's
default vhost for the address (the first one listed there, `-S` says "default server") answers it. A port-less
`<VirtualHost *>` answers on every port.
"""
from __future__ import annotations

from dataclasses import dataclass

from lehttpd.apache.discover import port_of
from lehttpd.apache.vhosts import VirtualHost, is_http
from lehttpd.errors import UsageError

WILDCARD_HOSTS = ("*", "_default_", "", "0.0.0.0", "[::]")


@dataclass(frozen=True)
class HttpTargets:
    vhosts: tuple[VirtualHost, ...]
    http_port: int
    by_default: bool                 # no vhost names them: the default vhost(s) of the port answer
    main_server: bool = False        # no vhost at all on the port: the main server config answers


def host_of(address: str) -> str:
    """`[::1]:80` -> `[::1]`, `*:80` -> `*`, `*` -> `*`, `10.0.0.1` -> `10.0.0.1`."""
    if address.endswith("]"):
        return address
    host, sep, port = address.rpartition(":")
    return host if sep and (port.isdigit() or port == "*") else address


def on_port(vhost: VirtualHost, port: int) -> bool:
    return not vhost.ports or port in vhost.ports


def http_targets(vhosts, names, https_port: int, http_port: int | None = None) -> HttpTargets:
    """The non-SSL vhosts serving `names` on the HTTP port (80, the only port they use, or `http_port`); else the
    default vhosts of that port that have no ServerName (a named site answering an unknown name by default is not
    where that name is configured). None of these, while vhosts listen on that port, is refused here."""
    plain = [v for v in vhosts if is_http(v, https_port)]
    serving = [v for v in plain if any(v.serves(n) for n in names)]
    port = http_port or _http_port(serving or plain, names)
    chosen = [v for v in serving if on_port(v, port)]
    if chosen:
        return HttpTargets(tuple(chosen), port, False)
    on_this_port = [v for v in vhosts if on_port(v, port)]
    if not on_this_port:
        return HttpTargets((), port, True, main_server=True)
    defaults = [v for v in default_vhosts([v for v in plain if on_port(v, port)]) if not v.has_server_name]
    if not defaults:
        raise UsageError(f"no port-80 virtual host serves {', '.join(names)} "
                         f"(HTTP port {port}; see `lehttpd apache vhosts`)")
    return HttpTargets(tuple(defaults), port, True)


def _http_port(vhosts, names) -> int:
    ports = sorted({p for v in vhosts for p in v.ports})
    if not ports or 80 in ports:
        return 80
    if len(ports) == 1:
        return ports[0]
    raise UsageError(f"{', '.join(names)} is served on ports {', '.join(map(str, ports))}: say which is the HTTP one "
                     "with --http-port")


def default_vhosts(vhosts) -> list[VirtualHost]:
    """The first vhost of each address, in Apache's order: the one answering names no vhost there has."""
    seen: set[str] = set()
    chosen: list[VirtualHost] = []
    for vhost in vhosts:
        fresh = [a for a in vhost.addresses if host_of(a) not in seen]
        if fresh and vhost not in chosen:
            chosen.append(vhost)
        seen.update(host_of(a) for a in vhost.addresses)
    return chosen


def listens_on(globals_, port: int) -> list[str]:
    """The hosts of the Listen lines for `port` ("" for a Listen on every address)."""
    hosts = []
    for directive, values, _file in globals_:
        if directive.lower() != "listen" or not values:
            continue
        address = values[0]
        if address.isdigit():
            if int(address) == port:
                hosts.append("")
        elif port_of(address) == port:
            hosts.append(host_of(address))
    return hosts


def missing_listens(globals_, addresses, port: int) -> list[str]:
    """The Listen values an SSL vhost on `addresses` (already on `port`) needs and the configuration lacks."""
    hosts = listens_on(globals_, port)
    everywhere = any(h in WILDCARD_HOSTS for h in hosts)
    needed: list[str] = []
    for address in addresses:
        host = host_of(address)
        if host in WILDCARD_HOSTS:
            if not hosts:
                return [str(port)]
        elif not everywhere and host not in hosts and f"{host}:{port}" not in needed:
            needed.append(f"{host}:{port}")
    return needed


def probe_addresses(globals_, addresses, port: int) -> list[str]:
    """Where to make the check's handshake: each specific address of the vhost, else an address Apache listens on
    for that port (loopback when it listens everywhere)."""
    specific = [host_of(a).strip("[]") for a in addresses if host_of(a) not in WILDCARD_HOSTS]
    if specific:
        return list(dict.fromkeys(specific))
    listening = [h.strip("[]") for h in listens_on(globals_, port) if h not in WILDCARD_HOSTS]
    if listening and len(listening) == len(listens_on(globals_, port)):
        return listening[:1]
    return ["127.0.0.1"]
