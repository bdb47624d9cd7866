"""--fix: rewrite the URL characters of findings, the original kept in a backup run, with an optional probe.

Own-site URLs become root-relative (a <base> becomes https); a third-party URL becomes https only when
--probe has seen that host answer over https. Nothing else in the file changes: the page is decoded so that
it encodes back to the same bytes, only the [start, end) spans of findings are replaced.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from lehttpd.fileio import atomic_write
from lehttpd.scan.backup import BackupRun
from lehttpd.scan.guard import Guard
from lehttpd.scan.model import INSECURE_BASE, Finding, PageResult, shown_path
from lehttpd.scan.sitepolicy import Origin, PinnedAdapter, Refused, Resolver, public_address, resolve
from lehttpd.scan.source import BadInput, decode_page, encode_page, read_page

_HTTP = re.compile(r"[hH][tT][tT][pP]:")
_OWN = re.compile(r"[hH][tT][tT][pP]:[/\\]{2}[^/\\?#]*")


@dataclass(frozen=True)
class UrlRewrite:
    """New characters for the [start, end) span of one finding's URL."""

    start: int
    end: int
    new: str
    finding: Finding


class Prober:
    """Does a host answer over https? HEAD, then GET when HEAD is refused; one answer per host. The host is
    resolved once and only a public address is asked (a page naming an intranet or metadata host does not make
    the server fetch it), the connection goes to that address with TLS checked against the name, and a
    redirect is an answer, not followed."""

    def __init__(self, timeout: float = 5.0, verify: bool | str = True, resolver: Resolver = resolve,
                 trusted: frozenset[str] = frozenset()) -> None:
        self.timeout, self.verify, self.resolver = timeout, verify, resolver
        self.trusted = trusted  # addresses that may be asked although not public
        self.cache: dict[str, bool] = {}

    def __call__(self, https_url: str, host: str) -> bool:
        if host not in self.cache:
            self.cache[host] = self._answers(https_url)
        return self.cache[host]

    def _answers(self, url: str) -> bool:
        origin = Origin.of(url)
        if origin is None or origin.scheme != "https":
            return False
        try:
            address = public_address(origin.host, origin.port, self.resolver, self.trusted)
            path = requests.Request("GET", url).prepare().path_url
        except (Refused, requests.RequestException, ValueError):
            return False
        adapter = PinnedAdapter(origin, origin.host, address, 1)
        try:
            for method in ("HEAD", "GET"):
                with adapter.get(path, {"User-Agent": "lehttpd-probe"}, self.timeout, self.verify,
                                 method) as response:
                    if method == "GET" or response.status_code not in (403, 405, 501):  # HEAD refused
                        return response.status_code < 400
            return False
        except (requests.RequestException, ValueError):
            return False
        finally:
            adapter.close()


def plan_edits(findings: tuple[Finding, ...], site_host: str,
               probe: Callable[[str, str], bool] | None) -> list[UrlRewrite]:
    """The rewrites that are safe for these findings; the others are left for the report."""
    edits = []
    for f in findings:
        new = _rewrite(f, site_host, probe)
        if new is not None and new != f.written:
            edits.append(UrlRewrite(f.start, f.end, new, f))
    return edits


def _rewrite(f: Finding, site_host: str, probe: Callable[[str, str], bool] | None) -> str | None:
    own = _OWN.match(f.written)
    if own is None and not _HTTP.match(f.written):
        return None  # relative under an http <base>, or written with entities: fix the base, or by hand
    if f.host == site_host and own is not None:
        if f.cls == INSECURE_BASE:
            return "https:" + f.written[5:]
        rest = f.written[own.end():]
        return rest if rest.startswith("/") else "/" + rest
    if probe is not None and probe("https:" + f.resolved[5:], f.host):
        return "https:" + f.written[5:]
    return None


def apply_edits(text: str, edits: list[UrlRewrite]) -> str:
    parts, pos = [], 0
    for edit in sorted(edits, key=lambda e: e.start):
        if edit.start < pos:
            continue  # overlapping spans cannot happen for distinct attributes; stay safe anyway
        parts += [text[pos:edit.start], edit.new]
        pos = edit.end
    parts.append(text[pos:])
    return "".join(parts)


@dataclass(frozen=True)
class FixOutcome:
    rewrites: tuple[UrlRewrite, ...]
    diff: str
    backup: str | None            # the run folder holding the original
    error: str | None = None      # why the page was left alone
    data: bytes | None = None     # the new content, once written
    written: str | None = None    # the file that was rewritten (the target of a symlinked page)


def fix_page(result: PageResult, site_host: str, probe: Callable[[str, str], bool] | None,
             dry_run: bool, max_bytes: int, guard: Guard, run: BackupRun | None) -> FixOutcome:
    """Rewrite one local page (or only diff it with dry_run). The file is checked (inside the scanned folder,
    regular, not hard-linked outside), re-read and compared with the scan first; its original goes to `run`."""
    if result.path is None:
        return FixOutcome((), "", None, "not a local file")
    verdict = guard.check(result.path)
    if verdict.path is None:
        return FixOutcome((), "", None, verdict.reason)
    real = verdict.path
    try:
        data = read_page(real, max_bytes)
        text, encoding, _ = decode_page(data)
    except BadInput as error:
        return FixOutcome((), "", None, error.message)
    if encode_page(text, encoding) != data:
        return FixOutcome((), "", None, f"cannot rewrite {encoding} text byte for byte")
    rewrites = [e for e in plan_edits(result.findings, site_host, probe)
                if text[e.start:e.end] == e.finding.written]
    if not rewrites:
        return FixOutcome((), "", None)
    new_text = apply_edits(text, rewrites)
    diff = "".join(difflib.unified_diff(text.splitlines(True), new_text.splitlines(True),
                                        f"a/{shown_path(result.page)}", f"b/{shown_path(result.page)}"))
    if dry_run or run is None:
        return FixOutcome(tuple(rewrites), diff, None)
    new_data = encode_page(new_text, encoding)
    entry = run.keep(real, data)
    if not guard.still_same(real):  # a folder on the way was swapped for a link since the check
        return FixOutcome((), "", None, "the path changed while being fixed (a symlink appeared)")
    atomic_write(Path(real), new_data, like=Path(real))  # keeps mode, owner and group
    run.written(entry, new_data)
    return FixOutcome(tuple(rewrites), diff, str(run.folder), data=new_data, written=real)
