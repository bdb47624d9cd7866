"""Documents nested in a page: `<iframe srcdoc>` and data: URLs holding HTML, SVG or CSS.

The browser loads them as part of the page, so their mixed content is the page's own. A srcdoc document has the
page's base URL (HTML: about:srcdoc falls back to its parent's base), so it is read like the page, relative
URLs included when the page has an http base. A data: document has no usable base URL, so only its absolute
URLs can be fetched. Both are reported at the attribute that holds them; a URL inside srcdoc keeps its own
offsets, so --fix can rewrite it, while one inside a data: URL (percent- or base64-encoded) cannot be.
"""
from __future__ import annotations

import base64
import binascii
import re
import threading
from urllib.parse import unquote_to_bytes, urljoin

from lehttpd.scan.attrs import decode_attr
from lehttpd.scan.model import Ref
from lehttpd.scan.rules import DATA_CSS_TYPES, DATA_HTML_TYPES
from lehttpd.scan.urls import URL_STRIP, clean

_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*:")
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";]+)", re.I)
MAX_DEPTH = 8  # nested srcdoc in srcdoc…: deeper than any real page, shallow enough for any stack


_depth = threading.local()


def srcdoc_refs(text: str, span: tuple[int, int], relative: bool) -> list[Ref]:
    from lehttpd.scan.html import html_refs  # html.py calls here for each srcdoc: imported once needed

    depth = getattr(_depth, "n", 0)
    if depth >= MAX_DEPTH:
        return []
    raw = text[span[0]:span[1]]
    value, mapping = decode_attr(raw)
    _depth.n = depth + 1
    try:
        inner, base = html_refs(value, relative)
    finally:
        _depth.n = depth
    out = []
    for r in _resolved(inner, base):
        s, e = (r.start, r.end) if mapping is None else (mapping[r.start], mapping[r.end])
        out.append(Ref(span[0] + s, span[0] + e, raw[s:e], r.value, "iframe", f"srcdoc {r.element} {r.attribute}",
                       r.cls, span[0]))
    return out


def is_data(text: str, span: tuple[int, int]) -> bool:
    raw = text[span[0]:span[0] + 64]
    if "&" in raw:
        raw = decode_attr(text[span[0]:span[1]])[0]
    return raw.lstrip(URL_STRIP)[:5].lower() == "data:"


def data_refs(text: str, tag: str, attr: str, span: tuple[int, int]) -> list[Ref]:
    """The absolute URLs fetched by the HTML, SVG or CSS document of a data: URL attribute."""
    from lehttpd.scan.css import css_refs
    from lehttpd.scan.html import html_refs

    parsed = parse_data_url(clean(decode_attr(text[span[0]:span[1]])[0]))
    if parsed is None:
        return []
    mime, document = parsed
    if mime in DATA_HTML_TYPES and tag != "link":
        inner, base = html_refs(document)
        inner = _resolved(inner, base)
    elif mime in DATA_CSS_TYPES:
        inner = css_refs(document)
    else:
        return []
    return [Ref(span[0], span[1], r.written, r.value, tag, f"{attr} data: {r.element} {r.attribute}", r.cls, span[0])
            for r in inner if _SCHEME.match(clean(r.value))]


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(MIME type, decoded text) of a data: URL, as the Fetch standard's data: URL processor reads it."""
    if url[:5].lower() != "data:" or "," not in url:
        return None
    head, _, body = url[5:].partition(",")
    head = head.strip()
    data = unquote_to_bytes(body)
    if re.search(r";\s*base64\s*$", head, re.I):
        head = head[:head.rfind(";")]
        try:
            data = base64.b64decode(re.sub(rb"[\t\n\f\r ]", b"", data) + b"==", validate=False)
        except (binascii.Error, ValueError):
            return None
    mime = head.split(";")[0].strip().lower() or "text/plain"
    charset = _CHARSET.search(head)
    try:
        return mime, data.decode(charset.group(1).strip() if charset else "utf-8", "replace")
    except LookupError:
        return mime, data.decode("utf-8", "replace")


def _resolved(refs: list[Ref], base: Ref | None) -> list[Ref]:
    """A nested document's own absolute <base> applies to its relative URLs (and to nothing else)."""
    if base is None:
        return refs
    target = clean(base.value)
    if not target.lower().startswith(("http:", "https:")):
        return refs
    return [r if _SCHEME.match(clean(r.value)) else r._replace(value=urljoin(target, clean(r.value)))
            for r in refs]
