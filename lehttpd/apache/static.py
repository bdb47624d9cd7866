"""Static discovery: walk a configuration tree through Augeas when Apache itself cannot be asked.

Used for trees no local Apache can load (copies, other distributions' trees, the test corpus) and for --dry-run
against them. It follows Include/IncludeOptional (globs, directories), Define/UnDefine and ${VAR} (and Debian's
envvars), and evaluates <IfModule>/<IfDefine> the way Apache does; <IfVersion> is taken as true.
Files Augeas rejects are reported and skipped; the walk goes on.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lehttpd.apache.discover import ApacheInfo, Version, VhostLocation, expand, host_of_server_name
from lehttpd.apache.layouts import GENERIC, layout_for_tree
from lehttpd.apache.tree import ConfigParseError, ConfigReader, Node, ParsedFile
from lehttpd.errors import UsageError

CONFIG_NAMES = ("apache2.conf", "httpd.conf", "conf/httpd.conf")
MAX_DEPTH = 32


@dataclass
class _Walk:
    server_root: Path
    reader: ConfigReader
    defines: dict[str, str]
    modules: set[str] = field(default_factory=set)
    includes: list[Path] = field(default_factory=list)
    parsed: dict[Path, ParsedFile] = field(default_factory=dict)
    locations: list[VhostLocation] = field(default_factory=list)
    errors: list[ConfigParseError] = field(default_factory=list)


def find_config(server_root: Path, config: Path | None) -> Path:
    if config is not None:
        path = config if config.is_absolute() else server_root / config
        if not path.is_file():
            raise UsageError(f"{path}: no such configuration file")
        return path
    for name in CONFIG_NAMES:
        if (server_root / name).is_file():
            return server_root / name
    raise UsageError(f"{server_root}: no apache2.conf or httpd.conf here; name it with --config")


def discover_static(server_root: Path, config: Path | None = None, version: Version = (2, 4, 0),
                    reader: ConfigReader | None = None) -> tuple[ApacheInfo, dict[Path, ParsedFile],
                                                                 list[ConfigParseError]]:
    server_root = server_root.resolve()
    if not server_root.is_dir():
        raise UsageError(f"{server_root}: not a directory")
    config_file = find_config(server_root, config)
    walk = _Walk(server_root=server_root, reader=reader or ConfigReader(), defines=_envvars(server_root))
    _visit_file(walk, config_file, 0)
    info = ApacheInfo(
        ctl=None, version=version, server_root=server_root, config_file=config_file, mpm="unknown",
        modules=frozenset(walk.modules), includes=tuple(walk.includes), locations=tuple(walk.locations),
        layout=layout_for_tree(server_root, GENERIC), run_dir=None,
        defines=tuple(sorted(walk.defines.items())))
    return info, walk.parsed, walk.errors


def _envvars(server_root: Path) -> dict[str, str]:
    values: dict[str, str] = {"SUFFIX": ""}
    try:
        text = (server_root / "envvars").read_text(errors="replace")
    except OSError:
        return values
    for match in re.finditer(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)", text, re.M):
        values[match.group(1)] = match.group(2).replace("$SUFFIX", "").strip("\"'")
    return values


def _visit_file(walk: _Walk, path: Path, depth: int) -> None:
    if depth > MAX_DEPTH:
        walk.errors.append(ConfigParseError(path, 1, "includes nested too deep (a loop?)"))
        return
    path = _follow_link_stub(path)
    walk.includes.append(path)
    try:
        parsed = walk.parsed.get(path) or walk.reader.parse(path)
    except ConfigParseError as error:
        walk.errors.append(error)
        return
    walk.parsed[path] = parsed
    _visit_nodes(walk, parsed, parsed.nodes, depth)


def _follow_link_stub(path: Path) -> Path:
    """A symlink flattened into a file holding its target (git with core.symlinks off) is followed."""
    try:
        if path.stat().st_size > 512:
            return path
        text = path.read_text(errors="strict").strip()
    except (OSError, UnicodeDecodeError):
        return path
    if text and "\n" not in text and " " not in text and not text.startswith(("#", "<")):
        target = Path(os.path.normpath(path.parent / text))
        if target.is_file() and target != path:
            return target
    return path


def _visit_nodes(walk: _Walk, parsed: ParsedFile, nodes, depth: int) -> None:
    for node in nodes:
        name = node.name.lower()
        values = [expand(v, walk.defines) for v in node.values]
        if name == "define" and values:
            walk.defines[values[0]] = values[1] if len(values) > 1 else ""
        elif name == "undefine" and values:
            walk.defines.pop(values[0], None)
        elif name == "loadmodule" and values:
            walk.modules.add(values[0])
        elif name in ("include", "includeoptional") and values:
            _include(walk, values[0], name == "includeoptional", parsed.path, node.line, depth)
        elif name == "ifmodule" and values and _module_test(values[0], walk.modules):
            _visit_nodes(walk, parsed, node.children, depth)
        elif name == "ifdefine" and values and _define_test(values[0], walk.defines):
            _visit_nodes(walk, parsed, node.children, depth)
        elif name in ("ifversion", "if", "else", "elseif", "ifdirective", "iffile", "ifsection"):
            _visit_nodes(walk, parsed, node.children, depth)
        elif name == "virtualhost":
            walk.locations.append(_location(walk, parsed, node))


def _location(walk: _Walk, parsed: ParsedFile, node: Node) -> VhostLocation:
    names = [expand(v, walk.defines) for child in node.named("ServerName") for v in child.values[:1]]
    aliases = [expand(v, walk.defines) for child in node.named("ServerAlias") for v in child.values]
    addresses = tuple(expand(v, walk.defines) for v in node.values)
    return VhostLocation(file=parsed.path, line=node.line, addresses=addresses,
                         name=host_of_server_name(names[0]) if names else "", aliases=tuple(aliases))


def _module_test(argument: str, modules: set[str]) -> bool:
    negate = argument.startswith("!")
    name = argument.lstrip("!")
    if name.startswith("mod_") and name.endswith(".c"):
        name = name[4:-2] + "_module"
    present = name in modules or name in {"core_module", "so_module", "http_module", "log_config_module",
                                          "unixd_module", "version_module", "logio_module"}
    return present != negate


def _define_test(argument: str, defines: dict[str, str]) -> bool:
    negate = argument.startswith("!")
    return (argument.lstrip("!") in defines) != negate


def _include(walk: _Walk, pattern: str, optional: bool, source: Path, line: int, depth: int) -> None:
    base = Path(pattern) if Path(pattern).is_absolute() else walk.server_root / pattern
    if base.is_dir():
        matches = sorted(str(p) for p in base.iterdir() if p.is_file())
    elif glob.has_magic(str(base)):
        matches = sorted(glob.glob(str(base)))
    else:
        matches = [str(base)] if base.exists() else []
    if not matches and not optional and not glob.has_magic(str(base)):
        walk.errors.append(ConfigParseError(source, line, f"Include {pattern}: no such file"))
    for match in matches:
        if Path(match).is_file():
            _visit_file(walk, Path(match), depth + 1)
