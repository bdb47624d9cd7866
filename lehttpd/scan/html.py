"""Subresource URLs in HTML, with their character offsets, classed by what a browser does with them.

A small tokenizer of our own instead of a DOM parser: it keeps the offset of every attribute value, which
--fix needs to rewrite only the URL bytes and the report needs for line and column. It follows the HTML
tokenizer where that changes which text is markup: comments, raw-text elements (script, style, textarea…),
unquoted and duplicate attributes, character references, `<image>` read as `<img>` outside SVG.
"""
from __future__ import annotations

import re
from typing import Sequence

from lehttpd.scan import nested
from lehttpd.scan.attrs import decode_attr, parse_attrs, srcset_spans
from lehttpd.scan.css import css_refs
from lehttpd.scan.markup import RAWTEXT, Mode, lowered
from lehttpd.scan.model import BLOCKABLE, FORM, INSECURE_BASE, NAVIGATION_DOWNGRADE, UPGRADABLE, Ref
from lehttpd.scan.rules import LAZY_RULES, LINK_RELS, SRCSET_ATTRS, STATIC_RULES, SVG_RULES, SVG_URL_ATTRS
from lehttpd.scan.urls import URL_STRIP, URL_REMOVED

_WS = "\t\n\f\r "
_REFRESH = re.compile(r"""[\t\n\f\r ]*[0-9.]*[\t\n\f\r ]*[;,]?[\t\n\f\r ]*(?:url[\t\n\f\r ]*=[\t\n\f\r ]*)?""", re.I)
_RAWTEXT = frozenset(RAWTEXT)
_EXTRA_ATTRS = frozenset((*LAZY_RULES, *SVG_URL_ATTRS))
_new_ref = tuple.__new__  # Ref's own __new__ is a Python function around this: all eight fields are given


class _Context:
    """What the tokenizer must remember between tags: open picture/media/svg, and the first <base>."""

    __slots__ = ("picture", "media", "svg", "base", "relative", "low", "folded")

    def __init__(self, relative: bool, low: str, folded: bool) -> None:
        self.picture = self.media = self.svg = 0
        self.base: Ref | None = None
        self.relative = relative  # keep relative URLs too: a <base> may make them http
        self.low = low            # what the patterns run on: the lower-case copy, or the text itself…
        self.folded = folded      # …when lowering would move offsets (names must then be lowered one by one)


def _cannot_be_http(raw: str) -> bool:
    """True when no attribute of this tag can hold an http URL (no <base> in the page): no "http:" in any
    case, and nothing that could hide one (references, CSS escapes, characters the URL parser removes).
    `raw` is in lower case."""
    return ("http:" not in raw and "&" not in raw and "\\" not in raw and "data:" not in raw
            and "\t" not in raw and "\n" not in raw and "\r" not in raw)


def _maybe_http(value: str) -> bool:
    """Cheap test before building a Ref: only an http: scheme can be insecure when there is no <base>."""
    value = value.lstrip(URL_STRIP)
    if value[:5].lower() == "http:":
        return True
    if "\t" in value or "\n" in value or "\r" in value:  # the URL parser removes these: "ht\ttp:" is "http:"
        return value.translate(URL_REMOVED)[:5].lower() == "http:"
    return False


def html_refs(text: str, relative: bool = False) -> tuple[list[Ref], Ref | None]:
    """Every URL the page makes the browser fetch or submit to, and the <base href> if there is one.
    `relative`: keep relative URLs from the start (a nested document whose parent has an http base)."""
    low, mode = lowered(text)  # the patterns are lower case; offsets in low are offsets in text
    # Without a <base> only http: URLs can be insecure (the page's own URL is https), and tags without one
    # are skipped in the regex. A page with a <base> is read again from the start, relative URLs included.
    refs, ctx = _tokenize(text, _Context(relative, low, low is text), mode)
    if ctx is None:
        refs, ctx = _tokenize(text, _Context(True, low, low is text), mode)
    return refs, ctx.base


def _tokenize(text: str, ctx: _Context, mode: Mode) -> tuple[list[Ref], _Context | None]:
    """The refs of the page, and its context; no context when a <base> turns up and relative URLs were not
    kept."""
    refs: list[Ref] = []
    low = ctx.low
    search = (mode.markup if ctx.relative else mode.markup_http).search
    pos = 0
    length = len(text)
    while pos < length:
        m = search(low, pos)
        start, end = m.span("attrs")
        if start < 0:
            name = m.group("end")
            if name is None:  # the end of the text, or a tag left open until it: browsers drop it
                break
            if ctx.picture or ctx.media or ctx.svg:
                _close(ctx, name.lower())
            pos = m.end()
            continue
        pos = m.end()
        tag = m.group("start")
        if ctx.folded:  # on the lower-case copy the name is already in lower case
            tag = tag.lower()
        if tag == "base" and not ctx.relative:
            return refs, None
        _element(text, tag, start, end, ctx, refs)
        if tag in _RAWTEXT:
            pos = _skip_rawtext(text, low, mode.raw_end[tag], tag, pos, refs)
        elif tag == "plaintext":
            break
    return refs, ctx


def _skip_rawtext(text: str, low: str, raw_end: re.Pattern, tag: str, pos: int, refs: list[Ref]) -> int:
    closing = raw_end.search(low, pos)
    stop = closing.start() if closing else len(text)
    if tag == "style":
        refs.extend(css_refs(text, "style", "", 0, pos, stop))
    return stop


def _close(ctx: _Context, tag: str) -> None:
    if tag == "picture" and ctx.picture:
        ctx.picture -= 1
    elif tag in ("video", "audio") and ctx.media:
        ctx.media -= 1
    elif tag == "svg" and ctx.svg:
        ctx.svg -= 1


def _value(text: str, span: tuple[int, int]) -> str:
    return decode_attr(text[span[0]:span[1]])[0]


def _element(text: str, tag: str, start: int, end: int, ctx: _Context, refs: list[Ref]) -> None:
    if tag == "image" and not ctx.svg:
        tag = "img"  # the HTML parser renames it
    if tag == "picture":
        ctx.picture += 1
    elif tag in ("video", "audio"):
        ctx.media += 1
    elif tag == "svg":
        ctx.svg += 1
    if start == end:
        return
    if not ctx.relative:
        raw = ctx.low[start:end]
        if _cannot_be_http(raw.lower() if ctx.folded else raw):
            return
    attrs = parse_attrs(ctx.low, start, end, not ctx.folded)
    if not attrs:
        return
    rules = (ctx.svg and SVG_RULES.get(tag)) or STATIC_RULES.get(tag) or _rules(tag, attrs, text, ctx)
    for attr, cls, kind in rules:
        span = attrs.get(attr)
        if span is None:
            continue
        if kind == "url":
            _url_attr(text, tag, attr, span, cls, refs, ctx.relative)
        elif kind == "document":
            if nested.is_data(text, span):
                refs.extend(nested.data_refs(text, tag, attr, span))
            else:
                _url_attr(text, tag, attr, span, cls, refs, ctx.relative)
        elif kind == "srcdoc":  # the srcdoc document is loaded, the src is not
            refs.extend(nested.srcdoc_refs(text, span, ctx.relative))
            break
        elif kind == "list":
            _list_attr(text, tag, attr, span, cls, refs, ctx.relative)
        elif kind == "refresh":
            _refresh_attr(text, tag, span, refs)
        elif kind == "base":
            if ctx.base is None:
                ctx.base = _make_ref(text, tag, attr, span, 0, None, INSECURE_BASE)
    if "style" in attrs:
        _css_attr(text, tag, attrs["style"], refs)
    if _EXTRA_ATTRS.isdisjoint(attrs):  # the usual case, decided in C
        return
    for name in attrs:
        if name in LAZY_RULES:
            _lazy_attr(text, tag, name, attrs[name], refs, ctx.relative)
        elif ctx.svg and name in SVG_URL_ATTRS:
            _css_attr(text, tag, attrs[name], refs, BLOCKABLE, name)


def _lazy_attr(text: str, tag: str, attr: str, span: tuple[int, int], refs: list[Ref], relative: bool) -> None:
    cls, kind = LAZY_RULES[attr]
    if text[span[0]:span[1]].lstrip()[:4].lower() == "url(":  # data-bg="url(…)": CSS for a background
        _css_attr(text, tag, span, refs, cls, attr)
    elif kind == "list":
        _list_attr(text, tag, attr, span, cls, refs, relative)
    else:
        _url_attr(text, tag, attr, span, cls, refs, relative)


# The rules that depend on the other attributes or on the context (the others are rules.STATIC_RULES).
# <img> is the most frequent tag by far: its two possible rule sets are built once.
_IMG_RULES = {imageset: (("src", BLOCKABLE if imageset else UPGRADABLE, "url"), ("srcset", BLOCKABLE, "list"))
              for imageset in (False, True)}


def _rules(tag: str, attrs: dict, text: str, ctx: _Context) -> Sequence[tuple[str, str, str]]:
    if tag == "img":
        return _IMG_RULES["srcset" in attrs or ctx.picture > 0 or "crossorigin" in attrs]
    if tag == "source":
        rules = [("srcset", BLOCKABLE, "list")]
        if ctx.media and not ctx.picture:
            rules.append(("src", UPGRADABLE, "url"))
        return rules
    if tag in ("video", "audio"):
        cls = BLOCKABLE if "crossorigin" in attrs else UPGRADABLE
        return [("src", cls, "url"), ("poster", UPGRADABLE, "url")]
    if tag == "link":
        return _link_rules(attrs, text)
    if tag == "param":
        if "name" in attrs and _value(text, attrs["name"]).strip().lower() == "movie":
            return [("value", BLOCKABLE, "url")]
        return []
    if tag == "input":
        rules = [("formaction", FORM, "url")]
        if "type" in attrs and _value(text, attrs["type"]).strip().lower() == "image":
            rules.append(("src", UPGRADABLE, "url"))
        return rules
    if tag in ("a", "area"):  # navigation is not mixed content; a download or a ping is a fetch
        rules = [("ping", BLOCKABLE, "list")]
        if "download" in attrs:
            rules.append(("href", BLOCKABLE, "url"))
        return rules
    if tag == "meta":
        if "http-equiv" in attrs and _value(text, attrs["http-equiv"]).strip().lower() == "refresh":
            return [("content", NAVIGATION_DOWNGRADE, "refresh")]
        return []
    if tag == "use":
        return [(a, BLOCKABLE, "url") for a in ("href", "xlink:href")
                if a in attrs and not _value(text, attrs[a]).strip().startswith("#")]
    return []


def _link_rules(attrs: dict, text: str) -> list[tuple[str, str, str]]:
    if "rel" not in attrs:
        return []
    found = None
    tokens = _value(text, attrs["rel"]).lower().split()
    stylesheet = "stylesheet" in tokens  # a data:text/css stylesheet is read as the page's own CSS
    for token in tokens:
        if token == "preload" and "imagesrcset" in attrs:  # the href is then not fetched (HTML §4.6.7.12)
            return [("imagesrcset", BLOCKABLE, "list")]
        if token == "preload":
            as_ = _value(text, attrs["as"]).strip().lower() if "as" in attrs else ""
            cls = UPGRADABLE if as_ == "image" else BLOCKABLE
        else:
            cls = LINK_RELS.get(token)
        if cls is not None and found != BLOCKABLE:
            found = cls
    return [("href", found, "document" if stylesheet else "url")] if found else []


def _make_ref(text: str, tag: str, attr: str, span: tuple[int, int], inner_start: int,
              inner_end: int | None, cls: str, decoded: tuple[str, list[int] | None] | None = None) -> Ref:
    """A Ref for value[inner_start:inner_end] of the attribute at span, mapping decoded positions back."""
    raw = text[span[0]:span[1]]
    value, mapping = decoded or decode_attr(raw)
    inner_end = len(value) if inner_end is None else inner_end
    if mapping is None:
        s, e = inner_start, inner_end
    else:
        s, e = mapping[inner_start], mapping[inner_end]
    return _new_ref(Ref, (span[0] + s, span[0] + e, raw[s:e], value[inner_start:inner_end].strip(_WS), tag, attr,
                          cls, -1))


def _url_attr(text: str, tag: str, attr: str, span: tuple[int, int], cls: str, refs: list[Ref],
              relative: bool) -> None:
    start, end = span
    if start == end:
        return
    raw = text[start:end]
    if "&" not in raw:  # the usual case: the value is the text as written
        if raw[:5].lower() == "http:":  # and usually it starts with the scheme, nothing to strip before
            stop = len(raw.rstrip(_WS))
            url = raw[:stop]
            refs.append(_new_ref(Ref, (start, start + stop, url, url, tag, attr, cls, -1)))
        elif relative or _maybe_http(raw):
            lead = len(raw) - len(raw.lstrip(_WS))
            stop = len(raw.rstrip(_WS))
            if stop > lead:
                url = raw[lead:stop]
                refs.append(_new_ref(Ref, (start + lead, start + stop, url, url, tag, attr, cls, -1)))
        return
    decoded = decode_attr(raw)
    value = decoded[0]
    if not relative and not _maybe_http(value):
        return
    lead = len(value) - len(value.lstrip(_WS))
    stop = len(value.rstrip(_WS))
    if stop > lead:
        refs.append(_make_ref(text, tag, attr, span, lead, stop, cls, decoded))


def _list_attr(text: str, tag: str, attr: str, span: tuple[int, int], cls: str, refs: list[Ref],
               relative: bool) -> None:
    decoded = decode_attr(text[span[0]:span[1]])
    spans = srcset_spans(decoded[0]) if attr in SRCSET_ATTRS else \
        [m.span() for m in re.finditer(r"[^\t\n\f\r ]+", decoded[0])]
    for s, e in spans:
        if relative or _maybe_http(decoded[0][s:e]):
            refs.append(_make_ref(text, tag, attr, span, s, e, cls, decoded))


def _refresh_attr(text: str, tag: str, span: tuple[int, int], refs: list[Ref]) -> None:
    decoded = decode_attr(text[span[0]:span[1]])
    value = decoded[0]
    m = _REFRESH.match(value)
    start, stop = m.end(), len(value.rstrip(_WS))
    if start < stop and value[start] in "'\"":
        quote = value[start]
        start += 1
        close = value.find(quote, start)
        stop = close if close >= 0 else stop
    if start < stop:
        refs.append(_make_ref(text, tag, "content", span, start, stop, NAVIGATION_DOWNGRADE, decoded))


def _css_attr(text: str, tag: str, span: tuple[int, int], refs: list[Ref], cls: str | None = None,
              attr: str = "style") -> None:
    """CSS in an attribute: a style attribute (its own classes), or an SVG presentation attribute or a lazy
    background, whose url() all get `cls`."""
    raw = text[span[0]:span[1]]
    low = raw.lower()
    if "url" not in low and "image-set" not in low and "@" not in raw and "&" not in raw and "\\" not in raw:
        return
    value, mapping = decode_attr(raw)
    found = css_refs(text, tag, attr + " ", 0, span[0], span[1]) if mapping is None else [
        Ref(span[0] + mapping[r.start], span[0] + mapping[r.end], raw[mapping[r.start]:mapping[r.end]], r.value,
            r.element, r.attribute, r.cls) for r in css_refs(value, tag, attr + " ")]
    refs.extend(found if cls is None else (r._replace(cls=cls) for r in found))
