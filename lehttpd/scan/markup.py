"""The tokenizer's regular expressions, and the lower-case copy of a page they run on.

One search per tag that may matter: a possessive loop skips text, comments, doctypes, end tags and the tags
that cannot fetch anything inside the regex engine, so Python only runs for tags that may hold a finding.
Case-insensitive matching costs the regex engine about 40%, so the patterns are written in lower case and run
on `str.lower()` of the page, which keeps every offset (checked: same length, no character that folds to ASCII).
"""
from __future__ import annotations

import os
import re
from typing import NamedTuple

from lehttpd.scan.rules import LAZY_RULES, LINK_RELS, SVG_URL_ATTRS

_WS = r"[\t\n\f\r ]"
_NAME_END = r"(?=[\t\n\f\r />])"
# Elements always looked at; any other element only when it has one of URL_ATTRS (a <meta> fetches nothing
# without http-equiv, and pages hold many: og:image, twitter:image…).
ELEMENTS = ("img", "image", "source", "video", "audio", "track", "script", "link", "iframe", "frame",
            "object", "embed", "param", "applet", "input", "button", "form", "base", "use",
            "picture", "svg", "style", "textarea", "title", "xmp", "noembed", "noframes", "plaintext", "feimage")
URL_ATTRS = ("style", "ping", "download", "background", "http-equiv", *LAZY_RULES, *SVG_URL_ATTRS)
# Elements whose content is text, not markup: a URL in there is never fetched (style is read as CSS).
RAWTEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")
# Tags Python must see even when they hold no URL: they open a context (picture, media, svg) or CSS, or
# they are a <base>, which makes relative URLs matter.
_STATEFUL = ("picture", "video", "audio", "svg", "style", "plaintext", "base")
_VALUE = r"""(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"[^"]*+"|'[^']*+'|[^\t\n\f\r >]*+))?"""

# A tag "without http": no "http:" (nor "data:") in any case and none of the characters that could hide one (character
# references, CSS escapes, the tabs and newlines the URL parser removes). Every class below is the tokenizer's
# own class minus those characters, and a value must be read the tokenizer's way (quoted when it starts with
# a quote) or not at all, so such a tag either ends at the very ">" the tokenizer would end it at, or fails
# to match and is handed to Python like any other tag.
_COLON = r":(?<!http:)(?<!data:)"  # a data: URL may hold a document, its URLs percent- or base64-encoded
_X = r"&\\\t\n\r:"


def _run(chars: str) -> str:
    """A run of `chars` (a class body without the _X characters) and of colons not ending "http:", written
    unrolled (a run, then colon-run pairs) because sre matches that faster than an alternation in a loop."""
    return rf"[{chars}]*+(?:{_COLON}[{chars}]*+)*+"


_TAG_CHARS, _NAME_CHARS, _BARE_CHARS = (rf"^\t\n\f\r />{_X}", rf"^\t\n\f\r />={_X}", rf"^\t\n\f\r >{_X}")
_SAFE_NAME = rf"(?:[{_TAG_CHARS}]|{_COLON}){_run(_NAME_CHARS)}"
_SAFE_VALUE = (rf"""(?:[\f ]*+=[\f ]*+(?:"{_run('^"' + _X)}"|'{_run("^'" + _X)}'"""
               rf"""|(?!["']){_run(_BARE_CHARS)})|(?!{_WS}*+=))""")
_SAFE_TAG = rf"{_run(_TAG_CHARS)}(?:[\f /]*+{_SAFE_NAME}{_SAFE_VALUE})*+[\f /]*+>"


def _names(names: tuple[str, ...]) -> str:
    """An alternation matching exactly `names`, written as a trie ("d(?:ata-(?:bg|src)|ownload)"): sre tries
    the branches of an alternation one by one, and these run at every tag and attribute of a page."""
    groups: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        groups.setdefault(name[0], []).append(name[1:])
    branches = []
    for first, rests in groups.items():
        common = os.path.commonprefix(rests)  # "data-" once, not a group per letter
        tails = tuple(rest[len(common):] for rest in rests)
        longer = tuple(tail for tail in tails if tail)
        branch = re.escape(first + common)
        if longer:  # a name that is the prefix of others ("data-bg", "data-bgset") makes the rest optional
            branch += f"(?:{_names(longer)})" + ("?" if "" in tails else "")
        branches.append(branch)
    return "|".join(branches)


def _quiet_link() -> str:
    """A <link> that fetches nothing: no style, and a first rel whose tokens are all of the kind that fetch
    nothing (canonical, alternate, dns-prefetch…). Pages carry several, often with http URLs. The rel value
    must be plain lower-case tokens; anything else, and the tag goes to Python. As with _SAFE_TAG, a value is
    read the tokenizer's way or not at all, so a match ends at the tokenizer's ">"."""
    token = rf"(?!(?:{_names(tuple(LINK_RELS) + ('preload',))})(?![a-z0-9-]))[a-z0-9-]++"
    tokens = rf"{_WS}*+(?:{token}{_WS}*+)*+"
    rel = (rf"""rel(?=[\t\n\f\r /=>])(?:{_WS}*+={_WS}*+(?:"{tokens}"|'{tokens}'"""
           rf"""|(?!["'])(?:{token})?(?=[\t\n\f\r >]))|(?!{_WS}*+=))""")
    other = rf"[\t\n\f\r /]*+(?!(?:{{}})[\t\n\f\r /=>])[^\t\n\f\r />][^\t\n\f\r />=]*+{_VALUE}"
    return (rf"link{_NAME_END}(?:{other.format('rel|style')})*+"
            rf"(?:[\t\n\f\r /]*+{rel}(?:{other.format('style')})*+)?[\t\n\f\r /]*+>")


def _markup(skip_safe: bool) -> str:
    safe = ""
    if skip_safe:  # tags without http, and raw-text elements with their content up to the end tag
        raw_names = tuple(n for n in RAWTEXT if n != "style")
        raw = _names(raw_names)
        safe = rf"""
   | (?!(?:{_names(_STATEFUL + raw_names)}){_NAME_END})[a-z]{_SAFE_TAG}
   | {_quiet_link()}
   | (?=(?:{raw}){_NAME_END})(?P<raw>[a-z]++){_SAFE_TAG}(?:[^<]++|<(?!/(?P=raw)[\t\n\f\r />]))*+"""
    # After "<", the most frequent first: end tags, then tags; a comment must be tried before "<!…>".
    # No two alternatives can match the same text differently, so their order only changes the speed.
    return rf"""
(?:[^<]++
 | <(?:/(?:(?!(?:picture|video|audio|svg){_NAME_END})[a-z][^>]*+>|(?![a-z])[^>]*+>?)
   | (?!(?:{_names(ELEMENTS)}){_NAME_END})[a-z][^\t\n\f\r />]*+
     (?:[\t\n\f\r /]*+(?!(?:{_names(URL_ATTRS)})[\t\n\f\r /=>])[^\t\n\f\r />][^\t\n\f\r />=]*+{_VALUE})*+
     [\t\n\f\r /]*+>{safe}
   | !--(?:-?>|.*?(?:--!?>|\Z))
   | [!?][^>]*+>?
   | (?![a-z/!?]))
)*+
(?:</(?P<end>[a-z][^\t\n\f\r />]*+)[^>]*+>
 | <(?P<start>[a-z][^\t\n\f\r />]*+)
   (?P<attrs>(?:[\t\n\f\r /]*+[^\t\n\f\r />][^\t\n\f\r />=]*+{_VALUE})*+)
   [\t\n\f\r /]*+>
)?"""


class Mode(NamedTuple):
    """The compiled patterns for one way of reading a page: on its lower-case copy, or case-insensitively
    on the text itself when lowering would move offsets or fold a non-ASCII letter into ASCII."""

    markup: re.Pattern       # stops at every tag that may fetch something (a page with <base>)
    markup_http: re.Pattern  # also skips the tags without http (until a <base> is met)
    raw_end: dict            # raw-text element → pattern of its end tag


def _mode(flags: int) -> Mode:
    flags |= re.S | re.X
    markup = re.compile(_markup(False), flags)
    # Case-insensitive matching folds "ſ" into "s": "<ſcript>" would pass for a raw-text element. Pages read
    # that way are rare, so they do without the skipping rather than reproduce the folding exactly.
    return Mode(markup, re.compile(_markup(True), flags) if not flags & re.I else markup,
                {name: re.compile(rf"</{name}[\t\n\f\r />]", flags) for name in RAWTEXT})


LOWER = _mode(0)
FOLD = _mode(re.I)
# Non-ASCII characters that re.IGNORECASE matches against ASCII letters or whose lower() is not one
# character of non-ASCII (İ ı ſ K): a page holding one is read the slow, case-insensitive way.
_FOLDS = re.compile("[\u0130\u0131\u017f\u212a]")


def lowered(text: str) -> tuple[str, Mode]:
    """The text to tokenize and the patterns to use: the lower-case copy when it keeps every offset."""
    low = text.lower()
    if text.isascii() or (len(low) == len(text) and _FOLDS.search(text) is None):
        return low, LOWER
    return text, FOLD
