"""Finding what to renew: every renewal/NAME.conf, read and checked, turned into a candidate or a skip.

A file that cannot be trusted (owned by another user or writable by others, a link, a FIFO, corrupt,
half-written, written by a version we do not know, with a value the command line would refuse, pointing at
no certificate) becomes an `Unreadable` with the reason; it is never rewritten, so nothing the user had is
lost. A live/ lineage without a renewal file is an `Unreadable` too ("not renewable"): it would silently
expire otherwise.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from lehttpd import __version__
from lehttpd.errors import LehttpdError, UsageError
from lehttpd.model import IssueRequest, Lineage
from lehttpd.renew.index import Known, RenewIndex
from lehttpd.renew.state import RenewState, load_state, state_names
from lehttpd.renewal_conf import RenewalConf, parse, to_request
from lehttpd.store import CertStore, check_lineage_name

# renewal files are read from certbot (format unchanged from 0.x to 5.x) and from lehttpd itself; a newer
# major version may have changed the meaning of a key, so such a file is left alone.
KNOWN_CERTBOT_MAJOR = 5
_LEHTTPD_MARK = re.compile(r"written by lehttpd (\S+)")
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


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

    @property
    def server(self) -> str:
        return self.request.server

    @property
    def ca_bundle(self) -> Path | None:
        return self.request.ca_bundle


@dataclass(frozen=True)
class Unreadable:
    name: str
    conf_path: Path
    reason: str


def discover(store: CertStore, wanted: tuple[str, ...] = (),
             index: RenewIndex | None = None) -> list[Candidate | Known | Unreadable]:
    """Every lineage with a renewal file (only `wanted` ones when given), and every live/ lineage without
    one, sorted by name. With an `index`, a lineage unchanged since it was indexed is a `Known` (see
    renew/index.py), and the others are indexed as they are read."""
    with_file = store.renewal_names()
    orphans = store.not_renewable()
    if wanted:
        missing = [name for name in wanted if name not in with_file and name not in orphans]
        if missing:
            raise UsageError(f"no renewal file for {', '.join(missing)} in {store.config_dir / 'renewal'}")
        with_file = [name for name in with_file if name in wanted]
        orphans = [name for name in orphans if name in wanted]
    stateful = state_names(store.config_dir)
    if index is None:
        found: list = [read_candidate(store, name, stateful) for name in with_file]
    else:
        found = [_indexed(store, name, stateful, index) for name in with_file]
        if not wanted:
            index.keep_only(set(with_file))
    found += [Unreadable(name, store.renewal_conf(name), not_renewable(store, name)) for name in orphans]
    return sorted(found, key=lambda item: item.name)


def _indexed(store: CertStore, name: str, stateful: set[str], index: RenewIndex) -> Candidate | Known | Unreadable:
    known = index.known(name, load_state(store.config_dir, name) if name in stateful else RenewState())
    if known is not None:
        return known
    started = time.time_ns()  # before reading: a change during the read is not indexed (see RenewIndex.remember)
    found = read_candidate(store, name, stateful)
    if isinstance(found, Candidate):
        index.remember(found, started)
    else:
        index.forget(name)
    return found


def not_renewable(store: CertStore, name: str) -> str:
    return (f"not renewable: {store.live_dir(name)} has no renewal file {store.renewal_conf(name)}; "
            f"run `lehttpd issue --cert-name {name} -d NAME…` with its names to make it renewable again")


def read_candidate(store: CertStore, name: str, stateful: set[str] | None = None) -> Candidate | Unreadable:
    """One lineage; `stateful` (names with a state file, listed once) spares an open() per lineage."""
    path = store.renewal_conf(name)
    try:
        check_lineage_name(name)
        text = store.read_renewal_file(name)  # owner, mode, no link, no FIFO: checked before parsing
        conf = parse(text, str(path))
        check_version(text, conf, str(path))
        _check_paths(name, conf, str(path))
        lineage = store.current(name)
        if not lineage.names:
            raise UsageError(f"{lineage.cert_path}: the certificate names no domain")
        request = to_request(conf, lineage.names, name, str(path))
    except UnicodeDecodeError:
        return Unreadable(name, path, f"{path}: not a text file (corrupt?)")
    except FileNotFoundError as error:
        return Unreadable(name, path, f"cannot read {error.filename or path}: {error.strerror}")
    except OSError as error:
        return Unreadable(name, path, f"cannot read {path}: {error.strerror}")
    except LehttpdError as error:
        return Unreadable(name, path, error.message)
    state = load_state(store.config_dir, name) if stateful is None or name in stateful else RenewState()
    return Candidate(lineage, request, conf.params.get("account") or None, path, state)


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
