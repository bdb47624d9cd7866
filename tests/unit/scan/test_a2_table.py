"""Every row of the A2 table (../shared/reference/mixed-content-and-tls-policy.md): a positive case with its
class and, where the table says the place is not mixed content or depends on a condition, a negative case."""
import pytest

from tests.unit.scan.helpers import triples

B, U = "blockable", "upgradable"
POSITIVE = [
    # img[src] alone: upgradable
    ('<img src="http://h.test/a.png">', [("img", "src", U)]),
    # img with srcset, picture>source, and the src of such an img: imageset, blockable
    ('<img src="http://h.test/a.png" srcset="http://h.test/b.png 2x">', [("img", "src", B), ("img", "srcset", B)]),
    ('<picture><source srcset="http://h.test/a.webp"><img src="http://h.test/a.png"></picture>',
     [("source", "srcset", B), ("img", "src", B)]),
    ('<img crossorigin src="http://h.test/a.png">', [("img", "src", B)]),
    ('<input type=IMAGE src="http://h.test/go.png">', [("input", "src", U)]),
    ('<video poster="http://h.test/p.jpg"></video>', [("video", "poster", U)]),
    ('<video src="http://h.test/v.mp4"></video><audio src="http://h.test/a.mp3"></audio>',
     [("video", "src", U), ("audio", "src", U)]),
    ('<video><source src="http://h.test/v.webm"></video><audio><source src="http://h.test/a.ogg"></audio>',
     [("source", "src", U), ("source", "src", U)]),
    ('<video><track src="http://h.test/subs.vtt"></video>', [("track", "src", B)]),
    ('<script src="http://h.test/x.js"></script>', [("script", "src", B)]),
    ('<link rel=modulepreload href="http://h.test/m.js">', [("link", "href", B)]),
    ('<link rel=stylesheet href="http://h.test/s.css">', [("link", "href", B)]),
    ('<style>@import "http://h.test/i.css";</style>', [("style", "@import", B)]),
    ('<link rel=preload as=image href="http://h.test/i.png">', [("link", "href", U)]),
    ('<link rel=preload as=script href="http://h.test/i.js">', [("link", "href", B)]),
    ('<link rel=prefetch href="http://h.test/n.html"><link rel=prerender href="http://h.test/m.html">'
     '<link rel=manifest href="http://h.test/app.webmanifest">', [("link", "href", B)] * 3),
    ('<link rel="shortcut icon" href="http://h.test/f.ico"><link rel=apple-touch-icon href="http://h.test/t.png">',
     [("link", "href", U)] * 2),
    ('<iframe src="http://h.test/embed"></iframe><frame src="http://h.test/f.html">',
     [("iframe", "src", B), ("frame", "src", B)]),
    ('<object data="http://h.test/o.swf"></object><embed src="http://h.test/e.swf">'
     '<param name=Movie value="http://h.test/m.swf"><applet code="http://h.test/A.class"></applet>',
     [("object", "data", B), ("embed", "src", B), ("param", "value", B), ("applet", "code", B)]),
    ('<form action="http://h.test/post"><button formaction="http://h.test/b"></button>'
     '<input formaction="http://h.test/i"></form>', [("form", "action", "form"), ("button", "formaction", "form"),
                                                      ("input", "formaction", "form")]),
    ('<a href="http://h.test/f.zip" download>get</a><a href="/x" ping="http://h.test/p1 http://h.test/p2">x</a>'
     '<area href="/x" ping="http://h.test/p3">', [("a", "href", B), ("a", "ping", B), ("a", "ping", B), ("area", "ping", B)]),
    ('<meta http-equiv="Refresh" content="0; URL=\'http://h.test/new\'">', [("meta", "content", "navigation-downgrade")]),
    ('<body background="http://h.test/bg.gif"><table background="http://h.test/t.gif"><tr>'
     '<td background="http://h.test/d.gif"><th background="http://h.test/h.gif">',
     [("body", "background", U), ("table", "background", U), ("td", "background", U), ("th", "background", U)]),
    ('<svg><image href="http://h.test/s.png"/><image xlink:href="http://h.test/x.png"/></svg>',
     [("image", "href", U), ("image", "xlink:href", U)]),
    ('<svg><use href="http://h.test/sprite.svg#icon"/></svg>', [("use", "href", B)]),
    ('<div style="background-image: url(http://h.test/bg.png)"></div>', [("div", "style url()", U)]),
    ('<style>li { list-style-image: url("http://h.test/dot.png") }</style>', [("style", "url()", U)]),
    ("<style>@font-face { font-family: F; src: url('http://h.test/f.woff2') format('woff2') }</style>",
     [("style", "@font-face", B)]),
    ('<img src="http://192.0.2.7/a.png">', [("img", "src", B)]),  # IP literal: never upgraded
    # issue 13: lazy-loading attributes are their own class (fetched once the lazy-loading script runs)
    ('<img data-src="http://h.test/lazy.png" src="/p.gif">', [("img", "data-src", "lazy")]),
]
NEGATIVE = [
    '<img src="https://h.test/a.png"><img src="//h.test/p.png"><img src="/a.png"><img src="a.png">',
    '<link rel=canonical href="http://h.test/"><link rel=alternate href="http://h.test/feed">'
    '<link rel=shortlink href="http://h.test/?p=1"><link rel=next href="http://h.test/2">'
    '<link rel=prev href="http://h.test/0"><link rel=dns-prefetch href="http://h.test/">'
    '<link rel=preconnect href="http://h.test/">',
    '<a href="http://h.test/page">a link</a><area href="http://h.test/area">',
    '<img src="/a.png" longdesc="http://h.test/desc"><blockquote cite="http://h.test/q"></blockquote>'
    '<q cite="http://h.test/q2">x</q>',
    '<svg><use href="#local"/><use xlink:href="#icon"/></svg>',
    '<meta property="og:image" content="http://h.test/og.png"><meta name=twitter:image content="http://h.test/t.png">',
    '<meta http-equiv=refresh content="5; url=https://h.test/">',
    '<p>see http://h.test/x.png and src="http://h.test/y.png"</p><!-- <img src="http://h.test/c.png"> -->',
    '<script>var s = "<img src=\'http://h.test/s.png\'>"; fetch("http://h.test/api")</script>',
    '<textarea><img src="http://h.test/t.png"></textarea><title><img src=http://h.test/title></title>',
    '<img src="http://localhost/dev.png"><img src="http://127.0.0.1/dev.png"><img src="http://[::1]/x.png">',
    '<picture><source src="http://h.test/ignored.png"></picture>',  # source[src] in picture is not fetched
    '<style>.x::before { content: "url(http://h.test/string)" } /* url(http://h.test/comment) */</style>',
]


@pytest.mark.parametrize("html,expected", POSITIVE, ids=[p[0][:40] for p in POSITIVE])
def test_positive(html, expected):
    assert triples(html) == expected


@pytest.mark.parametrize("html", NEGATIVE, ids=[n[:40] for n in NEGATIVE])
def test_negative(html):
    assert triples(html) == []
