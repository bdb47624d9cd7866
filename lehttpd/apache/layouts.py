"""Distribution layouts of Apache, as data: one frozen value per family, keyed by os-release ID (ID_LIKE fallback).

Behaviour that differs between families is expressed by these fields only; the planner reads them, nothing
subclasses anything. An unknown system gets GENERIC, which edits next to the vhost it changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ApacheLayout:
    family: str
    server_root: str                  # default, when discovery cannot ask the server
    ctl_names: tuple[str, ...]        # control binaries, tried in order
    vhost_available: str | None       # where new site files go (relative to server root); None: next to the vhost
    vhost_enabled: str | None         # where the enabling symlink goes (Debian a2ensite), None: no symlink
    mods_available: str | None        # Debian a2enmod: symlink mods-enabled/X.load -> ../mods-available/X.load
    mods_enabled: str | None
    module_conf_dir: str | None       # RHEL & co: a LoadModule file goes here when a module is missing
    ports_file: str | None            # where `Listen` lives (relative to server root); None: the main config
    module_path: str                  # prefix of LoadModule paths for that family

    def path(self, server_root: Path, relative: str | None) -> Path | None:
        return None if relative is None else server_root / relative


DEBIAN = ApacheLayout(
    family="debian", server_root="/etc/apache2", ctl_names=("apache2ctl", "apachectl"),
    vhost_available="sites-available", vhost_enabled="sites-enabled",
    mods_available="mods-available", mods_enabled="mods-enabled", module_conf_dir=None,
    ports_file="ports.conf", module_path="/usr/lib/apache2/modules")
RHEL = ApacheLayout(
    family="rhel", server_root="/etc/httpd", ctl_names=("apachectl", "httpd"),
    vhost_available="conf.d", vhost_enabled=None, mods_available=None, mods_enabled=None,
    module_conf_dir="conf.modules.d", ports_file="conf/httpd.conf", module_path="modules")
SUSE = ApacheLayout(
    family="suse", server_root="/etc/apache2", ctl_names=("apachectl", "apache2ctl", "httpd"),
    vhost_available="vhosts.d", vhost_enabled=None, mods_available=None, mods_enabled=None,
    module_conf_dir=None, ports_file="listen.conf", module_path="/usr/lib64/apache2")
GENTOO = ApacheLayout(
    family="gentoo", server_root="/etc/apache2", ctl_names=("apache2ctl", "apachectl"),
    vhost_available="vhosts.d", vhost_enabled=None, mods_available=None, mods_enabled=None,
    module_conf_dir="modules.d", ports_file="httpd.conf", module_path="modules")
ARCH = ApacheLayout(
    family="arch", server_root="/etc/httpd", ctl_names=("apachectl", "httpd"),
    vhost_available="conf/extra", vhost_enabled=None, mods_available=None, mods_enabled=None,
    module_conf_dir=None, ports_file="conf/httpd.conf", module_path="modules")
ALPINE = ApacheLayout(
    family="alpine", server_root="/etc/apache2", ctl_names=("apachectl", "httpd"),
    vhost_available="conf.d", vhost_enabled=None, mods_available=None, mods_enabled=None,
    module_conf_dir="conf.d", ports_file="httpd.conf", module_path="modules")
FREEBSD = ApacheLayout(
    family="freebsd", server_root="/usr/local/etc/apache24", ctl_names=("apachectl", "httpd"),
    vhost_available="Includes", vhost_enabled=None, mods_available=None, mods_enabled=None,
    module_conf_dir="modules.d", ports_file="httpd.conf", module_path="libexec/apache24")
GENERIC = ApacheLayout(
    family="generic", server_root="/etc/httpd", ctl_names=("apache2ctl", "apachectl", "httpd", "apache2"),
    vhost_available=None, vhost_enabled=None, mods_available=None, mods_enabled=None,
    module_conf_dir=None, ports_file=None, module_path="modules")

LAYOUTS: dict[str, ApacheLayout] = {
    "debian": DEBIAN, "ubuntu": DEBIAN, "linuxmint": DEBIAN, "raspbian": DEBIAN, "devuan": DEBIAN,
    "rhel": RHEL, "centos": RHEL, "fedora": RHEL, "rocky": RHEL, "almalinux": RHEL, "ol": RHEL,
    "amzn": RHEL, "cloudlinux": RHEL, "scientific": RHEL,
    "suse": SUSE, "opensuse": SUSE, "opensuse-leap": SUSE, "opensuse-tumbleweed": SUSE, "sles": SUSE,
    "gentoo": GENTOO, "arch": ARCH, "manjaro": ARCH, "alpine": ALPINE, "freebsd": FREEBSD,
}


def read_os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return values
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def layout_for(os_release: dict[str, str]) -> ApacheLayout:
    """The layout for an os-release ID, else the first known ID_LIKE, else GENERIC."""
    candidates = [os_release.get("ID", "")] + os_release.get("ID_LIKE", "").split()
    for ident in candidates:
        if ident.lower() in LAYOUTS:
            return LAYOUTS[ident.lower()]
    return GENERIC


def layout_for_tree(server_root: Path, fallback: ApacheLayout) -> ApacheLayout:
    """Recognise a tree by its shape (a copy of /etc/apache2 elsewhere is still Debian-shaped)."""
    if (server_root / "sites-available").is_dir() and (server_root / "mods-available").is_dir():
        return DEBIAN
    if (server_root / "conf.modules.d").is_dir() and (server_root / "conf.d").is_dir():
        return RHEL
    if (server_root / "conf" / "httpd.conf").is_file() and (server_root / "conf.d").is_dir():
        return RHEL  # RHEL/CentOS 6 (2.2): no conf.modules.d yet
    if (server_root / "vhosts.d").is_dir() and (server_root / "modules.d").is_dir():
        return GENTOO
    if (server_root / "vhosts.d").is_dir():
        return SUSE
    return fallback
