"""Rendering scan results: text grouped by page and by host, JSON (schema lehttpd.scan/1) and SARIF 2.1.0.

Every renderer is fed one PageResult at a time and prints as it goes, so memory does not grow with the
number of pages; only the per-host and per-class counters are kept until the end.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote

from lehttpd import __version__
from lehttpd.console import Console
from lehttpd.scan.model import (BLOCKABLE, CLASSES, FORM, INSECURE_BASE, LAZY, NAVIGATION_DOWNGRADE, UPGRADABLE,
                                Finding, PageResult, shown_path)

SCHEMA = "lehttpd.scan/1"
_COLOUR = {BLOCKABLE: "red", INSECURE_BASE: "red", UPGRADABLE: "yellow", FORM: "yellow", LAZY: "yellow",
           NAVIGATION_DOWNGRADE: "yellow"}
_MEANING = {
    BLOCKABLE: "blocked by browsers: the resource and the padlock are lost",
    UPGRADABLE: "image/audio/video: browsers retry it over https and lose it if the host has no https",
    FORM: "form submitted over http: browsers warn or show an interstitial",
    NAVIGATION_DOWNGRADE: "meta refresh to an http page: the visitor leaves https",
    INSECURE_BASE: "<base href> over http: every relative URL of the page becomes http",
    LAZY: "lazy-loading attribute (data-src…): fetched over http once the page's lazy-loading script runs",
}


@dataclass
class ScanSummary:
    """What is kept across pages: counters only."""

    pages: int = 0
    pages_with_findings: int = 0
    classes: Counter = field(default_factory=Counter)
    host_pages: Counter = field(default_factory=Counter)
    host_findings: Counter = field(default_factory=Counter)
    host_classes: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    fixed: int = 0
    changed: list = field(default_factory=list)  # files --fix rewrote (shown form)
    backup_run: str | None = None               # the --undo name of the run that holds their originals

    def add(self, result: PageResult) -> None:
        if result.url:
            self.pages += 1
        self.problems.extend(result.problems)
        if not result.findings:
            return
        self.pages_with_findings += 1
        for finding in result.findings:
            self.classes[finding.cls] += 1
            self.host_findings[finding.host] += 1
            self.host_classes.setdefault(finding.host, Counter())[finding.cls] += 1
        for host in {f.host for f in result.findings}:
            self.host_pages[host] += 1

    @property
    def total(self) -> int:
        return sum(self.classes.values())

    def failing(self, fail_on: tuple[str, ...]) -> bool:
        return any(self.classes[cls] for cls in fail_on)

    def as_json(self) -> dict:
        return {"pages": self.pages, "pages_with_findings": self.pages_with_findings,
                "findings": self.total, "by_class": {cls: self.classes[cls] for cls in CLASSES},
                "skipped": sum(1 for p in self.problems if p.skipped), "fixed": self.fixed,
                "not_fixed": sum(1 for p in self.problems if p.reason.startswith("not fixed:")),
                "changed_files": self.changed, "backup_run": self.backup_run}

    def hosts_json(self) -> list[dict]:
        return [{"host": host, "pages": pages, "findings": self.host_findings[host],
                 "by_class": dict(sorted(self.host_classes[host].items()))}
                for host, pages in sorted(self.host_pages.items(), key=lambda kv: (-kv[1], kv[0]))]


def page_json(result: PageResult) -> dict:
    return {"page": shown_path(result.page), "url": result.url, "encoding": result.encoding,
            "findings": [f.as_json() for f in result.findings],
            "problems": [{"reason": p.reason, "skipped": p.skipped} for p in result.problems]}


class TextReport:
    def __init__(self, console: Console) -> None:
        self.console = console

    def start(self, target: str) -> None:
        self.console.step(f"Scanning {shown_path(target)} for mixed content")

    def page(self, result: PageResult) -> None:
        c = self.console
        if c.quiet:  # -q: like grep -q, the exit code is the answer; errors still go to stderr
            return
        for problem in result.problems:
            c.warn(f"{shown_path(problem.page)}: {problem.reason}" + ("; skipped" if problem.skipped else ""))
        if not result.findings:
            return
        c.result(c.paint(shown_path(result.page), "bold") + f"  ({len(result.findings)})")
        for f in result.findings:
            c.result(f"  {f.line}:{f.column}  {c.paint(f.cls, _COLOUR[f.cls]):<20}  {f.element} {f.attribute}  "
                     + shown_path(f.written) + (f"  → {shown_path(f.resolved)}" if f.resolved != f.written else ""))

    def finish(self, summary: ScanSummary, hints: list[str]) -> None:
        c = self.console
        if c.quiet:
            return
        if summary.host_pages:
            c.result(c.paint("Hosts", "bold"))
            for row in summary.hosts_json():
                classes = ", ".join(f"{n} {cls}" for cls, n in row["by_class"].items())
                c.result(f"  {row['host']:<32} {row['pages']} page(s), {classes}")
        counts = ", ".join(f"{summary.classes[cls]} {cls}" for cls in CLASSES if summary.classes[cls])
        skipped = sum(1 for p in summary.problems if p.skipped)
        not_fixed = summary.as_json()["not_fixed"]
        c.result(f"{summary.pages} page(s) scanned, {summary.pages_with_findings} with mixed content"
                 + (f": {counts}" if counts else "") + (f"; {skipped} skipped" if skipped else "")
                 + (f"; {not_fixed} page(s) not fixed (see the warnings)" if not_fixed else ""))
        for cls in CLASSES:
            if summary.classes[cls]:
                c.detail(f"  {cls}: {_MEANING[cls]}")
        for hint in hints:
            c.result(hint)


class JsonReport:
    """Streamed JSON: the document is printed page by page; JSON does not care about the line breaks."""

    def __init__(self, console: Console, target: str, site_url: str) -> None:
        self.console, self.target, self.site_url = console, target, site_url
        self.first = True

    def start(self, target: str) -> None:
        head = {"schema": SCHEMA, "tool": f"lehttpd {__version__}", "target": shown_path(self.target),
                "site_url": self.site_url}
        self.console.result(json.dumps(head, sort_keys=True)[:-1] + ', "pages": [')

    def page(self, result: PageResult) -> None:
        if not result.findings and not result.problems:
            return
        self.console.result(("" if self.first else ",") + json.dumps(page_json(result), sort_keys=True))
        self.first = False

    def finish(self, summary: ScanSummary, hints: list[str]) -> None:
        tail = {"hosts": summary.hosts_json(), "summary": summary.as_json(), "hints": hints}
        self.console.result("], " + json.dumps(tail, sort_keys=True)[1:])


class SarifReport:
    """SARIF 2.1.0, one rule per class, so that CI systems show each finding on its line."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.first = True

    def start(self, target: str) -> None:
        rules = [{"id": f"mixed-content/{cls}", "name": cls.title().replace("-", ""),
                  "shortDescription": {"text": _MEANING[cls]},
                  "defaultConfiguration": {"level": "error" if cls in (BLOCKABLE, INSECURE_BASE) else "warning"}}
                 for cls in CLASSES]
        head = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0"}
        driver = {"name": "lehttpd", "version": __version__, "informationUri": "https://github.com/lehttpd",
                  "rules": rules}
        self.console.result(json.dumps(head)[:-1] + ', "runs": [{"tool": {"driver": '
                            + json.dumps(driver) + '}, "results": [')

    def page(self, result: PageResult) -> None:
        for f in result.findings:
            self.console.result(("" if self.first else ",") + json.dumps(_sarif_result(f)))
            self.first = False

    def finish(self, summary: ScanSummary, hints: list[str]) -> None:
        properties = {"changedFiles": summary.changed, "backupRun": summary.backup_run, "hints": hints}
        self.console.result('], "properties": ' + json.dumps(properties) + "}]}")


def _sarif_result(f: Finding) -> dict:
    level = "error" if f.cls in (BLOCKABLE, INSECURE_BASE) else "warning"
    return {"ruleId": f"mixed-content/{f.cls}", "level": level,
            "message": {"text": f"{f.element} {f.attribute} loads {shown_path(f.resolved)} over http ({f.cls})"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(f.page)},
                                                "region": {"startLine": f.line, "startColumn": f.column}}}]}


def _uri(page: str) -> str:
    """SARIF wants a URI: a file path's bytes percent-encoded (a crawled page is already a URL)."""
    if "://" in page:
        return page
    return quote(os.fsencode(page).replace(os.sep.encode(), b"/"))


def hints_for(summary: ScanSummary, fixed: bool) -> list[str]:
    """What is left, and the fallback when fixing the pages is not possible."""
    hints = []
    if fixed:
        hints.append(f"fixed {summary.fixed} reference(s); {summary.total} left (third-party hosts not known to "
                     "have https — try --probe — or URLs written in a way that is not safe to rewrite)")
    if not summary.total:
        return hints
    if not fixed:
        hints.append("rerun with --fix (and --probe for third-party hosts) to rewrite them; --dry-run shows the diff")
    hints.append("where the pages cannot be fixed, `lehttpd harden --uir` adds "
                 "Content-Security-Policy: upgrade-insecure-requests, so browsers upgrade every request to https")
    return hints

