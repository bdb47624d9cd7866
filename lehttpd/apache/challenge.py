"""Answering http-01 through the running Apache: a temporary server-level include, owned by lehttpd, for one run.

The include maps /.well-known/acme-challenge/TOKEN to a lehttpd-owned folder, for the tokens present there only:

    RewriteEngine On
    RewriteOptions InheritDownBefore         # every vhost runs these rules before its own
    RewriteCond FOLDER/$1 -f
    RewriteRule ^/\\.well-known/acme-challenge/([A-Za-z0-9_-]+)$ FOLDER/$1 [END]

mod_rewrite translates the URL first (before mod_alias, so a vhost's own `Redirect`, `Alias` or RewriteRule to
https never sees it), and the file lies outside every document root, under `<Directory FOLDER>` with
`AllowOverride None` and `Require all granted`, so no `.htaccess` deny is read. Tokens are plain files (0644 in
a 0755 folder): adding one needs no reload, so a run reloads Apache twice, whatever the number of orders.

A vhost with no mod_rewrite directive of its own does not run inherited rules (mod_rewrite declines early), so
each port-80 vhost serving the names (the default one when none names them) that has none gets two temporary
lines after its `<VirtualHost>` line (challenge_vhosts.py): a marker and `RewriteEngine On`.
A server-level `Alias` to the same folder covers the rest.

The file's first line names the process that owns it. A run killed before it could remove it (SIGKILL) leaves
it behind; `leftovers()` finds such files (and vhost lines, and half-written copies) by the dead owner pid in
their names, and `remove_leftovers()` takes them out.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from lehttpd.apache.challenge_vhosts import (FILE_PREFIX, VHOST_MARK_RE, alive, close_vhost, open_vhost,
                                             vhosts_to_open)
from lehttpd.apache.discover import ApacheInfo
from lehttpd.errors import ApacheConfigError, EnvironmentProblem

MARK = "# lehttpd temporary http-01 configuration, owner pid "
# Where a server-level include is read from, per layout family (a glob Include of the stock main config).
CONF_DIRS = {"debian": "conf-enabled", "rhel": "conf.d", "suse": "conf.d", "alpine": "conf.d",
             "freebsd": "Includes", "gentoo": "modules.d"}
RELOAD_TIMEOUT = 5.0
LOCK_WAIT = 30.0
_NAME_PID = re.compile(r"^\.?lehttpd-http01-(\d+)-")

TEMPLATE = """\
{mark}{pid} (started {started}); lehttpd removes it when the order ends
<IfModule !rewrite_module>
    LoadModule rewrite_module {rewrite_so}
</IfModule>
RewriteEngine On
RewriteOptions InheritDownBefore
RewriteCond "{folder}/$1" -f
RewriteRule "^/\\.well-known/acme-challenge/([A-Za-z0-9_-]+)$" "{folder}/$1" [END,T=text/plain]
Alias "/.well-known/acme-challenge/" "{folder}/"
<Directory "{folder}">
    AllowOverride None
    Options None
    Require all granted
</Directory>
"""


@dataclass(frozen=True)
class Leftover:
    path: Path
    owner_pid: int | None


MIN_VERSION = (2, 4, 8)  # RewriteOptions InheritDownBefore


def conf_dir(info: ApacheInfo) -> Path:
    """Where the temporary include goes; raises when this Apache cannot be answered through."""
    if info.version < MIN_VERSION:
        raise EnvironmentProblem(
            f"answering through Apache needs Apache {'.'.join(map(str, MIN_VERSION))} or later (this one is "
            f"{'.'.join(map(str, info.version))}); use --webroot PATH or --standalone with hooks")
    relative = CONF_DIRS.get(info.layout.family)
    folder = info.server_root / relative if relative else None
    if folder is None or not folder.is_dir():
        raise EnvironmentProblem(
            f"lehttpd does not know where this Apache ({info.layout.family} layout, {info.server_root}) reads "
            "server-level includes from; answer through the site with --webroot PATH instead")
    return folder


def render(info: ApacheInfo, folder: Path, pid: int) -> str:
    if re.search(r'["\s$%\\]', str(folder)):
        raise EnvironmentProblem(f"the challenge folder {folder} holds characters Apache would misread")
    module_path = info.layout.module_path
    module_dir = Path(module_path) if module_path.startswith("/") else info.server_root / module_path
    return TEMPLATE.format(mark=MARK, pid=pid, started=time.strftime("%Y-%m-%d %H:%M:%S"), folder=folder,
                           rewrite_so=module_dir / "mod_rewrite.so")


class ApacheResponder:
    """Serves tokens through a running Apache; `serving(tokens)` as the standalone server has it.

    Use as a context manager: entering writes the folder and the include, config-tests and reloads gracefully
    (restoring on failure); leaving removes both and reloads again, whatever happened.
    """

    def __init__(self, info: ApacheInfo, token_root: Path, names: tuple[str, ...], http_port: int,
                 log: Callable[[str], None] = lambda _: None) -> None:
        self.info, self.log = info, log
        self.vhosts = vhosts_to_open(info, names, http_port)
        self.http_port, self.probe_host = http_port, names[0] if names else "localhost"
        self.opened: list[Path] = []
        self.pid = os.getpid()
        unique = f"{self.pid}-{secrets.token_hex(4)}"
        self.folder = token_root / unique
        self.conf = conf_dir(info) / f"{FILE_PREFIX}{unique}.conf"

    def __enter__(self) -> "ApacheResponder":
        with _tree_locked(self.info.server_root):  # not while another lehttpd changes (or checkpoints) the tree
            self._start()
        self.log(f"Apache serves /.well-known/acme-challenge/ from {self.folder} (temporary {self.conf})")
        self._wait_live()
        return self

    def _start(self) -> None:
        from lehttpd.apache.apply import configtest, reload

        if running_pid(self.info) is None:  # a graceful reload would start it: not lehttpd's call to make
            raise EnvironmentProblem(f"the Apache of {self.info.server_root} is not running, so it cannot answer "
                                     "http-01; start it, or use --standalone")
        _make_folder(self.folder)
        try:
            staged = self.conf.parent / f".{self.conf.name}"  # a killed run's half file is found by its name
            _write_new(staged, render(self.info, self.folder, self.pid))
            os.replace(staged, self.conf)
            for location in self.vhosts:
                self.opened.append(open_vhost(location.file, location.line, self.pid))
            configtest(self.info)
            reload(self.info)
        except BaseException:
            self._remove(reload_after=self.conf.exists() or bool(self.opened))
            raise

    def _wait_live(self, timeout: float = RELOAD_TIMEOUT) -> None:
        """Poll a probe token, as the first name, until Apache serves it: the graceful reload took (no fixed
        sleep). The self-check that follows judges every name."""
        import http.client

        from lehttpd.issuance.selfcheck import target_address

        address = target_address(self.probe_host)
        host = f"[{self.probe_host}]" if ":" in self.probe_host else self.probe_host
        token, text = f"lehttpd-probe-{secrets.token_hex(8)}", secrets.token_hex(16)
        deadline, delay = time.monotonic() + timeout, 0.005
        with self.serving({token: text}):
            while time.monotonic() < deadline:
                connection = http.client.HTTPConnection(address, self.http_port, timeout=1)
                try:
                    connection.request("GET", f"/.well-known/acme-challenge/{token}",
                                       headers={"Host": host, "Connection": "close",
                                                "User-Agent": "lehttpd reload probe"})
                    response = connection.getresponse()
                    if response.status == 200 and response.read().decode(errors="replace").strip() == text:
                        return
                except (OSError, http.client.HTTPException):
                    pass
                finally:
                    connection.close()
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        self.log(f"  no answer to the probe token within {timeout:g} s; the self-check will tell")

    def __exit__(self, *exc: object) -> None:
        with _tree_locked(self.info.server_root, required=False):
            self._remove(reload_after=True)

    @contextlib.contextmanager
    def serving(self, tokens: dict[str, str]) -> Iterator[None]:
        written = []
        try:
            for token, validation in tokens.items():
                path = self.folder / token
                _write_new(path, validation)
                written.append(path)
            yield
        finally:
            for path in written:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def _remove(self, reload_after: bool) -> None:
        from lehttpd.apache.apply import configtest, reload

        removed = _unlink(self.conf)
        for path in self.opened:
            removed = close_vhost(path, self.pid) or removed
        shutil.rmtree(self.folder, ignore_errors=True)
        if removed and reload_after:
            try:
                configtest(self.info)
                reload(self.info)
                self.log(f"removed {self.conf} and reloaded Apache")
            except ApacheConfigError as error:
                raise ApacheConfigError(f"removed {self.conf}, but reloading Apache failed: {error}") from None


def running_pid(info: ApacheInfo) -> int | None:
    """The pid of this Apache's parent process, from its pid file, when that process is alive."""
    if info.run_dir is None:
        return None
    for pid_file in sorted(Path(info.run_dir).glob("*.pid")):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if Path(f"/proc/{pid}").exists():
            return pid
    return None


_INFO_CACHE: dict[str | None, ApacheInfo] = {}


def apache_info(apache_ctl: str | None) -> ApacheInfo:
    """Discovery, once per process and control program (mode choice, leftovers and the responder all need it)."""
    from lehttpd.apache.discover import discover

    if apache_ctl not in _INFO_CACHE:
        _INFO_CACHE[apache_ctl] = discover(apache_ctl)
    return _INFO_CACHE[apache_ctl]


def leftovers(info: ApacheInfo) -> list[Leftover]:
    """Temporary challenge files (and vhost lines) whose owner process is gone."""
    found = []
    for file in dict.fromkeys(loc.file for loc in info.locations):
        try:
            data = file.read_bytes()
        except OSError:
            continue
        for match in VHOST_MARK_RE.finditer(data):
            if not alive(int(match.group(1))):
                found.append(Leftover(file, int(match.group(1))))
    folders = {info.server_root / relative for relative in CONF_DIRS.values()}
    folders |= {loc.file.resolve().parent for loc in info.locations} | {loc.file.parent for loc in info.locations}
    for folder in sorted(folders):
        for path in sorted(folder.glob(f"{FILE_PREFIX}*.conf")) + sorted(folder.glob(f".{FILE_PREFIX}*")):
            match = _NAME_PID.match(path.name)
            if match and not alive(int(match.group(1))):
                found.append(Leftover(path, int(match.group(1))))
    return found


def remove_leftovers(info: ApacheInfo, log: Callable[[str], None]) -> list[Path]:
    """Remove what a killed run left behind, then config-test and reload once. Returns the files removed."""
    from lehttpd.apache.apply import configtest, reload

    removed = []
    for item in leftovers(info):
        named = item.path.name.startswith((FILE_PREFIX, "." + FILE_PREFIX))
        done = _unlink(item.path) if named else close_vhost(item.path.resolve(), None)
        if done:
            removed.append(item.path)
    if removed and info.ctl is not None:
        configtest(info)
        reload(info)
    for path in removed:
        log(f"removed {path}, left behind by an interrupted lehttpd run, and reloaded Apache")
    return removed


@contextlib.contextmanager
def _tree_locked(server_root: Path, wait: float = LOCK_WAIT, required: bool = True) -> Iterator[None]:
    """The Apache commands' tree lock, waited for (another issue's setup takes a fraction of a second). When it
    cannot be had and is not `required` (removing our own files), go ahead: leaving them would be worse."""
    from lehttpd.apache.apply import tree_lock
    from lehttpd.errors import LockHeldError

    deadline = time.monotonic() + wait
    while True:
        try:
            lock = tree_lock(server_root)
            lock.__enter__()
        except LockHeldError:
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if required:
                raise
            yield
            return
        try:
            yield
        finally:
            lock.__exit__(None, None, None)
        return


def _make_folder(folder: Path) -> None:
    """FOLDER (0755, a fresh name). Missing parents are created 0755; existing ones are never re-moded (a path
    from a renewal file must not open up someone's folder), so one that Apache's workers cannot traverse is an
    error that names it."""
    root = folder.parent
    missing = [p for p in (root, *root.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o755)
        os.chmod(directory, 0o755)  # whatever the umask
    if root.is_symlink():
        raise EnvironmentProblem(f"{root} is a symbolic link; refusing to serve challenge files through it")
    closed = next((p for p in (root, *root.parents) if not os.stat(p).st_mode & 0o001), None)
    if closed is not None:
        raise EnvironmentProblem(f"Apache's workers cannot reach {folder}: {closed} is not searchable by others "
                                 f"(chmod o+x {closed}, or choose another --work-dir)")
    folder.mkdir(mode=0o755)  # fails if the name exists: nothing planted is reused
    os.chmod(folder, 0o755)


def _write_new(path: Path, text: str) -> None:
    """A new file (0644), never through an existing file or link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o644)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
