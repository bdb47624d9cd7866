"""The store as the one owner of the config dir: planted symlinks, crash points, key/cert pairs, delete, ENOSPC."""
import errno
import io
import os
import stat
import subprocess

import pytest

from lehttpd import fileio
from lehttpd.cli import run
from lehttpd.console import Console
from lehttpd.errors import DiskFullError, StorageError, UntrustedFileError
from lehttpd.model import IssueRequest
from lehttpd.renew.lineages import Candidate, Unreadable, discover
from lehttpd.renewal_conf import render
from lehttpd.store import CertStore, check_folder_chain
from tests.unit.test_store import self_signed


def conf_text(store, name):
    return render(IssueRequest(names=(name,), server="https://ca.invalid/dir"), "acct1", store.config_dir)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def store(tmp_path):
    return CertStore(tmp_path / "le")


# -- 3. a planted symlink is never followed when writing -----------------------------------------------------
@pytest.mark.parametrize("area", ["archive", "live"])
def test_a_symlinked_lineage_folder_is_refused_and_its_target_untouched(store, tmp_path, area):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    os.chmod(victim, 0o755)
    store.ensure(area)
    (store.config_dir / area / "site").symlink_to(victim)
    with pytest.raises(StorageError, match="symlink"):
        with store.lock("site"):
            store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    assert mode(victim) == 0o755 and list(victim.iterdir()) == [], "no chmod, no key written through the link"


def test_a_planted_lineage_lock_symlink_is_refused_and_its_target_untouched(store, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    store.ensure(".locks")
    store.lock_path("site").symlink_to(victim)
    with pytest.raises(StorageError, match="symlink"):
        with store.lock("site"):
            pass
    assert victim.read_bytes() == b"precious"


def test_a_live_link_leading_outside_its_archive_is_refused(store, tmp_path):
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    outside = tmp_path / "elsewhere.pem"
    outside.write_bytes(self_signed(["evil.example"]).cert_pem)
    for target in (str(outside), "../../archive/other/cert1.pem", "/dev/zero"):
        link = store.live_dir("site") / "cert.pem"
        link.unlink()
        link.symlink_to(target)
        with pytest.raises(StorageError, match="outside"):
            store.current("site")


def test_a_config_dir_others_can_write_is_refused_with_the_fix(tmp_path):
    config = tmp_path / "le"
    CertStore(config).ensure("renewal")
    os.chmod(config, 0o777)
    with pytest.raises(UntrustedFileError, match=f"chmod go-w {config}"):
        check_folder_chain(config)
    os.chmod(config, 0o755)
    check_folder_chain(config)


def test_renew_refuses_a_config_dir_others_can_write_in_one_line(store):
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    os.chmod(store.config_dir, 0o775)
    err = io.StringIO()
    assert run(["renew", "--config-dir", str(store.config_dir)], Console(stdout=io.StringIO(), stderr=err)) == 5
    (line,) = err.getvalue().splitlines()
    assert "writable by its group (mode 0775)" in line and f"chmod go-w {store.config_dir}" in line


# -- 1. exact modes, whatever the umask ----------------------------------------------------------------------
def test_every_area_gets_its_exact_mode_under_umask_000(store):
    old = os.umask(0)
    try:
        store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
        for area in ("accounts", ".locks", ".lehttpd"):
            store.ensure(area)
    finally:
        os.umask(old)
    config = store.config_dir
    assert {p: mode(config / p) for p in ("", "live", "archive", "renewal", "accounts", ".locks", ".lehttpd",
                                          "live/site", "archive/site", "renewal/site.conf",
                                          "archive/site/privkey1.pem", "archive/site/cert1.pem")} == {
        "": 0o755, "live": 0o700, "archive": 0o700, "renewal": 0o755, "accounts": 0o700, ".locks": 0o700,
        ".lehttpd": 0o700, "live/site": 0o700, "archive/site": 0o700, "renewal/site.conf": 0o644,
        "archive/site/privkey1.pem": 0o600, "archive/site/cert1.pem": 0o644}


# -- 6. no crash point leaves a live lineage that renewal cannot see --------------------------------------------
@pytest.mark.parametrize("first", [True, False], ids=["first issuance", "renewal"])
def test_no_crash_point_of_save_version_leaves_an_unrenewable_lineage(store, monkeypatch, first):
    if not first:
        store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    writes = {"n": 0}
    real_replace, real_link = os.replace, os.symlink

    def counting(real):  # every step the writers take: each new link, each rename into place
        def step(*args, **kwargs):
            writes["n"] += 1
            if writes["n"] == writes["crash_at"]:
                raise OSError(errno.ENOSPC, "No space left on device (injected)")
            return real(*args, **kwargs)
        return step

    crash_points = 0
    while True:
        writes.update(n=0, crash_at=crash_points + 1)
        monkeypatch.setattr(os, "replace", counting(real_replace))
        monkeypatch.setattr(os, "symlink", counting(real_link))
        try:
            with store.lock("site"):
                store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
            break  # no crash: every point was tried
        except DiskFullError:
            crash_points += 1
        monkeypatch.undo()
        # Whatever was left: live/ is never without a renewal file, and renewal sees the lineage.
        assert not store.not_renewable(), f"crash point {crash_points}"
        if not first:  # a full disk during the link switch leaves the four links at one version, before any repair
            assert store.current_version("site") in store.complete_versions("site"), f"crash point {crash_points}"
        found = discover(store)
        if store.names() or store.renewal_names():
            assert [type(f) for f in found] == [Candidate], (crash_points, found)
            assert store.ready_for_apache("site").version in store.complete_versions("site")
    assert crash_points >= 8  # four archive files, the renewal file, four links


def test_a_live_lineage_without_renewal_file_is_not_renewable_in_renew_and_certificates(store):
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    store.save_version("lost", self_signed(["b.example"]), conf_text(store, "lost"))
    store.renewal_conf("lost").unlink()
    found = {f.name: f for f in discover(store)}
    assert isinstance(found["site"], Candidate) and isinstance(found["lost"], Unreadable)
    assert found["lost"].reason.startswith("not renewable: ")
    out, err = io.StringIO(), io.StringIO()
    assert run(["renew", "--config-dir", str(store.config_dir)], Console(stdout=out, stderr=err)) == 7
    assert "not renewable" in out.getvalue() + err.getvalue()
    err = io.StringIO()
    assert run(["certificates", "--config-dir", str(store.config_dir)], Console(stdout=io.StringIO(),
                                                                                stderr=err)) == 7
    assert "not renewable: " in err.getvalue()


# -- 7. key and certificate must match before Apache gets them ---------------------------------------------
def test_a_half_done_switch_is_repaired_before_apache_gets_the_lineage(store):
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    key = store.live_dir("site") / "privkey.pem"
    key.unlink()
    key.symlink_to("../../archive/site/privkey1.pem")  # cert at 2, key at 1: Apache would not reload
    lineage = store.ready_for_apache("site")
    assert lineage.version == 2 and os.readlink(key).endswith("privkey2.pem")


def test_a_key_that_does_not_match_its_certificate_is_repaired_or_refused(store):
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    archive = store.archive_dir("site")
    os.chmod(archive / "privkey2.pem", 0o600)
    (archive / "privkey2.pem").write_bytes(self_signed(["x.example"]).key_pem)  # a pair that does not match
    assert store.ready_for_apache("site").version == 1, "back to the newest version whose pair matches"
    (archive / "privkey1.pem").write_bytes(self_signed(["x.example"]).key_pem)
    with pytest.raises(StorageError, match="does not belong to cert.pem"):
        store.ready_for_apache("site")


# -- 9. only regular files, with a size cap, without blocking ---------------------------------------------------
def test_read_regular_refuses_fifos_devices_links_and_huge_files_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 2000)
    (tmp_path / "link").symlink_to(tmp_path / "big")
    for path, words in ((tmp_path / "fifo", "not a regular file"), ("/dev/zero", "not a regular file"),
                        (tmp_path / "link", "symlink"), (tmp_path / "big", "more than the 1000")):
        with pytest.raises(StorageError, match=words):
            fileio.read_regular(path, 1000)
    assert fileio.read_regular(tmp_path / "big", 2000)[0] == b"x" * 2000


# -- 5. delete tells the truth -------------------------------------------------------------------------------
def delete(store):
    out, err = io.StringIO(), io.StringIO()
    status = run(["delete", "--yes", "--cert-name", "site", "--config-dir", str(store.config_dir)],
                 Console(stdout=out, stderr=err))
    return status, out.getvalue(), err.getvalue()


def test_delete_with_a_symlinked_archive_fails_and_names_what_stays(store, tmp_path):
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    elsewhere = tmp_path / "elsewhere"
    os.rename(store.archive_dir("site"), elsewhere)
    store.archive_dir("site").symlink_to(elsewhere)
    status, out, err = delete(store)
    assert status == 5 and "Deleted" not in out
    assert f"{store.archive_dir('site')} is a symlink to {elsewhere}" in err and "private keys" in err
    assert (elsewhere / "privkey1.pem").exists()


def test_delete_of_an_immutable_key_fails_and_lists_it(store):
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    key = store.archive_dir("site") / "privkey1.pem"
    if subprocess.run(["chattr", "+i", str(key)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem does not support chattr +i")
    try:
        status, out, err = delete(store)
    finally:
        subprocess.run(["chattr", "-i", str(key)], capture_output=True)
    assert status == 5 and "Deleted site" not in out
    assert f"{key}: Operation not permitted" in err
    assert key.exists()


# -- 10. a full disk: one line naming the device and the file; the writer leaves the old file ------------------
def test_enospc_at_the_writer_is_one_line_naming_device_and_file(tmp_path, monkeypatch):
    target = tmp_path / "renewal.conf"
    target.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError) as caught:
        fileio.atomic_write(target, b"new", 0o644)
    assert str(caught.value).startswith("no space left on ") and str(caught.value).endswith(f"writing {target}")
    assert "(mounted on " in str(caught.value) and caught.value.exit_status == 5
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["renewal.conf"]


# -- 2. renewal-hooks scripts: a link is judged by where it leads --------------------------------------------
def test_a_linked_hook_script_runs_only_when_its_target_and_folders_are_trusted(store, tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    os.chmod(scripts, 0o755)
    target = scripts / "reload"
    target.write_text("#!/bin/sh\ntrue\n")
    os.chmod(target, 0o755)
    folder = store.hooks_dir("deploy")
    folder.mkdir(parents=True)
    (folder / "10-reload").symlink_to(target)
    (folder / "README").write_text("not executable: ignored")
    assert store.hook_scripts("deploy") == ([folder / "10-reload"], [])
    os.chmod(scripts, 0o777)  # anyone could swap the target: not run
    found, problems = store.hook_scripts("deploy")
    assert found == [] and len(problems) == 1 and f"chmod go-w {scripts}" in problems[0]
    os.chmod(scripts, 0o755)
    os.chmod(target, 0o757)
    found, problems = store.hook_scripts("deploy")
    assert found == [] and "writable by others (mode 0757)" in problems[0]


def test_a_renewal_file_that_is_a_symlink_is_skipped_with_the_reason(store, tmp_path):
    store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    elsewhere = tmp_path / "elsewhere.conf"
    elsewhere.write_text(store.renewal_conf("site").read_text())
    store.renewal_conf("site").unlink()
    store.renewal_conf("site").symlink_to(elsewhere)
    (found,) = discover(store)
    assert isinstance(found, Unreadable) and "is a symlink" in found.reason


def test_no_key_is_written_into_a_config_dir_others_can_write(tmp_path):
    config = tmp_path / "le"
    config.mkdir()
    os.chmod(config, 0o777)
    store = CertStore(config)
    with pytest.raises(UntrustedFileError, match=f"chmod go-w {config}"):
        store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    assert list(config.iterdir()) == []


def test_nothing_is_created_below_a_folder_another_user_owns(tmp_path):
    """The checks come before the first mkdir: root never makes (and chmods) folders where others could race it."""
    import pwd

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, pwd.getpwnam("nobody").pw_uid, -1)
    store = CertStore(theirs / "le" / "config")
    with pytest.raises(UntrustedFileError, match=f"{theirs} .* is owned by nobody"):
        store.save_version("site", self_signed(["a.example"]), conf_text(store, "site"))
    assert list(theirs.iterdir()) == []
