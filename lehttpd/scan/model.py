"""The small frozen values of the scan stage: a reference found in a page, a finding, a skipped input."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# What a browser does with an insecure reference (../shared/reference/mixed-content-and-tls-policy.md, A2).
BLOCKABLE = "blockable"            # blocked: the resource and the padlock are lost
UPGRADABLE = "upgradable"          # images, audio, video: tried over https, lost if the host has none
FORM = "form"                      # a form posting to http: warning or interstitial
NAVIGATION_DOWNGRADE = "navigation-downgrade"  # meta refresh to http
INSECURE_BASE = "insecure-base"    # <base href="http://…">: every relative URL becomes http
CLASSES = (BLOCKABLE, UPGRADABLE, FORM, NAVIGATION_DOWNGRADE, INSECURE_BASE)


class Ref(NamedTuple):
    """One URL as written in a source text, before resolution. `start`/`end` are character offsets of the
    URL as written (entities included), so that a fix rewrites only those characters. A named tuple rather
    than a dataclass: one is built for every URL of every page, in half the time."""

    start: int
    end: int
    written: str      # the raw text between start and end
    value: str        # the URL after entity decoding (what the browser sees)
    element: str      # "img", "link", "css", "style", ...
    attribute: str    # "src", "srcset", "url()", "@import", ...
    cls: str          # class if the URL turns out insecure


@dataclass(frozen=True, slots=True)
class Finding:
    page: str         # file path relative to the scanned folder, or the page URL
    line: int
    column: int
    element: str
    attribute: str
    written: str
    resolved: str
    cls: str
    host: str
    start: int = -1   # character offsets in the decoded page, for --fix
    end: int = -1

    def __reduce__(self):
        # Findings cross from the worker processes by the hundred thousand: a plain tuple pickles several
        # times faster than the default slots state.
        return (Finding, (self.page, self.line, self.column, self.element, self.attribute, self.written,
                          self.resolved, self.cls, self.host, self.start, self.end))

    def as_json(self) -> dict:
        return {"line": self.line, "column": self.column, "element": self.element,
                "attribute": self.attribute, "url": self.written, "resolved": self.resolved,
                "class": self.cls, "host": self.host}


_new = object.__new__
_SETTERS = tuple(getattr(Finding, name).__set__ for name in Finding.__slots__)


def findings_of(page: str, rows: list[tuple]) -> tuple[Finding, ...]:
    """The Findings of one page from rows of their other fields: what Finding(page, *row) builds, in half
    the time of the frozen dataclass's __init__ (a scan builds one per finding, in the reading process)."""
    set_page, set_line, set_column, set_element, set_attribute, set_written, set_resolved, set_cls, set_host, \
        set_start, set_end = _SETTERS
    out = []
    for line, column, element, attribute, written, resolved, cls, host, start, end in rows:
        f = _new(Finding)
        set_page(f, page)
        set_line(f, line)
        set_column(f, column)
        set_element(f, element)
        set_attribute(f, attribute)
        set_written(f, written)
        set_resolved(f, resolved)
        set_cls(f, cls)
        set_host(f, host)
        set_start(f, start)
        set_end(f, end)
        out.append(f)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Problem:
    """An input that was skipped or only partly read, and why. The scan goes on."""

    page: str
    reason: str
    skipped: bool = True


@dataclass(frozen=True, slots=True)
class PageResult:
    page: str                      # as shown to the user
    url: str                       # the https URL the page is judged at
    findings: tuple[Finding, ...]
    problems: tuple[Problem, ...] = ()
    size: int = 0
    encoding: str = "utf-8"
    path: str | None = None        # absolute file path for local pages (what --fix rewrites)
