"""A deterministic blog corpus with its own ground truth, for bench_scan.py and the scan tests.

Each page is built from pieces whose browser behaviour is known from the A2 table
(../shared/reference/mixed-content-and-tls-policy.md): real mixed-content references with their class, and
decoys that a naive search takes for mixed content (links, code samples, comments, script strings, canonical
links, og:image). Lazy-load attributes (data-src) sit among the decoys, where they were before issue 13, so the
pages stay byte for byte the same, but count as real references of the class `lazy`. The truth comes from what
was inserted, never from the scanner.
"""
from __future__ import annotations

import os
import random

SITE = "https://blog.example.com/"
_WORDS = ("the server certificate padlock browser image script style request secure page blog post apache "
          "module config redirect header cache proxy domain renew reload mixed content fetch upgrade http "
          "https host path query origin policy cipher protocol key chain version client").split()
_HOSTS = ("cdn.example.net", "images.example.org", "static.example.com", "media.example.net",
          "widgets.example.org", "blog.example.com", "old.example.com", "fonts.example.net")

# (template, [(class, url-as-written)...]) builders for real references; {h} host, {n} number.
_REAL = (
    ('<p><img src="http://{h}/img/{n}.jpg" alt="photo {n}" width="640"></p>', [("upgradable", "http://{h}/img/{n}.jpg")]),
    ('<img class=thumb src=http://{h}/thumbs/{n}.png>', [("upgradable", "http://{h}/thumbs/{n}.png")]),
    ('<IMG SRC="HTTP://{H}/UP/{n}.GIF" ALT=x>', [("upgradable", "HTTP://{H}/UP/{n}.GIF")]),
    ('<img src="http://{h}/q.php?id={n}&amp;size=large">', [("upgradable", "http://{h}/q.php?id={n}&amp;size=large")]),
    ('<img src="http://203.0.113.{m}/pixel.gif">', [("blockable", "http://203.0.113.{m}/pixel.gif")]),
    ('<img src="https://{h}/a/{n}.jpg" srcset="http://{h}/a/{n},w_400.jpg 400w, http://{h}/a/{n},w_800.jpg 800w">',
     [("blockable", "http://{h}/a/{n},w_400.jpg"), ("blockable", "http://{h}/a/{n},w_800.jpg")]),
    ('<picture><source srcset="http://{h}/p/{n}.webp" type="image/webp"><img src="http://{h}/p/{n}.jpg"></picture>',
     [("blockable", "http://{h}/p/{n}.webp"), ("blockable", "http://{h}/p/{n}.jpg")]),
    ('<script src="http://{h}/js/widget{n}.js"></script>', [("blockable", "http://{h}/js/widget{n}.js")]),
    ('<link rel="stylesheet" href="http://{h}/css/theme{n}.css">', [("blockable", "http://{h}/css/theme{n}.css")]),
    ('<iframe src="http://www.youtube.example/embed/{n}" width=560 height=315></iframe>',
     [("blockable", "http://www.youtube.example/embed/{n}")]),
    ('<video controls poster="http://{h}/v/{n}.jpg" src="http://{h}/v/{n}.mp4"></video>',
     [("upgradable", "http://{h}/v/{n}.jpg"), ("upgradable", "http://{h}/v/{n}.mp4")]),
    ('<audio controls><source src="http://{h}/a/{n}.mp3" type="audio/mpeg"></audio>', [("upgradable", "http://{h}/a/{n}.mp3")]),
    ("<div class=hero style=\"background-image: url('http://{h}/bg/{n}.jpg')\"></div>", [("upgradable", "http://{h}/bg/{n}.jpg")]),
    ('<form action="http://{h}/subscribe" method=post><input name=email></form>', [("form", "http://{h}/subscribe")]),
    ('<object data="http://{h}/flash/{n}.swf"></object>', [("blockable", "http://{h}/flash/{n}.swf")]),
    ('<embed src="http://{h}/e/{n}.svg">', [("blockable", "http://{h}/e/{n}.svg")]),
    ('<img src="http://blog.example.com/wp-content/uploads/{n}.jpg">', [("upgradable", "http://blog.example.com/wp-content/uploads/{n}.jpg")]),
)
_LAZY = '<img data-src="http://{h}/lazy/{n}.jpg" src="/img/placeholder.png" alt="">'
_PLACED_TRUTH = {_LAZY: [("lazy", "http://{h}/lazy/{n}.jpg")]}  # pieces among the decoys that are real
_DECOYS = (
    '<a href="http://{h}/article/{n}">a related article</a>',
    '<a href=http://{h}/tag/{n}>tag {n}</a>',
    '<pre><code>&lt;img src="http://{h}/code/{n}.png"&gt;</code></pre>',
    '<!-- <img src="http://{h}/old/{n}.png"> removed -->',
    "<script>var u = 'http://{h}/api/{n}'; el.innerHTML = '<img src=\"http://{h}/js/{n}.png\">';</script>",
    _LAZY,
    '<img src="https://{h}/ok/{n}.jpg"><img src="//{h}/proto/{n}.jpg"><img src="/local/{n}.png">',
    '<textarea>&lt;img src="http://{h}/ta/{n}.png"&gt; <img src="http://{h}/ta/{n}.png"></textarea>',
    '<blockquote cite="http://{h}/quote/{n}"><p>quoted text</p></blockquote>',
    '<img src="http://localhost/dev/{n}.png">',
)
_HEAD_DECOYS = ('<link rel="canonical" href="http://blog.example.com/{n}/">',
                '<meta property="og:image" content="http://{h}/og/{n}.jpg">',
                '<link rel="dns-prefetch" href="http://{h}/">', '<link rel=alternate type=application/rss+xml href=http://blog.example.com/feed>')


def _fill(rng: random.Random, template: str, truth: list | None = None, refs: list | None = None) -> str:
    host = rng.choice(_HOSTS)
    values = {"{h}": host, "{H}": host.upper(), "{n}": str(rng.randrange(100000)),
              "{m}": str(rng.randrange(1, 250))}
    if truth is not None:
        truth.extend((cls, _subst(url, values)) for cls, url in refs)
    return _subst(template, values)


def _subst(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def make_page(rng: random.Random, number: int, size: int = 20000) -> tuple[str, list[tuple[str, str]]]:
    """One page of about `size` characters, and its true findings as (class, url as written)."""
    truth: list[tuple[str, str]] = []
    head = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f"<title>Post {number}</title>"]
    head += [_fill(rng, t) for t in _HEAD_DECOYS]
    body = ['</head><body><nav>'] + [_fill(rng, _DECOYS[0]) for _ in range(12)] + ["</nav><article>"]
    length = sum(map(len, head + body))
    while length < size - 600:
        roll = rng.random()
        if roll < 0.10:
            template, refs = rng.choice(_REAL)
            piece = _fill(rng, template, truth, refs)
        elif roll < 0.35:
            template = rng.choice(_DECOYS)
            piece = _fill(rng, template, truth, _PLACED_TRUTH.get(template, []))
        else:
            piece = f"<p>{_text(rng, rng.randrange(20, 90))} <em>{_text(rng, 3)}</em>.</p>"
        body.append(piece + "\n")
        length += len(piece) + 1
    body.append("</article><footer>" + _fill(rng, _DECOYS[1]) + "</footer></body></html>\n")
    return "".join(head) + "\n" + "".join(body), truth


def make_css(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    truth: list[tuple[str, str]] = []
    parts = ["/* theme: url(http://comment.example/x.png) */\nbody { color: #333 }\n",
             _fill(rng, '@import url("http://{h}/css/base{n}.css");\n', truth, [("blockable", "http://{h}/css/base{n}.css")]),
             _fill(rng, ".a { background: url(http://{h}/i/{n}.png) no-repeat }\n", truth, [("upgradable", "http://{h}/i/{n}.png")]),
             _fill(rng, "@font-face { font-family: X; src: url('http://{h}/f/{n}.woff2') }\n", truth,
                   [("blockable", "http://{h}/f/{n}.woff2")]),
             ".b { background: url(/img/local.png) }\n.c::after { content: \"url(http://string.example/)\" }\n"]
    return "".join(parts), truth


def write_corpus(root: str, pages: int, seed: int = 5, size: int = 20000) -> dict[str, list[tuple[str, str]]]:
    """Write `pages` pages (and one stylesheet per 100 pages) under root; return the truth by relative path."""
    rng = random.Random(seed)
    truth: dict[str, list[tuple[str, str]]] = {}
    for number in range(pages):
        relative = os.path.join(str(2000 + number // 2000), f"{number // 100 % 20:02d}", f"post-{number}.html")
        text, refs = make_page(rng, number, size)
        _write(root, relative, text)
        truth[relative] = refs
        if number % 100 == 0:
            css, css_truth = make_css(rng)
            relative = os.path.join("css", f"theme-{number}.css")
            _write(root, relative, css)
            truth[relative] = css_truth
    return truth


def _write(root: str, relative: str, text: str) -> None:
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
