"""The HTTP side of a check: the redirect's verdict, the HSTS header, mixed content through the scan engine, and a
real plain-HTTP server answering the redirect probe."""
import http.server
import threading

from lehttpd.check.hello import Target
from lehttpd.check.probe import CheckOptions
from lehttpd.check.web import (PROBE_PATH, _redirect_problem, examine, hsts_max_age, https_url, mixed_content,
                               redirect_keeps)

WANTED = https_url("a.test", 443, PROBE_PATH)


def test_redirect_problems_are_named():
    assert "temporary" in _redirect_problem(302, WANTED, WANTED)
    assert "loses the path or query" in _redirect_problem(301, "https://a.test/", WANTED)
    assert "not to https://" in _redirect_problem(301, "http://a.test" + PROBE_PATH, WANTED)
    assert "without redirecting" in _redirect_problem(200, None, WANTED)


def test_a_redirect_to_another_https_host_keeping_path_and_query_is_fine():
    assert redirect_keeps("https://www.a.test" + PROBE_PATH, WANTED)
    assert redirect_keeps(WANTED, WANTED)
    assert not redirect_keeps("https://www.a.test/", WANTED)
    assert not redirect_keeps("http://a.test" + PROBE_PATH, WANTED)
    assert not redirect_keeps(None, WANTED)


def test_hsts_max_age_reads_the_first_header_only():
    assert hsts_max_age(["max-age=63072000; includeSubDomains"]) == 63072000
    assert hsts_max_age(['includeSubDomains; max-age="300"']) == 300
    assert hsts_max_age(["includeSubDomains"]) is None
    assert hsts_max_age(["max-age=1", "max-age=63072000"]) == 1
    assert hsts_max_age([]) is None


def test_mixed_content_uses_the_scan_engine_classes():
    page = b'<script src="http://cdn.test/a.js"></script><img src="http://a.test/x.png">'
    found = mixed_content(page, "https://a.test/", None)
    assert ("blockable", "http://cdn.test/a.js") in found and ("upgradable", "http://a.test/x.png") in found


class _Redirector(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(302)
        self.send_header("Location", "https://a.test/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_temporary_redirect_that_drops_the_path_is_reported_and_https_failure_is_a_note():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = Target("127.0.0.1", 1, "a.test", timeout=2)  # nothing listens on port 1 for https
        result = examine(target, CheckOptions(http_port=server.server_address[1]), deadline=9e18)
    finally:
        server.shutdown()
    assert result.redirect_status == 302 and not result.redirect_ok
    assert "temporary" in result.redirect_note
    assert result.https_note.startswith("home page not read")
