"""`scan --crawl` does no harm: every redirect hop is checked before it is fetched, another host or port is
another site, non-public addresses are refused unless the site is there, and the connection goes to the
address that was checked (a rebinding name cannot move it), with TLS still verified against the name.
Local servers on loopback addresses, started and stopped by each test."""
import http.server
import ssl
import threading

import pytest

from lehttpd.sandbox.tls import throwaway_ca_and_leaf
from lehttpd.scan.crawl import CrawlOptions, crawl
from lehttpd.scan.sitepolicy import Refused, SitePolicy

OPTIONS = CrawlOptions(max_pages=20, max_depth=3, concurrency=2, timeout=2.0, page_deadline=4.0)


def _server(address, pages, tls=None):
    """A server on `address` answering `pages` (path → (status, headers, body)); records (path, Host)."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            seen.append((self.path, self.headers.get("Host")))
            status, headers, body = pages.get(self.path, (404, {}, "missing"))
            self.send_response(status)
            for name, value in {"Content-Type": "text/html; charset=utf-8", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((address, 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def servers():
    started = []

    def start(address, pages, tls=None):
        server, seen = _server(address, pages, tls)
        started.append(server)
        return server.server_address[1], seen
    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def test_a_hostile_redirect_to_another_address_or_port_is_refused_before_it_is_fetched(servers):
    metadata_port, metadata_seen = servers("127.0.0.2", {"/latest/meta-data/": (200, {}, "<p>secret</p>")})
    other_port, other_seen = servers("127.0.0.1", {"/": (200, {}, "<p>other site</p>")})
    hostile = {
        "/": (200, {}, "".join(f'<a href="/{p}">{p}</a>' for p in ("meta", "port", "hop", "ok", "tls"))),
        "/meta": (302, {"Location": f"http://127.0.0.2:{metadata_port}/latest/meta-data/"}, ""),
        "/port": (301, {"Location": f"http://127.0.0.1:{other_port}/"}, ""),
        "/hop": (307, {"Location": "/hop2"}, ""),  # same site first, then off
        "/hop2": (308, {"Location": f"http://127.0.0.2:{metadata_port}/latest/meta-data/"}, ""),
        "/ok": (302, {"Location": "/landing.html"}, ""),
        "/tls": (301, {"Location": "https://127.0.0.1/"}, ""),  # http → https: another site, said so
        "/landing.html": (200, {}, '<script src="http://cdn.test/x.js"></script>'),
    }
    port, seen = servers("127.0.0.1", hostile)
    site = f"http://127.0.0.1:{port}/"
    results = {r.page.replace(site, "/"): r for r in crawl(site, OPTIONS)}
    assert metadata_seen == [] and other_seen == []  # never asked
    for page, target in (("/meta", f"127.0.0.2:{metadata_port}"), ("/port", f"127.0.0.1:{other_port}"),
                         ("/hop", f"127.0.0.2:{metadata_port}")):
        assert results[page].problems[0].reason.startswith("redirected off the site to http://" + target)
    assert ("/hop2", f"127.0.0.1:{port}") in seen
    assert "another scheme is another site: start from https://127.0.0.1/" in results["/tls"].problems[0].reason
    assert [f.host for f in results["/ok"].findings] == ["cdn.test"]  # a same-site redirect is followed
    assert results["/ok"].url == f"https://127.0.0.1:{port}/landing.html"


def test_the_connection_goes_to_the_checked_address_whatever_the_name_resolves_to_later(servers):
    port, seen = servers("127.0.0.1", {"/": (200, {}, '<a href="/a.html">a</a><img src="http://i.test/x.png">'),
                                       "/a.html": (200, {}, '<script src="http://js.test/a.js"></script>')})
    answers = []

    def rebinding(host, _port):  # first the site's address, then the metadata service
        answers.append(host)
        return ["127.0.0.1"] if len(answers) == 1 else ["169.254.169.254"]

    results = list(crawl(f"http://rebind.test:{port}/", OPTIONS, resolver=rebinding))
    assert answers == ["rebind.test"]  # one lookup for the whole crawl
    assert {f.host for r in results for f in r.findings} == {"i.test", "js.test"}
    assert ("/a.html", f"rebind.test:{port}") in seen  # the Host header is the name's


def test_tls_is_verified_against_the_name_while_connecting_to_the_pinned_address(servers, tmp_path):
    pair = throwaway_ca_and_leaf(("pinned.test",))
    (tmp_path / "ca.pem").write_bytes(pair.ca_pem)
    (tmp_path / "leaf.pem").write_bytes(pair.leaf_pem + pair.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    seen_names = []
    context.sni_callback = lambda sock, name, ctx: seen_names.append(name)
    port, _ = servers("127.0.0.1", {"/": (200, {}, '<img src="http://i.test/x.png">')}, tls=context)
    options = CrawlOptions(max_pages=5, timeout=2.0, verify=str(tmp_path / "ca.pem"))
    loopback = lambda host, _port: ["127.0.0.1"]  # noqa: E731
    good = list(crawl(f"https://pinned.test:{port}/", options, resolver=loopback))
    assert [f.host for r in good for f in r.findings] == ["i.test"] and "pinned.test" in seen_names
    wrong = list(crawl(f"https://other.test:{port}/", options, resolver=loopback))
    assert not any(r.findings for r in wrong)
    assert any("SSLError" in p.reason for r in wrong for p in r.problems)


def fixed(table):
    return lambda host, _port: table[host]


def test_site_policy_same_site_and_addresses():
    policy = SitePolicy("https://www.example.test/", ("example.test", "*.example.test", "intranet.example.test",
                                                      "meta.example.test"),
                        fixed({"www.example.test": ["93.184.216.34"], "example.test": ["93.184.216.35"],
                               "intranet.example.test": ["10.1.2.3"], "meta.example.test": ["169.254.169.254"]}))
    assert policy.same_site("https://www.example.test/a") and policy.same_site("https://WWW.example.test:443/")
    assert policy.same_site("https://example.test/")                       # a name of the same vhost
    assert not policy.same_site("http://www.example.test/")                # another scheme
    assert not policy.same_site("https://www.example.test:8443/")          # another port is another site
    assert not policy.same_site("https://evil.example.test/")              # a wildcard alias is not a name
    assert policy.address("example.test") == "93.184.216.35"
    with pytest.raises(Refused, match="10.1.2.3 is a private address"):
        policy.address("intranet.example.test")
    with pytest.raises(Refused, match="cloud metadata"):
        policy.address("meta.example.test")
    with pytest.raises(Refused, match="cloud metadata"):
        SitePolicy("http://169.254.169.254/latest/")
    for literal in ("127.0.0.2", "10.0.0.1", "192.168.1.1", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0"):
        with pytest.raises(Refused):
            SitePolicy("https://site.test/", (literal,), fixed({"site.test": ["93.184.216.34"]})).address(literal)
    local = SitePolicy("http://intranet.test/", ("alias.test",),
                       fixed({"intranet.test": ["10.0.0.5"], "alias.test": ["10.0.0.5"]}))
    assert local.address("alias.test") == "10.0.0.5"  # the site itself is there


def test_the_cli_crawl_refuses_a_start_url_on_a_metadata_address():
    import io

    from lehttpd.cli import run
    from lehttpd.console import Console
    out, err = io.StringIO(), io.StringIO()
    run(["scan", "http://169.254.169.254/latest/meta-data/", "--crawl", "--format", "json"],
        Console(stdout=out, stderr=err, color=False))
    assert "not fetched: 169.254.169.254 resolves to 169.254.169.254 is a cloud metadata address" in out.getvalue()


def test_with_vhost_the_names_apache_serves_for_the_site_are_the_same_site(servers, monkeypatch):
    import io
    import json

    from lehttpd.apache import discover, vhosts
    from lehttpd.cli import run
    from lehttpd.console import Console

    class FakeVhost:
        document_root = "/nonexistent"
        names = ("127.0.0.1", "localhost")

        def serves(self, name):
            return name in self.names

    pages = {"/b.html": (200, {}, '<script src="http://js.test/b.js"></script>')}
    port, seen = servers("127.0.0.1", pages)
    pages["/"] = (200, {}, f'<a href="http://localhost:{port}/b.html">b</a>')  # read at request time
    monkeypatch.setattr(discover, "discover", lambda *a, **k: object())
    monkeypatch.setattr(vhosts, "read_vhosts", lambda info, *a, **k: ([FakeVhost()], {}, []))

    def crawl_json(*more):
        out = io.StringIO()
        run(["scan", f"http://127.0.0.1:{port}/", "--crawl", "--format", "json", *more],
            Console(stdout=out, stderr=io.StringIO(), color=False))
        return json.loads(out.getvalue())

    alone = crawl_json()
    assert alone["summary"]["findings"] == 0
    with_vhost = crawl_json("--vhost", "127.0.0.1")
    assert [f["host"] for p in with_vhost["pages"] for f in p["findings"]] == ["js.test"]
    assert ("/b.html", f"localhost:{port}") in seen
