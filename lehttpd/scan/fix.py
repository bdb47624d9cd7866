"""--fix: rewrite the URL characters of findings in place, with a backup and an optional probe.

Own-site URLs become root-relative (a <base> becomes https); a third-party URL becomes https only when
--probe has seen that host answer over https. Nothing else in the file changes: the page is decoded so that
it encodes back to the same bytes, only the [start, end) spans of findings are replaced.
"""
from __future__ import annotations

import difflib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from lehttpd.fileio import atomic_write
from lehttpd.scan.model import INSECURE_BASE, Finding, PageResult
from lehttpd.scan.source import BadInput, decode_page, encode_page, read_page

BACKUP_SUFFIX = ".lehttpd-bak"
_HTTP = re.compile(r"[hH][tT][tT][pP]:")
_OWN = re.compile(r"[hH][tT][tT][pP]:[/\\]{2}[^/\\?#]*")


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    new: str
    finding: Finding


class Prober:
    """Does a host answer over https? HEAD, then GET when HEAD is refused; one answer per host."""

    def __init__(self, timeout: float = 5.0, session: requests.Session | None = None,
                 verify: bool | str = True) -> None:
        self.timeout = timeout
        self.session = session or requests.Session()
        self.verify = verify
        self.cache: dict[str, bool] = {}

    def __call__(self, https_url: str, host: str) -> bool:
        if host not in self.cache:
            self.cache[host] = self._answers(https_url)
        return self.cache[host]

    def _answers(self, url: str) -> bool:
        try:
            response = self.session.head(url, timeout=self.timeout, allow_redirects=True, verify=self.verify)
            if response.status_code in (403, 405, 501):  # some servers refuse HEAD only
                response = self.session.get(url, timeout=self.timeout, stream=True, verify=self.verify)
                response.close()
            return response.status_code < 400
        except (requests.RequestException, ValueError):
            return False


def plan_edits(findings: tuple[Finding, ...], site_host: str,
               probe: Callable[[str, str], bool] | None) -> list[Edit]:
    """The rewrites that are safe for these findings; the others are left for the report."""
    edits = []
    for f in findings:
        new = _rewrite(f, site_host, probe)
        if new is not None and new != f.written:
            edits.append(Edit(f.start, f.end, new, f))
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


def apply_edits(text: str, edits: list[Edit]) -> str:
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
    edits: tuple[Edit, ...]
    diff: str
    backup: str | None
    error: str | None = None
    data: bytes | None = None  # the new content, once written


def fix_page(result: PageResult, site_host: str, probe: Callable[[str, str], bool] | None,
             dry_run: bool, max_bytes: int) -> FixOutcome:
    """Rewrite one local page (or only diff it with dry_run). The file is re-read and checked first."""
    if result.path is None:
        return FixOutcome((), "", None, "not a local file")
    try:
        data = read_page(result.path, max_bytes)
        text, encoding, _ = decode_page(data)
    except BadInput as error:
        return FixOutcome((), "", None, error.message)
    if encode_page(text, encoding) != data:
        return FixOutcome((), "", None, f"cannot rewrite {encoding} text byte for byte")
    edits = [e for e in plan_edits(result.findings, site_host, probe) if text[e.start:e.end] == e.finding.written]
    if not edits:
        return FixOutcome((), "", None)
    new_text = apply_edits(text, edits)
    diff = "".join(difflib.unified_diff(text.splitlines(True), new_text.splitlines(True),
                                        f"a/{result.page}", f"b/{result.page}"))
    if dry_run:
        return FixOutcome(tuple(edits), diff, None)
    backup = _backup(result.path, data)
    new_data = encode_page(new_text, encoding)
    atomic_write(Path(result.path), new_data, like=Path(result.path))
    return FixOutcome(tuple(edits), diff, backup, data=new_data)


def _backup(path: str, data: bytes) -> str:
    """The original bytes beside the file; never overwrite an earlier backup."""
    backup, n = path + BACKUP_SUFFIX, 1
    while os.path.exists(backup):
        backup, n = f"{path}{BACKUP_SUFFIX}.{n}", n + 1
    with open(backup, "xb") as handle:
        handle.write(data)
    shutil.copystat(path, backup)
    return backup
