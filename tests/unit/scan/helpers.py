from lehttpd.scan.html import html_refs
from lehttpd.scan.urls import findings_for

PAGE = "https://blog.example.com/posts/a.html"


def found(html: str, page_url: str = PAGE):
    refs, base = html_refs(html)
    return findings_for(refs, base, page_url, "a.html", html)


def triples(html: str, page_url: str = PAGE):
    return [(f.element, f.attribute, f.cls) for f in found(html, page_url)]
