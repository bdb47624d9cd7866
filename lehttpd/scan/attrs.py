"""Attribute values as the HTML tokenizer reads them: name → value span, character references decoded with a
map back to the text as written, and srcset candidates (whose URLs may hold commas)."""
from __future__ import annotations

import html as _html
import re
from html.entities import html5 as _HTML5

_WS = "\t\n\f\r "
_ATTR = re.compile(r"""[\t\n\f\r /]*+([^\t\n\f\r />][^\t\n\f\r />=]*+)
    (?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"([^"]*+)"|'([^']*+)'|([^\t\n\f\r >]*+)))?""", re.X)
_ATTRS = re.compile(r"""([\t\n\f\r /]*+([^\t\n\f\r />][^\t\n\f\r />=]*+)
    (?:[\t\n\f\r ]*+=[\t\n\f\r ]*+("[^"]*+"|'[^']*+'|[^\t\n\f\r >]*+))?)""", re.X)  # _ATTR, whole
_CHARREF = re.compile(r"&(?:#[xX][0-9a-fA-F]+;?|#[0-9]+;?|([a-zA-Z][a-zA-Z0-9]*;?))")


def parse_attrs(text: str, start: int, end: int, lowered: bool = False) -> dict[str, tuple[int, int]]:
    """Attribute name (lower case) → span of its value as written; the first of duplicates wins.
    `lowered`: the text is already in lower case."""
    # findall (strings, no match objects) is faster than finditer; the attributes cover [start, end) one
    # after the other, so each one's offset is the sum of the lengths before it, checked at the end.
    attrs: dict[str, tuple[int, int]] = {}
    pos = start
    for whole, name, value in _ATTRS.findall(text, start, end):
        pos += len(whole)
        if not lowered:
            name = name.lower()
        if name in attrs:
            continue
        size = len(value)
        if size > 1 and value[0] == value[-1] and (value[0] == '"' or value[0] == "'"):
            attrs[name] = (pos - size + 1, pos - 1)  # quoted (an unclosed quote is read as unquoted)
        else:
            attrs[name] = (pos - size, pos)
    return attrs if pos == end else _parse_attrs_slowly(text, start, end, lowered)


def _parse_attrs_slowly(text: str, start: int, end: int, lowered: bool) -> dict[str, tuple[int, int]]:
    attrs: dict[str, tuple[int, int]] = {}
    for a in _ATTR.finditer(text, start, end):
        key = a.group(1) if lowered else a.group(1).lower()
        if key in attrs:
            continue
        last = a.lastindex
        attrs[key] = a.span(last) if last > 1 else (a.end(), a.end())
    return attrs


def srcset_spans(value: str) -> list[tuple[int, int]]:
    """Spans of the image candidate URLs in a srcset, as the HTML spec parses it (URLs may hold commas)."""
    spans = []
    i, n = 0, len(value)
    while True:
        while i < n and (value[i] in _WS or value[i] == ","):
            i += 1
        if i >= n:
            return spans
        start = i
        while i < n and value[i] not in _WS:
            i += 1
        end = i
        if value[end - 1] == ",":  # "a.png," : trailing commas end the candidate, no descriptors
            while end > start and value[end - 1] == ",":
                end -= 1
        else:
            depth = 0
            while i < n and (depth or value[i] != ","):
                depth += value[i] == "("
                depth -= value[i] == ")" and depth > 0
                i += 1
        if end > start:
            spans.append((start, end))


def decode_attr(raw: str) -> tuple[str, list[int] | None]:
    """Decode character references as in an attribute value. Returns the value and, when it differs from the
    raw text, the raw offset of each decoded character (plus one for the end)."""
    if "&" not in raw:
        return raw, None
    out: list[str] = []
    mapping: list[int] = []
    pos = 0
    for m in _CHARREF.finditer(raw):
        decoded, consumed = _charref(m, raw)
        if decoded is None:
            continue
        out.append(raw[pos:m.start()])
        mapping.extend(range(pos, m.start()))
        out.append(decoded)
        mapping.extend([m.start()] * len(decoded))
        pos = m.start() + consumed
    out.append(raw[pos:])
    mapping.extend(range(pos, len(raw) + 1))
    value = "".join(out)
    return (value, mapping) if value != raw else (raw, None)


def _charref(m: re.Match, raw: str) -> tuple[str | None, int]:
    name = m.group(1)
    if name is None:  # numeric: html.unescape applies the browser's replacements (0, C1 controls…)
        return _html.unescape(m.group(0) if m.group(0).endswith(";") else m.group(0) + ";"), len(m.group(0))
    if name.endswith(";") and name in _HTML5:
        return _HTML5[name], len(name) + 1
    bare = name.rstrip(";")
    for k in range(len(bare), 1, -1):  # legacy references without ';', longest match first
        if bare[:k] in _HTML5:
            after = raw[m.start() + 1 + k:m.start() + 2 + k]
            if after and (after.isalnum() or after == "="):
                return None, 0  # in attributes, "&copy=1" stays as written
            return _HTML5[bare[:k]], k + 1
    return None, 0
