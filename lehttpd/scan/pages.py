"""Pages of a local folder: which files, at which future https URL, and scanning one of them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote

from lehttpd.scan.css import css_refs
from lehttpd.scan.html import html_refs
from lehttpd.scan.model import PageResult, Problem, findings_of
from lehttpd.scan.source import MAX_PAGE_BYTES, BadInput, decode_page, read_page
from lehttpd.scan.urls import finding_rows

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml", ".php", ".phtml")
CSS_SUFFIXES = (".css",)
DEFAULT_SITE_URL = "https://site.invalid/"  # when no --site-url: relative URLs are judged as https


@dataclass(frozen=True)
class ScanOptions:
    site_url: str = DEFAULT_SITE_URL
    max_bytes: int = MAX_PAGE_BYTES
    jobs: int = 0  # 0: one worker per core


def walk(root: str) -> Iterator[tuple[str, str] | Problem]:
    """(absolute path, path relative to root) of every page and stylesheet, in a stable order; a Problem for
    each directory that cannot be read or is a symlink back into the tree."""
    seen: set[tuple[int, int]] = set()
    problems: list[Problem] = []

    def onerror(error: OSError) -> None:
        problems.append(Problem(os.path.relpath(error.filename or root, root), f"unreadable: {error.strerror}"))

    for directory, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        st = os.stat(directory)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop: already walked this directory
            dirnames[:] = []
            yield Problem(os.path.relpath(directory, root), "symlink loop: directory already scanned")
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        yield from problems
        problems.clear()
        prefix = os.path.relpath(directory, root)  # once per directory: relpath is slow
        prefix = "" if prefix == os.curdir else prefix + os.sep
        for name in sorted(filenames):
            if name.lower().endswith(HTML_SUFFIXES + CSS_SUFFIXES):
                yield os.path.join(directory, name), prefix + name
    yield from problems


def page_url(site_url: str, relative: str) -> str:
    # the file name's bytes, percent-encoded: a name that is not UTF-8 is still one URL
    return site_url.rstrip("/") + "/" + quote(os.fsencode(relative).replace(os.sep.encode(), b"/"))


def scan_bytes(data: bytes, url: str, page: str, is_css: bool, declared: str | None = None,
               path: str | None = None) -> PageResult:
    """Findings of one page or stylesheet given as bytes. Bad input becomes a Problem, never an exception."""
    rows, problems, encoding = scan_data(data, url, page, is_css, declared)
    return PageResult(page, url, findings_of(page, rows), problems, len(data), encoding, path)


def scan_data(data: bytes, url: str, page: str, is_css: bool, declared: str | None = None
              ) -> tuple[list[tuple], tuple[Problem, ...], str]:
    """(finding rows, problems, encoding) of one page: each row is a Finding without its page."""
    try:
        text, encoding, note = decode_page(data, declared)
    except BadInput as error:
        return [], (Problem(page, error.message),), "utf-8"
    if is_css:
        refs, base = css_refs(text), None
    else:
        refs, base = html_refs(text)
    problems = (Problem(page, note, skipped=False),) if note else ()
    return finding_rows(refs, base, url, text), problems, encoding


def scan_packed(path: str, relative: str, options: ScanOptions) -> tuple:
    """scan_file as plain values (url, rows, problems, size, encoding): what a worker sends back, since
    tuples of strings pickle several times faster than the dataclasses."""
    url = page_url(options.site_url, relative)
    try:
        data = read_page(path, options.max_bytes)
    except BadInput as error:
        return url, (), (Problem(relative, error.message),), 0, "utf-8"
    rows, problems, encoding = scan_data(data, url, relative, relative.lower().endswith(CSS_SUFFIXES))
    return url, rows, problems, len(data), encoding


def unpack(path: str, relative: str, packed: tuple) -> PageResult:
    url, rows, problems, size, encoding = packed
    return PageResult(relative, url, findings_of(relative, rows), problems, size, encoding,
                      path)


def scan_file(path: str, relative: str, options: ScanOptions) -> PageResult:
    return unpack(path, relative, scan_packed(path, relative, options))
