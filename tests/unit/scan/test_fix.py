"""--fix: only the URL characters change, own-site URLs become root-relative, third-party ones https only
when probed, the run's backups restore the originals byte for byte."""
import http.server
import threading

from pathlib import Path

import pytest

from lehttpd.scan.backup import BackupRun, undo
from lehttpd.scan.fix import Prober, fix_page as _fix_page, plan_edits
from lehttpd.scan.guard import Guard
from lehttpd.scan.pages import ScanOptions, scan_file, walk

BLOG = {
    "index.html": '<html><head><base href="http://blog.test/"><link rel="stylesheet" href="css/site.css">'
                  '</head><body>\r\n<IMG SRC=HTTP://BLOG.TEST/a.png alt="caf\u00e9">\r\n'
                  '<img srcset="http://blog.test/b,1.png 1x, http://cdn.ok/b.png 2x">'
                  '<script src="http://nohttps.test/x.js"></script>'
                  '<img src="&#104;ttp://blog.test/entity.png"><a href="http://blog.test/nav">x</a></body></html>\r\n',
    "post/one.htm": '<meta charset="windows-1252"><p>\u201cquote\u201d</p><iframe src="http://cdn.ok/embed?a=1&amp;b=2">'
                    '</iframe><div style="background:url(http://blog.test:80/bg.png)">',
    "css/site.css": "@import url(http://cdn.ok/base.css);\n.a{background:url('http://nohttps.test/i.png')}\n",
}


@pytest.fixture
def blog(tmp_path):
    originals = {}
    tmp_path = tmp_path / "site"
    for name, text in BLOG.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("cp1252" if name.endswith(".htm") else "utf-8")
        path.write_bytes(data)
        originals[name] = data
    return tmp_path, originals


_RUNS = {}


def fix_page(result, site_host, probe, dry_run, max_bytes):
    """fix_page with the guard and the backup run of the folder the page is in (one run per folder)."""
    root = result.path[:-len(result.page)].rstrip("/")
    run = _RUNS.setdefault(root, BackupRun(Path(root).parent / "work", root, "test"))
    return _fix_page(result, site_host, probe, dry_run, max_bytes, Guard(root), run)


def _scan(root):
    options = ScanOptions(site_url="https://blog.test/", jobs=1)
    return {rel: scan_file(path, rel, options) for path, rel in walk(str(root))}


def has_https(url, host):
    return host == "cdn.ok"


def test_fix_leaves_only_third_party_hosts_without_https_and_backups_restore(blog):
    root, originals = blog
    before = _scan(root)
    for result in before.values():
        outcome = fix_page(result, "blog.test", has_https, dry_run=False, max_bytes=10 ** 7)
        assert outcome.error is None
    after = _scan(root)
    left = {(f.page, f.host, f.written) for r in after.values() for f in r.findings}
    assert left == {("index.html", "nohttps.test", "http://nohttps.test/x.js"),
                    ("index.html", "blog.test", "&#104;ttp://blog.test/entity.png"),
                    ("css/site.css", "nohttps.test", "http://nohttps.test/i.png")}
    index = (root / "index.html").read_bytes()
    assert index == originals["index.html"].replace(b'base href="http://', b'base href="https://').replace(
        b"SRC=HTTP://BLOG.TEST/a.png", b"SRC=/a.png").replace(b"http://blog.test/b,1.png", b"/b,1.png").replace(
        b"http://cdn.ok/b.png", b"https://cdn.ok/b.png")
    assert b'href="http://blog.test/nav"' in index  # navigation is not touched
    one = (root / "post/one.htm").read_bytes()
    assert one == originals["post/one.htm"].replace(b"http://cdn.ok/", b"https://cdn.ok/").replace(
        b"http://blog.test:80/bg.png", b"/bg.png")
    run = _RUNS[str(root)]
    assert not list(root.rglob("*lehttpd*"))  # nothing left in the served folder
    outcome = undo(root.parent / "work", run.name)  # undoing the run gives the originals back, byte for byte
    assert outcome.left == () and len(outcome.restored) == 3
    for name, data in originals.items():
        assert (root / name).read_bytes() == data


def test_dry_run_changes_nothing_and_shows_a_diff(blog):
    root, originals = blog
    result = _scan(root)["index.html"]
    outcome = fix_page(result, "blog.test", None, dry_run=True, max_bytes=10 ** 7)
    assert "-<IMG SRC=HTTP://BLOG.TEST/a.png" in outcome.diff and "+<IMG SRC=/a.png" in outcome.diff
    assert (root / "index.html").read_bytes() == originals["index.html"]
    assert _RUNS[str(root)].folder is None  # no backup run made


def test_second_fix_keeps_the_first_backup(blog):
    root, originals = blog
    fix_page(_scan(root)["index.html"], "blog.test", None, False, 10 ** 7)
    first = _RUNS.pop(str(root))
    (root / "index.html").write_bytes(originals["index.html"])
    fix_page(_scan(root)["index.html"], "blog.test", None, False, 10 ** 7)
    second = _RUNS[str(root)]
    assert first.folder != second.folder
    for run in (first, second):
        assert (run.folder / "files" / "0").read_bytes() == originals["index.html"]


def test_a_file_changed_since_the_scan_is_not_rewritten_blindly(blog):
    root, originals = blog
    result = _scan(root)["index.html"]
    (root / "index.html").write_bytes(b"<p>changed</p>" + originals["index.html"])
    outcome = fix_page(result, "blog.test", None, False, 10 ** 7)
    assert outcome.rewrites == () and (root / "index.html").read_bytes().startswith(b"<p>changed</p>")


def test_plan_does_not_upgrade_unprobed_third_parties(blog):
    root, _ = blog
    findings = _scan(root)["index.html"].findings
    hosts = {e.finding.host for e in plan_edits(findings, "blog.test", None)}
    assert hosts == {"blog.test"}


class _Handler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_HEAD(self):
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_prober_caches_per_host_and_fails_without_tls():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        probe = Prober(timeout=2, trusted=frozenset({"127.0.0.1"}))  # loopback is refused unless trusted
        assert probe(f"https://127.0.0.1:{port}/a.png", "plain.test") is False  # http only: the TLS handshake fails
        assert probe(f"https://127.0.0.1:{port}/b.png", "plain.test") is False
        assert probe.cache == {"plain.test": False}
        assert _Handler.hits == 0
    finally:
        server.shutdown()
        server.server_close()
