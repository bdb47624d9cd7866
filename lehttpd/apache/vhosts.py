"""Virtual hosts: what each one is (from Apache's own listing plus its block, read through Augeas, or by the plain
reader of blocks.py for a listing) and which ones serve a given set of names."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from typing import Mapping

from lehttpd.apache.discover import ApacheInfo, VhostLocation, expand, host_of_server_name, port_of
from lehttpd.apache.markers import MANAGED_VHOST_MARK
from lehttpd.apache.tree import ConfigParseError, ConfigReader, Node, ParsedFile, parse_files, unquote

MANAGED_MARK = MANAGED_VHOST_MARK.encode()


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
    has_server_name: bool = True      # False: Apache gives it the machine's name (a stock default vhost)
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


def vhost_from_block(location: VhostLocation, parsed: ParsedFile, node: Node, https_port: int,
                     defines: Mapping[str, str] | None = None) -> VirtualHost:
    """The VirtualHost a block describes; ${VAR} in its values is replaced by the Define'd value, as Apache does."""
    defines = defines or {}
    by_name: dict[str, list[Node]] = {}
    for child in node.children:  # one pass (named() per directive is a pass each)
        by_name.setdefault(child.name.lower(), []).append(child)

    def last(name: str) -> str | None:
        """The first value of the last such directive (Apache keeps the last one)."""
        found = by_name.get(name)
        return expand(unquote(found[-1].args[0]), defines) if found and found[-1].args else None

    names = [expand(unquote(child.args[0]), defines) for child in by_name.get("servername", ()) if child.args]
    aliases = tuple(expand(unquote(arg), defines) for child in by_name.get("serveralias", ()) for arg in child.args)
    engine = (last("sslengine") or "").lower()
    ports = {port_of(a) for a in location.addresses}
    ssl = engine in ("on", "optional") or (engine != "off" and https_port in ports and 80 not in ports
                                          and "sslcertificatefile" in by_name)
    server_name = host_of_server_name(names[-1]) if names else location.name if "servername" not in by_name else ""
    return VirtualHost(
        file=location.file, line=location.line, addresses=location.addresses, server_name=server_name,
        aliases=aliases, document_root=last("documentroot"), ssl=ssl,
        cert_file=last("sslcertificatefile"), key_file=last("sslcertificatekeyfile"),
        chain_file=last("sslcertificatechainfile"),
        managed=MANAGED_MARK in parsed.data[node.start:node.end], has_server_name="servername" in by_name,
        node=node)


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
        result.append(vhost_from_block(location, file, node, https_port, dict(info.defines)))
    return result, parsed, errors


def read_listing(info: ApacheInfo, https_port: int = 443) -> tuple[list[VirtualHost], list[ConfigParseError]]:
    """Every vhost Apache listed, for showing only: each block is read from the file's bytes by the plain reader
    (blocks.py); the files it declines go through Augeas (shallow). Never planned against (see read_vhosts)."""
    from lehttpd.apache.blocks import FileLines, read_block, read_bytes

    defines = dict(info.defines)
    files: dict[Path, tuple[ParsedFile, FileLines] | None] = {}
    found: dict[tuple[Path, int], VirtualHost] = {}
    declined: list[VhostLocation] = []
    for location in info.locations:
        if location.file not in files:
            try:
                data = read_bytes(location.file)
            except OSError:
                data = None  # Augeas' side reports it with its reason
            files[location.file] = None if data is None else (ParsedFile(location.file, data, ()), FileLines(data))
        entry = files[location.file]
        node = read_block(entry[1], location.line, LISTING_DIRECTIVES) if entry else None
        if node is None:
            declined.append(location)
        else:
            found[(location.file, location.line)] = vhost_from_block(location, entry[0], node, https_port, defines)
    errors: list[ConfigParseError] = []
    if declined:
        slow, _parsed, errors = read_vhosts(info, declined, None, https_port, shallow=True)
        found.update(((v.file, v.line), v) for v in slow)
    result = [found[key] for key in ((loc.file, loc.line) for loc in info.locations) if key in found]
    return result, errors


def candidates(info: ApacheInfo, names, https_port: int) -> list[VhostLocation]:
    """Locations that may serve one of `names` on any port, judged from Apache's own listing (cheap).

    Apache lists a vhost without ServerName under the machine's name, so those are kept as candidates too; the
    Augeas read of their block decides. The first vhost of each address (the default server answering names no
    vhost there has) is kept as well.
    """
    wanted = [n.lower() for n in names]
    chosen = []
    seen_addresses: set[str] = set()
    for location in info.locations:
        listed = [location.name.lower(), *(a.lower() for a in location.aliases)]
        first_here = any(a not in seen_addresses for a in location.addresses)
        seen_addresses.update(location.addresses)
        if any(_match(pattern, name) for pattern in listed for name in wanted) or not location.name \
                or "." not in location.name or first_here:
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
