"""Reading what a command needs, and nothing more: Apache's own listing, then Augeas on the touched files only.

`open_tree` is shared by the CLI commands and by `install_lineage`, the entry point `lehttpd issue --install` calls.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from lehttpd.apache.blocks import read_bytes
from lehttpd.apache.discover import ApacheInfo, Source, discover, parse_version
from lehttpd.apache.static import discover_static
from lehttpd.apache.tree import ConfigParseError, ConfigReader, ParsedFile, parse_files
from lehttpd.apache.vhosts import VirtualHost, candidates, read_listing, read_vhosts

if TYPE_CHECKING:
    from lehttpd.apache.plan import Tree

GLOBAL_DIRECTIVES = ("listen", "namevirtualhost", "sslstaplingcache", "sslprotocol")
_GLOBAL_RE = re.compile(rb"(?im)^[ \t]*(listen|namevirtualhost|sslstaplingcache|sslprotocol)[ \t]")
_SSL_ENGINE_RE = re.compile(rb"(?im)^[ \t]*SSLEngine[ \t]+(on|optional)")


def read_file(path: Path) -> bytes | None:
    try:
        return read_bytes(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def discover_source(source: Source, reader: ConfigReader | None) -> tuple[ApacheInfo, dict[Path, ParsedFile],
                                                                  list[ConfigParseError]]:
    if source.static:
        version = parse_version(source.apache_version) if source.apache_version else (2, 4, 62)
        return discover_static(source.server_root, source.config, version, reader)
    info = source.started.result() if source.started is not None else discover(source.apache_ctl)
    if source.apache_version:
        info = _with_version(info, parse_version(source.apache_version))
    return info, {}, []


def _with_version(info: ApacheInfo, version) -> ApacheInfo:
    return replace(info, version=version)


def list_vhosts(source: Source, https_port: int) -> tuple[ApacheInfo, list[VirtualHost], list[ConfigParseError]]:
    """What `lehttpd apache vhosts` shows. Live, each block Apache located is read from its bytes (blocks.py),
    Augeas only for what that reader declines; a static tree was walked through Augeas already. Reading only."""
    if source.static:
        reader = ConfigReader()
        try:
            info, parsed, errors = discover_source(source, reader)
            vhosts, _parsed, more = read_vhosts(info, None, parsed, https_port, reader, shallow=True)
        finally:
            reader.close()
        return info, vhosts, _unique(errors + more)
    info, _parsed, errors = discover_source(source, None)
    vhosts, more = read_listing(info, https_port)
    return info, vhosts, _unique(errors + more)


def open_tree(source: Source, https_port: int | None, names=None, all_vhosts: bool = False, ssl_only: bool = False,
              on_discovered: Callable[[Path], object] | None = None) -> tuple[Tree, list[ConfigParseError]]:
    """Discover, then parse only the vhost files that can matter (those listed under `names`, or the SSL ones).
    `https_port` None: the port the configuration listens on for https, else 443 (the Tree says which, and why).
    `on_discovered(server_root)` runs before any file is read (the caller takes the tree lock there)."""
    from lehttpd.apache.plan import Tree  # the planner (and Jinja2) is not needed before a plan is made

    reader = ConfigReader()
    begun = source.started.begun if source.started is not None else time.time()
    try:
        info, parsed, errors = discover_source(source, reader)
        if on_discovered is not None:
            on_discovered(info.server_root)
            if not source.static and _written_since(info, begun):
                # another lehttpd wrote a vhost file between Apache's file:line listing and our lock: ask again
                info, parsed, errors = discover_source(replace(source, started=None), reader)
        port_note = ""
        if https_port is None:
            https_port, port_note, more = https_port_of(info, parsed, reader)
            errors += more
        if all_vhosts or names is None and not ssl_only:
            locations = list(info.locations)
        else:
            locations = candidates(info, names, https_port) if names is not None else []
            if ssl_only or names is not None:
                locations += [loc for loc in ssl_locations(info, https_port) if loc not in locations]
        vhosts, parsed, more = read_vhosts(info, locations, parsed, https_port, reader)
        errors += more
        globals_, more = scan_globals(info, parsed, reader)
        errors += more
    finally:
        reader.close()
    tree = Tree(info=info, vhosts=tuple(vhosts), files=parsed, globals=tuple(globals_), read=read_file,
                https_port=https_port, port_note=port_note)
    return tree, _unique(errors)


def _written_since(info: ApacheInfo, moment: float) -> bool:
    """Was any file Apache located a vhost in changed since `moment` (a second's slack for coarse clocks)?"""
    for path in {location.file for location in info.locations}:
        try:
            if os.stat(path).st_mtime >= moment - 1:
                return True
        except OSError:
            return True
    return False


_LISTEN_RE = re.compile(rb"(?im)^[ \t]*listen[ \t]")
SSL_MODULE_TESTS = ("ssl_module", "mod_ssl.c")


def https_port_of(info: ApacheInfo, parsed: dict[Path, ParsedFile], reader: ConfigReader
                  ) -> tuple[int, str, list[ConfigParseError]]:
    """The HTTPS port the configuration already has: a `Listen N https`, or a Listen inside <IfModule ssl_module>
    (or mod_ssl.c); 443 otherwise. Also the sentence that says which."""
    todo = [p for p in info.includes if p in parsed or _LISTEN_RE.search(read_file(p) or b"")]
    fresh, errors = parse_files([p for p in todo if p not in parsed], reader)
    parsed.update(fresh)
    found: list[tuple[int, Path]] = []
    for path in todo:
        if path in parsed:
            found += [(port, path) for port in _https_listens(parsed[path].nodes, False)]
    ports = sorted({port for port, _path in found})
    if not ports:
        return 443, "HTTPS port 443 (no `Listen … https` nor Listen for mod_ssl in the configuration)", errors
    port = 443 if 443 in ports else ports[0]
    where = next(path for p, path in found if p == port)
    return port, f"HTTPS port {port}, as {where} listens for https (--https-port to choose another)", errors


def _https_listens(nodes, in_ssl: bool):
    from lehttpd.apache.discover import port_of

    for node in nodes:
        name = node.name.lower()
        if node.is_block and name == "ifmodule" and node.values:
            yield from _https_listens(node.children, in_ssl or node.values[0].lstrip("!") in SSL_MODULE_TESTS)
        elif node.is_block and name != "virtualhost":
            yield from _https_listens(node.children, in_ssl)
        elif name == "listen" and node.values:
            address = node.values[0]
            port = int(address) if address.isdigit() else port_of(address)
            if port and (in_ssl or (len(node.values) > 1 and node.values[1].lower() == "https")):
                yield port


def ssl_locations(info: ApacheInfo, https_port: int) -> list:
    """Vhosts that may be SSL ones: on the HTTPS port, or in a file that turns SSLEngine on (any port)."""
    engine_files = {}
    chosen = []
    for location in info.locations:
        if location.file not in engine_files:
            data = read_file(location.file)
            engine_files[location.file] = bool(data and _SSL_ENGINE_RE.search(data))
        if https_port in location.ports or engine_files[location.file]:
            chosen.append(location)
    return chosen


def scan_globals(info: ApacheInfo, parsed: dict[Path, ParsedFile], reader: ConfigReader):
    """Listen / NameVirtualHost / SSLStaplingCache anywhere in the included files: a byte search first, Augeas
    only on the few files that have one."""
    found: list[tuple[str, tuple[str, ...], Path]] = []
    todo = []
    for path in info.includes:
        if path in parsed:
            todo.append(path)
            continue
        data = read_file(path)
        if data is not None and _GLOBAL_RE.search(data):
            todo.append(path)
    fresh, errors = parse_files([p for p in todo if p not in parsed], reader)
    parsed.update(fresh)
    for path in todo:
        if path not in parsed:
            continue
        for node in _outside_vhosts(parsed[path].nodes):
            if node.name.lower() in GLOBAL_DIRECTIVES:
                found.append((node.name, node.values, path))
    return found, errors


def _outside_vhosts(nodes):
    """Server-wide directives: every line not inside a <VirtualHost>."""
    for node in nodes:
        if not node.is_block:
            yield node
        elif node.name.lower() != "virtualhost":
            yield from _outside_vhosts(node.children)


def _unique(errors: list[ConfigParseError]) -> list[ConfigParseError]:
    seen, result = set(), []
    for error in errors:
        if error.message not in seen:
            seen.add(error.message)
            result.append(error)
    return result
