"""Fault tests of the fleet on loopback: real Pebble, a three-member etcd cluster, three private Apache
instances behind haproxy on the port Pebble validates, one agent per node.

The issue's 50 lineages live VALIDITY seconds, so they are due half of that after each renewal, and a run of
50 orders on this two-core machine ends well before the first of them expires. The tests share one lab and
run in file order; each waits until what it needs is due. After the first test, the others work on the
lineages renewed first (due first): the rest expire meanwhile, and an expired certificate cannot be fetched
with verification on.
"""
from __future__ import annotations

import json
import shutil
import time

import pytest

from lehttpd.sandbox.apache import apache_available
from tests.integration.fleet_fixtures import run_cli
from tests.integration.fleet_lab import kill, start_lab

LINEAGES = 50
VALIDITY = 90
SUBSET = 12  # the leader-kill test: enough lineages that the kill falls inside the run
pytestmark = pytest.mark.skipif(not (shutil.which("etcd") and shutil.which("haproxy") and apache_available()),
                                reason="needs etcd-server, haproxy and apache2 (make deps) and root")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = start_lab(tmp_path_factory.mktemp("fleet"), LINEAGES, validity=VALIDITY)
    yield lab
    lab.stop()


def _finish(procs):
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, out, err))
    return results


def test_every_lineage_due_on_three_nodes_renewing_together_gets_one_version_served_everywhere(lab):
    assert not lab.wait_served_everywhere(10)  # after join, every node serves the imported versions
    before = {name: lab.versions(name) for name in lab.names}
    lab.wait_due()
    with lab.watching_links() as watch:
        results = _finish([node.renew() for node in lab.nodes])
        assert lab.wait_served_everywhere(10) == {}  # every node's Apache serves the new versions
    for code, out, err in results:
        assert code == 0, out + err
        assert "Traceback" not in err and "unexpected" not in err
    assert {name: lab.versions(name) for name in lab.names} == {name: before[name] + 1 for name in lab.names}
    renewers = {json.loads(lab.client().get(f"/lehttpd/versions/{n}/00000002").value)["node"] for n in lab.names}
    assert renewers <= {"n0", "n1", "n2"}
    lags = watch.lags()  # each node took each new version within 10 s of its publication, not only by the end
    assert len(lags) == 3 * LINEAGES and max(lags.values()) <= 10, sorted(lags.items(), key=lambda kv: -kv[1])[:5]
    code, out, err = run_cli("fleet", "status", "--config-dir", lab.nodes[1].config_dir)
    assert code == 0, out + err
    for node in lab.nodes:
        assert f"{node.name} " in out and "STALE" not in out
    assert out.count("renewed by n") == LINEAGES and "not yet on this node" not in out


def test_a_renewer_killed_holding_the_lock_is_taken_over_after_the_lease_without_a_duplicate(lab):
    name, = lab.renewed_first(1)
    before = lab.versions(name)
    lab.wait_due([name])
    first = lab.nodes[0].renew("--cert-name", name)
    deadline = time.monotonic() + 60
    while not lab.client().get_prefix("/lehttpd/tokens/")[0]:  # mid-order: lock held, tokens published
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.02)
    assert lab.client().get(f"/lehttpd/locks/{name}") is not None
    kill(first)
    killed_at = time.monotonic()
    (code, out, err), = _finish([lab.nodes[1].renew("--cert-name", name)])
    assert code == 0, out + err
    assert time.monotonic() - killed_at >= 1.0  # it waited for the dead node's lease (3 s) to run out
    assert lab.versions(name) == before + 1
    latest = json.loads(lab.client().get(f"/lehttpd/current/{name}").value)
    assert json.loads(lab.client().get(f"/lehttpd/versions/{name}/{latest['version']:08d}").value)["node"] == "n1"
    (code, out, err), = _finish([lab.nodes[2].renew("--cert-name", name)])  # fresh now: nothing to do
    assert code == 0 and lab.versions(name) == before + 1
    assert lab.wait_served_everywhere(10, [name]) == {}


def test_the_etcd_leader_killed_mid_run_loses_nothing_and_the_next_run_completes(lab):
    names = lab.renewed_first(SUBSET)
    only = [flag for name in names for flag in ("--cert-name", name)]
    before = {name: lab.versions(name) for name in names}
    lab.wait_due(names)
    run = lab.nodes[0].renew("--workers", "2", *only)
    deadline = time.monotonic() + 60
    while sum(lab.versions(n) for n in names) == sum(before.values()):  # the run is saving versions
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.05)
    leader = lab.etcd.leader()
    lab.etcd.kill(leader)
    (code, out, err), = _finish([run])
    assert "Traceback" not in err and "unexpected" not in err, err  # finished, or failed in one line per lineage
    (code, out, err), = _finish([lab.nodes[1].renew(*only)])
    assert code == 0, out + err
    assert {name: lab.versions(name) for name in names} == {name: before[name] + 1 for name in names}
    assert lab.wait_served_everywhere(10, names) == {}
    lab.etcd.restart(leader)


def test_etcd_unreachable_nodes_keep_serving_renew_fails_and_status_shows_staleness(lab):
    names = lab.renewed_first(SUBSET, last=True)  # still valid: renewed by the previous test
    served = {name: lab.served_serial(lab.nodes[2], name) for name in names}
    lab.etcd.stop()
    code, out, err = run_cli("renew", "--config-dir", lab.nodes[2].config_dir, "--force")
    assert code == 4 and "etcd unreachable" in err and "keeps serving" in err
    time.sleep(1)
    for node in lab.nodes:
        assert node.agent.poll() is None  # the agents wait for etcd; Apache keeps serving
    assert {name: lab.served_serial(lab.nodes[2], name) for name in names} == served
    code, out, err = run_cli("fleet", "status", "--config-dir", lab.nodes[2].config_dir)
    assert code == 4 and "etcd unreachable" in err
    assert "agent last synced" in out and "never" not in out
