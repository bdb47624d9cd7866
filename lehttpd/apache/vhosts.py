"""Virtual hosts: what each one is (from Apache's own listing plus its block read through Augeas) and which
ones serve a given set of names."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from lehttpd.apache.discover import ApacheInfo, VhostLocation, port_of
from lehttpd.apache.tree import ConfigParseError, ConfigReader, Node, ParsedFile, parse_files

MANAGED_MARK = b"# Managed by lehttpd for certificate"
REDIRECT_BEGIN = "# BEGIN lehttpd redirect"
REDIRECT_END = "# END lehttpd redirect"


@dataclass(frozen=True)
class VirtualHost:
    file: Path
    line: int
    addresses: tuple[str, ...]
    server_name: str
    aliases: tuple[str, ...]
    document_root: str | None
    ssl: bool
    cert_file: str | None
    key_file: str | None
    chain_file: str | None
    managed: bool = False
    node: Node | None = field(default=None, repr=False, compare=False)

    @property
    def names(self) -> tuple[str, ...]:
        names = ((self.server_name,) if self.server_name else ()) + self.aliases
        return tuple(dict.fromkeys(n.lower() for n in names))

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted({port_of(a) for a in self.addresses if port_of(a)}))

    def serves(self, name: str) -> bool:
        """True when a request for `name` would be answered by this vhost's ServerName/ServerAlias."""
        name = name.lower()
        for pattern in self.names:
            if pattern == name or (any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern)):
                return True
            if name.startswith("*.") and pattern == name:  # a wildcard lineage name served by a wildcard alias
                return True
        return False

    def as_json(self) -> dict:
        return {"file": str(self.file), "line": self.line, "addresses": list(self.addresses),
                "server_name": self.server_name, "aliases": list(self.aliases),
                "document_root": self.document_root, "ssl": self.ssl, "certificate": self.cert_file,
                "key": self.key_file, "chain": self.chain_file, "managed": self.managed}


def _first(node: Node, name: str) -> str | None:
    found = node.named(name)
    return found[-1].values[0] if found and found[-1].values else None


def vhost_from_block(location: VhostLocation, parsed: ParsedFile, node: Node, https_port: int) -> VirtualHost:
    names = [child.values[0] for child in node.named("ServerName") if child.values]
    aliases = tuple(v for child in node.named("ServerAlias") for v in child.values)
    engine = (_first(node, "SSLEngine") or "").lower()
    ports = {port_of(a) for a in location.addresses}
    ssl = engine in ("on", "optional") or (engine != "off" and https_port in ports and 80 not in ports
                                          and bool(node.named("SSLCertificateFile")))
    server_name = names[-1].split(":")[0] if names else location.name if not node.named("ServerName") else ""
    return VirtualHost(
        file=location.file, line=location.line, addresses=location.addresses, server_name=server_name,
        aliases=aliases, document_root=_first(node, "DocumentRoot"), ssl=ssl,
        cert_file=_first(node, "SSLCertificateFile"), key_file=_first(node, "SSLCertificateKeyFile"),
        chain_file=_first(node, "SSLCertificateChainFile"),
        managed=MANAGED_MARK in parsed.data[node.start:node.end], node=node)


LISTING_DIRECTIVES = frozenset({"servername", "serveralias", "documentroot", "sslengine", "sslcertificatefile",
                                "sslcertificatekeyfile", "sslcertificatechainfile", "listen", "namevirtualhost",
                                "sslstaplingcache"})


def read_vhosts(info: ApacheInfo, locations=None, parsed: dict[Path, ParsedFile] | None = None,
                https_port: int = 443, reader: ConfigReader | None = None, shallow: bool = False
                ) -> tuple[list[VirtualHost], dict[Path, ParsedFile], list[ConfigParseError]]:
    """Read the blocks of the given locations (all by default), parsing each file once."""
    locations = list(info.locations if locations is None else locations)
    parsed = dict(parsed or {})
    todo = [loc.file for loc in locations if loc.file not in parsed]
    fresh, errors = parse_files(dict.fromkeys(todo), reader, LISTING_DIRECTIVES if shallow else None)
    parsed.update(fresh)
    result: list[VirtualHost] = []
    for location in locations:
        file = parsed.get(location.file)
        if file is None:
            continue
        node = file.block_at_line("VirtualHost", location.line)
        if node is None:
            errors.append(ConfigParseError(location.file, location.line, "Apache lists a vhost here that "
                                                                          "Augeas does not see"))
            continue
        result.append(vhost_from_block(location, file, node, https_port))
    return result, parsed, errors


def candidates(info: ApacheInfo, names, https_port: int) -> list[VhostLocation]:
    """Locations that may serve one of `names` on any port, judged from Apache's own listing (cheap).

    Apache lists a vhost without ServerName under the machine's name, so those are kept as candidates too; the
    Augeas read of their block decides.
    """
    wanted = [n.lower() for n in names]
    chosen = []
    for location in info.locations:
        listed = [location.name.lower(), *(a.lower() for a in location.aliases)]
        if any(_match(pattern, name) for pattern in listed for name in wanted) or not location.name \
                or "." not in location.name:
            chosen.append(location)
    return chosen


def _match(pattern: str, name: str) -> bool:
    if pattern == name:
        return True
    return any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern)


def is_http(vhost: VirtualHost, https_port: int) -> bool:
    return not vhost.ssl and https_port not in vhost.ports


def ssl_twin(vhost: VirtualHost, all_vhosts: list[VirtualHost], https_port: int) -> VirtualHost | None:
    """The SSL vhost answering for the same ServerName (or, without one, for the same aliases)."""
    for other in all_vhosts:
        if other is vhost or not (other.ssl or https_port in other.ports):
            continue
        if vhost.server_name and other.server_name.lower() == vhost.server_name.lower():
            return other
        if not vhost.server_name and set(other.names) & set(vhost.names):
            return other
    return None
