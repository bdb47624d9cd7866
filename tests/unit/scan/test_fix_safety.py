"""`scan --fix` on a real server's tree does no harm: originals kept outside every served folder (0700, a
manifest, `--undo`), owner/group/mode kept, nothing written outside the scanned folder (symlinked folders,
symlinked pages, hard links), file names that are not UTF-8, and a failure halfway through still reported."""
import io
import json
import os
import stat

import pytest

from lehttpd.cli import run
from lehttpd.console import Console

OWN = b'<script src="http://blog.test/app.js"></script>'
FIXED = b'<script src="/app.js"></script>'


def scan(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run(["scan", *argv], Console(stdout=out, stderr=err, color=False))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def tree(tmp_path):
    root, outside, work = tmp_path / "www", tmp_path / "outside", tmp_path / "work"
    root.mkdir()
    outside.mkdir()
    return root, outside, work


def fix(root, work, *more):
    return scan(str(root), "--site-url", "https://blog.test/", "--fix", "--work-dir", str(work), *more)


def test_backups_go_to_a_private_run_folder_outside_the_site_and_undo_restores_byte_for_byte(tree):
    root, _, work = tree
    (root / "page.php").write_bytes(b"<?php $db_password = 's3cret'; ?>\r\n" + OWN + b"\xff")
    (root / "b.html").write_bytes(OWN)
    code, out, _ = fix(root, work)
    assert (root / "page.php").read_bytes().endswith(FIXED + b"\xff")
    assert sorted(p.name for p in root.iterdir()) == ["b.html", "page.php"]  # no backup in the served tree
    runs = list((work / "scan" / "runs").iterdir())
    assert len(runs) == 1
    folder = runs[0]
    for path in (work, work / "scan", work / "scan" / "runs", folder, folder / "files"):
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (folder / "files").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {e["path"] for e in manifest["files"]} == {str(root / "b.html"), str(root / "page.php")}
    assert f"undo with: lehttpd scan --undo {folder.name}" in out and f"changed: {root / 'page.php'}" in out

    code, out, _ = scan("--undo", "--work-dir", str(work))  # lists the runs
    assert code == 0 and folder.name in out and "2 file(s)" in out
    code, out, _ = scan("--undo", folder.name, "--work-dir", str(work))
    assert code == 0 and f"restored run {folder.name}: 2 file(s)" in out
    assert (root / "page.php").read_bytes() == b"<?php $db_password = 's3cret'; ?>\r\n" + OWN + b"\xff"
    assert (root / "b.html").read_bytes() == OWN


def test_undo_leaves_a_file_changed_since_the_fix_and_says_so(tree):
    root, _, work = tree
    (root / "a.html").write_bytes(OWN)
    fix(root, work)
    (root / "a.html").write_bytes(b"edited by hand")
    name = next((work / "scan" / "runs").iterdir()).name
    code, _, err = scan("--undo", name, "--work-dir", str(work))
    assert code == 7 and "a.html: not restored: changed since --fix" in err
    assert (root / "a.html").read_bytes() == b"edited by hand"
    code, _, err = scan("--undo", "../etc", "--work-dir", str(work))
    assert code != 0 and "no scan --fix run '../etc'" in err


def test_a_work_dir_inside_the_served_folder_is_refused(tree):
    root, _, _ = tree
    (root / "a.html").write_bytes(OWN)
    code, _, err = fix(root, root / "backups")
    assert code == 2 and "a served folder: the backups would be served" in err and (root / "a.html").read_bytes() == OWN


def test_with_vhost_a_work_dir_in_any_document_root_apache_serves_is_refused(tree, monkeypatch):
    from lehttpd.apache import discover, vhosts

    root, outside, _ = tree
    (root / "a.html").write_bytes(OWN)

    class Vhost:
        def __init__(self, docroot, names):
            self.document_root, self.names = str(docroot), names

        def serves(self, name):
            return name in self.names

    monkeypatch.setattr(discover, "discover", lambda *a, **k: object())
    monkeypatch.setattr(vhosts, "read_vhosts", lambda info, *a, **k: (
        [Vhost(root, ("blog.test",)), Vhost(outside, ("other.test",))], {}, []))
    code, _, err = scan("--vhost", "blog.test", "--fix", "--work-dir", str(outside / "lehttpd"))
    assert code == 2 and f"is inside {outside}, a served folder" in err and (root / "a.html").read_bytes() == OWN


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_owner_group_and_mode_are_kept(tree):
    root, _, work = tree
    page = root / "a.html"
    page.write_bytes(OWN)
    os.chown(page, 33, 33)
    os.chmod(page, 0o640)
    fix(root, work)
    info = os.lstat(page)
    assert page.read_bytes() == FIXED
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (33, 33, 0o640)
    name = next((work / "scan" / "runs").iterdir()).name
    os.chown(page, 0, 0)
    scan("--undo", name, "--work-dir", str(work))
    info = os.lstat(page)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (33, 33, 0o640) and page.read_bytes() == OWN


def test_nothing_outside_the_scanned_folder_is_written_and_each_skip_is_reported(tree):
    root, outside, work = tree
    (outside / "linked.html").write_bytes(OWN)
    (outside / "target.html").write_bytes(OWN)
    (outside / "hardlink.html").write_bytes(OWN)
    os.symlink(outside, root / "linked-dir")                       # a symlinked folder to outside
    os.symlink(outside / "target.html", root / "out-link.html")    # a symlinked page to outside
    os.link(outside / "hardlink.html", root / "hardlink.html")     # a hard link to a file outside
    code, out, err = fix(root, work, "--format", "json")
    for name in ("linked.html", "target.html", "hardlink.html"):
        assert (outside / name).read_bytes() == OWN
    assert (root / "hardlink.html").read_bytes() == OWN
    assert sorted(os.listdir(outside)) == ["hardlink.html", "linked.html", "target.html"]  # no backup there
    doc = json.loads(out)
    reasons = {p["page"]: p["problems"][0]["reason"] for p in doc["pages"]}
    assert "reached through a symlinked folder" in reasons["linked-dir/linked.html"]
    assert "a symlink to" in reasons["out-link.html"] and "outside the scanned folder" in reasons["out-link.html"]
    assert "hard-linked (2 names)" in reasons["hardlink.html"]
    for name in ("target.html", "hardlink.html"):  # every page reached through the linked folder
        assert "symlinked folder" in reasons[f"linked-dir/{name}"]
    assert doc["summary"]["not_fixed"] == 5 and doc["summary"]["changed_files"] == []


def test_a_symlinked_page_inside_stays_a_link_and_hard_links_all_inside_are_fixed(tree):
    root, _, work = tree
    (root / "real.html").write_bytes(OWN)
    os.symlink("real.html", root / "alias.html")
    (root / "one.html").write_bytes(OWN)
    os.link(root / "one.html", root / "two.html")
    code, out, _ = fix(root, work)
    assert os.path.islink(root / "alias.html") and os.readlink(root / "alias.html") == "real.html"
    assert (root / "real.html").read_bytes() == FIXED
    assert (root / "one.html").read_bytes() == FIXED and (root / "two.html").read_bytes() == FIXED


def test_file_names_that_are_not_utf8_work_in_text_json_and_sarif(tree):
    root, _, work = tree
    name = os.fsdecode(b"zz_caf\xe9.html")
    with open(os.path.join(os.fsencode(root), b"zz_caf\xe9.html"), "wb") as handle:
        handle.write(OWN)
    code, out, _ = scan(str(root), "--site-url", "https://blog.test/")
    assert code == 8 and "zz_caf\\xe9.html  (1)" in out
    code, out, _ = scan(str(root), "--site-url", "https://blog.test/", "--format", "json")
    page = json.loads(out)["pages"][0]
    assert page["page"] == "zz_caf\\xe9.html" and page["url"] == "https://blog.test/zz_caf%E9.html"
    code, out, _ = scan(str(root), "--site-url", "https://blog.test/", "--format", "sarif")
    location = json.loads(out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "zz_caf%E9.html"
    code, out, _ = fix(root, work, "--format", "json")
    doc = json.loads(out)
    assert doc["summary"]["changed_files"] == [str(root) + "/zz_caf\\xe9.html"]
    assert open(os.path.join(os.fsencode(root), b"zz_caf\xe9.html"), "rb").read() == FIXED
    assert scan("--undo", doc["summary"]["backup_run"], "--work-dir", str(work))[0] == 0
    assert open(os.path.join(str(root), name), "rb").read() == OWN


def test_a_failure_halfway_through_fix_still_reports_and_names_the_files_changed(tree, monkeypatch):
    from lehttpd.scan import fix as fix_module

    root, _, work = tree
    for name in ("a.html", "b.html", "c.html"):
        (root / name).write_bytes(OWN)
    real_write, calls = fix_module.atomic_write, []

    def failing_write(path, data, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(path, data, *args, **kwargs)

    monkeypatch.setattr(fix_module, "atomic_write", failing_write)
    code, out, err = fix(root, work, "--format", "json")
    assert code == 5 and "lehttpd: error: b.html: cannot write: No space left on device; stopped" in err
    doc = json.loads(out)  # the document is complete
    assert doc["summary"]["changed_files"] == [str(root / "a.html")]
    assert "the scan stopped early" in doc["hints"][0]
    assert f"changed: {root / 'a.html'}" in err and "No space left on device" in err
    assert (root / "b.html").read_bytes() == OWN and (root / "c.html").read_bytes() == OWN
    assert scan("--undo", doc["summary"]["backup_run"], "--work-dir", str(work))[0] == 0
    assert (root / "a.html").read_bytes() == OWN


def test_dry_run_diff_of_bytes_no_encoding_knows_is_printed_escaped(tree):
    root, _, work = tree
    (root / "a.html").write_bytes(b'<meta charset="windows-1252"><p>\x81\x8d</p>' + OWN)
    code, out, _ = fix(root, work, "--dry-run")
    assert "-<meta charset=\"windows-1252\"><p>\\x81\\x8d</p><script src=\"http://blog.test/app.js\">" in out
    assert '+<meta charset="windows-1252"><p>\\x81\\x8d</p><script src="/app.js">' in out
    assert not work.exists()  # a dry run keeps nothing


def test_undo_takes_no_target_and_one_fix_at_a_time(tree):
    from lehttpd.fileio import file_lock

    root, _, work = tree
    (root / "a.html").write_bytes(OWN)
    code, _, err = scan(str(root), "--undo", "--work-dir", str(work))
    assert code == 2 and "--undo takes a run name only" in err
    with file_lock(work / "scan" / "fix.lock", 0, "test"):
        code, _, err = fix(root, work)
    assert code != 0 and "locked by another lehttpd process" in err and (root / "a.html").read_bytes() == OWN


def test_a_file_reached_twice_in_one_run_keeps_its_first_original(tree, tmp_path):
    from lehttpd.scan.backup import BackupRun

    root, _, work = tree
    page = root / "a.html"
    page.write_bytes(OWN)
    run = BackupRun(work, str(root), "test")
    first = run.keep(str(page), OWN)
    run.written(first, FIXED)
    again = run.keep(str(page), FIXED)
    assert again is first and len(run.entries) == 1
    assert (run.folder / "files" / "0").read_bytes() == OWN


def test_probe_asks_only_public_addresses_pinned_and_never_follows_a_redirect(tmp_path):
    """--probe makes the server connect to hosts named in its pages: never to loopback, private or metadata
    addresses, once per host, to the address it checked, and a redirect is an answer, not a hop."""
    import http.server
    import socket
    import ssl
    import threading

    from lehttpd.sandbox.tls import throwaway_ca_and_leaf
    from lehttpd.scan.fix import Prober

    listener = socket.create_server(("127.0.0.1", 0))  # counts connection attempts
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    try:
        probe = Prober(timeout=1, resolver=lambda host, _port: {"intranet.test": ["10.1.2.3"],
                                                                 "meta.test": ["169.254.169.254"],
                                                                 "loop.test": ["127.0.0.1"]}[host])
        for host in ("loop.test", "127.0.0.1", "intranet.test", "meta.test"):
            assert probe(f"https://{host}:{port}/a.png", host) is False
        with pytest.raises(socket.timeout):
            listener.accept()  # nobody came
    finally:
        listener.close()

    pair = throwaway_ca_and_leaf(("cdn.test",))
    (tmp_path / "ca.pem").write_bytes(pair.ca_pem)
    (tmp_path / "leaf.pem").write_bytes(pair.leaf_pem + pair.key_pem)
    seen = []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            seen.append((self.command, self.path, self.headers["Host"]))
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tls_port = server.server_address[1]
        lookups = []
        probe = Prober(timeout=2, verify=str(tmp_path / "ca.pem"), trusted=frozenset({"127.0.0.1"}),
                       resolver=lambda host, _port: lookups.append(host) or ["127.0.0.1"])
        assert probe(f"https://cdn.test:{tls_port}/img/a.png?x=1", "cdn.test") is True  # TLS checked for the name
        assert seen == [("HEAD", "/img/a.png?x=1", f"cdn.test:{tls_port}")] and lookups == ["cdn.test"]
        assert probe(f"https://other.test:{tls_port}/", "other.test") is False  # the certificate is not for it
    finally:
        server.shutdown()
        server.server_close()
