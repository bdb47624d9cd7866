"""Discovery: ask Apache itself (`-V`, and one `-t -D DUMP_*` run) what it loads, where, and which vhosts it has.

Two calls in parallel, whatever the size of the tree: 0.1 s for 1,000 vhosts, where reading every file through
Augeas would take seconds. A command starts them first (`Source.start`, a `Discovery`) and imports its work modules
while Apache parses its tree. When no control binary can be run on a tree (a copied tree, a corpus), `static.py`
walks the includes through Augeas instead and returns the same ApacheInfo.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from lehttpd.apache.configtest import BrokenBeforeUs
from lehttpd.apache.layouts import ApacheLayout, layout_for, layout_for_tree, read_os_release
from lehttpd.errors import ApacheConfigError, EnvironmentProblem

Version = tuple[int, int, int]


@dataclass(frozen=True)
class VhostLocation:
    """One vhost as Apache reports it: where it is written and on which addresses it answers."""

    file: Path
    line: int
    addresses: tuple[str, ...]
    name: str
    aliases: tuple[str, ...] = ()

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted({port_of(addr) for addr in self.addresses if port_of(addr)}))


@dataclass(frozen=True)
class ApacheInfo:
    ctl: tuple[str, ...] | None          # None: static mode, nothing can be tested or reloaded
    version: Version
    server_root: Path
    config_file: Path
    mpm: str
    modules: frozenset[str]
    includes: tuple[Path, ...]
    locations: tuple[VhostLocation, ...]
    layout: ApacheLayout
    run_dir: Path | None = None
    pid_file: Path | None = None
    defines: tuple[tuple[str, str], ...] = ()
    ctl_env: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def generation(self) -> str:
        return "2.2" if self.version < (2, 4, 0) else "2.4"

    def has_module(self, name: str) -> bool:
        return f"{name}_module" in self.modules


@dataclass(frozen=True)
class Source:
    """Where the Apache setup is: a control program (live), or a tree on disk (static, dry-run only).
    `started`: that control program's discovery calls, already running (see `start`)."""

    apache_ctl: str | None = None
    server_root: Path | None = None
    config: Path | None = None
    apache_version: str | None = None
    started: Discovery | None = field(default=None, compare=False, repr=False)

    @property
    def static(self) -> bool:
        return self.server_root is not None and self.apache_ctl is None

    def start(self) -> "Source":
        """The same source with Apache's discovery calls running from now on (live mode; static has none).
        Call `cancel()` if the command fails before reading."""
        if self.static or self.started is not None:
            return self
        return replace(self, started=Discovery(self.apache_ctl))

    def cancel(self) -> None:
        if self.started is not None:
            self.started.cancel()


def port_of(address: str) -> int:
    head, sep, port = address.rpartition(":")
    return int(port) if sep and port.isdigit() else 0


_VAR = re.compile(r"\$\{([^}\s$]+)\}")  # Apache reads a name up to the brace: `${site-name}` is one


def expand(value: str, defines: Mapping[str, str]) -> str:
    """${VAR} replaced by its Define'd value, as Apache does when it reads a line; unknown ones are kept."""
    return _VAR.sub(lambda m: defines.get(m.group(1), m.group(0)), value) if "${" in value else value


def host_of_server_name(value: str) -> str:
    """The name in a ServerName value, which may carry a scheme and a port (`http://www.example.com:80`)."""
    value = value.partition("://")[2] if "://" in value else value
    if value.startswith("["):
        return value.partition("]")[0] + "]"
    return value.split(":")[0]


def parse_version(text: str) -> Version:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        raise ApacheConfigError(f"cannot read a version in {text!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def find_ctl(explicit: str | None, layout: ApacheLayout) -> tuple[str, ...]:
    if explicit:
        path = shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) else None)
        if not path:
            raise EnvironmentProblem(f"--apache-ctl {explicit}: not found or not executable")
        return (path,)
    search = os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin:/sbin"
    for name in layout.ctl_names + ("apache2ctl", "apachectl", "httpd"):
        found = shutil.which(name, path=search)
        if found:
            return (found,)
    raise EnvironmentProblem("no Apache control program found (apache2ctl, apachectl, httpd); use --apache-ctl")


def _run(ctl: tuple[str, ...], *args: str, timeout: float = 60) -> subprocess.Popen:
    return subprocess.Popen([*ctl, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", stdin=subprocess.DEVNULL)


def apache_message(stderr: str) -> str:
    """Apache's own complaint, without the AH00558 ServerName noise."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and "AH00558" not in line and not line.startswith("Action '")]
    return " ".join(lines)[:600] or "no message"


class Discovery:
    """The two calls of the control program, started at once; `result()` waits for them and reads their output.

    Starting them early lets a command import its modules and read its inputs while Apache parses its tree."""

    def __init__(self, ctl_name: str | None = None, os_release: Path = Path("/etc/os-release")) -> None:
        self.layout = layout_for(read_os_release(os_release))
        self.ctl = find_ctl(ctl_name, self.layout)
        self.begun = time.time()  # files changed after this may have moved under Apache's file:line listing
        version = _run(self.ctl, "-V")
        try:
            dump = _run(self.ctl, "-t", "-D", "DUMP_VHOSTS", "-D", "DUMP_RUN_CFG", "-D", "DUMP_INCLUDES",
                        "-D", "DUMP_MODULES")
        except BaseException:
            version.kill()
            version.communicate()
            raise
        self._procs = (version, dump)
        self._reading = False

    def cancel(self) -> None:
        """Stop the calls if their answer was never read (the command failed before needing it)."""
        if not self._reading:
            self._reading = True
            for proc in self._procs:
                if proc.poll() is None:
                    proc.kill()
                proc.communicate()

    def result(self) -> ApacheInfo:
        """Once only (the output is read once)."""
        if self._reading:
            raise RuntimeError("discovery already read or cancelled")
        self._reading = True
        version_proc, dump_proc = self._procs
        ctl, layout = self.ctl, self.layout
        try:
            version_out, _version_err = version_proc.communicate(timeout=60)
            dump_out, dump_err = dump_proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            version_proc.kill()
            dump_proc.kill()
            raise ApacheConfigError(f"{ctl[0]} did not answer within the time limit") from None
        if dump_proc.returncode != 0:
            raise BrokenBeforeUs(ctl, dump_err, dump_out)
        values = parse_dump(dump_out)
        compiled = compiled_paths(version_out)
        server_root = Path(values["server_root"] or compiled[0] or layout.server_root)
        includes = values["includes"]
        config_file = includes[0] if includes else compiled[1] or server_root / "apache2.conf"
        info = ApacheInfo(
            ctl=ctl, version=parse_version(_field(version_out, "Server version")),
            server_root=server_root, config_file=config_file, mpm=_field(version_out, "Server MPM") or "unknown",
            modules=frozenset(values["modules"]), includes=tuple(includes), locations=tuple(values["locations"]),
            layout=layout_for_tree(server_root, layout), run_dir=values["run_dir"], pid_file=values["pid_file"],
            defines=tuple(values["defines"]))
        return with_static_includes(info) if not includes and info.version < (2, 4, 0) else info


def compiled_paths(version_out: str) -> tuple[Path | None, Path | None]:
    """HTTPD_ROOT and SERVER_CONFIG_FILE (made absolute) from `-V`: 2.2 has no DUMP_RUN_CFG/DUMP_INCLUDES."""
    found = dict(re.findall(r'-D (HTTPD_ROOT|SERVER_CONFIG_FILE)="([^"]*)"', version_out))
    root = Path(found["HTTPD_ROOT"]) if found.get("HTTPD_ROOT") else None
    config = found.get("SERVER_CONFIG_FILE")
    if config and root is not None and not config.startswith("/"):
        return root, root / config
    return root, Path(config) if config else None


def with_static_includes(info: ApacheInfo) -> ApacheInfo:
    """Apache 2.2 lists no included files: walk them from the main file -V names (static.py), keep Apache's own
    vhost listing and modules."""
    from lehttpd.apache.static import discover_static  # Augeas is needed only on this path
    from lehttpd.apache.tree import ConfigReader

    reader = ConfigReader()
    try:
        walked, _parsed, _errors = discover_static(info.server_root, info.config_file, info.version, reader)
    finally:
        reader.close()
    return replace(info, includes=walked.includes, config_file=walked.config_file,
                   defines=info.defines or walked.defines)


def discover(ctl_name: str | None = None, os_release: Path = Path("/etc/os-release")) -> ApacheInfo:
    """Everything lehttpd needs to know about a running Apache setup, from two calls of its control program."""
    return Discovery(ctl_name, os_release).result()


def _field(text: str, key: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return ""


_NAMEVHOST = re.compile(r"^\s+port (\d+) namevhost (\S+) \((.+):(\d+)\)\s*$")
_DEFAULT = re.compile(r"^\s+default server (\S+) \((.+):(\d+)\)\s*$")
_ALIAS = re.compile(r"^\s+alias (\S+)\s*$")
_SINGLE = re.compile(r"^(\S+:(?:\d+|\*))\s+(\S+) \((.+):(\d+)\)\s*$")
_HEADER = re.compile(r"^(\S+:\d+)\s+is a NameVirtualHost\s*$")
_INCLUDE = re.compile(r"^\s+\((?:\*|\d+)\) (.+)$")


def parse_dump(text: str) -> dict:
    """Read `-t -D DUMP_VHOSTS -D DUMP_RUN_CFG -D DUMP_INCLUDES -D DUMP_MODULES` output."""
    found: dict[tuple[str, int], dict] = {}
    order: list[tuple[str, int]] = []
    result: dict = {"server_root": None, "run_dir": None, "pid_file": None, "includes": [], "modules": [],
                    "defines": []}
    header = None
    current = None
    section = None
    paths: dict[str, Path] = {}  # one Path per file named (the vhost files are among the includes)

    def path_of(text: str) -> Path:
        path = paths.get(text)
        if path is None:
            path = paths[text] = Path(text)
        return path

    def record(address: str, name: str, file: str, line: str) -> dict:
        key = (file, int(line))
        if key not in found:
            found[key] = {"addresses": [], "name": name, "aliases": []}
            order.append(key)
        if address not in found[key]["addresses"]:
            found[key]["addresses"].append(address)
        return found[key]

    for raw in text.splitlines():
        if raw.startswith("Included configuration files:"):
            section = "includes"
            continue
        if raw.startswith("Loaded Modules:"):
            section = "modules"
            continue
        if raw.startswith("VirtualHost configuration:"):
            section = "vhosts"
            continue
        if section == "includes" and (match := _INCLUDE.match(raw)):
            result["includes"].append(path_of(match.group(1).strip()))
            continue
        if section == "modules" and raw.startswith(" ") and raw.strip():
            result["modules"].append(raw.split()[0])
            continue
        if raw[:1] in (" ", "\t"):  # an indented line: only these three can match (the others start at column 0)
            if match := _NAMEVHOST.match(raw):
                address = header if header and port_of(header) == int(match.group(1)) else f"*:{match.group(1)}"
                current = record(address, match.group(2), match.group(3), match.group(4))
            elif _DEFAULT.match(raw):
                current = None
            elif (match := _ALIAS.match(raw)) and current is not None:
                if match.group(1) not in current["aliases"]:
                    current["aliases"].append(match.group(1))
            continue
        # From here the line starts at column 0 (splitlines leaves no other leading white space).
        if match := _HEADER.match(raw):
            header, section = match.group(1), "vhosts"
        elif match := _SINGLE.match(raw):
            header = None
            current = record(match.group(1), match.group(2), match.group(3), match.group(4))
        elif raw.startswith("ServerRoot:"):
            result["server_root"] = raw.split(":", 1)[1].strip().strip('"')
        elif raw.startswith("PidFile:"):
            result["pid_file"] = Path(raw.split(":", 1)[1].strip().strip('"'))
            result["run_dir"] = result["pid_file"].parent
        elif raw.startswith("Define:"):
            name, _, value = raw.split(":", 1)[1].strip().partition("=")
            result["defines"].append((name, value))
    result["locations"] = [
        VhostLocation(file=path_of(key[0]), line=key[1], addresses=tuple(found[key]["addresses"]),
                      name=found[key]["name"], aliases=tuple(found[key]["aliases"]))
        for key in order]
    return result


def mod_ssl_openssl_version(info: ApacheInfo) -> Version | None:
    """The OpenSSL version mod_ssl is linked against (ldd on mod_ssl.so), else None."""
    candidates = [Path(info.layout.module_path) / "mod_ssl.so", info.server_root / "modules" / "mod_ssl.so",
                  Path("/usr/lib/apache2/modules/mod_ssl.so"), Path("/usr/lib64/httpd/modules/mod_ssl.so")]
    for module in candidates:
        if not module.is_file() or not shutil.which("ldd"):
            continue
        out = subprocess.run(["ldd", str(module)], capture_output=True, text=True, timeout=20).stdout
        match = re.search(r"libssl\.so\.(\d+)(?:\.(\d+))?\S*\s+=>\s+(\S+)", out)
        if match:
            return _openssl_library_version(match.group(3))
    return None


def _openssl_library_version(library: str) -> Version | None:
    import ctypes

    try:
        lib = ctypes.CDLL(library)
    except OSError:
        return None
    for symbol in ("OpenSSL_version_num", "SSLeay"):  # OpenSSL 1.1.0 and later; 1.0.x and before
        function = getattr(lib, symbol, None)
        if function is not None:
            function.restype = ctypes.c_ulong
            number = function()
            break
    else:
        return None
    major, minor = (number >> 28) & 0xF, (number >> 20) & 0xFF
    return major, minor, ((number >> 4) if major >= 3 else (number >> 12)) & 0xFF
