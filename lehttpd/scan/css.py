"""Subresource URLs in CSS text: url(), @import and @font-face src, with their offsets.

Works on a stylesheet file, a <style> block or a style attribute's value alike; `offset` shifts the positions
so that they point into the enclosing page.
"""
from __future__ import annotations

import re

from lehttpd.scan.model import BLOCKABLE, UPGRADABLE, Ref

# One pass over the text; comments and strings are matched (and skipped) so that a url( inside them is not
# taken for a reference. @import accepts a bare string, which url() alone would miss.
_CSS = re.compile(r"""
    /\*.*?(?:\*/|\Z)
  | (?P<import>@import)\s*(?:url\(\s*)?(?:"(?P<iq>(?:[^"\\\n]|\\.)*)"|'(?P<ia>(?:[^'\\\n]|\\.)*)'|(?P<iu>[^\s"'();]+))
  | (?P<font>@font-face)\s*\{(?P<body>[^}]*)\}?
  | url\(\s*(?:"(?P<q>(?:[^"\\\n]|\\.)*)"|'(?P<a>(?:[^'\\\n]|\\.)*)'|(?P<u>[^\s"'()]*))
  | "(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'
""", re.S | re.X | re.I)

_URL = re.compile(r"""url\(\s*(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)'|([^\s"'()]*))""", re.I)
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(.))", re.S)


def unescape_css(value: str) -> str:
    """CSS escapes (`\\70` is "p"), which a browser undoes before it sees the URL."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: _code_point(m.group(1)) if m.group(1) else (m.group(2) or ""), value)


def _code_point(hex_digits: str) -> str:
    code = int(hex_digits, 16)
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def css_refs(text: str, element: str = "css", prefix: str = "", offset: int = 0,
             start: int = 0, end: int | None = None) -> list[Ref]:
    """Every URL fetched by this CSS, in order. Only text that can hold a scheme or path is kept."""
    refs: list[Ref] = []
    end = len(text) if end is None else end
    for m in _CSS.finditer(text, start, end):
        if m.group("import") is not None:
            _add(refs, m, ("iq", "ia", "iu"), text, element, prefix + "@import", BLOCKABLE, offset)
        elif m.group("font") is not None:
            body_start = m.start("body")
            for u in _URL.finditer(text, body_start, m.end("body")):
                _add(refs, u, (1, 2, 3), text, element, prefix + "@font-face", BLOCKABLE, offset)
        elif m.start("q") >= 0 or m.start("a") >= 0 or m.start("u") >= 0:
            _add(refs, m, ("q", "a", "u"), text, element, prefix + "url()", UPGRADABLE, offset)
    return refs


def _add(refs: list[Ref], m: re.Match, groups: tuple, text: str, element: str, attribute: str,
         cls: str, offset: int) -> None:
    for group in groups:
        if m.start(group) >= 0:
            s, e = m.start(group), m.end(group)
            written = text[s:e]
            refs.append(Ref(s + offset, e + offset, written, unescape_css(written).strip(),
                            element, attribute, cls))
            return
