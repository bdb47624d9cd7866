"""A cron run with nothing to do costs a few stat calls: the quiet-until stamp.

A full `lehttpd renew` over every lineage that ends with nothing due and nothing wrong writes
CONFIG_DIR/.lehttpd/renew-quiet.json: the earliest moment anything could change its mind (a lineage becoming
due, a back-off ending, an ARI re-check, the cached ARI directory expiring) and a fingerprint of every file
that run read (renewal/*.conf, each live/NAME/ folder and certificate, renew-state/*.json). A later
`lehttpd renew --quiet [--config-dir DIR]` (what cron and the systemd timer run) that finds the same
fingerprint before that moment has nothing to do and nothing to print: it exits 0 before the command line is
even parsed. Any other flag, any changed file, a stamp it cannot read: the full path runs.

Standard library only, and nothing else from lehttpd: it runs before any other import.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

STAMP = Path(".lehttpd") / "renew-quiet.json"
DEFAULT_CONFIG_DIR = "/etc/letsencrypt"
FORMAT = 1


def _stat_key(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def fingerprint(config_dir: Path) -> list:
    """What a renewal run reads, as (inode, size, mtime) triples: any change to it changes this value."""
    renewal, states = config_dir / "renewal", config_dir / ".lehttpd" / "renew-state"
    result: list = []
    for folder in (renewal, states):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            names = []
        result.append([[name, _stat_key(folder / name)] for name in names])
    for conf in result[0]:
        name = conf[0][:-len(".conf")] if conf[0].endswith(".conf") else conf[0]
        live = config_dir / "live" / name
        result.append([name, _stat_key(live), _stat_key(live / "cert.pem")])  # the link target's stat
    return result


def write_stamp(config_dir: Path, quiet_until: dt.datetime) -> None:
    from lehttpd.fileio import atomic_write

    document = {"format": FORMAT, "until": quiet_until.timestamp(), "fingerprint": fingerprint(config_dir)}
    atomic_write(config_dir / STAMP, json.dumps(document, separators=(",", ":")).encode(), 0o600)


def clear_stamp(config_dir: Path) -> None:
    try:
        os.unlink(config_dir / STAMP)
    except FileNotFoundError:
        pass


def cron_config_dir(argv: list[str]) -> Path | None:
    """The config dir when argv is exactly a quiet renew (as cron and the timer run it), else None."""
    if not argv or argv[0] != "renew":
        return None
    config_dir, quiet, rest = DEFAULT_CONFIG_DIR, False, argv[1:]
    while rest:
        arg = rest.pop(0)
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg == "--config-dir" and rest:
            config_dir = rest.pop(0)
        elif arg.startswith("--config-dir="):
            config_dir = arg.split("=", 1)[1]
        else:
            return None
    return Path(config_dir).absolute() if quiet and config_dir else None


def nothing_to_do(argv: list[str], now: float | None = None) -> bool:
    """True when argv is a quiet renew and the stamp says, for the files as they are, that nothing is due."""
    config_dir = cron_config_dir(argv)
    if config_dir is None:
        return False
    try:
        document = json.loads((config_dir / STAMP).read_bytes())
        fresh = document["format"] == FORMAT and (now if now is not None else dt.datetime.now().timestamp()) < \
            float(document["until"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return fresh and document["fingerprint"] == fingerprint(config_dir)
