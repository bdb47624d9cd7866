"""`scan --fix` and `--crawl` against a real private Apache (Debian apache2 on a high loopback port):
after --fix nothing new is served from the document root (the originals are under the work dir), the pages
keep their owner and mode, Apache serves the fixed pages, and --undo puts the originals back; the crawler
follows Apache's own redirects hop by hop."""
import http.client
import json
import os
import stat

import pytest

from lehttpd.sandbox.apache import apache_available, make_instance
from tests.conftest import run_lehttpd

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")

PHP = b"<?php $db_password = 's3cret'; ?>\n<script src=\"http://fixme.test/app.js\"></script>\n"


def get(port, path, host="fixme.test"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def apache(tmp_path):
    inst = make_instance(tmp_path / "apache")
    inst.add_site("fixme.test")
    docroot = inst.docroot("fixme.test")
    (docroot / "page.php").write_bytes(PHP)
    (docroot / "index.html").write_text('<img data-src="http://fixme.test/lazy.png"><a href="/old-page">old</a>')
    (docroot / "new-page").mkdir()  # /old-page → 302 /new-page → 301 /new-page/ (mod_dir) → its index.html
    (docroot / "new-page" / "index.html").write_text('<script src="http://cdn.example.test/moved.js"></script>')
    for page in ("page.php", "index.html"):
        os.chown(docroot / page, 33, 33)  # www-data, as a CMS leaves them
        os.chmod(docroot / page, 0o640)
    inst.start()
    try:
        yield inst, docroot
    finally:
        inst.stop()


def test_fix_serves_no_backup_keeps_owners_and_undo_restores(apache, tmp_path):
    inst, docroot = apache
    work = tmp_path / "work"
    before = sorted(os.listdir(docroot))
    result = run_lehttpd("scan", "--vhost", "fixme.test", "--apache-ctl", str(inst.ctl), "--fix",
                         "--work-dir", str(work), "--format", "json", "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert sorted(summary["changed_files"]) == [str(docroot / "index.html"), str(docroot / "page.php")]
    assert sorted(os.listdir(docroot)) == before  # nothing new in the served tree
    for name in ("page.php.lehttpd-bak", "page.php~", "index.html.lehttpd-bak"):
        assert get(inst.http_port, "/" + name)[0] == 404
    assert get(inst.http_port, "/index.html") == (200, b'<img data-src="/lazy.png"><a href="/old-page">old</a>')
    for page in ("page.php", "index.html"):
        info = os.stat(docroot / page)
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (33, 33, 0o640)
    run_folder = work / "scan" / "runs" / summary["backup_run"]
    assert stat.S_IMODE(os.stat(run_folder).st_mode) == 0o700

    undone = run_lehttpd("scan", "--undo", summary["backup_run"], "--work-dir", str(work))
    assert undone.returncode == 0 and "restored run" in undone.stdout
    assert (docroot / "page.php").read_bytes() == PHP
    assert get(inst.http_port, "/page.php")[1] == PHP


def test_crawl_follows_apaches_redirects_one_checked_hop_at_a_time(apache):
    inst, _ = apache
    result = run_lehttpd("scan", f"http://127.0.0.1:{inst.http_port}/", "--crawl", "--format", "json",
                         "--fail-on", "none", "--timeout", "5")
    assert result.returncode == 0, result.stderr
    pages = {p["page"].rsplit("/", 1)[1]: p for p in json.loads(result.stdout)["pages"]}
    assert [f["class"] for f in pages[""]["findings"]] == ["lazy"]
    assert [f["host"] for f in pages["old-page"]["findings"]] == ["cdn.example.test"]  # two redirects
