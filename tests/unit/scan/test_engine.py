"""Workers scan chunks of pages and send back plain tuples: the results must be the serial ones, in order."""
import multiprocessing
import os

import pytest

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


def _pages(tmp_path, count=100):
    for n in range(count):
        (tmp_path / f"p{n:03d}.html").write_bytes(b"<p>x</p>" * n + IMG)
    return list(walk(str(tmp_path)))


def test_a_worker_that_dies_has_its_chunks_scanned_by_the_parent(tmp_path, monkeypatch):
    items = _pages(tmp_path)
    serve = engine._serve

    def dying(conn, options):  # the first worker to get chunk 2 dies without answering
        real_recv = conn.recv

        def recv():
            task = real_recv()
            if task is not None and task[0] == 2:
                os._exit(1)
            return task
        conn.recv = recv
        serve(conn, options)

    lost = []
    real_lost = engine._Workers._lost
    monkeypatch.setattr(engine._Workers, "_lost", lambda self, conn: lost.append(real_lost(self, conn)))
    monkeypatch.setattr(engine, "CHUNK", 4)
    monkeypatch.setattr(engine, "_serve", dying)
    options = ScanOptions(jobs=2)
    assert list(engine.scan_files(items, options)) == [scan_file(p, r, options) for p, r in items]
    assert len(lost) == 1


def test_an_unexpected_error_in_a_worker_is_raised_in_the_parent(tmp_path, monkeypatch):
    items = _pages(tmp_path)
    real = engine.scan_packed

    def broken(path, relative, options):
        if relative == "p050.html":
            raise ValueError("boom")
        return real(path, relative, options)

    monkeypatch.setattr(engine, "scan_packed", broken)
    with pytest.raises(RuntimeError, match="p032.*ValueError"):
        list(engine.scan_files(items, ScanOptions(jobs=2)))


def test_a_reader_that_stops_early_leaves_no_worker_behind(tmp_path):
    items = _pages(tmp_path)
    results = engine.scan_files(items, ScanOptions(jobs=2))
    first = [next(results) for _ in range(3)]
    assert [r.page for r in first] == ["p000.html", "p001.html", "p002.html"]
    results.close()
    assert not multiprocessing.active_children()


def test_findings_built_from_rows_are_ordinary_findings():
    from lehttpd.scan.model import Finding, findings_of

    rows = [(1, 2, "img", "src", "http://h.test/a", "http://h.test/a", "upgradable", "h.test", 10, 25),
            (3, 4, "script", "src", "HTTP://H.TEST/b", "http://H.TEST/b", "blockable", "h.test", 40, 55)]
    made = findings_of("p.html", rows)
    assert made == tuple(Finding("p.html", *row) for row in rows)
    assert [hash(f) for f in made] == [hash(Finding("p.html", *row)) for row in rows]
    with pytest.raises(AttributeError):
        made[0].line = 5  # still frozen


def test_the_input_is_read_as_the_scan_goes_and_problems_keep_their_place(tmp_path, monkeypatch):
    from lehttpd.scan.model import Problem

    items = _pages(tmp_path, 300)
    mixed = [Problem("loop-a", "symlink loop")] * 70 + items[:150] + [Problem("loop-b", "symlink loop")] + items[150:] \
        + [Problem("loop-c", "symlink loop")] * 3
    consumed = []

    def feed():
        for item in mixed:
            consumed.append(item)
            yield item

    monkeypatch.setattr(engine, "CHUNK", 4)
    monkeypatch.setattr(engine, "WINDOW", 2)
    options = ScanOptions(jobs=2)
    results = engine.scan_files(feed(), options)
    first = next(results)
    assert first.page == "loop-a" and len(consumed) < 200  # not the whole input before the first result
    pages = [first.page] + [r.page for r in results]
    assert pages == [item.page if isinstance(item, Problem) else item[1] for item in mixed]
