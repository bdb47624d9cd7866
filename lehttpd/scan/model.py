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
LAZY = "lazy"                      # data-src & co: fetched once a lazy-loading script copies it into src
CLASSES = (BLOCKABLE, UPGRADABLE, FORM, NAVIGATION_DOWNGRADE, INSECURE_BASE, LAZY)


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
    at: int = -1      # where to report it when not at `start`: the srcdoc or data: attribute it is nested in


class Finding(NamedTuple):
    """One mixed-content reference of one page. A named tuple: a scan builds one per finding, and a tuple is
    built (and pickled) several times faster than a frozen dataclass."""

    page: str         # file path relative to the scanned folder (as os.fsdecode gives it), or the page URL
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

    def as_json(self) -> dict:
        return {"line": self.line, "column": self.column, "element": self.element,
                "attribute": self.attribute, "url": shown_path(self.written), "resolved": shown_path(self.resolved),
                "class": self.cls, "host": self.host}


def findings_of(page: str, rows: list[tuple]) -> tuple[Finding, ...]:
    """The Findings of one page from rows of their other fields (a row is a Finding without its page, as
    urls.finding_rows builds it: all ten fields, so tuple.__new__ can skip _make's Python frame)."""
    new = tuple.__new__
    return tuple([new(Finding, (page, *row)) for row in rows])


def shown_path(name: str) -> str:
    """A file name (or any text read from a page) for people and JSON: bytes that are not UTF-8, kept by
    os.fsdecode and by surrogateescape decoding as lone surrogates, shown as \\xNN escapes, never an encoding
    error halfway through a report."""
    if name.isascii():
        return name
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no decoder made: show its code point
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


NETWORK = "network"    # unreachable, no answer in time, TLS certificate not trusted
REFUSED = "refused"    # the crawler will not fetch it: a non-public address, another site


@dataclass(frozen=True, slots=True)
class Problem:
    """An input that was skipped or only partly read, and why. The scan goes on."""

    page: str
    reason: str
    skipped: bool = True
    cause: str = ""         # why a page was not fetched at all: NETWORK (exit 4 for the start URL) or REFUSED (2)


@dataclass(frozen=True, slots=True)
class PageResult:
    page: str                      # as shown to the user
    url: str                       # the https URL the page is judged at
    findings: tuple[Finding, ...]
    problems: tuple[Problem, ...] = ()
    size: int = 0
    encoding: str = "utf-8"
    path: str | None = None        # absolute file path for local pages (what --fix rewrites)
