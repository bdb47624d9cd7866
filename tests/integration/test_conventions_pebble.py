"""Conventions against real services: the operations log of a real issuance holds no secret; delete asks on a
terminal and refuses to guess without one; account show/update/deactivate on Pebble; certificates shows states."""
from __future__ import annotations

import json
import re
import shlex
import stat
import os
import pty
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import make_lineage  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


def test_the_log_of_a_verbose_eab_issuance_holds_no_secret(make_pebble, tmp_path):
    server = make_pebble(eab_keys={"kid-1": HMAC})
    config, logs = tmp_path / "le", tmp_path / "log"
    result = run_lehttpd("issue", "logged.example.test", *server.client_args(config), "-vv", "--eab-kid", "kid-1",
                         "--eab-hmac-key", HMAC, "--log-dir", str(logs))
    assert result.returncode == 0, result.stderr
    text = (logs / "lehttpd.log").read_text()
    assert "POST " in text and "exit status 0" in text, "the -v exchange and the outcome are there"
    assert HMAC not in text and "--eab-hmac-key <redacted>" in text
    account_key = json.loads(next(config.glob("accounts/**/private_key.json")).read_text())
    assert account_key["d"] not in text
    key_lines = (config / "live/logged.example.test/privkey.pem").read_text().splitlines()[1:-1]
    assert not any(line in text for line in key_lines)


def _delete_on_a_terminal(config: Path, name: str, answer: bytes) -> tuple[int, str]:
    """Run `lehttpd delete` with a pseudo-terminal as stdin (and stderr, where the question goes)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lehttpd", "delete", "--cert-name", name, "--config-dir",
                             str(config)], stdin=follower, stderr=follower, stdout=subprocess.PIPE, text=True)
    os.close(follower)
    os.write(leader, answer)
    out, _ = proc.communicate(timeout=60)
    os.close(leader)
    return proc.returncode, out


def test_delete_asks_on_a_terminal_and_wants_yes_from_a_script(tmp_path):
    config = tmp_path / "le"
    make_lineage(config, "kept.test", ("kept.test",))
    code, out = _delete_on_a_terminal(config, "kept.test", b"n\n")
    assert code == 0 and "Nothing deleted" in out and (config / "live/kept.test").exists()
    scripted = run_lehttpd("delete", "--cert-name", "kept.test", "--config-dir", str(config))
    assert scripted.returncode == 2 and "add --yes" in scripted.stderr
    assert (config / "live/kept.test").exists()
    code, out = _delete_on_a_terminal(config, "kept.test", b"y\n")
    assert code == 0 and "Deleted kept.test" in out and not (config / "live/kept.test").exists()
    make_lineage(config, "scripted.test", ("scripted.test",))
    assert run_lehttpd("delete", "--cert-name", "scripted.test", "--config-dir", str(config), "-n").returncode == 0
    assert not (config / "live/scripted.test").exists()


def test_certificates_filters_by_name_shows_revoked_and_revoke_prints_one_serial_format(pebble, tmp_path):
    config = tmp_path / "le"
    for name in ("one.example.test", "two.example.test"):
        issued = run_lehttpd("issue", name, *pebble.client_args(config))
        assert issued.returncode == 0, issued.stderr
    listed = run_lehttpd("certificates", "--config-dir", str(config), "--cert-name", "two.example.test", "--json")
    documents = json.loads(listed.stdout)["certificates"]
    assert [d["name"] for d in documents] == ["two.example.test"] and documents[0]["state"] == "valid"
    serial = documents[0]["serial"]
    revoked = run_lehttpd("revoke", "--cert-name", "two.example.test", "--config-dir", str(config),
                          "--ca-bundle", str(pebble.ca_bundle))
    assert revoked.returncode == 0, revoked.stderr
    assert "0x" not in revoked.stdout and revoked.stdout.count(f"serial {serial}") == 2, revoked.stdout
    text = run_lehttpd("certificates", "--config-dir", str(config), "--cert-name", "two.example.test")
    assert "REVOKED" in text.stdout and "days left" not in text.stdout and f"serial:  {serial}" in text.stdout
    assert "one.example.test" not in text.stdout
    unknown = run_lehttpd("certificates", "--config-dir", str(config), "--cert-name", "three.example.test")
    assert unknown.returncode == 2 and "no certificate named 'three.example.test'" in unknown.stderr
    missing = run_lehttpd("certificates", "--config-dir", str(tmp_path / "nonexistent"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr


def test_certificates_says_invalid_when_the_key_is_not_the_certificates(tmp_path):
    config = tmp_path / "le"
    make_lineage(config, "a.test", ("a.test",))
    make_lineage(config, "b.test", ("b.test",))
    key = config / "live/a.test/privkey.pem"
    key.resolve().write_bytes((config / "live/b.test/privkey.pem").read_bytes())
    listed = run_lehttpd("certificates", "--config-dir", str(config), "--json")
    states = {d["name"]: d["state"] for d in json.loads(listed.stdout)["certificates"]}
    assert states == {"a.test": "invalid", "b.test": "valid"}


def test_account_show_update_and_deactivate_on_pebble(pebble, tmp_path):
    config = tmp_path / "le"
    server = ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle), "--config-dir", str(config)]
    assert run_lehttpd("account", "show", *server).returncode == 2, "no account yet"
    issued = run_lehttpd("issue", "acct.example.test", *pebble.client_args(config), "-m", "first@example.test")
    assert issued.returncode == 0, issued.stderr
    shown = run_lehttpd("account", "show", *server)
    assert shown.returncode == 0, shown.stderr
    assert "first@example.test" in shown.stdout and "status:  valid" in shown.stdout
    updated = run_lehttpd("account", "update", "--email", "second@example.test", *server)
    assert updated.returncode == 0, updated.stderr
    shown = run_lehttpd("account", "show", *server)
    assert "second@example.test" in shown.stdout and "first@" not in shown.stdout, "the server has the new contact"
    assert run_lehttpd("account", "update", "--email", "not an address", *server).returncode == 2
    refused = run_lehttpd("account", "deactivate", *server)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    gone = run_lehttpd("account", "deactivate", "--yes", *server)
    assert gone.returncode == 0, gone.stderr
    assert not list(config.glob("accounts/**/private_key.json"))
    again = run_lehttpd("issue", "acct2.example.test", *pebble.client_args(config))
    assert again.returncode == 0 and "Registered ACME account" in again.stdout, "a fresh account is registered"


def test_quiet_changes_print_nothing_and_the_undo_hint_is_the_exact_command(tmp_path):
    import pytest

    from apache_instance import apache_available, make_instance

    if not apache_available():
        pytest.skip("Debian apache2 (and root) needed")
    inst = make_instance(tmp_path / "apache")
    inst.add_site("quiet.test")
    make_lineage(tmp_path / "le", "quiet.test", ("quiet.test", "www.quiet.test"))
    inst.start()
    try:
        before = inst.snapshot()
        flags = ["--apache-ctl", str(inst.ctl), "--https-port", str(inst.https_port), "--work-dir", str(tmp_path / "w")]
        installed = run_lehttpd("install", "--cert-name", "quiet.test", "--config-dir", str(tmp_path / "le"), *flags)
        assert installed.returncode == 0, installed.stderr
        hint = re.search(r"undo with `(lehttpd rollback[^`]*)`", installed.stdout).group(1)
        assert f"--work-dir {tmp_path / 'w'}" in hint and f"--apache-ctl {inst.ctl}" in hint
        hardened = run_lehttpd("harden", "-q", "--hsts", *flags)
        assert hardened.returncode == 0 and hardened.stdout == "" and hardened.stderr == ""
        undo = run_lehttpd(*shlex.split(hint)[1:], "--checkpoints", "2")
        assert undo.returncode == 0, undo.stderr
        assert inst.snapshot() == before, "the printed command undid both changes, byte for byte"
    finally:
        inst.stop()


def test_a_failed_quiet_renewal_can_be_read_in_the_log_next_morning(make_pebble, tmp_path):
    server = make_pebble()
    config, logs = tmp_path / "le", tmp_path / "log"
    issued = run_lehttpd("issue", "night.example.test", *server.client_args(config), "--log-dir", str(logs))
    assert issued.returncode == 0, issued.stderr
    server.stop()  # the CA is down at 3 a.m.
    night = run_lehttpd("renew", "--force", "--quiet", "--config-dir", str(config), "--log-dir", str(logs))
    assert night.returncode == 7
    assert "renewal of night.example.test failed" in night.stderr and night.stdout.count("\n") <= 1
    text = (logs / "lehttpd.log").read_text()
    assert "lehttpd issue night.example.test" in text and "lehttpd renew --force --quiet" in text
    assert "ERROR renewal of night.example.test failed" in text and text.rstrip().endswith("exit status 7")
    assert stat.S_IMODE(os.stat(logs / "lehttpd.log").st_mode) == 0o600


def test_non_interactive_never_asks_even_on_a_terminal(pebble, tmp_path):
    args = [a for a in pebble.client_args(tmp_path / "le") if a != "--agree-tos"]
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lehttpd", "issue", "tty.example.test", *args, "-n"],
                            stdin=follower, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    os.close(follower)
    _, err = proc.communicate(timeout=60)  # nothing is typed: a question would hang until the time-out
    os.close(leader)
    assert proc.returncode == 2 and "--agree-tos" in err and "[y/N]" not in err
