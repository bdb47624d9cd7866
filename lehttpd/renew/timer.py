"""`lehttpd timer install|remove`: run `lehttpd renew --quiet` twice a day, from systemd or cron, and with
`--check` then `lehttpd check --all --quiet` (the expiry monitor) after each run, whatever the renewal's outcome.

The files are rendered here and shipped as they render by default in contrib/ (a test keeps both equal).
Both spread the load: systemd with RandomizedDelaySec, cron with a random sleep, so that a fleet of machines
does not reach the CA in the same second.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lehttpd.errors import EnvironmentProblem, UsageError
from lehttpd.fileio import atomic_write
from lehttpd.store import DEFAULT_CONFIG_DIR

SERVICE, TIMER, CRON = "lehttpd-renew.service", "lehttpd-renew.timer", "lehttpd"
SYSTEMD_DIR, CRON_DIR = Path("etc/systemd/system"), Path("etc/cron.d")


@dataclass(frozen=True)
class Installed:
    kind: str
    paths: tuple[Path, ...]
    enabled: bool


def renew_command(lehttpd: str = "lehttpd", config_dir: Path = DEFAULT_CONFIG_DIR) -> str:
    parts = [lehttpd, "renew", "--quiet"]
    if Path(config_dir) != DEFAULT_CONFIG_DIR:
        parts += ["--config-dir", str(config_dir)]
    return shlex.join(parts)


def check_command(lehttpd: str = "lehttpd", config_dir: Path = DEFAULT_CONFIG_DIR,
                  prometheus: Path | None = None) -> str:
    """The expiry monitor run after each renewal: prints (and so mails, or logs) only the problems."""
    parts = [lehttpd, "check", "--all", "--quiet"]
    if Path(config_dir) != DEFAULT_CONFIG_DIR:
        parts += ["--config-dir", str(config_dir)]
    if prometheus is not None:
        parts += ["--prometheus", str(prometheus)]
    return shlex.join(parts)


def service_text(command: str, check: str | None = None) -> str:
    # ExecStopPost runs after a failed renewal too (ExecStartPost would not): that is when the monitor matters.
    after = ("# then the expiry monitor, whatever the renewal's outcome (exit 8 marks the unit failed)\n"
             f"ExecStopPost={_systemd(check)}\n") if check else ""
    return f"""# lehttpd: renew the certificates that are due; started by {TIMER}.
# Installed by `lehttpd timer install`, or copy it to /etc/systemd/system/ with the timer.
[Unit]
Description=lehttpd: renew the certificates that are due
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart={_systemd(command)}
{after}"""


def _systemd(command: str) -> str:
    return command.replace("%", "%%")  # systemd expands %-specifiers in Exec lines


def _cron(command: str) -> str:
    return command.replace("%", "\\%")  # cron turns a bare % into a newline


def timer_text() -> str:
    return f"""# lehttpd: start {SERVICE} twice a day, at a random moment of each half-day, so that a fleet of
# machines does not reach the CA in the same second. Persistent: a run missed while off happens at boot.
[Unit]
Description=lehttpd: renew certificates twice a day

[Timer]
OnCalendar=*-*-* 00,12:00:00
RandomizedDelaySec=12h
Persistent=true

[Install]
WantedBy=timers.target
"""


def cron_text(command: str, check: str | None = None) -> str:
    return f"""# lehttpd: renew the certificates that are due, twice a day. Each run first sleeps a random time up to
# 12 hours (from /dev/urandom, not the clock, so machines started together still spread out); overlapping
# runs are safe: the second one exits at once. Copy to /etc/cron.d/lehttpd, or run `lehttpd timer install`.
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

0 */12 * * * root sleep "$(shuf -i 0-43199 -n 1)" && {_cron(command)}{f"; {_cron(check)}" if check else ""}
"""


def default_kind(root: Path) -> str:
    return "systemd" if Path("/run/systemd/system").is_dir() and root == Path("/") else "cron"


def lehttpd_path() -> str:
    """The absolute path of the lehttpd command running now, for the installed files."""
    found = shutil.which("lehttpd")
    argv0 = Path(sys.argv[0])
    if argv0.name == "lehttpd" and argv0.exists():
        return str(argv0.resolve())
    return found or "lehttpd"


def install(kind: str, root: Path, command: str, enable: bool, check: str | None = None) -> Installed:
    if kind == "systemd":
        paths = (root / SYSTEMD_DIR / SERVICE, root / SYSTEMD_DIR / TIMER)
        texts = (service_text(command, check), timer_text())
    elif kind == "cron":
        paths, texts = (root / CRON_DIR / CRON,), (cron_text(command, check),)
    else:
        raise UsageError(f"unknown timer kind {kind!r} (systemd, cron)")
    try:
        for path, text in zip(paths, texts):
            atomic_write(path, text.encode(), 0o644)
    except PermissionError as error:
        raise EnvironmentProblem(f"cannot write {error.filename}: permission denied (run as root)") from None
    if kind == "systemd" and enable:
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", TIMER)
    return Installed(kind, paths, enable and kind == "systemd")


def remove(root: Path, enable: bool) -> list[Path]:
    timer = root / SYSTEMD_DIR / TIMER
    if enable and timer.exists():
        _systemctl("disable", "--now", TIMER)
    removed = []
    for path in (root / SYSTEMD_DIR / SERVICE, timer, root / CRON_DIR / CRON):
        if path.exists():
            path.unlink()
            removed.append(path)
    if enable and timer in removed:
        _systemctl("daemon-reload")
    return removed


def _systemctl(*args: str) -> None:
    if not shutil.which("systemctl") or not os.path.isdir("/run/systemd/system"):
        raise EnvironmentProblem("systemd is not running here: use --kind cron, or --no-enable to only write files")
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        raise EnvironmentProblem(f"systemctl {' '.join(args)} failed: {last[0][:200]}")
