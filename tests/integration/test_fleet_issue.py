"""`lehttpd issue` on a fleet node is a fleet operation, on the fault-test lab (real Pebble, a three-member
etcd cluster, three private Apache instances behind haproxy round-robin on Pebble's http-01 port, one agent
per node): it orders under the lineage's etcd lock, publishes its http-01 tokens (whichever node the CA
reaches answers), and publishes the certificate, which every node then writes, serves and can renew.

Two lineages only (the lab's own, issued before the fleet exists); they live 600 s so that a second `issue`
of a name just issued finds it not yet due. The tests run in file order; the last one stops etcd.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lehttpd.fileio import file_lock
from lehttpd.sandbox.apache import apache_available
from lehttpd.store import CertStore
from tests.integration.fleet_lab import TLS_SITE, FleetLab, Node, start_lab

pytestmark = pytest.mark.skipif(not (shutil.which("etcd") and shutil.which("haproxy") and apache_available()),
                                reason="needs etcd-server, haproxy and apache2 (make deps) and root")

NEW = ("new.fleet.test", "www.new.fleet.test")
CHALLENGE = "/.well-known/acme-challenge/"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = start_lab(tmp_path_factory.mktemp("fleet-issue"), 2, validity=600)
    yield lab
    lab.stop()


def issue(lab: FleetLab, node: Node, *args: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "lehttpd", "issue", *args, *lab.pebble.client_args(node.config_dir),
            "--non-interactive"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def record(lab: FleetLab, name: str, version: int) -> dict:
    return json.loads(lab.client().get(f"/lehttpd/versions/{name}/{version:08d}").value)


def local_serial(node: Node, name: str) -> int | None:
    store = CertStore(node.config_dir)
    return store.current(name).serial if store.exists(name) else None


def wait_written_everywhere(lab: FleetLab, name: str, deadline: float = 10.0) -> list[str]:
    """Wait until every node's store holds etcd's current version of `name`; the nodes that still do not."""
    end = time.monotonic() + deadline
    while True:
        behind = [n.name for n in lab.nodes if local_serial(n, name) != lab.current_serial(name)]
        if not behind or time.monotonic() >= end:
            return behind
        time.sleep(0.1)


def token_requests(node: Node) -> list[str]:
    """The node's access-log lines of http-01 token requests made by Pebble's validation (its User-Agent)."""
    log = node.apache.state / "log" / "other_vhosts_access.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if CHALLENGE in line and "Pebble-VA" in line]


def has_open(pid: int, path: Path) -> bool:
    """Does process `pid` have `path` open (a lock it is waiting for)?"""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def tree(config_dir: Path) -> dict[str, str]:
    """Every file, folder and link under a config dir: a content hash, or the link's target (but the file the
    node's agent rewrites at each heartbeat)."""
    found = {}
    for root, dirs, files in os.walk(config_dir):
        for entry in dirs + files:
            path = Path(root) / entry
            if entry.lstrip(".").startswith("fleet-sync.json"):  # it, or its temporary file being written
                continue
            if path.is_symlink():
                found[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = "folder"
    return found


def test_a_new_name_issued_on_one_node_is_validated_through_every_node_and_published_to_all(lab):
    first, others = lab.nodes[0], lab.nodes[1:]
    for node in lab.nodes:  # the vhost is there before the files: the agents' reload after writing loads it
        node.apache.add_site("new", TLS_SITE.format(https=node.apache.https_port, name=NEW[0],
                                                    config=node.config_dir))
    seen_before = {node.name: len(token_requests(node)) for node in others}
    code, out, err = finish(issue(lab, first, "-d", ",".join(NEW), "--webroot", str(first.webroot),
                                  "--deploy-hook", "true"))
    assert code == 0, out + err
    # Pebble fetches each token from three perspectives; haproxy spreads them round-robin: each other node
    # answered some of them, from its own challenge webroot (the issuing node's agent does not write there).
    for node in others:
        answered = token_requests(node)[seen_before[node.name]:]
        assert answered and all('" 200 ' in line for line in answered), (node.name, answered)

    assert lab.versions(NEW[0]) == 1
    published = record(lab, NEW[0], 1)
    assert published["node"] == "n0" and "PRIVATE KEY" not in published["key"]
    assert "hook" not in published["conf"] and "authenticator = webroot" in published["conf"]
    assert "renew_hook = true" in (first.config_dir / "renewal" / f"{NEW[0]}.conf").read_text()
    assert wait_written_everywhere(lab, NEW[0]) == []
    for node in others:  # a lineage new to a node comes with a renewal file of its own: its webroot, no hooks
        conf = (node.config_dir / "renewal" / f"{NEW[0]}.conf").read_text()
        assert str(node.webroot) in conf and str(first.webroot) not in conf and "hook" not in conf
    end = time.monotonic() + 10
    while any(lab.serial_served_yet(n, NEW[0]) != lab.current_serial(NEW[0]) for n in lab.nodes):
        assert time.monotonic() < end, "a node's Apache does not serve the new certificate 10 s after issue"
        time.sleep(0.2)

    (code, out, err) = finish(lab.nodes[1].renew("--cert-name", NEW[0], "--force"))  # renewed from another node
    assert code == 0, out + err
    assert lab.versions(NEW[0]) == 2 and record(lab, NEW[0], 2)["node"] == "n1"
    assert wait_written_everywhere(lab, NEW[0]) == []
    # The issuing node got version 2 from etcd and kept its own hook; it renews the lineage too.
    assert "renew_hook = true" in (first.config_dir / "renewal" / f"{NEW[0]}.conf").read_text()
    (code, out, err) = finish(first.renew("--cert-name", NEW[0], "--force"))
    assert code == 0, out + err
    assert lab.versions(NEW[0]) == 3 and record(lab, NEW[0], 3)["node"] == "n0"


def test_two_nodes_issuing_the_same_new_name_at_once_order_it_once(lab):
    name = "race.fleet.test"
    results = [finish(proc) for proc in [issue(lab, node, name) for node in lab.nodes[1:]]]
    for code, out, err in results:  # no mode given: each answers from its own challenge webroot
        assert code == 0, out + err
    assert all(f"http-01 mode: webroot (this fleet node's challenge webroot {node.webroot}" in out
               for node, (_, out, _) in zip(lab.nodes[1:], results))
    assert lab.versions(name) == 1
    ordered = [out for _, out, _ in results if "Ordering a certificate" in out]
    kept = [out for _, out, _ in results if "not yet due for renewal" in out and "keeping it" in out]
    assert len(ordered) == 1 and len(kept) == 1, results
    assert "Ordering" not in kept[0]
    assert wait_written_everywhere(lab, name) == []
    for node in lab.nodes:
        assert (node.config_dir / "renewal" / f"{name}.conf").exists()


def test_reissuing_a_fleet_lineage_publishes_the_new_version_and_no_node_keeps_the_old_one(lab):
    name = lab.names[0]
    before, node = lab.versions(name), lab.nodes[2]
    code, out, err = finish(issue(lab, node, name, "--force-renewal", "--webroot", str(node.webroot)))
    assert code == 0, out + err
    assert lab.versions(name) == before + 1 and record(lab, name, before + 1)["node"] == "n2"
    assert lab.current_serial(name) == local_serial(node, name)
    assert lab.wait_served_everywhere(10) == {}
    new_serial = local_serial(node, name)
    # The issuing node's next renew pulls etcd's version under the lock: the new one, not the old one back.
    (code, out, err) = finish(node.renew("--cert-name", name))
    assert code == 0, out + err
    assert local_serial(node, name) == new_serial == local_serial(lab.nodes[0], name) == lab.current_serial(name)


def test_issue_waits_for_the_nodes_run_lock_which_the_agent_holds_while_it_reloads_apache(lab):
    name, node = lab.names[1], lab.nodes[0]
    before = lab.versions(name)
    run_lock = CertStore(node.config_dir).run_lock_path()
    with file_lock(run_lock, 0, "the test's stand-in for a reload"):
        proc = issue(lab, node, name, "--force-renewal", "--webroot", str(node.webroot))
        end = time.monotonic() + 60
        while not has_open(proc.pid, run_lock):  # until it waits for the lock
            assert proc.poll() is None and time.monotonic() < end, finish(proc)
            time.sleep(0.05)
        time.sleep(1)
        assert proc.poll() is None  # still waiting: no lock taken in etcd, no token published, nothing ordered
        assert lab.client().get(f"/lehttpd/locks/{name}") is None and not lab.client().get_prefix("/lehttpd/tokens/")[0]
    code, out, err = finish(proc)
    assert code == 0, out + err
    assert lab.versions(name) == before + 1 and lab.current_serial(name) == local_serial(node, name)


def test_a_certificate_revoked_on_one_node_is_replaced_everywhere_by_that_nodes_next_renew(lab):
    name, node = lab.names[0], lab.nodes[1]
    revoked, versions = lab.current_serial(name), lab.versions(name)
    argv = [sys.executable, "-m", "lehttpd", "revoke", "--cert-name", name, "--config-dir", str(node.config_dir),
            "--reason", "keyCompromise"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr  # n1 has no account: signed with the certificate's key
    assert "signed with the certificate's own key" in done.stderr + done.stdout
    assert f"`lehttpd renew --cert-name {name}` here now replaces it on every node" in done.stdout
    argv[argv.index(str(node.config_dir))] = str(lab.nodes[2].config_dir)
    again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert again.returncode == 3 and "alreadyRevoked" in again.stderr, again.stdout + again.stderr  # the CA has it
    code, out, err = finish(node.renew("--cert-name", name))  # not --force: revoked means due
    assert code == 0, out + err
    assert lab.versions(name) == versions + 1 and lab.current_serial(name) != revoked
    assert record(lab, name, versions + 1)["node"] == node.name
    assert lab.wait_served_everywhere(10, [name]) == {}


def test_etcd_unreachable_issue_exits_4_in_one_line_and_writes_nothing(lab):
    node = lab.nodes[1]
    before = tree(node.config_dir)
    lab.etcd.stop()
    code, out, err = finish(issue(lab, node, "down.fleet.test"))
    assert code == 4, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lehttpd: error: etcd unreachable"), err
    assert "nothing ordered" in lines[0] and "Ordering" not in out
    assert tree(node.config_dir) == before
