"""A fleet node's renew catches up with etcd from one small read (lehttpd/fleet/catchup.py), on a real etcd:
the pointers created since its last catch-up, every pointer when its stamp cannot be used."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from lehttpd.fleet.config import catch_up_path
from lehttpd.fleet.shared import Fleet
from lehttpd.sandbox.etcd import EtcdCluster
from lehttpd.store import CertStore
from tests.integration.fleet_fixtures import etcd_flags, local_lineage, run_cli

pytestmark = pytest.mark.skipif(not shutil.which("etcd"), reason="etcd-server is not installed (make deps)")


@pytest.fixture
def fleet_of_two(tmp_path):
    """Node one (a.example, b.example in etcd) and node two joined from it; yields (one, two, etcd)."""
    with EtcdCluster(tmp_path / "etcd", size=1) as etcd:
        one, two = tmp_path / "one", tmp_path / "two"
        for name in ("a.example", "b.example"):
            local_lineage(one, name)
        code, _, err = run_cli("fleet", "init", *etcd_flags(etcd.endpoints), "--node", "n1", "--config-dir", one)
        assert code == 0, err
        code, _, err = run_cli("fleet", "join", *etcd_flags(etcd.endpoints), "--node", "n2", "--fleet-key",
                               one / ".lehttpd" / "fleet.key", "--config-dir", two)
        assert code == 0, err
        yield one, two, etcd


def publish_late_lineage(one, tmp_path, name="late.example") -> None:
    """A lineage another node adds to etcd (as `fleet import` on it does)."""
    local_lineage(tmp_path / "elsewhere", name)
    fleet = Fleet.open(one)
    fleet.store = CertStore(tmp_path / "elsewhere")
    assert fleet.import_lineage(name)


def spied_catch_up(config_dir) -> tuple[list[str], list[dict]]:
    """Fleet.catch_up() on `config_dir`, and the etcd requests it made (path, body, how many keys came back)."""
    fleet = Fleet.open(config_dir)
    calls, call = [], fleet.etcd.call

    def spy(path, body, *args, **kwargs):
        answer = call(path, body, *args, **kwargs)
        calls.append({"path": path, "body": body, "keys": len(answer.get("kvs") or [])})
        return answer
    fleet.etcd.call = spy
    return fleet.catch_up(), calls


def full_read(calls: list[dict]) -> bool:
    """Whether every pointer was read (a range over current/ without min_create_revision)."""
    return any(c["path"] == "/v3/kv/range" and "range_end" in c["body"] and "min_create_revision" not in c["body"]
               for c in calls)


def test_a_lineage_created_after_the_last_catch_up_comes_in_one_small_read(fleet_of_two, tmp_path):
    one, two, _ = fleet_of_two
    code, _, err = run_cli("renew", "--no-ari", "--config-dir", two)
    assert code == 0, err
    stamp = catch_up_path(CertStore(two))
    assert oct(os.lstat(stamp).st_mode & 0o777) == "0o600"
    publish_late_lineage(one, tmp_path)
    written, calls = spied_catch_up(two)
    assert written == ["late.example"]
    assert (two / "live" / "late.example" / "cert.pem").exists()
    assert not full_read(calls)
    assert calls[0]["body"]["keys_only"] and int(calls[0]["body"]["min_create_revision"]) > 1
    assert calls[0]["keys"] == 1  # only the new pointer, not the two known ones
    written, calls = spied_catch_up(two)
    assert written == [] and [c["keys"] for c in calls] == [0]


def test_a_lineage_lost_here_after_the_catch_up_is_written_again(fleet_of_two):
    _, two, _ = fleet_of_two
    assert spied_catch_up(two)[0] == []
    # removed by hand, or lost with a disk: not `lehttpd delete`, which on a fleet node takes it out of etcd
    assert CertStore(two).delete("a.example") == []
    written, calls = spied_catch_up(two)  # live/ holds fewer lineages than etcd has pointers
    assert written == ["a.example"] and (two / "live" / "a.example" / "cert.pem").exists()
    assert full_read(calls)


@pytest.mark.parametrize("stamp", ["another cluster", "a revision etcd has not reached", "writable by others"])
def test_a_stamp_that_cannot_be_used_means_every_pointer_is_read(fleet_of_two, stamp):
    _, two, _ = fleet_of_two
    assert spied_catch_up(two)[0] == []
    os.remove(two / "live" / "b.example" / "cert.pem")  # b.example is missing; live/ still lists two lineages
    path = catch_up_path(CertStore(two))
    forged = json.loads(path.read_text())  # as written: hides nothing created before it
    if stamp == "another cluster":
        forged["cluster"] = "1"
    elif stamp == "a revision etcd has not reached":
        forged["revision"] = 10 ** 9
    path.write_text(json.dumps(forged))
    if stamp == "writable by others":
        os.chmod(path, 0o666)
    _, calls = spied_catch_up(two)
    assert (two / "live" / "b.example" / "cert.pem").exists()  # pulled (its lock repairs the link first)
    assert full_read(calls)


def test_a_second_run_with_nothing_due_parses_no_certificate_and_opens_no_key(fleet_of_two):
    """Decided from the renewal index and one small etcd read: neither cryptography nor the ACME client is
    imported (what a cron run on thousands of lineages pays for otherwise)."""
    _, two, _ = fleet_of_two
    script = ("import sys; import lehttpd.renew.index as index; index.RACY_NS = 0; from lehttpd import cli; "
              f"code = cli.run(['renew', '--no-ari', '--quiet', '--config-dir', {str(two)!r}]); "
              "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'cryptography', 'acme', 'josepy'}))")
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert first.stdout.startswith("0 ["), first.stderr  # reads everything, writes the index
    second = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert second.stdout.strip() == "0 []", second.stderr
