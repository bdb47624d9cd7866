"""A fake Apache 2.2 control program for tests: answers -V, `-t -D DUMP_VHOSTS -D DUMP_MODULES` (2.2 prints the -S
and -M sections and ignores the 2.4-only DUMP_RUN_CFG/DUMP_INCLUDES), -t, configtest and graceful, as the real
2.2.15 (RHEL 6) and 2.2.22 (Debian 7) builds print them, reading the tree it is given (regexes, not lehttpd's code).

usage: fake_httpd22.py FLAVOR ROOT ARGS...
"""
from __future__ import annotations

import glob
import re
import sys
from pathlib import Path

FLAVORS = {
    "rhel6": {"version": "Apache/2.2.15 (Unix)", "mpm": "Prefork", "config": "conf/httpd.conf",
              "includes": ("conf/httpd.conf", "conf.d/*.conf"), "openssl": "OpenSSL 1.0.1e-fips 11 Feb 2013"},
    "debian7": {"version": "Apache/2.2.22 (Debian)", "mpm": "Worker", "config": "apache2.conf",
                "includes": ("apache2.conf", "mods-enabled/*.load", "mods-enabled/*.conf", "ports.conf",
                             "conf.d/*", "sites-enabled/*"), "openssl": "OpenSSL 1.0.1t 3 May 2016"},
}
VERSION = """\
Server version: {version}
Server built:   Jul 18 2016 15:24:00
Server's Module Magic Number: 20051115:25
Server loaded:  APR 1.3.9, APR-Util 1.3.9
Compiled using: APR 1.3.9, APR-Util 1.3.9
Architecture:   64-bit
Server MPM:     {mpm}
  threaded:     no
    forked:     yes (variable process count)
Server compiled with....
 -D APACHE_MPM_DIR="server/mpm/{mpm_dir}"
 -D APR_HAS_SENDFILE
 -D APR_HAS_MMAP
 -D HTTPD_ROOT="{root}"
 -D SUEXEC_BIN="/usr/sbin/suexec"
 -D DEFAULT_PIDLOG="run/httpd.pid"
 -D DEFAULT_SCOREBOARD="logs/apache_runtime_status"
 -D DEFAULT_LOCKFILE="logs/accept.lock"
 -D DEFAULT_ERRORLOG="logs/error_log"
 -D AP_TYPES_CONFIG_FILE="conf/mime.types"
 -D SERVER_CONFIG_FILE="{config}"
"""
VHOST = re.compile(r"^\s*<VirtualHost\s+([^>]+)>", re.I)
NAME = re.compile(r"^\s*ServerName\s+(\S+)", re.I)
NVH = re.compile(r"^\s*NameVirtualHost\s+(\S+)", re.I)
LOADMODULE = re.compile(r"^\s*LoadModule\s+(\S+)", re.I)


def files(root: Path, flavor: dict) -> list[Path]:
    found = []
    for pattern in flavor["includes"]:
        found += [Path(p) for p in sorted(glob.glob(str(root / pattern))) if Path(p).is_file()]
    return found


def dump(root: Path, flavor: dict, modules: bool) -> str:
    vhosts: dict[str, list[tuple[str, str, int]]] = {}
    named = set()
    loaded = ["core_module (static)", "mpm_prefork_module (static)", "http_module (static)", "so_module (static)"]
    for path in files(root, flavor):
        lines = path.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            if match := NVH.match(line):
                named.add(match.group(1))
            if match := LOADMODULE.match(line):
                loaded.append(f"{match.group(1)} (shared)")
            if match := VHOST.match(line):
                name = "localhost.localdomain"
                for inner in lines[number:]:
                    if re.match(r"^\s*</VirtualHost", inner, re.I):
                        break
                    if found := NAME.match(inner):
                        name = found.group(1)
                for address in match.group(1).split():
                    vhosts.setdefault(address, []).append((name, str(path), number))
    out = ["VirtualHost configuration:", "wildcard NameVirtualHosts and _default_ servers:"]
    for address, entries in vhosts.items():
        if address in named:
            out.append(f"{address:<22} is a NameVirtualHost")
            name, path, line = entries[0]
            out.append(f"         default server {name} ({path}:{line})")
            out += [f"         port {address.rsplit(':', 1)[1]} namevhost {n} ({p}:{ln})" for n, p, ln in entries]
        else:
            out += [f"{address:<22} {n} ({p}:{ln})" for n, p, ln in entries[:1]]
    if modules:
        out.append("Loaded Modules:")
        out += [f" {m}" for m in loaded]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    flavor, root, args = FLAVORS[argv[0]], Path(argv[1]), argv[2:]
    if args == ["-V"]:
        sys.stdout.write(VERSION.format(root=root, mpm_dir=flavor["mpm"].lower(), **{
            k: v for k, v in flavor.items() if k in ("version", "mpm", "config")}))
        return 0
    if "DUMP_VHOSTS" in args:
        sys.stdout.write(dump(root, flavor, "DUMP_MODULES" in args))
        sys.stderr.write("Syntax OK\n")
        return 0
    if args in (["-t"], ["configtest"]):
        sys.stderr.write("Syntax OK\n")
        return 0
    if args in (["graceful"], ["-k", "graceful"]):
        return 0
    sys.stderr.write(f"fake 2.2: unexpected {args}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
