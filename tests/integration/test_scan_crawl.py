"""Crawling a live site: a local http.server on 127.0.0.1 started by the test (loopback only)."""
import http.server
import io
import json
import threading
import time

import pytest

from lehttpd.cli import run
from lehttpd.console import Console
from lehttpd.scan.crawl import CrawlOptions, crawl

PAGES = {
    "/": '<html><head><link rel=stylesheet href="/css/site.css"></head><body>'
         '<img src="http://img.test/home.png"><a href="/a.html">a</a><a href="/private/secret.html">p</a>'
         '<a href="http://elsewhere.test/">off-site</a><a href="/loop">loop</a><a href="/slow.html">slow</a>'
         '<a href="/trickle.html">trickle</a><a href="/missing.html">404</a><a href="/photo.jpg">jpg</a></body></html>',
    "/a.html": '<script src="http://js.test/a.js"></script><a href="/b.html">b</a>',
    "/b.html": '<iframe src="http://frame.test/x"></iframe><a href="/c.html">c</a>',
    "/c.html": '<img src="http://img.test/deep.png">',
    "/from-sitemap.html": '<form action="http://form.test/post"></form>',
    "/private/secret.html": '<script src="http://secret.test/x.js"></script>',
    "/css/site.css": ".a{background:url(http://css.test/bg.png)} .b{background:url(/img/ok.png)}",
    "/robots.txt": "User-agent: *\nDisallow: /private/\nSitemap: {origin}/sitemap.xml\n",
    "/sitemap.xml": '<?xml version="1.0"?><urlset><url><loc>{origin}/from-sitemap.html</loc></url></urlset>',
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests_seen: list = []

    def do_GET(self):
        self.requests_seen.append(self.path)
        origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/loop":
            return self._send(302, b"", location="/loop2")
        if self.path == "/loop2":
            return self._send(302, b"", location="/loop")
        if self.path == "/slow.html":
            time.sleep(1.5)  # longer than the read time-out
            return self._send(200, b"<p>late</p>")
        if self.path == "/trickle.html":
            return self._trickle()
        body = PAGES.get(self.path)
        if body is None:
            return self._send(404, b"not found")
        ctype = "text/css" if self.path.endswith(".css") else "text/plain" if self.path.endswith(".txt") \
            else "application/xml" if self.path.endswith(".xml") else "text/html; charset=utf-8"
        self._send(200, body.replace("{origin}", origin).encode(), ctype)

    def _send(self, status, body, ctype="text/html", location=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self):
        """Answers at once, then sends a byte every 0.3 s: only the body deadline stops it."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(40):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Handler.requests_seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


OPTIONS = CrawlOptions(max_pages=50, max_depth=5, concurrency=2, timeout=1.0, page_deadline=2.0)


def test_crawl_follows_the_site_respects_robots_and_survives_bad_answers(site):
    started = time.monotonic()
    results = list(crawl(site, OPTIONS))
    assert time.monotonic() - started < 15
    found = {(r.page.replace(site, "/"), f.host, f.cls) for r in results for f in r.findings}
    assert found == {("/", "img.test", "upgradable"), ("/a.html", "js.test", "blockable"),
                     ("/b.html", "frame.test", "blockable"), ("/c.html", "img.test", "upgradable"),
                     ("/from-sitemap.html", "form.test", "form"), ("/css/site.css", "css.test", "upgradable")}
    problems = {r.page.replace(site, "/"): r.problems[0].reason for r in results if r.problems}
    assert problems["/loop"] == "more than 10 redirects (a redirect loop?)"
    assert problems["/slow.html"] == "no answer within 1 s"
    assert problems["/trickle.html"] == "too slow: body not complete after 2 s"
    assert problems["/missing.html"] == "HTTP 404"
    assert "/private/secret.html" not in Handler.requests_seen  # robots.txt
    assert all(r.url.startswith("https://") for r in results if r.url)  # judged as served over https


def test_page_and_depth_limits(site):
    shallow = list(crawl(site, CrawlOptions(max_depth=1, timeout=1.0, page_deadline=2.0)))
    pages = {r.page.replace(site, "/") for r in shallow if r.url}
    assert "/a.html" in pages and "/b.html" not in pages and "/c.html" not in pages
    limited = [r for r in crawl(site, CrawlOptions(max_pages=2, timeout=1.0)) if r.url and not r.page.endswith(".css")]
    assert len(limited) == 2


def test_cli_on_a_url_without_crawl_reads_one_page_and_its_css(site):
    out, err = io.StringIO(), io.StringIO()
    code = run(["scan", site, "--format", "json", "--timeout", "1"], Console(stdout=out, stderr=err, color=False))
    doc = json.loads(out.getvalue())
    assert code == 0  # only upgradable findings
    assert {p["page"].replace(site, "/") for p in doc["pages"]} == {"/", "/css/site.css"}
    assert doc["summary"]["by_class"]["upgradable"] == 2
