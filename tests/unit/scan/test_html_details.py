"""<base>, srcset with commas, entities, case, unquoted attributes, broken markup, positions."""
from lehttpd.scan.css import css_refs
from lehttpd.scan.html import decode_attr, srcset_spans
from lehttpd.scan.urls import findings_for, insecure_url
from tests.unit.scan.helpers import found, triples


def test_http_base_is_reported_and_makes_relative_urls_insecure():
    html = '<head><base href="http://cdn.test/assets/"></head><img src="a.png"><script src="/x.js"></script>' \
           '<img src="https://ok.test/b.png"><img src="//proto.test/c.png">'
    findings = found(html)
    assert [(f.cls, f.resolved) for f in findings] == [
        ("insecure-base", "http://cdn.test/assets/"), ("upgradable", "http://cdn.test/assets/a.png"),
        ("blockable", "http://cdn.test/x.js"), ("upgradable", "http://proto.test/c.png")]


def test_https_base_and_only_the_first_base_counts():
    assert triples('<base href="https://cdn.test/"><base href="http://evil.test/"><img src="a.png">') == []
    assert [f.resolved for f in found('<base target=_blank><base href="http://b.test/"><img src=a.png>')] == \
        ["http://b.test/", "http://b.test/a.png"]


def test_relative_urls_resolve_against_the_https_page():
    assert triples('<img src="../up.png"><img src="?q=http://x.test/">') == []


def test_srcset_urls_may_hold_commas():
    value = "http://h.test/a,w_400.jpg 400w, http://h.test/b.jpg 2x,http://h.test/c,d.jpg"
    assert [value[s:e] for s, e in srcset_spans(value)] == \
        ["http://h.test/a,w_400.jpg", "http://h.test/b.jpg", "http://h.test/c,d.jpg"]
    other = "a.png,, b.png 1x (x, y), c.png"
    assert [other[s:e] for s, e in srcset_spans(other)] == ["a.png", "b.png", "c.png"]
    assert [f.written for f in found(f'<img srcset="{value}">')] == \
        ["http://h.test/a,w_400.jpg", "http://h.test/b.jpg", "http://h.test/c,d.jpg"]


def test_entities_decode_as_in_attributes():
    assert decode_attr("a&amp;b&#x26;c&#38;d")[0] == "a&b&c&d"
    assert decode_attr("?a=1&copy=2")[0] == "?a=1&copy=2"  # legacy name before "=": left as written
    assert decode_attr("&copy 2")[0] == "\u00a9 2"
    html = '<img src="&#104;ttp&colon;//h.test/x.png?a=1&amp;b=2">'
    (f,) = found(html)
    assert f.resolved == "http://h.test/x.png?a=1&b=2"
    assert f.written == "&#104;ttp&colon;//h.test/x.png?a=1&amp;b=2" == html[f.start:f.end]


def test_case_unquoted_whitespace_and_duplicates():
    html = "<IMG\nSRC = HTTP://H.TEST/A.PNG src=http://second.test/><ImG sRc='  http://h.test/b.png\t'>"
    findings = found(html)
    assert [(f.written, f.host) for f in findings] == [("HTTP://H.TEST/A.PNG", "h.test"),
                                                        ("http://h.test/b.png", "h.test")]
    assert [(f.line, f.column) for f in findings] == [(2, 7), (2, 63)]


def test_broken_markup_as_a_browser_reads_it():
    # an unclosed comment swallows the rest; "<image>" outside svg is an img; a quoted ">" stays in the value
    assert triples('<image src="http://h.test/i.png">') == [("img", "src", "upgradable")]
    assert triples('<div title="a > b"><img src="http://h.test/q.png" alt="<b>">') == [("img", "src", "upgradable")]
    assert triples('<p>text <!-- open comment <img src="http://h.test/c.png">') == []
    assert triples('<img src="http://h.test/eof.png"') == []  # a tag cut by the end of the file is dropped
    assert triples('<script>x</script ><img src=http://h.test/after.png>') == [("img", "src", "upgradable")]
    assert triples('<a <img src=http://h.test/x>') == []  # "<img" is an attribute name of <a>
    assert triples('<plaintext><img src=http://h.test/x>') == []


def test_tabs_and_newlines_inside_a_scheme_are_removed_by_the_url_parser():
    assert insecure_url("ht\ntp://h.test/x", "https://a.test/") == ("http://h.test/x", "h.test")
    assert insecure_url("  HTTP:\\\\h.test\\x", "https://a.test/") == ("http://h.test/x", "h.test")
    assert insecure_url("javascript:void(0)", "https://a.test/") is None


def test_css_file_positions_and_comments():
    css = '/* url(http://c.test/x) */\n@import url("http://i.test/a.css");\n.a{background:url( http://b.test/b.png )}\n' \
          '@font-face{src:url(http://f.test/f.woff)}\n.s{content:"url(http://s.test/)"}\n.e{background:url(htt\\70://e.test/)}'
    refs = css_refs(css)
    assert [(r.attribute, r.value, r.cls) for r in refs] == [
        ("@import", "http://i.test/a.css", "blockable"), ("url()", "http://b.test/b.png", "upgradable"),
        ("@font-face", "http://f.test/f.woff", "blockable"), ("url()", "http://e.test/", "upgradable")]
    findings = findings_for(refs, None, "https://blog.test/css/site.css", "css/site.css", css)
    assert [(f.line, f.column) for f in findings] == [(2, 14), (3, 20), (4, 20), (6, 19)]


def test_css_relative_urls_resolve_against_the_css_file_url():
    refs = css_refs(".a{background:url(../img/a.png)}")
    assert findings_for(refs, None, "https://blog.test/css/site.css", "x", "") == []
    assert [f.resolved for f in findings_for(refs, None, "http://cdn.test/css/site.css", "x", "")] == \
        ["http://cdn.test/img/a.png"]


def test_style_attribute_with_entities_keeps_exact_offsets():
    html = '<p style="background:url(&quot;http://h.test/a.png&quot;)">'
    (f,) = found(html)
    assert html[f.start:f.end] == "http://h.test/a.png" and f.attribute == "style url()"
