"""What `harden` was last asked for, so that each run changes only what its flags name.

The settings are a JSON line in the managed options file's body (`# lehttpd settings: {...}`): the body's SHA-256
covers them, a rollback that restores the file restores them with it, and they live with the server root whatever
`--work-dir` a run uses, so the remembered settings can never disagree with what Apache is given. A file written
by an earlier lehttpd has no such line: its HSTS, CSP and LogFormat lines are read instead.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace

from lehttpd.errors import UsageError

SETTINGS_MARK = "# lehttpd settings: "
PRELOAD_MIN_AGE = 31536000  # one year: what hstspreload.org requires
DEFAULT_PROFILE = "intermediate"
_HSTS_RE = re.compile(r'(?m)^Header always set Strict-Transport-Security "max-age=(\d+)([^"]*)"')
_PROFILE_RE = re.compile(r"(?m)^# Mozilla Guideline v\S+, (\w+) profile")
_LOGFORMAT_RE = re.compile(r'(?m)^LogFormat ".*" (\w+)$')


@dataclass(frozen=True)
class HardenSettings:
    profile: str = DEFAULT_PROFILE
    hsts: int | None = None              # max-age; None: no Strict-Transport-Security header
    hsts_subdomains: bool = False
    hsts_preload: bool = False
    uir: bool = False
    staple_ocsp: bool = False
    log_format: str | None = None

    def line(self) -> str:
        return SETTINGS_MARK + json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class SettingsChange:
    """The flags of one run: None leaves a setting as it was; `remove` names the settings `--no-*` turns off."""
    profile: str | None = None
    hsts: int | None = None
    hsts_subdomains: bool | None = None
    hsts_preload: bool | None = None
    uir: bool | None = None
    staple_ocsp: bool | None = None
    log_format: str | None = None
    remove: frozenset[str] = frozenset()   # of "hsts", "uir", "staple_ocsp"


def read_settings(data: bytes | None) -> HardenSettings:
    """The settings the options file was written with (the defaults when there is no file)."""
    text = (data or b"").decode(errors="replace")
    for line in text.splitlines():
        if line.startswith(SETTINGS_MARK):
            try:
                values = json.loads(line[len(SETTINGS_MARK):])
                known = {k: v for k, v in values.items() if k in HardenSettings.__dataclass_fields__}
                return HardenSettings(**known)
            except (ValueError, TypeError):
                break  # unreadable: fall back to what the directives say
    profile = _PROFILE_RE.search(text)
    hsts = _HSTS_RE.search(text)
    log_format = _LOGFORMAT_RE.search(text)
    return HardenSettings(
        profile=profile.group(1) if profile else DEFAULT_PROFILE, hsts=int(hsts.group(1)) if hsts else None,
        hsts_subdomains=bool(hsts and "includeSubDomains" in hsts.group(2)),
        hsts_preload=bool(hsts and "preload" in hsts.group(2)),
        uir='Content-Security-Policy "upgrade-insecure-requests"' in text,
        log_format=log_format.group(1) if log_format else None)


def merge(previous: HardenSettings, change: SettingsChange, profile_hsts: int) -> HardenSettings:
    """The previous settings with this run's flags applied; `profile_hsts`: the max-age `--hsts` alone means."""
    given = {k: v for k, v in asdict(change).items() if v is not None and k not in ("remove", "hsts")}
    merged = replace(previous, **given)
    if change.hsts is not None:
        merged = replace(merged, hsts=profile_hsts if change.hsts < 0 else change.hsts)
    if "hsts" in change.remove:
        merged = replace(merged, hsts=None, hsts_subdomains=False, hsts_preload=False)
    if "uir" in change.remove:
        merged = replace(merged, uir=False)
    if "staple_ocsp" in change.remove:
        merged = replace(merged, staple_ocsp=False)
    check(merged)
    return merged


def check(settings: HardenSettings) -> None:
    """A preload request the preload list would reject (browsers hard-code the name for good) is refused."""
    if settings.hsts_preload and not settings.hsts:
        raise UsageError("--hsts-preload needs HSTS: add --hsts (max-age of at least 31536000, one year)")
    if settings.hsts_preload and settings.hsts < PRELOAD_MIN_AGE:
        raise UsageError(f"--hsts-preload needs a max-age of at least {PRELOAD_MIN_AGE} (one year), not "
                         f"{settings.hsts}: the preload list refuses shorter ones")
    if settings.hsts is not None and settings.hsts < 0:
        raise UsageError(f"--hsts {settings.hsts}: give a max-age in seconds (or none: the profile's)")


def conflicts(change: SettingsChange) -> None:
    """`--hsts` with `--no-hsts` (and the like) in one run."""
    for name, value in (("hsts", change.hsts), ("uir", change.uir), ("staple_ocsp", change.staple_ocsp)):
        if name in change.remove and value:
            flag = name.replace("_", "-")
            raise UsageError(f"--{flag} and --no-{flag} contradict each other: give one")
    if "hsts" in change.remove and (change.hsts_subdomains or change.hsts_preload):
        raise UsageError("--no-hsts removes the header: --hsts-include-subdomains/--hsts-preload cannot go with it")
