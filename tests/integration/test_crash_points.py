"""SIGKILL at every step of `issue` and `renew`, against a real Pebble: whatever the step, the lineage is either
not there at all (and a new `issue` makes it) or live, complete and renewable; never a live certificate
nothing renews, links at two versions, or a key that is not the certificate's.

The process kills itself with SIGKILL just before its Nth file-system change (mkdir, symlink, rename: every
step the store, the account and the state take), for every N until a run gets through.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lehttpd.store import CertStore
from tests.conftest import run_lehttpd

# Runs lehttpd's own main() with os.mkdir/os.symlink/os.replace counting, and SIGKILL before call KILL_AT.
KILLER = """
import os, signal, sys
limit, calls, enospc = int(os.environ["KILL_AT"]), [0], os.environ.get("ENOSPC")
real_mkdir = os.mkdir
def counted(real):
    def call(*args, **kwargs):
        if real is real_mkdir and os.path.lexists(args[0]):
            return real(*args, **kwargs)  # EEXIST comes first: no step, and no room needed
        calls[0] += 1
        if calls[0] == limit and enospc:  # the disk is full from this step on
            raise OSError(28, "No space left on device", str(args[-1]))
        if calls[0] == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
for name in ("mkdir", "symlink", "replace", "rename"):
    setattr(os, name, counted(getattr(os, name)))
sys.argv = ["lehttpd", *sys.argv[1:]]
from lehttpd.entry import main
sys.exit(main())
"""
MAX_STEPS = 60


def killed_at(step: int, *args: str, enospc: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "KILL_AT": str(step), **({"ENOSPC": "1"} if enospc else {})}
    result = subprocess.run([sys.executable, "-c", KILLER, *args], env=env, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr + result.stdout, result.stderr
    return result


def live_and_consistent(config, name) -> int:
    """The live version, after checking all four links agree and the key belongs to the certificate."""
    store = CertStore(config)
    lineage = store.ready_for_apache(name)  # repairs a half-done switch, refuses a mismatch
    assert store.current_version(name) == lineage.version  # 0 when the four links disagree
    cert = x509.load_pem_x509_certificate((config / "live" / name / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((config / "live" / name / "privkey.pem").read_bytes(), None)
    der = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert cert.public_key().public_bytes(*der) == key.public_key().public_bytes(*der)
    return lineage.version


def renew_statuses(config, pebble) -> dict[str, str]:
    result = run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force",
                         "--json")
    assert result.stdout.strip(), result.stderr
    return {entry["name"]: entry["status"] for entry in json.loads(result.stdout)["lineages"]}


def test_sigkill_before_every_step_of_a_first_issue_leaves_nothing_or_a_renewable_lineage(pebble, tmp_path):
    name = "crash.example.test"
    for step in range(1, MAX_STEPS):
        config = tmp_path / f"issue-{step}"
        code = killed_at(step, "issue", name, *pebble.client_args(config), "-q").returncode
        if code == 0:
            assert step > 10, "the kill never happened: the counter is not wired"
            print(f"issue got through after {step - 1} kill points")
            break
        assert code == -signal.SIGKILL, (step, code)
        live = os.path.lexists(config / "live" / name / "cert.pem")
        conf = (config / "renewal" / f"{name}.conf").exists()
        if live or conf:  # what was made live (or about to be) must renew, with matching key and certificate
            assert conf, f"step {step}: a live certificate with no renewal file"
            assert renew_statuses(config, pebble) == {name: "renewed"}, f"step {step}"
        else:  # never made live: nothing reports it, and issuing again works
            assert renew_statuses(config, pebble) == {}, f"step {step}"
            again = run_lehttpd("issue", name, *pebble.client_args(config), "-q")
            assert again.returncode == 0, (step, again.stderr)
        assert live_and_consistent(config, name) >= 1
    else:
        raise AssertionError(f"issue did not get through {MAX_STEPS} steps")


def test_sigkill_before_every_step_of_a_renewal_leaves_the_old_or_the_new_version_live(pebble, tmp_path):
    name = "crash-renew.example.test"
    template = tmp_path / "template"
    assert run_lehttpd("issue", name, *pebble.client_args(template), "-q").returncode == 0
    for step in range(1, MAX_STEPS):
        config = tmp_path / f"renew-{step}"
        subprocess.run(["cp", "-a", str(template), str(config)], check=True)
        code = killed_at(step, "renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle),
                         "--force", "-q").returncode
        if code == 0:
            assert step > 5, "the kill never happened: the counter is not wired"
            assert live_and_consistent(config, name) == 2
            print(f"renew got through after {step - 1} kill points")
            break
        assert code == -signal.SIGKILL, (step, code)
        assert live_and_consistent(config, name) in (1, 2), f"step {step}"
        assert renew_statuses(config, pebble) == {name: "renewed"}, f"step {step}"
        assert live_and_consistent(config, name) >= 2, f"step {step}"
    else:
        raise AssertionError(f"renew did not get through {MAX_STEPS} steps")


@pytest.mark.parametrize("command", ["issue", "renew"])
def test_a_full_disk_at_every_step_is_one_line_and_never_leaves_a_broken_lineage(pebble, tmp_path, command):
    name = f"full-{command}.example.test"
    template = tmp_path / "template"
    assert run_lehttpd("issue", name, *pebble.client_args(template), "-q").returncode == 0
    for step in range(1, MAX_STEPS):
        config = tmp_path / f"full-{step}"
        subprocess.run(["cp", "-a", str(template), str(config)], check=True)
        if command == "issue":
            args = ("issue", name, *pebble.client_args(config), "--force-renewal", "-q")
        else:
            args = ("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force", "-q")
        result = killed_at(step, *args, enospc=True)
        if result.returncode == 0:
            assert step > 5, "the disk never filled: the counter is not wired"
            print(f"{command} got through after {step - 1} full-disk points")
            break
        said = (result.stderr + result.stdout).strip()
        assert result.returncode == (5 if command == "issue" else 7), (step, said)
        assert "no space left" in said and len(result.stderr.strip().splitlines()) <= 1, (step, said)
        assert live_and_consistent(config, name) == 1, f"step {step}: the previous certificate stays live"
        assert renew_statuses(config, pebble) == {name: "renewed"}, f"step {step}"
    else:
        raise AssertionError(f"{command} did not get through {MAX_STEPS} steps")
