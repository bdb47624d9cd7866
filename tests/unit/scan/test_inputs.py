"""Encodings and bad input: each is reported, skipped when it cannot be read, and the scan goes on."""
import os
import time

import pytest

from lehttpd.scan import source
from lehttpd.scan.engine import scan_files
from lehttpd.scan.model import Problem
from lehttpd.scan.pages import ScanOptions, scan_bytes, walk

URL = "https://blog.test/p.html"
IMG = b'<img src="http://h.test/a.png">'


def scan(data: bytes, declared=None):
    return scan_bytes(data, URL, "p.html", False, declared)


def test_declared_windows_1252_counts_columns_in_characters():
    page = b'<meta charset="windows-1252"><p>caf\xe9 \x93quoted\x94</p>' + IMG
    result = scan(page)
    assert result.encoding == "cp1252" and not result.problems
    (f,) = result.findings
    assert (f.line, f.column) == (1, 60) and f.written == "http://h.test/a.png"


def test_shift_jis_and_utf16_bom_and_http_header_charset():
    sjis = '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"><p>日本語</p>'.encode("shift_jis")
    assert [f.written for f in scan(sjis + IMG).findings] == ["http://h.test/a.png"]
    utf16 = "\ufeff<p>é</p><img src='http://h.test/u.png'>".encode("utf-16-le")
    assert [f.written for f in scan(utf16).findings] == ["http://h.test/u.png"]
    latin = "<p>é</p>".encode("latin-1") + IMG
    assert scan(latin, declared="iso-8859-1").encoding == "cp1252"


def test_invalid_utf8_is_reported_and_still_scanned():
    result = scan(b'<meta charset=utf-8><p>\xff\xfe bad</p>' + IMG)
    assert [p.reason for p in result.problems] == ["invalid UTF-8 at byte 23: those bytes read as replacement characters"]
    assert not result.problems[0].skipped and len(result.findings) == 1


def test_undeclared_non_utf8_falls_back_to_windows_1252_like_browsers():
    result = scan(b"<p>caf\xe9</p>" + IMG)
    assert result.encoding == "cp1252" and "windows-1252" in result.problems[0].reason
    assert len(result.findings) == 1


def test_round_trip_is_byte_exact_for_fixing():
    for data in (b"<p>\xff\x81\x8d</p>", "<p>日本</p>".encode("shift_jis"), b"\xef\xbb\xbf<p>x</p>"):
        text, encoding, _ = source.decode_page(data)
        assert source.encode_page(text, encoding) == data


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "good.html").write_bytes(IMG)
    (tmp_path / "binary.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2000))
    with open(tmp_path / "huge.html", "wb") as handle:  # 50 MB, sparse: the size alone refuses it
        handle.truncate(50 * 1024 * 1024)
    (tmp_path / "dangling.html").symlink_to(tmp_path / "missing.html")
    os.mkfifo(tmp_path / "fifo.html")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "loop").symlink_to(tmp_path)  # a symlink loop back to the root
    (sub / "deep.html").write_bytes(b"<div>" * 200_000 + IMG + b"</div>" * 200_000)
    (sub / "z.html").write_bytes(IMG)
    return tmp_path


def test_bad_files_are_reported_and_skipped_and_the_scan_goes_on(tree):
    started = time.monotonic()
    results = list(scan_files(walk(str(tree)), ScanOptions(site_url="https://blog.test/", jobs=1)))
    assert time.monotonic() - started < 20
    problems = {p.page: p.reason for r in results for p in r.problems}
    assert problems["binary.html"] == "binary content (NUL bytes), not a page"
    assert problems["huge.html"].startswith("50 MB, over the 10 MB limit")
    assert problems["dangling.html"].startswith("unreadable: No such file")
    assert problems["fifo.html"] == "not a regular file"
    assert problems[os.path.join("sub", "loop")] == "symlink loop: directory already scanned"
    found = sorted(r.page for r in results if r.findings)
    assert found == ["good.html", os.path.join("sub", "deep.html"), os.path.join("sub", "z.html")]


def test_unreadable_file(tree, monkeypatch):
    def refuse(path, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(source, "open", refuse, raising=False)
    result = list(scan_files([(str(tree / "good.html"), "good.html")], ScanOptions(jobs=1)))[0]
    assert result.problems == (Problem("good.html", "unreadable: Permission denied"),)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file anyway")
def test_unreadable_file_by_mode(tree):
    (tree / "good.html").chmod(0)
    result = list(scan_files([(str(tree / "good.html"), "good.html")], ScanOptions(jobs=1)))[0]
    assert result.problems[0].reason.startswith("unreadable")


def test_parallel_scan_matches_serial_and_keeps_order(tmp_path):
    for n in range(150):
        (tmp_path / f"p{n:03d}.html").write_bytes(b"<p>x</p>" * n + IMG * (n % 3))
    items = list(walk(str(tmp_path)))
    serial = list(scan_files(items, ScanOptions(jobs=1)))
    parallel = list(scan_files(items, ScanOptions(jobs=2)))
    assert [r.page for r in parallel] == [r.page for r in serial] == sorted(r.page for r in serial)
    assert [r.findings for r in parallel] == [r.findings for r in serial]
    assert sum(len(r.findings) for r in serial) == 150


def test_a_page_that_grows_or_shrinks_after_stat_is_read_whole_or_refused(tmp_path, monkeypatch):
    page = tmp_path / "p.html"
    page.write_bytes(b"<p>x</p>" * 1000)
    real_stat = os.stat

    class Stat:  # what stat said a moment before the file changed
        def __init__(self, size):
            self.st_mode, self.st_size = real_stat(page).st_mode, size

    for size in (100, 20000):
        monkeypatch.setattr(source.os, "stat", lambda path, size=size: Stat(size))
        assert source.read_page(str(page)) == b"<p>x</p>" * 1000
    monkeypatch.setattr(source.os, "stat", lambda path: Stat(100))
    with pytest.raises(source.BadInput, match="grew over"):
        source.read_page(str(page), max_bytes=4000)
