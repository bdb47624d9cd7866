"""Concurrency and failure on a real private Apache: overlapping commands, owners kept, no checkpoint for a change
that never happened, rollback --list / --dry-run and what a rollback says."""
from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, make_lineage  # noqa: E402
from test_apache_instance import lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


@pytest.fixture
def inst(tmp_path):
    server = make_instance(tmp_path / "srv")
    docroot = server.docroot("pair")
    docroot.mkdir(parents=True)
    server.add_site("pair", text="".join(
        f"<VirtualHost 127.0.0.1:{server.http_port}>\n    ServerName {name}\n    DocumentRoot {docroot}\n"
        "</VirtualHost>\n" for name in ("one.test", "two.test")))
    server.start()
    yield server
    server.stop()


def command(inst, work, *args) -> list[str]:
    return [sys.executable, "-m", "lehttpd", *args, "--apache-ctl", str(inst.ctl), "--https-port",
            str(inst.https_port), "--work-dir", str(work)]


def test_two_overlapping_commands_on_one_file_never_lose_an_edit(inst, tmp_path):
    site = inst.confdir / "sites-available" / "pair.conf"
    original = site.read_bytes()
    for round_ in range(4):
        work = tmp_path / f"work{round_}"
        procs = {name: subprocess.Popen(command(inst, work, "redirect", "-d", name, "--force"), text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for name in ("one.test", "two.test")}
        results = {name: (proc.wait(120), *proc.communicate()) for name, proc in procs.items()}
        text = site.read_text()
        blocks = dict(zip(("one.test", "two.test"), text.split("</VirtualHost>")[:2]))
        for name, (code, out, err) in results.items():
            if code == 0:
                assert "lehttpd redirect" in blocks[name], f"{name} exited 0 but its edit is lost:\n{text}"
            else:
                assert code in (5, 6) and ("another lehttpd" in err or "changed since lehttpd read it" in err), err
                assert "lehttpd redirect" not in blocks[name]
        subprocess.run(command(inst, work, "rollback", "--checkpoints", "2"), capture_output=True, timeout=120)
        site.write_bytes(original)


def test_rollback_and_the_automatic_restore_keep_owner_and_group(inst, tmp_path):
    ports = inst.confdir / "ports.conf"
    nobody, www = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("www-data").gr_gid
    os.chown(ports, nobody, www)
    broken = make_lineage(tmp_path / "bad", "one.test", ("one.test",))
    broken.fullchain_path.resolve().write_bytes(b"")  # Apache's config test refuses it (a missing link is repaired)
    failed = lehttpd(inst, "install", "--cert-name", "one.test", "--config-dir", str(broken.config_dir),
                     work=tmp_path / "work")
    assert failed.returncode == 6
    assert (os.stat(ports).st_uid, os.stat(ports).st_gid) == (nobody, www)
    lineage = make_lineage(tmp_path / "le", "one.test", ("one.test",))
    done = lehttpd(inst, "install", "--cert-name", "one.test", "--config-dir", str(lineage.config_dir),
                   work=tmp_path / "work")
    assert done.returncode == 0, done.stderr
    assert "Listen" in ports.read_text() and (os.stat(ports).st_uid, os.stat(ports).st_gid) == (nobody, www)
    back = lehttpd(inst, "rollback", work=tmp_path / "work")
    assert back.returncode == 0, back.stderr
    assert "Listen 127.0.0.1:" + str(inst.https_port) not in ports.read_text()
    assert (os.stat(ports).st_uid, os.stat(ports).st_gid) == (nobody, www)


def test_a_failed_apply_leaves_no_checkpoint_and_rollback_undoes_the_real_last_change(inst, tmp_path):
    site = inst.confdir / "sites-available" / "pair.conf"
    original = site.read_bytes()
    work = tmp_path / "work"
    assert lehttpd(inst, "redirect", "-d", "one.test", "--force", work=work).returncode == 0
    lineage = make_lineage(tmp_path / "le", "two.test", ("two.test",))
    subprocess.run(["chattr", "+i", str(inst.confdir)], check=True)  # a read-only folder, even for root
    try:
        failed = lehttpd(inst, "install", "--cert-name", "two.test", "--config-dir", str(lineage.config_dir),
                         work=work)
    finally:
        subprocess.run(["chattr", "-i", str(inst.confdir)], check=True)
    assert failed.returncode == 6 and "rolled back" in failed.stderr, failed.stdout + failed.stderr
    listed = lehttpd(inst, "rollback", "--list", work=work)
    assert listed.returncode == 0 and "1 checkpoint(s)" in listed.stdout and "redirect one.test" in listed.stdout
    assert "install" not in listed.stdout
    dry = lehttpd(inst, "rollback", "--dry-run", work=work)
    assert dry.returncode == 0 and "-    # BEGIN lehttpd redirect" in dry.stdout
    assert dry.stdout.rstrip().endswith("--dry-run: nothing written") and site.read_bytes() != original
    back = lehttpd(inst, "rollback", work=work)
    assert back.returncode == 0, back.stderr
    assert "undoing 'redirect one.test'" in back.stdout and f"restored {site}" in back.stdout
    assert "Apache config test passed" in back.stdout and "Apache reloaded gracefully" in back.stdout
    assert site.read_bytes() == original


def test_every_dry_run_ends_with_nothing_written(inst, tmp_path):
    lineage = make_lineage(tmp_path / "le", "one.test", ("one.test",))
    for args in (("install", "--cert-name", "one.test", "--config-dir", str(lineage.config_dir), "--redirect"),
                 ("redirect", "-d", "one.test", "--force"), ("harden",)):
        result = lehttpd(inst, *args, "--dry-run", work=tmp_path / "work")
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith("--dry-run: nothing written")
