"""Workers scan chunks of pages and send back plain tuples: the results must be the serial ones, in order."""
from lehttpd.scan import engine
from lehttpd.scan.pages import ScanOptions, scan_file, walk

IMG = b'<img src="http://h.test/a.png">'


def test_many_chunks_and_windows_keep_order_and_findings(tmp_path, monkeypatch):
    for n in range(130):
        (tmp_path / f"p{n:03d}.html").write_bytes(b"<p>x</p>\n" * n + IMG * (n % 4))
    (tmp_path / "bad.html").write_bytes(b"\x00binary")
    (tmp_path / "s.css").write_bytes(b"a{background:url(http://c.test/a.png)}")
    items = list(walk(str(tmp_path)))
    monkeypatch.setattr(engine, "CHUNK", 3)   # 44 chunks over several windows of 2 workers
    monkeypatch.setattr(engine, "WINDOW", 2)
    options = ScanOptions(site_url="https://blog.test/", jobs=2)
    parallel = list(engine.scan_files(items, options))
    serial = [scan_file(path, relative, options) for path, relative in items]
    assert parallel == serial
    assert [p.reason for r in parallel for p in r.problems] == ["binary content (NUL bytes), not a page"]
    assert sum(len(r.findings) for r in parallel) == sum(n % 4 for n in range(130)) + 1
