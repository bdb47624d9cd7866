import datetime as dt
import multiprocessing
import os
import stat
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lehttpd.errors import LockHeldError, UsageError
from lehttpd.model import CertificateFiles
from lehttpd.fileio import atomic_write, file_lock
from lehttpd.store import CertStore, load_accounts, save_account


def self_signed(names, days=90):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return CertificateFiles(cert.public_bytes(serialization.Encoding.PEM), b"", key_pem)


def test_versions_are_written_beside_each_other_and_live_links_move(tmp_path):
    store = CertStore(tmp_path)
    first = store.save_version("site", self_signed(["a.example", "b.example"]), "conf 1\n")
    second = store.save_version("site", self_signed(["a.example", "b.example"]), "conf 2\n")
    assert (first.version, second.version) == (1, 2)
    assert second.names == ("a.example", "b.example") and second.key_type == "ecdsa"
    assert os.readlink(tmp_path / "live/site/privkey.pem") == "../../archive/site/privkey2.pem"
    assert (tmp_path / "archive/site/privkey1.pem").exists(), "old versions are kept"
    assert store.renewal_conf("site").read_text() == "conf 2\n"
    assert stat.S_IMODE(os.stat(tmp_path / "archive/site/privkey2.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "live/site").st_mode) == 0o700
    assert store.names() == ["site"] and store.load("site").version == 2


def test_a_half_written_version_is_never_reused_and_never_linked(tmp_path):
    store = CertStore(tmp_path)
    store.save_version("site", self_signed(["a.example"]))
    (tmp_path / "archive/site/privkey2.pem").write_bytes(b"partial")  # a crash after the first file of v2
    store.repair("site")
    assert os.readlink(tmp_path / "live/site/cert.pem").endswith("cert1.pem")
    third = store.save_version("site", self_signed(["a.example"]))
    assert third.version == 3
    assert (tmp_path / "archive/site/privkey2.pem").read_bytes() == b"partial", "nothing is deleted"


def test_repair_completes_an_interrupted_link_switch(tmp_path):
    store = CertStore(tmp_path)
    store.save_version("site", self_signed(["a.example"]))
    store.save_version("site", self_signed(["a.example"]))
    # A crash in the middle of the switch to version 2: two links still point at version 1.
    live = tmp_path / "live/site"
    for kind in ("cert", "chain"):
        os.unlink(live / f"{kind}.pem")
        os.symlink(f"../../archive/site/{kind}1.pem", live / f"{kind}.pem")
    (live / ".privkey.pem.tmp-123").symlink_to("nowhere")
    assert store.repair("site") is True
    assert {os.readlink(live / f"{k}.pem")[-5] for k in ("cert", "chain", "fullchain", "privkey")} == {"2"}
    assert not list(live.glob(".*tmp*"))
    assert store.repair("site") is False


def test_atomic_write_leaves_no_temporary_files_and_sets_mode_from_the_start(tmp_path):
    target = tmp_path / "secret.pem"
    atomic_write(target, b"one", 0o600)
    atomic_write(target, b"two", 0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.pem"]


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", ".hidden", "x" * 300, "site\n", "a.example\n"])
def test_lineage_names_cannot_escape_the_store(tmp_path, bad):
    with pytest.raises(UsageError):
        CertStore(tmp_path).live_dir(bad)


def test_a_lineage_name_ending_in_a_newline_is_not_listed(tmp_path):
    store = CertStore(tmp_path)
    store.save_version("site", self_signed(["a.example"]), "conf\n")
    os.symlink(tmp_path / "live" / "site", tmp_path / "live" / "site\n")  # only root could, but never trusted
    (tmp_path / "renewal" / "site\n.conf").write_text("conf\n")
    assert store.names() == ["site"] and store.renewal_names() == ["site"]


@pytest.mark.parametrize("server", ["https://ca.example/../../../tmp/x", "https://ca.example/dir/./x",
                                    "https://../tmp/x"])
def test_an_acme_server_url_cannot_lead_the_account_folder_out_of_accounts(tmp_path, server):
    with pytest.raises(UsageError, match="'..' path segment"):
        CertStore(tmp_path).account_dir(server)


def test_loading_a_missing_lineage_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no certificate named 'nope'"):
        CertStore(tmp_path).load("nope")


def _hold_lock(path, ready, release):
    with file_lock(path, 1, "test"):
        ready.set()
        release.wait(10)


def test_lock_excludes_another_process_and_is_released_when_it_dies(tmp_path):
    path = tmp_path / "x.lock"
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(LockHeldError, match="locked by another lehttpd process"):
        with file_lock(path, 0.2, "test"):
            pass
    holder.kill()  # a SIGKILLed holder leaves no stale lock behind
    holder.join()
    started = time.monotonic()
    with file_lock(path, 5, "test"):
        assert time.monotonic() - started < 2


def test_accounts_are_kept_in_certbots_layout(tmp_path):
    store = CertStore(tmp_path)
    save_account(store, "https://acme.example/dir", "abc123", {"private_key.json": b"{}", "regr.json": b"{}"})
    folder = tmp_path / "accounts/acme.example/dir/abc123"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "private_key.json").stat().st_mode) == 0o600
    assert list(load_accounts(store, "https://acme.example/dir")) == ["abc123"]
    assert load_accounts(store, "https://other.example/dir") == {}
