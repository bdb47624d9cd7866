"""The renewal index (lehttpd/renew/index.py): an unchanged lineage is decided without reading its files, and
anything changed, replaced or planted after it was indexed is read again and checked like a first read."""
import datetime as dt
import json
import os
import shutil
import time

import pytest

from lehttpd.console import Console
from lehttpd.renew import index as index_module
from lehttpd.renew import lineages, runner
from lehttpd.renew.index import Known, RenewIndex, identity
from lehttpd.renew.lineages import Candidate, Unreadable, discover
from lehttpd.renew.outcome import NOT_DUE, Outcome
from lehttpd.renew.runner import RenewOptions, renew_all
from lehttpd.renew.state import RenewState
from lehttpd.store import CertStore

from tests.unit.test_renew_files import make_lineage, self_signed

TICK = 0.05  # longer than a file-system timestamp tick: a change after it gets a new ctime


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "RACY_NS", 0)  # files made by the test are indexed at once
    store = CertStore(tmp_path / "le")
    make_lineage(store, "a.test")
    make_lineage(store, "b.test")
    return store


def indexed_run(store: CertStore) -> dict:
    index = RenewIndex.load(store)
    found = discover(store, index=index)
    assert index.save() is None
    return {item.name: item for item in found}


def changed_later(action) -> None:
    time.sleep(TICK)
    action()


def test_an_unchanged_lineage_is_decided_from_the_index_without_reading_its_files(store, monkeypatch):
    first = indexed_run(store)
    assert all(isinstance(item, Candidate) for item in first.values())

    def no_read(*_args, **_kwargs):
        raise AssertionError("read in full")
    monkeypatch.setattr("lehttpd.renew.lineages.read_candidate", no_read)
    second = indexed_run(store)
    assert all(isinstance(item, Known) for item in second.values())
    for name in ("a.test", "b.test"):
        assert second[name].lineage == first[name].lineage
        assert (second[name].server, second[name].ca_bundle) == (first[name].server, first[name].ca_bundle)
    path = store.index_path()
    assert oct(os.lstat(path).st_mode & 0o777) == "0o600" and os.lstat(path).st_uid == os.geteuid()


def test_a_renewal_file_changed_in_place_after_indexing_is_read_and_checked_again(store):
    indexed_run(store)
    conf = store.renewal_conf("a.test")
    text = conf.read_text()

    def edit() -> None:
        with open(conf, "r+") as handle:  # same inode, same size
            handle.write(text.replace("server = https://ca.invalid/dir", "server = gopher://ca.invalid/di"))
    changed_later(edit)
    found = indexed_run(store)
    assert isinstance(found["a.test"], Unreadable) and "server" in found["a.test"].reason
    assert isinstance(found["b.test"], Known)


def test_a_renewal_file_replaced_after_indexing_is_read_again(store):
    indexed_run(store)
    conf = store.renewal_conf("a.test")
    new = conf.read_text().replace("https://ca.invalid/dir", "https://other-ca.invalid/directory")
    changed_later(lambda: (conf.with_suffix(".new").write_text(new), os.replace(conf.with_suffix(".new"), conf)))
    found = indexed_run(store)
    assert isinstance(found["a.test"], Candidate) and found["a.test"].server == "https://other-ca.invalid/directory"
    assert indexed_run(store)["a.test"].server == "https://other-ca.invalid/directory"  # indexed again


@pytest.mark.parametrize("plant", ["writable by others", "owned by another user", "a symlink"])
def test_a_planted_renewal_file_is_refused_even_when_its_identity_matches_the_index(store, plant, tmp_path):
    """Trust is never cached: even an index entry that matches the planted file (as if forged) does not let it in."""
    indexed_run(store)
    conf = store.renewal_conf("a.test")
    if plant == "writable by others":
        os.chmod(conf, 0o666)
    elif plant == "owned by another user":
        os.chown(conf, 4321, 4321)
    else:
        shutil.copy(conf, tmp_path / "elsewhere.conf")
        conf.unlink()
        conf.symlink_to(tmp_path / "elsewhere.conf")
    document = json.loads(store.index_path().read_bytes())
    document["lineages"]["a.test"][0] = identity(os.lstat(conf))
    store.index_path().write_text(json.dumps(document))
    index = RenewIndex.load(store)
    assert index.entries["a.test"][0] == identity(os.lstat(conf))
    assert index.known("a.test", RenewState()) is None
    found = {item.name: item for item in discover(store, index=index)}
    assert isinstance(found["a.test"], Unreadable)
    assert {"writable by others": "writable by group and others", "owned by another user": "owned by uid 4321",
            "a symlink": "symlink"}[plant] in found["a.test"].reason


def test_a_certificate_rewritten_in_place_after_indexing_is_read_again(store):
    indexed_run(store)
    old = indexed_run(store)["a.test"]
    cert = store.archive_dir("a.test") / f"cert{old.lineage.version}.pem"
    shorter = self_signed("a.test", days=10).cert_pem
    changed_later(lambda: cert.write_bytes(shorter))  # same inode
    found = indexed_run(store)
    assert isinstance(found["a.test"], Candidate)
    assert found["a.test"].lineage.not_after < old.lineage.not_after - dt.timedelta(days=70)


def test_a_new_version_switched_live_after_indexing_is_read_again(store):
    indexed_run(store)
    with store.lock("a.test"):
        changed_later(lambda: store.save_version("a.test", self_signed("a.test")))
    found = indexed_run(store)
    assert isinstance(found["a.test"], Candidate) and found["a.test"].lineage.version == 2
    assert indexed_run(store)["a.test"].lineage.version == 2


def test_a_certificate_folder_made_writable_by_others_is_refused_even_when_indexed(store):
    indexed_run(store)
    os.chmod(store.live_dir("a.test"), 0o777)
    found = indexed_run(store)
    assert isinstance(found["a.test"], Unreadable) and "writable by group and others" in found["a.test"].reason


def test_a_renewal_folder_others_can_write_sends_every_lineage_to_a_full_read(store):
    indexed_run(store)
    os.chmod(store.config_dir / "renewal", 0o777)
    found = indexed_run(store)
    assert all(isinstance(item, Unreadable) and "writable" in item.reason for item in found.values())


def test_an_index_others_can_write_is_not_used(store, monkeypatch):
    indexed_run(store)
    os.chmod(store.index_path(), 0o666)
    assert RenewIndex.load(store).entries == {}
    calls = []
    original = index_module.RenewIndex.known
    monkeypatch.setattr(index_module.RenewIndex, "known", lambda self, *a: calls.append(a) or original(self, *a))
    found = indexed_run(store)
    assert all(isinstance(item, Candidate) for item in found.values())  # read in full, then indexed again
    assert oct(os.lstat(store.index_path()).st_mode & 0o777) == "0o600"


def test_a_ca_bundle_made_writable_after_indexing_refuses_the_lineage(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "RACY_NS", 0)
    store = CertStore(tmp_path / "le")
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(self_signed("ca.test").cert_pem)
    make_lineage(store, "a.test", ca_bundle=bundle)
    indexed_run(store)
    assert isinstance(indexed_run(store)["a.test"], Known)
    os.chmod(bundle, 0o666)
    found = indexed_run(store)
    assert isinstance(found["a.test"], Unreadable) and "CA bundle" in found["a.test"].reason


def test_a_lineage_changed_within_the_racy_window_is_not_indexed(tmp_path):
    store = CertStore(tmp_path / "le")  # the real RACY_NS: these files are a few ms old
    make_lineage(store, "a.test")
    indexed_run(store)
    assert RenewIndex.load(store).entries == {}


def test_a_lineage_the_index_finds_due_is_read_in_full_before_ordering(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "RACY_NS", 0)
    store = CertStore(tmp_path / "le")
    make_lineage(store, "due.test", days=90, start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=80))
    make_lineage(store, "fresh.test")
    options = RenewOptions(config_dir=store.config_dir, ari=False)
    indexed_run(store)
    read = []
    original = runner.read_candidate
    monkeypatch.setattr(runner, "read_candidate", lambda s, name, *a: read.append(name) or original(s, name, *a))
    monkeypatch.setattr(runner, "_renew_due", lambda _s, due, *_a: {c.name: Outcome(c.name, NOT_DUE, "x")
                                                                      for c, _d in due if isinstance(c, Candidate)})
    summary = renew_all(options, Console(quiet=True))
    assert read == ["due.test"]
    assert [o.name for o in summary.outcomes] == ["due.test", "fresh.test"]


@pytest.mark.parametrize("corrupt", ["short", "version is a path", "serial", "dates"])
def test_a_corrupt_index_entry_means_a_full_read(store, corrupt):
    indexed_run(store)
    document = json.loads(store.index_path().read_bytes())
    entry = document["lineages"]["a.test"]
    if corrupt == "short":
        del entry[-1]
    elif corrupt == "version is a path":
        entry[3] = "1/../../../../etc/passwd"
    elif corrupt == "serial":
        entry[8] = "not hex"
    else:
        entry[5] = "yesterday"
    store.index_path().write_text(json.dumps(document))
    found = indexed_run(store)
    assert isinstance(found["a.test"], Candidate) and isinstance(found["b.test"], Known)
    assert RenewIndex.load(store).entries["a.test"][3] == 1  # written again from the full read


def test_a_renewal_file_changed_while_it_was_read_is_not_indexed(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "RACY_NS", 200_000_000)  # still far longer than a timestamp tick
    store = CertStore(tmp_path / "le")
    make_lineage(store, "a.test")
    make_lineage(store, "b.test")
    time.sleep(0.3)  # both older than RACY_NS
    conf = store.renewal_conf("a.test")
    original = lineages.read_candidate

    def read_then_changed(s, name, *args):
        found = original(s, name, *args)
        if name == "a.test":  # the change lands after the read, before the index lstat()s the file
            conf.write_text(conf.read_text().replace("https://ca.invalid/dir", "https://cb.invalid/dir"))
        return found
    monkeypatch.setattr(lineages, "read_candidate", read_then_changed)
    first = indexed_run(store)
    assert first["a.test"].server == "https://ca.invalid/dir"  # what was read
    assert set(RenewIndex.load(store).entries) == {"b.test"}
    monkeypatch.setattr(lineages, "read_candidate", original)
    assert indexed_run(store)["a.test"].server == "https://cb.invalid/dir"


def test_a_dry_run_uses_the_index_but_never_writes_it(store, monkeypatch):
    monkeypatch.setattr(runner, "_renew_due", lambda _s, due, *_a: {c.name: Outcome(c.name, NOT_DUE, "x")
                                                                      for c, _d in due})
    renew_all(RenewOptions(config_dir=store.config_dir, ari=False, dry_run=True), Console(quiet=True))
    assert not store.index_path().exists()


def test_an_index_that_cannot_be_written_is_a_warning_and_the_run_goes_on(store, monkeypatch, capsys):
    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(index_module, "atomic_write", disk_full)
    summary = renew_all(RenewOptions(config_dir=store.config_dir, ari=False), Console(quiet=True))
    assert [o.status for o in summary.outcomes] == [NOT_DUE, NOT_DUE] and summary.exit_status == 0
    err = capsys.readouterr().err
    assert "renewal index not saved" in err and "No space left on device" in err
