"""Finding what to renew: every renewal/NAME.conf, read and checked, turned into a candidate or a skip.

A file that cannot be trusted (corrupt, half-written, written by a version we do not know, pointing at no
certificate) becomes an `Unreadable` with the reason; it is never rewritten, so nothing the user had is lost.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lehttpd import __version__
from lehttpd.errors import LehttpdError, UsageError
from lehttpd.model import IssueRequest, Lineage
from lehttpd.renew.index import Index, signature
from lehttpd.renew.state import RenewState, load_state, state_names
from lehttpd.renewal_conf import RenewalConf, parse, to_request
from lehttpd.store import KINDS, CertStore, check_lineage_name

# renewal files are read from certbot (format unchanged from 0.x to 5.x) and from lehttpd itself; a newer
# major version may have changed the meaning of a key, so such a file is left alone.
KNOWN_CERTBOT_MAJOR = 5
_LEHTTPD_MARK = re.compile(r"written by lehttpd (\S+)")
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_NUMBER = re.compile(r"(\d+)\.pem$")


@dataclass(frozen=True)
class Candidate:
    """A lineage that can be renewed: its current certificate, how it was issued, what we remember."""

    lineage: Lineage
    request: IssueRequest
    account_id: str | None
    conf_path: Path
    state: RenewState

    @property
    def name(self) -> str:
        return self.lineage.name


@dataclass(frozen=True)
class Unreadable:
    name: str
    conf_path: Path
    reason: str


def discover(store: CertStore, wanted: tuple[str, ...] = (), index: Index | None = None) -> list[Candidate | Unreadable]:
    """Every lineage with a renewal file (only `wanted` ones when given), sorted by name.

    With an `index`, certificates unchanged since the last run are not parsed again.
    """
    renewal_dir = store.config_dir / "renewal"
    files = sorted(renewal_dir.glob("*.conf")) if renewal_dir.is_dir() else []
    by_name = {path.name[:-len(".conf")]: path for path in files}
    if wanted:
        missing = [name for name in wanted if name not in by_name]
        if missing:
            raise UsageError(f"no renewal file for {', '.join(missing)} in {renewal_dir}")
        by_name = {name: by_name[name] for name in wanted}
    if index is not None and not wanted:
        index.forget_missing(set(by_name))
    stateful = state_names(store.config_dir)
    return [read_candidate(store, name, path, index, stateful) for name, path in sorted(by_name.items())]


def read_candidate(store: CertStore, name: str, path: Path, index: Index | None = None,
                   stateful: set[str] | None = None) -> Candidate | Unreadable:
    """One lineage; `stateful` (names with a state file, listed once) spares an open() per lineage."""
    try:
        check_lineage_name(name)
        text = path.read_text(encoding="utf-8")
        conf = parse(text, str(path))
        check_version(text, conf, str(path))
        _check_paths(name, conf, str(path))
        lineage = current_lineage(store, name, index)
        if not lineage.names:
            raise UsageError(f"{lineage.cert_path}: the certificate names no domain")
        request = to_request(conf, lineage.names, name, str(path))
    except UnicodeDecodeError:
        return Unreadable(name, path, f"{path}: not a text file (corrupt?)")
    except OSError as error:
        return Unreadable(name, path, f"cannot read {path}: {error.strerror}")
    except LehttpdError as error:
        return Unreadable(name, path, error.message)
    state = load_state(store.config_dir, name) if stateful is None or name in stateful else RenewState()
    return Candidate(lineage, request, conf.params.get("account") or None, path, state)


def current_lineage(store: CertStore, name: str, index: Index | None) -> Lineage:
    """The lineage's current certificate, from the index when unchanged; a half-done link switch (a killed
    process) is finished first, by taking the lineage lock, which repairs."""
    cached = index.cached(store.config_dir, name) if index is not None else None
    if cached is not None:
        return cached
    if not live_links_consistent(store, name):
        with store.lock(name):
            pass
    seen = signature(store.config_dir, name)
    lineage = store.load(name)
    if index is not None:
        index.remember(store.config_dir, name, lineage, seen)
    return lineage


def live_links_consistent(store: CertStore, name: str) -> bool:
    """Do the four live/ links point at one version? (Not so only after a crash in the middle of a switch.)"""
    live = os.path.join(store.config_dir, "live", name)
    try:
        targets = {_NUMBER.search(os.readlink(os.path.join(live, f"{kind}.pem"))) for kind in KINDS}
    except OSError:
        return True  # not links (or missing): nothing to finish; load() reports what is wrong
    return len({m.group(1) if m else None for m in targets}) == 1


def check_version(text: str, conf: RenewalConf, where: str) -> None:
    """Refuse files from a version whose format we do not know (newer major), or with no version at all."""
    raw = conf.top.get("version")
    if raw is None:
        raise UsageError(f"{where}: no 'version' line: not a renewal file written by certbot or lehttpd")
    mark = _LEHTTPD_MARK.search(text)
    match = _VERSION.match(raw)
    if not match:
        raise UsageError(f"{where}: unknown format version {raw!r}")
    major = int(match.group(1))
    # lehttpd writes its version in both the header comment and the version line; certbot rewrites the
    # version line but keeps comments, so a header that disagrees means certbot wrote the file last.
    if mark and mark.group(1).rstrip(";") == raw:
        ours = int(_VERSION.match(__version__).group(1))  # type: ignore[union-attr]
        if major > ours:
            raise UsageError(f"{where}: written by lehttpd {raw}, newer than this lehttpd {__version__}; "
                             "upgrade lehttpd to renew it")
    elif major > KNOWN_CERTBOT_MAJOR:
        raise UsageError(f"{where}: written by certbot {raw}, a format version lehttpd {__version__} "
                         f"does not know (up to {KNOWN_CERTBOT_MAJOR}.x)")


def _check_paths(name: str, conf: RenewalConf, where: str) -> None:
    """The file must describe this lineage's live files (a copied or edited file could point elsewhere)."""
    for kind in ("cert", "privkey", "fullchain"):
        path = conf.top[kind]
        if os.path.basename(path) != f"{kind}.pem" or os.path.basename(os.path.dirname(path)) != name:
            raise UsageError(f"{where}: {kind} = {path} is not live/{name}/{kind}.pem")
