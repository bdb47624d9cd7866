"""Subresource URLs in CSS text: url(), @import, @font-face src and image-set(), with their offsets.

Works on a stylesheet file, a <style> block or a style attribute's value alike; `offset` shifts the positions
so that they point into the enclosing page. Read as CSS Syntax 3 tokenizes: comments and strings are skipped
(a url( inside them fetches nothing), escapes are undone in URLs and also in function names (`u\\72l(` is
`url(`), `@namespace` names a namespace and fetches nothing, and the strings of `image-set()` (also
`-webkit-image-set()`) are URLs like its url()s, except those of `type()`.
"""
from __future__ import annotations

import re

from lehttpd.scan.model import BLOCKABLE, UPGRADABLE, Ref

_STRING = r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
_URL_BODY = r"""url\(\s*(?:"(?P<q>(?:[^"\\\n]|\\.)*)"|'(?P<a>(?:[^'\\\n]|\\.)*)'|(?P<u>(?:[^\s"'()\\]|\\[^\n])*))"""
# One pass over the text; comments and strings are matched (and skipped) so that a url( inside them is not
# taken for a reference. @import accepts a bare string, which url() alone would miss.
_PLAIN = rf"""
    /\*.*?(?:\*/|\Z)
  | (?P<import>@import)\s*(?:url\(\s*)?(?:"(?P<iq>(?:[^"\\\n]|\\.)*)"|'(?P<ia>(?:[^'\\\n]|\\.)*)'|(?P<iu>[^\s"'();]+))
  | (?P<font>@font-face)\s*\{{(?P<body>[^}}]*)\}}?
  | @namespace(?:[^;"'{{}}]|{_STRING})*+;?
  | (?P<iset>(?:-webkit-)?image-set)\(
  | {_URL_BODY}
  | {_STRING}
"""
_CSS = re.compile(_PLAIN, re.S | re.X | re.I)
# With a backslash in the text, a function name may be escaped: the name is read with its escapes undone.
# Tried only where a name starts and only when a backslash comes before its end; possessive, so that a long
# run of name characters costs one pass, never a backtrack per backslash.
_CSS_ESCAPED = re.compile(_PLAIN + r"""
  | (?<![-\w\\])(?=[-\w]*+\\)(?P<esc>(?:[-\w]|\\(?:[0-9a-fA-F]{1,6}[ \t\n\r\f]?|[^\n\r\f0-9a-fA-F]))++)\(
""", re.S | re.X | re.I)
_URL = re.compile(_URL_BODY, re.I)
_URL_AFTER_NAME = re.compile(_URL_BODY.replace("url\\(", "", 1), re.I)
_ISET = re.compile(rf"""
    [\t\n\f\r ]+ | /\*.*?(?:\*/|\Z)
  | "(?P<q>(?:[^"\\\n]|\\.)*)"? | '(?P<a>(?:[^'\\\n]|\\.)*)'?
  | (?P<url>{_URL_BODY.replace("(?P<q>", "(?P<uq>").replace("(?P<a>", "(?P<ua>").replace("(?P<u>", "(?P<uu>")}\s*\)?)
  | (?P<fn>(?:[-\w]|\\.)++)\( | (?P<open>[(\[{{]) | (?P<close>[)\]}}]) | [^\t\n\f\r "'()\[\]{{}}/]+ | /
""", re.S | re.X | re.I)
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
    search = (_CSS_ESCAPED if text.find("\\", start, end) >= 0 else _CSS).search
    pos = start
    while (m := search(text, pos, end)) is not None:
        pos = max(m.end(), pos + 1)
        if m.start("import") >= 0:
            _add(refs, m, ("iq", "ia", "iu"), text, element, prefix + "@import", BLOCKABLE, offset)
        elif m.start("font") >= 0:
            for u in _URL.finditer(text, m.start("body"), m.end("body")):
                _add(refs, u, ("q", "a", "u"), text, element, prefix + "@font-face", BLOCKABLE, offset)
        elif m.start("iset") >= 0:
            pos = _image_set(text, m.end(), end, refs, element, prefix, offset)
        elif m.start("q") >= 0 or m.start("a") >= 0 or m.start("u") >= 0:
            _add(refs, m, ("q", "a", "u"), text, element, prefix + "url()", UPGRADABLE, offset)
        elif "esc" in m.re.groupindex and m.start("esc") >= 0:
            pos = _escaped_function(text, m, end, refs, element, prefix, offset)
    return refs


def _escaped_function(text: str, m: re.Match, end: int, refs: list[Ref], element: str, prefix: str,
                      offset: int) -> int:
    name = unescape_css(m.group("esc")).lower()
    if name == "url":
        u = _URL_AFTER_NAME.match(text, m.end(), end)
        if u is not None:
            _add(refs, u, ("q", "a", "u"), text, element, prefix + "url()", UPGRADABLE, offset)
            return max(u.end(), m.end())
    elif name in ("image-set", "-webkit-image-set"):
        return _image_set(text, m.end(), end, refs, element, prefix, offset)
    return m.end()


def _image_set(text: str, pos: int, end: int, refs: list[Ref], element: str, prefix: str, offset: int) -> int:
    """The candidates of an image-set( whose arguments start at pos: its url()s, and its strings outside
    type(). Returns where the function ends."""
    depth, in_type = 1, 0  # in_type: the depth of an open type(), 0 when outside
    while depth and pos < end:
        t = _ISET.match(text, pos, end)
        if t is None:
            break
        pos = t.end()
        if t.start("fn") >= 0:
            depth += 1
            if not in_type and unescape_css(t.group("fn")).lower() == "type":
                in_type = depth
        elif t.start("open") >= 0:
            depth += 1
        elif t.start("close") >= 0:
            in_type = 0 if in_type == depth else in_type
            depth -= 1
        elif t.start("url") >= 0:
            _add(refs, t, ("uq", "ua", "uu"), text, element, prefix + "image-set()", UPGRADABLE, offset)
        elif (t.start("q") >= 0 or t.start("a") >= 0) and not in_type:
            _add(refs, t, ("q", "a"), text, element, prefix + "image-set()", UPGRADABLE, offset)
    return pos


def _add(refs: list[Ref], m: re.Match, groups: tuple, text: str, element: str, attribute: str,
         cls: str, offset: int) -> None:
    for group in groups:
        if m.start(group) >= 0:
            s, e = m.start(group), m.end(group)
            written = text[s:e]
            refs.append(Ref(s + offset, e + offset, written, unescape_css(written).strip(),
                            element, attribute, cls))
            return
