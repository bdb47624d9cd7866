"""The contexts of issue 13 that browsers fetch from and the scanner used to miss, each family tested with the
examples of its specification (HTML, CSS Syntax 3 / CSS Images 4, WHATWG URL, Fetch's data: URLs, SVG 2 and
Filter Effects, WHATWG Encoding), rewritten with http: where the example used another scheme."""
import base64
from urllib.parse import quote

import pytest

from lehttpd.scan.pages import scan_bytes
from tests.unit.scan.helpers import found, triples

B, U, LAZY = "blockable", "upgradable", "lazy"


# --- <iframe srcdoc> (HTML §4.8.5: the srcdoc document is loaded, with the page's base URL) ----------------

def test_srcdoc_document_is_scanned_as_the_page_and_reported_at_the_attribute():
    # HTML's own example: <iframe srcdoc="<p>Yeah, you can see it <a href=&quot;/gallery?mode=cover&amp;…">
    page = ('<p>x</p>\n  <iframe sandbox srcdoc="<p>Yeah, you can see it <img src=&quot;http://img.test/a.png&quot;>'
            '<script src=\'http://js.test/s.js\'></script><div style=&quot;background:url(http://css.test/b.png)&quot;>'
            '</div>" src="http://never.test/ignored"></iframe>')
    result = found(page)
    assert [(f.host, f.cls) for f in result] == [("img.test", U), ("js.test", B), ("css.test", U)]
    assert {(f.line, f.column) for f in result} == {(2, page.split("\n")[1].index("<p>Yeah") + 1)}
    assert result[0].element == "iframe" and result[0].attribute == "srcdoc img src"
    assert page[result[0].start:result[0].end] == result[0].written == "http://img.test/a.png"  # fixable in place


def test_nested_srcdoc_and_relative_urls_under_the_page_base():
    page = ('<iframe srcdoc="<iframe srcdoc=&quot;<img src=&amp;quot;http://deep.test/x.png&amp;quot;>&quot;>'
            '</iframe>"></iframe>')
    assert [f.host for f in found(page)] == ["deep.test"]
    based = '<base href="http://blog.test/"><iframe srcdoc="<img src=rel.png>"></iframe>'
    assert [(f.cls, f.resolved) for f in found(based)] == [("insecure-base", "http://blog.test/"),
                                                         (U, "http://blog.test/rel.png")]


# --- CSS image-set() (CSS Images 4 §2.2) -----------------------------------------------------------------

@pytest.mark.parametrize("css", [
    # the specification's examples, with http: URLs
    'background-image: image-set("http://h.test/foo.png" 1x, "http://h.test/foo-2x.png" 2x, '
    '"http://h.test/foo-print.png" 600dpi);',
    'background-image: image-set("http://h.test/foo.avif" type("image/avif"), '
    '"http://h.test/foo.jpg" type("image/jpeg"));',
    'background-image: -webkit-image-set(url(http://h.test/foo.png) 1x, url("http://h.test/foo-2x.png") 2x);',
])
def test_image_set_candidates_in_style_blocks_attributes_and_files(css):
    expected = css.count("http://")
    block = found(f"<style>a {{ {css} }}</style>")
    attribute = found(f"<div style='{css}'></div>")
    sheet = scan_bytes(f"a {{ {css} }}".encode(), "https://blog.test/s.css", "s.css", True).findings
    for findings in (block, attribute, sheet):
        assert len(findings) == expected and all(f.cls == U and f.host == "h.test" for f in findings)
        assert all("image/" not in f.resolved for f in findings)  # type() strings are not URLs


# --- CSS Syntax 3: escapes and @namespace ------------------------------------------------------------------

def test_css_escapes_in_urls_strings_and_function_names():
    css = ('a{background:url(http://h.test/a\\).png)} b{background:u\\72l(http://h.test/b.png)} '
           'c{background:url("\\68ttp://h.test/c.png")} d{background:\\69mage-set("http://h.test/d.png" 1x)}')
    findings = scan_bytes(css.encode(), "https://blog.test/s.css", "s.css", True).findings
    assert [f.resolved for f in findings] == ["http://h.test/a).png", "http://h.test/b.png", "http://h.test/c.png",
                                              "http://h.test/d.png"]


def test_namespace_rules_fetch_nothing():
    css = ('@namespace url(http://www.w3.org/1999/xhtml);\n@namespace svg "http://www.w3.org/2000/svg";\n'
           'svg|a { background: url(http://h.test/a.png) }')
    findings = scan_bytes(css.encode(), "https://blog.test/s.css", "s.css", True).findings
    assert [f.host for f in findings] == ["h.test"]


# --- lazy-loading attributes -----------------------------------------------------------------------------

def test_lazy_loading_attributes_are_their_own_class():
    page = ('<img src="/placeholder.gif" data-src="http://h.test/a.jpg" data-srcset="http://h.test/a,1.jpg 1x, '
            'http://h.test/b.jpg 2x"><div class="lazy" data-bg="http://h.test/bg.jpg"></div>'
            '<div data-bg="url(http://h.test/bg2.jpg)"></div><iframe data-lazy-src="http://h.test/frame"></iframe>'
            '<img data-original="http://h.test/o.jpg"><img data-title="http://h.test/not-a-fetch">')
    assert triples(page) == [("img", "data-src", LAZY), ("img", "data-srcset", LAZY), ("img", "data-srcset", LAZY),
                             ("div", "data-bg", LAZY), ("div", "data-bg url()", LAZY),
                             ("iframe", "data-lazy-src", LAZY), ("img", "data-original", LAZY)]
    assert [f.resolved for f in found(page)][1] == "http://h.test/a,1.jpg"


# --- UTF-7 (WHATWG Encoding: not supported; HTML: read as windows-1252) -------------------------------------

def test_utf7_pages_are_read_as_windows_1252_like_browsers():
    hidden = b"+ADw-img src+AD0AIg-http://hidden.test/a.png+ACIAPg-"
    meta = scan_bytes(b'<meta charset="utf-7">' + hidden + b'<img src="http://seen.test/b.png">',
                      "https://blog.test/a.html", "a.html", False)
    assert meta.encoding == "cp1252" and [f.host for f in meta.findings] == ["seen.test"]
    header = scan_bytes(hidden, "https://blog.test/a.html", "a.html", False, declared="UTF-7")
    assert header.encoding == "cp1252" and header.findings == ()
    rot13 = scan_bytes(b'<meta charset=rot13><img src="http://h.test/a.png">', "https://blog.test/a", "a", False)
    assert [f.host for f in rot13.findings] == ["h.test"]  # a codec, not an encoding: ignored, no crash


# --- WHATWG URL parser, special schemes (URL Standard §4.4 examples, with http:) ---------------------------

@pytest.mark.parametrize("url,base_href,resolved", [
    ("http:example.org", None, "http://example.org"),  # https:example.org (no base); the path is not normalized
    ("http://////example.com///", None, "http://example.com///"),
    ("http://example.com/././foo", None, "http://example.com/././foo"),  # resolved as written; the host counts
    ("http:example.org", "http://example.com/", "http://example.com/example.org"),  # same scheme: relative
    ("http:/x.png", "http://example.com/dir/", "http://example.com/x.png"),
    ("http:\\\\example.org\\a.png", "http://example.com/", "http://example.org/a.png"),
    ("\\example\\..\\demo/.\\", "http://example.com/", "http://example.com/demo/"),
    ("example", "http://example.com/demo", "http://example.com/example"),
    ("http://EXAMPLE.com/../x", None, "http://EXAMPLE.com/../x"),
])
def test_url_parser_quirks_of_special_schemes(url, base_href, resolved):
    base = f'<base href="{base_href}">' if base_href else ""
    findings = [f for f in found(f'{base}<img src="{url}">') if f.attribute == "src"]
    assert [f.resolved for f in findings] == [resolved]


@pytest.mark.parametrize("host,canonical,cls", [
    # URL Standard §3.1 host examples: EXAMPLE.COM, example%2Ecom, 0, %30, 0x, 0xffffffff
    ("EXAMPLE.COM", "example.com", U), ("example%2Ecom", "example.com", U), ("0", "0.0.0.0", B),
    ("%30", "0.0.0.0", B), ("0x", "0.0.0.0", B), ("0xffffffff", "255.255.255.255", B),
    ("0x7f.1", None, None), ("127.1", None, None), ("2130706433", None, None),  # loopback: not mixed content
    ("09", None, None), ("example.255", None, None), ("example^example", None, None),  # parse failures
])
def test_hosts_as_the_url_parser_reads_them(host, canonical, cls):
    findings = found(f'<img src="http://{host}/a.png">')
    assert [(f.host, f.cls) for f in findings] == ([(canonical, cls)] if canonical else [])


def test_ex_ample_is_a_parse_failure_and_fetches_nothing():
    assert found('<img src="http://ex ample.org/">') == []


# --- inline SVG (SVG 2 script, Filter Effects feImage, presentation attributes) ----------------------------

def test_inline_svg_fetching_elements_and_presentation_attributes():
    page = ('<svg><script href="http://h.test/s.js"></script><script xlink:href="http://h.test/x.js"></script>'
            '<filter id=f><feImage href="http://h.test/i.png"/></filter>'
            '<rect filter="url(http://h.test/f.svg#blur)" clip-path="url(http://h.test/c.svg#c)" '
            'mask="url(http://h.test/m.svg#m)" fill="url(http://h.test/p.svg#paint) red" '
            'marker-start="url(http://h.test/m.svg#a)" marker-end="url(#local)"/></svg>'
            '<p fill="url(http://h.test/not-svg.svg#x)">')
    assert triples(page) == [("script", "href", B), ("script", "xlink:href", B), ("feimage", "href", U),
                             ("rect", "filter url()", B), ("rect", "clip-path url()", B), ("rect", "mask url()", B),
                             ("rect", "fill url()", B), ("rect", "marker-start url()", B)]


# --- data: URL documents (Fetch §data: URLs) ----------------------------------------------------------------

def test_data_url_documents_are_scanned_as_the_page():
    html = '<img src="http://h.test/in-html.png"><img src="relative.png">'
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><image href="http://h.test/in-svg.png"/></svg>'
    css = "a{background:url(http://h.test/in-css.png)}"
    page = (f'<iframe src="data:text/html,{quote(html)}"></iframe>\n'
            f'<object data="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}"></object>\n'
            f'<link rel=stylesheet href="data:text/css;charset=utf-8,{quote(css)}">\n'
            f'<img src="data:image/svg+xml,{quote(svg)}">')  # an SVG image fetches nothing
    findings = found(page)
    assert [(f.line, f.resolved, f.cls) for f in findings] == [(1, "http://h.test/in-html.png", U),
                                                              (2, "http://h.test/in-svg.png", U),
                                                              (3, "http://h.test/in-css.png", U)]
    assert findings[0].column == page.index("data:") + 1
    assert all(page[f.start:f.end] != f.written for f in findings)  # not rewritable in place: --fix leaves it


# --- preload imagesrcset (HTML §4.6.7.12) and legacy background (HTML §15.3.x) -------------------------------

def test_preload_imagesrcset_replaces_href():
    page = ('<link rel=preload as=image href="http://h.test/wolf.jpg" '
            'imagesrcset="http://h.test/wolf_400px.jpg 400w, http://h.test/wolf_800px.jpg 800w" imagesizes="50vw">')
    assert [(f.attribute, f.resolved) for f in found(page)] == [
        ("imagesrcset", "http://h.test/wolf_400px.jpg"), ("imagesrcset", "http://h.test/wolf_800px.jpg")]


def test_background_attribute_on_every_table_element():
    page = "".join(f'<{t} background="http://h.test/{t}.gif">' for t in ("thead", "tbody", "tfoot", "tr"))
    assert triples(page) == [(t, "background", U) for t in ("thead", "tbody", "tfoot", "tr")]


def test_fix_rewrites_an_own_site_url_inside_srcdoc_and_leaves_data_urls(tmp_path):
    import io

    from lehttpd.cli import run
    from lehttpd.console import Console

    site = tmp_path / "site"
    site.mkdir()
    page = ('<iframe srcdoc="<img src=&quot;http://blog.test/in.png?a=1&amp;amp;b=2&quot;>"></iframe>'
            f'<iframe src="data:text/html,{quote("<img src=http://blog.test/d.png>")}"></iframe>')
    (site / "p.html").write_text(page)
    out = io.StringIO()
    code = run(["scan", str(site), "--site-url", "https://blog.test/", "--fix", "--work-dir", str(tmp_path / "w"),
                "--fail-on", "none"], Console(stdout=out, stderr=io.StringIO(), color=False))
    assert code == 0
    assert (site / "p.html").read_text() == page.replace("http://blog.test/in.png", "/in.png")
    assert "1 upgradable" in out.getvalue()  # the data: one is left, reported


def test_srcdoc_nested_deeper_than_any_page_stops_without_error():
    inner = '<img src="http://deep.test/x.png">'
    for _ in range(40):
        inner = '<iframe srcdoc="' + inner.replace("&", "&amp;").replace('"', "&quot;") + '"></iframe>'
    assert found(inner) == []  # past 8 levels nothing is read, and nothing breaks
