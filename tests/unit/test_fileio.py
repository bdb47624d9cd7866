"""The one atomic writer and lock: exact modes whatever the umask, owners kept, planted links never followed."""
import os
import stat

import pytest

from lehttpd.errors import StorageError
from lehttpd.fileio import atomic_symlink, atomic_write, file_lock, make_dir


@pytest.fixture
def umask_000():
    old = os.umask(0)
    yield
    os.umask(old)


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_modes_do_not_depend_on_the_umask(tmp_path, umask_000):
    make_dir(tmp_path / "keys", 0o700)
    atomic_write(tmp_path / "keys" / "privkey.pem", b"secret", 0o600)
    atomic_write(tmp_path / "new" / "cert.pem", b"public", 0o644)
    with file_lock(tmp_path / "locks" / "x.lock", 1, "test"):
        pass
    assert mode_of(tmp_path / "keys") == 0o700
    assert mode_of(tmp_path / "keys" / "privkey.pem") == 0o600
    assert mode_of(tmp_path / "new") == 0o755
    assert mode_of(tmp_path / "new" / "cert.pem") == 0o644
    assert mode_of(tmp_path / "locks") == 0o700
    assert mode_of(tmp_path / "locks" / "x.lock") == 0o600


def test_a_symlink_at_the_path_is_replaced_and_its_target_left_alone(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "file"
    link.symlink_to(victim)
    atomic_write(link, b"new", 0o644)
    assert victim.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_like_keeps_the_mode_owner_and_group_of_the_file_replaced(tmp_path):
    page = tmp_path / "page.html"
    page.write_bytes(b"old")
    os.chmod(page, 0o640)
    if os.geteuid() == 0:
        os.chown(page, 65534, 65534)
    before = os.stat(page)
    atomic_write(page, b"new", like=page)
    after = os.stat(page)
    assert page.read_bytes() == b"new"
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == (0o640, before.st_uid, before.st_gid)


def test_a_planted_lock_symlink_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "locks").mkdir(mode=0o700)
    (tmp_path / "locks" / "x.lock").symlink_to(victim)
    with pytest.raises(StorageError, match="symlink"):
        with file_lock(tmp_path / "locks" / "x.lock", 0, "test"):
            pass
    assert victim.read_bytes() == b"precious"


def test_make_dir_refuses_a_symlink_in_place_of_a_folder(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "archive").symlink_to(elsewhere)
    with pytest.raises(StorageError, match="not a folder"):
        make_dir(tmp_path / "archive", 0o700)
    assert list(elsewhere.iterdir()) == []


def test_a_folder_swapped_for_a_link_right_after_mkdir_is_not_chmoded_through_it(tmp_path, monkeypatch):
    """Under a folder another user can write, they can swap the new folder for a link before its chmod."""
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    os.chmod(victim, 0o700)
    real_mkdir = os.mkdir

    def mkdir_then_swapped(path, mode=0o777, **kwargs):
        real_mkdir(path, mode, **kwargs)
        os.rename(path, tmp_path / "moved")
        os.symlink(victim, path)

    monkeypatch.setattr(os, "mkdir", mkdir_then_swapped)
    with pytest.raises(StorageError, match="replaced by a link"):
        make_dir(tmp_path / "le", 0o755)
    assert mode_of(victim) == 0o700


def test_atomic_symlink_moves_a_link_in_one_rename(tmp_path):
    atomic_symlink(tmp_path / "cert.pem", "../archive/cert1.pem")
    atomic_symlink(tmp_path / "cert.pem", "../archive/cert2.pem")
    assert os.readlink(tmp_path / "cert.pem") == "../archive/cert2.pem"
    assert [p.name for p in tmp_path.iterdir()] == ["cert.pem"]
