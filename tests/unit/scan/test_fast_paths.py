"""The shortcuts that make the scan fast must not change what it finds.

Without a <base>, tags that hold no "http:" (in any case) and nothing that could hide one are skipped inside
the regex, raw-text elements with them; the pattern runs on a lower-case copy of the page. Each test here is a
way an http URL can hide from those shortcuts, and the last one compares the fast path with the slow one
(every tag handed to Python) on random pages built from awkward pieces.
"""
import random

import pytest

from lehttpd.scan import html, markup
from tests.unit.scan.helpers import found, triples


@pytest.mark.parametrize("value", [
    "&#104;ttp://h.test/a.png", "h&#116;tp://h.test/a.png", "http&colon;//h.test/a.png", "&#X48;TTP://h.test/a.png",
    "HtTp://h.test/a.png", "ht\ttp://h.test/a.png", "ht\ntp://h.test/a.png", " \r\nhttp://h.test/a.png",
])
def test_http_hidden_by_entities_case_or_whitespace_is_found(value):
    assert [f.host for f in found(f'<p>text</p><img alt="x" src="{value}"><p>more</p>')] == ["h.test"]


def test_http_in_a_style_attribute_behind_a_css_escape_or_an_entity():
    assert triples('<div style="background:url(\\68ttp://h.test/a.png)">') == [("div", "style url()", "upgradable")]
    assert triples('<div style="background:url(&#104;ttp://h.test/a.png)">') == [("div", "style url()", "upgradable")]


def test_a_quoted_gt_or_ampersand_does_not_end_a_skipped_tag_early():
    assert triples('<img alt="x>y&amp;z" src=http://h.test/a.png>') == [("img", "src", "upgradable")]
    assert triples('<img alt="x>y" title="a&b"><img src=http://h.test/b.png>') == [("img", "src", "upgradable")]
    assert triples("<img alt='a \"quote\"' title=\"it's\" src=http://h.test/c.png>") == [("img", "src", "upgradable")]


def test_raw_text_elements_skipped_in_the_regex_still_end_where_browsers_end_them():
    page = ('<script>var a = "<img src=http://no.test/a>";</SCRIPT ><img src=http://yes.test/b>'
            '<title>http://no.test/t</title><textarea><img src=http://no.test/c></textarea>'
            '<iframe title=x><img src=http://no.test/d></iframe><img src=http://yes.test/e>')
    assert [f.host for f in found(page)] == ["yes.test", "yes.test"]
    assert triples('<script type=module>never closed <img src=http://no.test/x>') == []
    assert triples('<scripts><img src=http://yes.test/x>') == [("img", "src", "upgradable")]


def test_context_tags_are_seen_even_without_http():
    page = '<picture><source srcset="/a.webp"><img src="http://h.test/a.jpg"></picture><img src="http://h.test/b.jpg">'
    assert [f.cls for f in found(page)] == ["blockable", "upgradable"]


def test_pages_whose_lower_case_copy_would_move_offsets_are_read_case_insensitively():
    # "İ".lower() is two characters; "ı" and "K" fold to ASCII letters under re.IGNORECASE
    for prefix in ("İstanbul\n", "kapı ", "\u212a "):
        (f,) = found(prefix + '<IMG SRC="HTTP://H.TEST/A.PNG">')
        assert (f.line, f.written) == (prefix.count("\n") + 1, "HTTP://H.TEST/A.PNG")
        assert f.column == len(prefix.rpartition("\n")[2]) + 11


_PIECES = (
    '<img src="http://a.test/1.png">', "<IMG SRC=HTTP://B.TEST/2.PNG>", '<img src="&#104;ttp://c.test/">',
    '<img src="ht\ttp://d.test/">', '<img\nsrc="http://e.test/">', '<img srcset="http://f.test/a,1.jpg 1x, /b.jpg 2x">',
    "<picture>", "</picture>", "<video>", "</video>", "<svg>", "</svg>", '<image href="http://g.test/">',
    '<use href="#x">', '<source src="http://h.test/a.mp3">', '<script src="http://i.test/a.js"></script>',
    '<script>"<img src=http://no.test/>"</script>', "<script>", "</script>", "<style>.a{background:url(http://j.test/)}</style>",
    "<textarea>", "</textarea>", "<title>", "</title>", "<!--", "-->", "<!doctype html>", '<a href="http://nav.test/">',
    '<a download href="http://k.test/f">', '<link rel=stylesheet href=http://l.test/a.css>', '<link rel=canonical href=http://x.test/>',
    '<link rel="alternate stylesheet" href="http://as.test/">', '<LINK REL=Canonical HREF=http://c.test/>',
    '<link rel=canonical rel=stylesheet href=http://d1.test/>', '<link rel=stylesheet rel=canonical href=http://d2.test/>',
    '<link rel="shortcut icon" href="http://fav.test/">', '<link rel="can&#111;nical" href="http://ent.test/">',
    '<link rel=canonical/ href=http://sl.test/>', '<link style="x" rel=next href=http://st.test/>', '<link rel= href=http://e/>',
    '<meta http-equiv=refresh content="0; url=http://m.test/">', '<meta property=og:image content="http://og.test/">',
    '<META HTTP-EQUIV=REFRESH CONTENT="1;URL=HTTP://M2.TEST/">', '<meta style="background:url(http://ms.test/)">', '<base href="http://base.test/">', "<img src=rel.png>",
    '<form action="http://n.test/">', '<div style="background:url(http://o.test/a.png)">', '<p title="a > b">',
    '<p title="<img src=http://no.test/>">', '<p title="unclosed>', "<p title='x&y'>", '<img alt="x>y&z" src=http://p.test/>',
    '<div alt="a" =b>', '<a <img src=http://q.test/x>', "<plaintext>", '<iframe src="http://r.test/"></iframe>', "<iframe>",
    # issue 13's contexts: lazy attributes, SVG, srcdoc, data: documents, table backgrounds, imagesrcset
    '<img data-src="http://lz.test/a">', '<div data-bg="url(http://lz2.test/)">', '<rect fill="url(http://sv.test/#a)">',
    '<feImage href="http://fe.test/">', '<iframe srcdoc="<img src=&quot;http://sd.test/&quot;>">',
    '<iframe src="data:text/html,%3Cimg%20src%3Dhttp%3A//dt.test/%3E">', '<tr background="http://tr.test/">',
    '<link rel=preload as=image imagesrcset="http://is.test/a 1x">', "<div style=\"background:image-set('http://ix.test/' 1x)\">",
    "text http://plain.test/ ", "<", ">", '"', "'", "=", "&", "\\", ":", "http:", "<img", " src=", "\n", "\t", "İ", "ı", "é",
)


def test_fast_path_finds_what_the_slow_path_finds(monkeypatch):
    rng = random.Random(5)
    pages = ["".join(rng.choice(_PIECES) for _ in range(rng.randrange(1, 30))) for _ in range(400)]
    fast = [found(page) for page in pages]
    slow_mode = markup.LOWER._replace(markup_http=markup.LOWER.markup)  # every tag handed to Python
    monkeypatch.setattr(html, "lowered", lambda text: (text.lower(), slow_mode) if text.isascii()
                        else (text, markup.FOLD))
    assert [found(page) for page in pages] == fast


def test_a_scheme_split_by_a_tab_after_long_leading_space_is_found():
    # the URL parser strips the spaces and removes the tab wherever they are
    assert triples('<img src="' + " " * 20 + 'ht\ttp://h.test/x.png">') == [("img", "src", "upgradable")]
    assert triples('<script src="' + "\n" * 20 + 'h\nttp://h.test/x.js">') == [("script", "src", "blockable")]


def test_a_base_anywhere_in_the_page_applies_to_every_relative_url_before_or_after_it():
    assert [f.resolved for f in found('<img src="a.png"><base href="http://b.test/"><img src="c.png">')] == \
        ["http://b.test/a.png", "http://b.test/", "http://b.test/c.png"]
    assert triples('<img src="a.png"><!-- <base href="http://b.test/"> --><p title="<base href=http://b.test/>">'
                   '<script>"<base href=http://b.test/>"</script><img src="c.png">') == []


def test_meta_tags_are_looked_at_only_with_http_equiv_or_style():
    page = ('<meta property="og:image" content="http://og.test/a.jpg"><meta name=twitter:image content=http://tw.test/>'
            '<META HTTP-EQUIV="Refresh" CONTENT="0; URL=http://r.test/"><meta style="background:url(http://s.test/)">')
    assert triples(page) == [("meta", "content", "navigation-downgrade"), ("meta", "style url()", "upgradable")]


def test_attribute_spans_from_lengths_match_the_match_objects():
    from lehttpd.scan.attrs import _parse_attrs_slowly, parse_attrs
    from lehttpd.scan.markup import LOWER

    rng = random.Random(7)
    pieces = ["a", "src", "=", '"', "'", " ", "\t", "\n", "/", "x y", "==", '""', "''", '"a>b"', "http://h.test/"]
    for _ in range(3000):
        tag = "<img " + "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 14))) + ">"
        m = LOWER.markup.search(tag)
        start, end = m.span("attrs")
        if start >= 0:
            assert parse_attrs(tag, start, end) == _parse_attrs_slowly(tag, start, end, False), tag


def test_host_of_plain_and_unusual_authorities():
    from lehttpd.scan.urls import host_of

    assert [host_of(u) for u in ("http://Cdn.Example.NET/a", "http://h.test.", "http://h.test?q", "http://h.test#f",
                                 "http://user:pw@h.test:8080/", "http://h.test:81", "http://[::1]:80/", "http:///x",
                                 "HTTP://H.TEST/")] == \
        ["cdn.example.net", "h.test", "h.test", "h.test", "h.test", "h.test", "::1", "", "h.test"]


def test_links_that_fetch_nothing_are_skipped_and_those_that_do_are_not():
    page = ('<link rel=canonical href=http://a.test/><link rel="dns-prefetch preconnect" href="http://b.test/">'
            '<link rel="alternate stylesheet" href="http://c.test/"><link rel="shortcut icon" href="http://d.test/">'
            '<link rel="canonical" rel="stylesheet" href="http://e.test/"><link rel=stylesheet rel=canonical href=http://f.test/>'
            '<link rel="next" style="background:url(http://g.test/)">')
    assert [f.host for f in found(page)] == ["c.test", "d.test", "f.test", "g.test"]


def test_host_kinds_are_the_same_when_cached():
    page = ('<img src="http://203.0.113.9/a.png"><img src="http://127.0.0.1/b.png"><img src="http://a.localhost/c">'
            '<img src="http://[::1]/d"><img src="http://[2001:db8::1]/e"><img src="http://h.test/f">')
    expected = [("blockable", "203.0.113.9"), ("blockable", "2001:db8::1"), ("upgradable", "h.test")]
    for _ in range(2):  # the second time every host is in the cache
        assert [(f.cls, f.host) for f in found(page)] == expected
