"""The fleet against a real etcd (Debian's etcd-server), without an ACME server: the store in etcd, sealing,
the fenced lease lock, init/join/status, TLS, and what a node does when etcd is gone."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from cryptography import x509

from lehttpd.errors import LockHeldError, StorageError
from lehttpd.fleet.config import load_config
from lehttpd.fleet.etcd import Etcd
from lehttpd.fleet.lock import LeaseLock, LostLock
from lehttpd.fleet.shared import Fleet, FleetStore, RunLockingFleetStore
from lehttpd.model import CertificateFiles
from lehttpd.sandbox.etcd import EtcdCluster
from lehttpd.sandbox.tls import throwaway_ca_and_leaf
from lehttpd.store import CertStore
from tests.integration.fleet_fixtures import etcd_flags, local_lineage, run_cli

pytestmark = pytest.mark.skipif(not shutil.which("etcd"), reason="etcd-server is not installed (make deps)")


@pytest.fixture
def etcd(tmp_path):
    with EtcdCluster(tmp_path / "etcd", size=1) as cluster:
        yield cluster


def _init(etcd, config_dir, *extra):
    code, out, err = run_cli("fleet", "init", *etcd_flags(etcd.endpoints, etcd.tls_files if etcd.tls else None),
                             "--node", "n1", "--config-dir", config_dir, *extra)
    assert code == 0, err
    return out


def _join(etcd, config_dir, node, key_from):
    return run_cli("fleet", "join", *etcd_flags(etcd.endpoints, etcd.tls_files if etcd.tls else None), "--node",
                   node, "--fleet-key", key_from / ".lehttpd" / "fleet.key", "--config-dir", config_dir)


# -- the store in etcd ---------------------------------------------------------------------------------------
def test_init_imports_the_local_store_and_join_writes_it_on_another_node(etcd, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for name in ("a.example", "b.example"):
        local_lineage(one, name)
    assert "2 lineage(s) imported" in _init(etcd, one)
    code, out, err = _join(etcd, two, "n2", one)
    assert code == 0, err
    assert "2 lineage(s) written" in out
    for name in ("a.example", "b.example"):
        assert (two / "live" / name / "cert.pem").read_bytes() == (one / "live" / name / "cert.pem").read_bytes()
        assert (two / "live" / name / "privkey.pem").read_bytes() == (one / "live" / name / "privkey.pem").read_bytes()
        assert oct((two / "archive" / name / "privkey1.pem").stat().st_mode & 0o777) == "0o600"
        conf = (two / "renewal" / f"{name}.conf").read_text()
        assert str(two / "live" / name) in conf and str(one) not in conf  # this node's own paths


def test_private_keys_are_sealed_in_etcd_and_a_wrong_fleet_key_is_refused(etcd, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    local_lineage(one, "a.example")
    _init(etcd, one)
    key_pem = (one / "live" / "a.example" / "privkey.pem").read_bytes()
    raw = b"".join(kv.value for kv in Etcd(etcd.endpoints).get_prefix("/lehttpd/")[0])
    assert b"PRIVATE KEY" not in raw and key_pem.split(b"\n")[1] not in raw
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    code, _, err = run_cli("fleet", "join", *etcd_flags(etcd.endpoints), "--node", "n2", "--fleet-key", wrong,
                           "--config-dir", two)
    assert code != 0 and "cannot be opened with this node's fleet key" in err
    assert not (two / "live").exists()


def test_a_fleet_key_readable_by_others_is_refused(etcd, tmp_path):
    one = tmp_path / "one"
    local_lineage(one, "a.example")
    _init(etcd, one)
    os.chmod(one / ".lehttpd" / "fleet.key", 0o644)
    code, _, err = run_cli("renew", "--config-dir", one)
    assert code != 0 and "fleet.key" in err and "readable by group or others" in err


def test_hooks_never_travel_through_etcd(etcd, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    local_lineage(one, "a.example")
    conf = one / "renewal" / "a.example.conf"
    conf.write_text(conf.read_text().replace("[renewalparams]\n", "[renewalparams]\nrenew_hook = touch /tmp/x\n"))
    _init(etcd, one)
    assert b"touch /tmp/x" not in b"".join(kv.value for kv in Etcd(etcd.endpoints).get_prefix("/lehttpd/")[0])
    _join(etcd, two, "n2", one)
    assert "touch" not in (two / "renewal" / "a.example.conf").read_text()
    assert "touch /tmp/x" in conf.read_text()  # the node's own hook stays


@pytest.mark.parametrize("change", ["conf", "cert"])
def test_a_version_changed_in_etcd_by_someone_without_the_fleet_key_is_written_nowhere(etcd, tmp_path, change):
    """Write access to etcd is not the fleet key: a changed renewal file (another ACME server, a webroot of
    the writer's choice) or a swapped certificate (with its serial and pointer made to agree) does not open."""
    one, two = tmp_path / "one", tmp_path / "two"
    local_lineage(one, "a.example")
    _init(etcd, one)
    client, where = Etcd(etcd.endpoints), "/lehttpd/versions/a.example/00000001"
    record = json.loads(client.get(where).value)
    if change == "conf":
        record["conf"] = record["conf"].replace("server = ", "server = https://ca.attacker.test/dir\n# was ")
    else:
        planted = throwaway_ca_and_leaf(("a.example",))
        serial = hex(x509.load_pem_x509_certificate(planted.leaf_pem).serial_number)
        record.update(cert=planted.leaf_pem.decode(), chain=planted.ca_pem.decode(), serial=serial,
                      fullchain=(planted.leaf_pem + planted.ca_pem).decode())
        client.put("/lehttpd/current/a.example", json.dumps({"version": 1, "serial": serial}))
    client.put(where, json.dumps(record))
    code, out, err = _join(etcd, two, "n2", one)
    assert code == 5, out + err
    (line,) = [line for line in err.splitlines() if "a.example: not written" in line]
    assert line.endswith("etcd /lehttpd/versions/a.example/00000001: cannot be opened with this node's fleet key "
                         "(another fleet's key, or the value was changed)"), err
    assert not (two / "live" / "a.example").exists() and not (two / "renewal" / "a.example.conf").exists()
    code, out, err = run_cli("renew", "--no-ari", "--config-dir", two)  # the run says so, and is not stopped
    assert code == 0 and "a.example: not written from etcd" in err, out + err
    assert not (two / "live" / "a.example").exists()


# -- the lock and its fencing -------------------------------------------------------------------------------
def test_a_lineage_lock_is_exclusive_and_a_dead_holders_lock_expires(etcd):
    client = Etcd(etcd.endpoints)
    first = LeaseLock(client, "/t/locks/a", "n1", ttl=2)
    first.acquire(wait=0)
    with pytest.raises(LockHeldError, match="held by node n1"):
        LeaseLock(client, "/t/locks/a", "n2", ttl=2).acquire(wait=0.5)
    first._stop.set()  # the holder "dies": no more keepalives
    started = time.monotonic()
    second = LeaseLock(client, "/t/locks/a", "n2", ttl=2)
    second.acquire(wait=10)
    assert 0.5 < time.monotonic() - started < 6
    second.release()


def test_a_paused_holder_cannot_write_after_losing_its_lease(etcd, tmp_path):
    one = tmp_path / "one"
    local_lineage(one, "a.example")
    _init(etcd, one)
    fleet = Fleet.open(one)
    paused = LeaseLock(fleet.etcd, fleet.config.lock_key("a.example"), "n1", ttl=2)
    paused.acquire(wait=0)
    paused._stop.set()
    fleet.etcd.revoke(paused.lease)  # what a pause longer than the TTL amounts to
    other = LeaseLock(fleet.etcd, fleet.config.lock_key("a.example"), "n2", ttl=5)
    other.acquire(wait=5)
    pair = throwaway_ca_and_leaf(("a.example",))
    late = CertificateFiles(pair.leaf_pem, pair.ca_pem, pair.key_pem)
    with pytest.raises(LostLock, match="not saved"):
        fleet.publish("a.example", late, None, paused)
    assert json.loads(fleet.etcd.get(fleet.config.current_key("a.example")).value)["version"] == 1
    assert fleet.publish("a.example", late, None, other) == 2  # the holder's write goes through
    other.release()


def test_fleet_store_saves_to_etcd_before_live_and_only_under_the_etcd_lock(etcd, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    local_lineage(one, "a.example")
    _init(etcd, one)
    _join(etcd, two, "n2", one)
    store = FleetStore(Fleet.open(one))
    pair = throwaway_ca_and_leaf(("a.example",))
    files = CertificateFiles(pair.leaf_pem, pair.ca_pem, pair.key_pem)
    with pytest.raises(StorageError, match="only under the lineage's etcd lock"):
        store.save_version("a.example", files)
    with store.lock("a.example"):
        assert store.fleet.etcd.get(store.fleet.config.lock_key("a.example")) is not None
        store.save_version("a.example", files)
    assert store.fleet.etcd.get(store.fleet.config.lock_key("a.example")) is None
    assert Fleet.open(two).pull("a.example")  # the other node brings it over
    assert (two / "live" / "a.example" / "cert.pem").read_bytes() == pair.leaf_pem


def test_a_node_never_goes_back_to_an_older_certificate_than_it_serves(etcd, tmp_path):
    """A pointer moved back in etcd (an old version may hold a revoked key) is not followed; a renewal under
    the lock keeps the node's newer certificate and goes on."""
    one, two = tmp_path / "one", tmp_path / "two"
    local_lineage(one, "a.example")
    _init(etcd, one)
    _join(etcd, two, "n2", one)
    first = json.loads(Etcd(etcd.endpoints).get("/lehttpd/current/a.example").value)
    time.sleep(1.1)  # a later notBefore, to the second
    pair = throwaway_ca_and_leaf(("a.example",))
    store = FleetStore(Fleet.open(one))
    with store.lock("a.example"):
        store.save_version("a.example", CertificateFiles(pair.leaf_pem, pair.ca_pem, pair.key_pem))
    assert Fleet.open(two).pull("a.example")
    Etcd(etcd.endpoints).put("/lehttpd/current/a.example", json.dumps(first))  # moved back
    with pytest.raises(StorageError, match="older than the certificate this node serves"):
        Fleet.open(two).pull("a.example")
    with FleetStore(Fleet.open(two)).lock("a.example"):
        pass  # a renewal run takes the lock and keeps going
    assert (two / "live" / "a.example" / "cert.pem").read_bytes() == pair.leaf_pem
    assert CertStore(two).complete_versions("a.example") == [1, 2]


def test_delete_on_a_fleet_node_takes_the_lineage_out_of_etcd_and_no_node_renews_or_brings_it_back(etcd, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for name in ("a.example", "b.example"):
        local_lineage(one, name)
    _init(etcd, one)
    _join(etcd, two, "n2", one)
    code, out, err = run_cli("delete", "--cert-name", "a.example", "--yes", "--config-dir", one)
    assert code == 0, err
    client = Etcd(etcd.endpoints)
    assert client.get("/lehttpd/current/a.example") is None
    assert not client.get_prefix("/lehttpd/versions/a.example/")[0]
    assert json.loads(client.get("/lehttpd/deleted/a.example").value)["node"] == "n1"
    assert not (one / "live" / "a.example").exists()
    assert (two / "live" / "a.example" / "cert.pem").exists()  # its Apache may still use it: two's to remove
    code, out, err = run_cli("renew", "--config-dir", one, "--no-ari")
    assert code == 0 and not (one / "live" / "a.example").exists(), err  # the catch-up does not bring it back
    code, out, err = run_cli("renew", "--config-dir", two, "--no-ari", "--force", "--cert-name", "a.example",
                             "--json")
    (outcome,) = json.loads(out)["lineages"]
    assert code != 0 and outcome["status"] == "failed", out + err
    assert "deleted from the fleet by node n1" in outcome["reason"] and "lehttpd delete" in outcome["reason"]
    code, out, err = run_cli("fleet", "status", "--config-dir", two)
    assert code == 0 and "deleted from the fleet" in out and "a copy is still here" in out, out + err

    pair = throwaway_ca_and_leaf(("a.example",))  # `issue` of the name again: back in the fleet
    store = RunLockingFleetStore(Fleet.open(one))
    with store.lock("a.example"):
        store.save_version("a.example", CertificateFiles(pair.leaf_pem, pair.ca_pem, pair.key_pem))
    assert json.loads(client.get("/lehttpd/current/a.example").value)["version"] == 1
    assert client.get("/lehttpd/deleted/a.example") is None

    etcd.stop()
    code, out, err = run_cli("delete", "--cert-name", "b.example", "--yes", "--config-dir", one)
    assert code == 4 and "nothing deleted" in err, err
    assert (one / "live" / "b.example" / "cert.pem").exists()


# -- etcd unreachable, TLS ----------------------------------------------------------------------------------
def test_etcd_unreachable_renew_says_so_and_fails_status_shows_staleness(etcd, tmp_path):
    one = tmp_path / "one"
    local_lineage(one, "a.example")
    _init(etcd, one)
    before = {p: p.read_bytes() for p in (one / "archive" / "a.example").iterdir()}
    etcd.stop()
    code, _, err = run_cli("renew", "--config-dir", one, "--force")
    assert code == 4 and "etcd unreachable" in err and "keeps serving" in err
    assert {p: p.read_bytes() for p in (one / "archive" / "a.example").iterdir()} == before
    code, out, err = run_cli("fleet", "status", "--config-dir", one)
    assert code == 4 and "etcd unreachable" in err and "agent last synced never" in out


def test_etcd_over_tls_with_client_certificates(tmp_path):
    with EtcdCluster(tmp_path / "etcd", size=1, tls=True) as cluster:
        one = tmp_path / "one"
        local_lineage(one, "a.example")
        _init(cluster, one)
        assert load_config(CertStore(one)).cacert == str(cluster.tls_files[0])
        code, out, err = run_cli("fleet", "status", "--config-dir", one)
        assert code == 0 and "a.example" in out, err
        # without the CA, the server's certificate is not trusted: no fallback to plain or unverified
        code, _, err = run_cli("fleet", "init", "--etcd", ",".join(cluster.endpoints), "--cert",
                               cluster.tls_files[1], "--key", cluster.tls_files[2], "--prefix", "/other/",
                               "--config-dir", tmp_path / "three")
        assert code == 4 and "TLS failed" in err
        # whoever can change the CA file decides which server is etcd: judged like a CA bundle
        folder = cluster.tls_files[0].parent
        os.chmod(folder, 0o777)
        try:
            code, _, err = run_cli("fleet", "status", "--config-dir", one)
            assert code == 5 and f"chmod go-w {folder}" in err and "cacert" in err, err
            code, _, err = run_cli("renew", "--config-dir", one)
            assert code == 5 and f"chmod go-w {folder}" in err, err
        finally:
            os.chmod(folder, 0o755)


def test_a_stale_node_does_not_order_what_another_node_renewed_meanwhile(etcd, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    local_lineage(one, "a.example")
    _init(etcd, one)
    _join(etcd, two, "n2", one)  # no agent runs on two: its store stays at version 1
    store = FleetStore(Fleet.open(one))
    pair = throwaway_ca_and_leaf(("a.example",))
    with store.lock("a.example"):
        store.save_version("a.example", CertificateFiles(pair.leaf_pem, pair.ca_pem, pair.key_pem))
    code, out, err = run_cli("renew", "--config-dir", two, "--force", "--no-ari", "--json")
    assert code == 0, err  # its renewal server (nothing listens there) was never asked
    outcome = json.loads(out)["lineages"][0]
    assert outcome["status"] == "not_due" and "renewed meanwhile" in outcome["reason"]
    assert (two / "live" / "a.example" / "cert.pem").read_bytes() == pair.leaf_pem
    assert json.loads(store.fleet.etcd.get(store.fleet.config.current_key("a.example")).value)["version"] == 2


def test_renew_on_a_new_node_first_writes_the_lineages_it_lacks(etcd, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _init(etcd, one)  # an empty fleet
    _join(etcd, two, "n2", one)
    local_lineage(tmp_path / "three", "late.example")
    fleet = Fleet.open(one)
    fleet.store = CertStore(tmp_path / "three")
    assert fleet.import_lineage("late.example")
    code, out, err = run_cli("renew", "--config-dir", two, "--no-ari")
    assert code == 0, err
    assert (two / "live" / "late.example" / "cert.pem").exists()


def test_fleet_import_adds_a_lineage_issued_after_init_and_keeps_etcds_copy_of_the_others(etcd, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    local_lineage(one, "a.example")
    _init(etcd, one)
    local_lineage(one, "b.example")  # issued after init
    code, out, err = run_cli("fleet", "import", "--config-dir", one)
    assert code == 0 and "1 lineage(s) imported, 1 already in etcd" in out, err
    code, _, err = run_cli("fleet", "import", "--cert-name", "nope.example", "--config-dir", one)
    assert code == 2 and "no certificate named 'nope.example'" in err
    _join(etcd, two, "n2", one)
    assert (two / "live" / "b.example" / "cert.pem").read_bytes() == (one / "live" / "b.example" / "cert.pem").read_bytes()


# -- the agent ------------------------------------------------------------------------------------------------
def _start_agent(config_dir, log):
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-m", "lehttpd", "fleet", "agent", "--config-dir", str(config_dir)],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def _wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_the_agent_writes_new_versions_reloads_serves_other_nodes_tokens_and_cleans_up(etcd, tmp_path):
    import signal
    one, two, webroot = tmp_path / "one", tmp_path / "two", tmp_path / "www"
    webroot.mkdir(mode=0o755)
    local_lineage(one, "a.example")
    _init(etcd, one)
    reloaded = tmp_path / "reloaded"
    code, _, err = run_cli("fleet", "join", *etcd_flags(etcd.endpoints), "--node", "n2", "--fleet-key",
                           one / ".lehttpd" / "fleet.key", "--challenge-webroot", webroot,
                           "--reload-command", f"touch {reloaded}", "--config-dir", two)
    assert code == 0, err
    agent = _start_agent(two, tmp_path / "agent.log")
    try:
        _wait_for(lambda: Fleet.open(one).nodes().get("n2"))  # it reported in
        reloaded.unlink(missing_ok=True)
        # Someone who can write to etcd but has no fleet key: a token of their own ACME order (every node would
        # serve it: a certificate for the fleet's names), and values lehttpd never writes. None is served, and
        # the agent goes on with what comes after.
        client = Etcd(etcd.endpoints)
        client.put("/lehttpd/tokens/forged", json.dumps({"node": "n1", "validation": "forged.attacker-thumbprint"}))
        client.put("/lehttpd/tokens/garbage", b"\xff not json")
        client.put("/lehttpd/current/zz.example", "[1, 2]")
        client.put("/lehttpd/versions/zy.example/00000001", json.dumps({"cert": "x"}))  # no sealed key
        client.put("/lehttpd/current/zy.example", json.dumps({"version": 1, "serial": "0x1"}))
        store = FleetStore(Fleet.open(one))
        pair = throwaway_ca_and_leaf(("a.example",))
        with store.lock("a.example"):
            store.save_version("a.example", CertificateFiles(pair.leaf_pem, pair.ca_pem, pair.key_pem))
        _wait_for(lambda: (two / "live" / "a.example" / "cert.pem").read_bytes() == pair.leaf_pem)
        _wait_for(reloaded.exists)
        assert agent.poll() is None and not (webroot / ".well-known" / "acme-challenge" / "forged").exists()
        log = (tmp_path / "agent.log").read_text()
        assert "not published by a node of this fleet" in log and "/lehttpd/tokens/garbage" in log, log
        assert "zy.example: not synced: etcd /lehttpd/versions/zy.example/00000001 holds no sealed key" in log, log
        for planted in ("/lehttpd/current/zz.example", "/lehttpd/current/zy.example"):
            client.delete(planted)
        token_file = webroot / ".well-known" / "acme-challenge" / "tok-en_1"
        started = time.monotonic()
        with store.fleet.tokens_published({"tok-en_1": "tok-en_1.thumb"}):
            assert time.monotonic() - started < 5  # n2 confirmed it had applied the token
            assert token_file.read_text() == "tok-en_1.thumb"
        _wait_for(lambda: not token_file.exists())
        with store.fleet.tokens_published({"tok-en_2": "tok-en_2.thumb"}):
            _wait_for((webroot / ".well-known" / "acme-challenge" / "tok-en_2").exists)
            agent.send_signal(signal.SIGTERM)  # a stopped agent leaves no token behind
            agent.wait(timeout=10)
            assert not (webroot / ".well-known" / "acme-challenge" / "tok-en_2").exists()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_the_agent_never_reloads_apache_while_a_renewal_run_holds_the_run_lock(etcd, tmp_path):
    from lehttpd.fileio import file_lock
    one, two = tmp_path / "one", tmp_path / "two"
    local_lineage(one, "a.example")
    _init(etcd, one)
    reloaded = tmp_path / "reloaded"
    code, _, err = run_cli("fleet", "join", *etcd_flags(etcd.endpoints), "--node", "n2", "--fleet-key",
                           one / ".lehttpd" / "fleet.key", "--reload-command", f"touch {reloaded}",
                           "--config-dir", two)
    assert code == 0, err
    agent = _start_agent(two, tmp_path / "agent.log")
    try:
        _wait_for(reloaded.exists)  # the first sync reloads once
        reloaded.unlink()
        store = FleetStore(Fleet.open(one))
        pair = throwaway_ca_and_leaf(("a.example",))
        with file_lock(CertStore(two).run_lock_path(), 0, "test"):  # a renew run in progress on node two
            with store.lock("a.example"):
                store.save_version("a.example", CertificateFiles(pair.leaf_pem, pair.ca_pem, pair.key_pem))
            _wait_for(lambda: (two / "live" / "a.example" / "cert.pem").read_bytes() == pair.leaf_pem)
            time.sleep(1.0)
            assert not reloaded.exists()  # written, but Apache is not reloaded in the middle of the run
        _wait_for(reloaded.exists)  # the run is over: now it is
    finally:
        agent.kill()
        agent.wait()
