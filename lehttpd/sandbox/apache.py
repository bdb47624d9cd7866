"""A private Debian apache2 instance in its own folder, on high loopback ports (tests, demo and bench).

Never touches /etc/apache2 beyond reading it, never binds 80/443. The instance lives in `<base>/apache2-NAME` with
its own envvars (run, lock and log directories inside the temp tree, so `stop` can never reach the system
Apache), and a `apache2ctl` wrapper that sets APACHE_CONFDIR; lehttpd is pointed at that wrapper.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lehttpd.sandbox.pebble import free_port

SYSTEM_TREE = Path("/etc/apache2")
APACHE2CTL = Path("/usr/sbin/apache2ctl")


def apache_available() -> bool:
    return APACHE2CTL.exists() and SYSTEM_TREE.is_dir() and os.geteuid() == 0


ENVVARS = """\
unset HOME
export APACHE_RUN_USER=www-data
export APACHE_RUN_GROUP=www-data
export APACHE_PID_FILE={state}/run/apache2.pid
export APACHE_RUN_DIR={state}/run
export APACHE_LOCK_DIR={state}/lock
export APACHE_LOG_DIR={state}/log
export LANG=C
export LANG
"""

PORTS = """\
# ports of the private test instance
Listen 127.0.0.1:{http}
"""

SITE = """\
<VirtualHost 127.0.0.1:{port}>
    # the {name} site
    ServerName {name}
    ServerAlias www.{name}
    DocumentRoot {docroot}
    <Directory {docroot}>
        Require all granted
    </Directory>
    ErrorLog ${{APACHE_LOG_DIR}}/{name}-error.log
    CustomLog ${{APACHE_LOG_DIR}}/{name}-access.log combined
    RewriteEngine On
    RewriteRule ^/old-page$ /new-page [R=302,L]
</VirtualHost>
"""


@dataclass
class ApacheInstance:
    base: Path
    http_port: int
    https_port: int

    @property
    def confdir(self) -> Path:
        return self.base / "apache2-lehttpd"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def ctl(self) -> Path:
        return self.base / "apache2ctl"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(APACHE_CONFDIR=str(self.confdir), APACHE_STARTED_BY_SYSTEMD="1")
        return env

    def run_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.ctl), *args], capture_output=True, text=True, check=check, timeout=60)

    def docroot(self, name: str) -> Path:
        return self.base / "www" / name

    def add_site(self, name: str, text: str | None = None) -> Path:
        docroot = self.base / "www" / name
        docroot.mkdir(parents=True, exist_ok=True)
        docroot.chmod(0o755)
        (docroot / "index.html").write_text(f"<h1>{name}</h1>\n")
        (docroot / "index.html").chmod(0o644)
        body = text if text is not None else SITE.format(port=self.http_port, name=name, docroot=docroot)
        path = self.confdir / "sites-available" / f"{name}.conf"
        path.write_text(body)
        link = self.confdir / "sites-enabled" / f"{name}.conf"
        if not link.is_symlink():
            link.symlink_to(f"../sites-available/{name}.conf")
        return path

    def enable_module(self, name: str) -> None:
        for suffix in (".load", ".conf"):
            src = self.confdir / "mods-available" / f"{name}{suffix}"
            dst = self.confdir / "mods-enabled" / f"{name}{suffix}"
            if src.exists() and not dst.is_symlink():
                dst.symlink_to(f"../mods-available/{name}{suffix}")

    def start(self) -> None:
        result = self.run_ctl("start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"apache2ctl start failed: {result.stderr.strip()} {self.error_log()}")
        self.wait_port(self.http_port)

    def wait_port(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"apache did not listen on {port}: {self.error_log()}")

    def stop(self) -> None:
        pid_file = self.state / "run" / "apache2.pid"
        if not pid_file.exists():
            return
        self.run_ctl("stop", check=False)
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_file.exists():  # `apache2ctl stop` parses the config first: a test that broke it must not leak Apache
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
            while pid_file.exists() and time.monotonic() < deadline + 10:
                time.sleep(0.05)

    def error_log(self) -> str:
        log = self.state / "log" / "error.log"
        return log.read_text()[-2000:] if log.exists() else ""

    def snapshot(self) -> dict[str, bytes | str]:
        """Every file and link of the tree: content for files, target for links (for idempotency diffs)."""
        result: dict[str, bytes | str] = {}
        for path in sorted(self.confdir.rglob("*")):
            rel = str(path.relative_to(self.confdir))
            if path.is_symlink():
                result[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                result[rel] = path.read_bytes()
        return result


def make_instance(base: Path, http_port: int | None = None, https_port: int | None = None) -> ApacheInstance:
    """Copy Debian's stock tree into base/apache2-lehttpd, private envvars and ports, no default site."""
    base.mkdir(parents=True, exist_ok=True)
    for folder in (base, *base.parents):  # mktemp dirs are 0700: let www-data traverse them
        if str(folder).startswith(tempfile.gettempdir() + "/"):
            folder.chmod(folder.stat().st_mode | 0o711)
    inst = ApacheInstance(base=base, http_port=http_port or free_port(), https_port=https_port or free_port())
    shutil.copytree(SYSTEM_TREE, inst.confdir, symlinks=True)
    for sub in ("run", "lock", "log"):
        (inst.state / sub).mkdir(parents=True, exist_ok=True)
    (inst.confdir / "envvars").write_text(ENVVARS.format(state=inst.state))
    (inst.confdir / "ports.conf").write_text(PORTS.format(http=inst.http_port))
    for link in (inst.confdir / "sites-enabled").iterdir():
        link.unlink()
    with open(inst.confdir / "apache2.conf", "a") as conf:
        conf.write("\nServerName localhost\n")
    inst.enable_module("rewrite")
    inst.ctl.write_text(
        "#!/bin/sh\n"
        f"export APACHE_CONFDIR='{inst.confdir}'\n"
        "export APACHE_STARTED_BY_SYSTEMD=1\n"
        f"exec {APACHE2CTL} \"$@\"\n")
    inst.ctl.chmod(0o755)
    (base / "www").mkdir(exist_ok=True)
    (base / "www").chmod(0o755)
    return inst
