"""`lehttpd scan` end to end on a folder: reports, exit codes, one-line errors."""
import io
import json

import pytest

from lehttpd.cli import run
from lehttpd.console import Console


def scan(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run(["scan", *argv], Console(stdout=out, stderr=err, color=False))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def site(tmp_path):
    tmp_path = tmp_path / "site"
    tmp_path.mkdir()
    (tmp_path / "index.html").write_text('<img src="http://img.test/a.png"><script src="http://js.test/x.js">'
                                         '</script><a href="http://nav.test/">x</a>')
    (tmp_path / "about.html").write_text('<img src="http://img.test/b.png">')
    (tmp_path / "clean.html").write_text('<img src="/ok.png">')
    (tmp_path / "bin.html").write_bytes(b"\x00\x01\x02")
    return tmp_path


def test_text_report_groups_by_page_and_host_and_fails_on_blockable(site):
    code, out, err = scan(str(site), "--site-url", "https://blog.test")
    assert code == 8
    assert "index.html  (2)" in out and "1:47  blockable" in out and "about.html  (1)" in out
    assert "img.test                         2 page(s), 2 upgradable" in out
    assert "4 page(s) scanned, 2 with mixed content: 1 blockable, 2 upgradable; 1 skipped" in out
    assert "lehttpd harden --uir" in out
    assert "bin.html: binary content (NUL bytes), not a page; skipped" in err
    assert "nav.test" not in out


def test_json_report_has_the_documented_schema(site):
    code, out, _ = scan(str(site), "--site-url", "https://blog.test/", "--format", "json", "-q")
    doc = json.loads(out)
    assert code == 8 and doc["schema"] == "lehttpd.scan/1"
    assert set(doc) == {"schema", "tool", "target", "site_url", "pages", "hosts", "summary", "hints"}
    pages = {p["page"]: p for p in doc["pages"]}
    assert set(pages) == {"about.html", "bin.html", "index.html"}
    assert pages["index.html"]["findings"][1] == {
        "line": 1, "column": 47, "element": "script", "attribute": "src", "url": "http://js.test/x.js",
        "resolved": "http://js.test/x.js", "class": "blockable", "host": "js.test"}
    assert pages["bin.html"]["problems"] == [{"reason": "binary content (NUL bytes), not a page", "skipped": True}]
    assert doc["summary"] == {"pages": 4, "pages_with_findings": 2, "findings": 3, "skipped": 1, "fixed": 0,
                                  "not_fixed": 0, "changed_files": [], "backup_run": None,
                              "by_class": {"blockable": 1, "upgradable": 2, "form": 0,
                                           "navigation-downgrade": 0, "insecure-base": 0, "lazy": 0}}
    assert doc["hosts"][0] == {"host": "img.test", "pages": 2, "findings": 2, "by_class": {"upgradable": 2}}


def test_sarif_report(site):
    code, out, _ = scan(str(site), "--format", "sarif")
    doc = json.loads(out)
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"mixed-content/upgradable", "mixed-content/blockable"}
    blocked = [r for r in results if r["level"] == "error"][0]
    assert blocked["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "index.html"},
                                                           "region": {"startLine": 1, "startColumn": 47}}


def test_exit_codes(site):
    (site / "index.html").unlink()
    assert scan(str(site))[0] == 0  # upgradable only
    assert scan(str(site), "--fail-on", "upgradable")[0] == 8
    assert scan(str(site / "clean.html"), "--fail-on", "upgradable")[0] == 0


def test_fix_through_the_cli_reports_what_is_left(site):
    (site / "own.html").write_text('<script src="http://blog.test/app.js"></script>')
    code, out, _ = scan(str(site), "--site-url", "https://blog.test/", "--fix", "--work-dir", str(site.parent / "w"))
    assert (site / "own.html").read_text() == '<script src="/app.js"></script>'
    assert [p.name for p in (site.parent / "w/scan/runs").iterdir()][0] in out
    assert "fixed 1 reference(s); 3 left" in out and code == 8


@pytest.mark.parametrize("argv,message", [
    ([], "scan needs a folder"),
    (["/no/such/dir"], "/no/such/dir: no such file or folder"),
    (["{site}", "--crawl"], "--crawl needs a URL"),
    (["https://blog.test/", "--fix"], "--fix rewrites files"),
    (["{site}", "--dry-run"], "--dry-run and --probe go with --fix"),
    (["{site}", "--site-url", "ftp://x"], "is not an http(s) URL"),
    (["{site}", "--fail-on", "bogus"], "--fail-on: unknown class 'bogus'"),
    (["{site}", "--max-pages", "0"], "--max-pages must be positive"),
])
def test_bad_input_is_one_line_and_exit_2(site, argv, message):
    code, out, err = scan(*[a.replace("{site}", str(site)) for a in argv])
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("lehttpd: error: ")


def test_vhost_scans_the_document_root_of_the_apache_vhost(site, monkeypatch):
    from lehttpd.apache import discover, vhosts

    class FakeVhost:
        document_root = str(site)

        def serves(self, name):
            return name == "blog.test"

    monkeypatch.setattr(discover, "discover", lambda *a, **k: object())
    monkeypatch.setattr(vhosts, "read_vhosts", lambda info, *a, **k: ([FakeVhost()], {}, []))
    code, out, _ = scan("--vhost", "blog.test", "--format", "json")
    doc = json.loads(out)
    assert code == 8 and doc["target"] == str(site) and doc["site_url"] == "https://blog.test/"
    code, _, err = scan("--vhost", "other.test")
    assert code == 2 and "no Apache vhost with a DocumentRoot serves other.test" in err


def test_lazy_findings_are_shown_and_counted_fail_only_with_fail_on_lazy_and_are_fixed_like_src(tmp_path):
    site = tmp_path / "lazy-site"
    site.mkdir()
    (site / "p.html").write_text('<img src="/ph.gif" data-src="http://blog.test/photo.jpg">')
    code, out, _ = scan(str(site), "--site-url", "https://blog.test/")
    assert code == 0 and "lazy" in out and "1 page(s) scanned, 1 with mixed content: 1 lazy" in out
    assert scan(str(site), "--site-url", "https://blog.test/", "--fail-on", "lazy")[0] == 8
    code, out, _ = scan(str(site), "--site-url", "https://blog.test/", "--fix", "--fail-on", "lazy",
                        "--work-dir", str(tmp_path / "work"))
    assert code == 0 and (site / "p.html").read_text() == '<img src="/ph.gif" data-src="/photo.jpg">'
