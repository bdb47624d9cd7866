"""Issue 8 against a real Pebble: a local user, a planted file, a crash, a full disk or a second `issue` never
turn lehttpd (root, from cron) against the machine or leave a certificate that silently stops renewing.

The attacks run as `nobody` (setpriv) under umask 000, as a hostile local user would; lehttpd runs as root.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import run_lehttpd

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def as_nobody(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, "sh", "-c", f"umask 000; {script}"], capture_output=True, text=True, timeout=30)


def lehttpd_umask_000(*args: str) -> subprocess.CompletedProcess:
    """The real command line, as root, started from a shell whose umask is 000 (a careless cron set-up)."""
    return subprocess.run(["sh", "-c", 'umask 000; exec "$0" -m lehttpd "$@"', sys.executable, *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def shared_dir():
    """A folder `nobody` can reach (pytest's tmp_path is 0700): /tmp/lehttpd-sec-XXXX, 0755, root's."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the attack as nobody")
    folder = Path(tempfile.mkdtemp(prefix="lehttpd-sec-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def issue(pebble, config: Path, *names: str, umask_000: bool = True) -> subprocess.CompletedProcess:
    args = ("issue", *names, *pebble.client_args(config), "--http-address", "127.0.0.1")
    result = lehttpd_umask_000(*args) if umask_000 else run_lehttpd(*args)
    assert result.returncode == 0, result.stderr
    return result


def renew(config: Path, *args: str) -> subprocess.CompletedProcess:
    return run_lehttpd("renew", "--config-dir", str(config), "--json", *args, timeout=120)


def statuses(result: subprocess.CompletedProcess) -> dict[str, str]:
    assert result.stdout.strip(), result.stderr
    return {entry["name"]: entry["status"] for entry in json.loads(result.stdout)["lineages"]}


def reasons(result: subprocess.CompletedProcess) -> dict[str, str]:
    return {entry["name"]: entry["reason"] for entry in json.loads(result.stdout)["lineages"]}


# -- 1. modes never depend on the umask --------------------------------------------------------------------
def test_under_umask_000_every_folder_and_file_gets_its_exact_mode(pebble, shared_dir):
    config = shared_dir / "le"
    issue(pebble, config, "modes.example.test")
    assert renew(config, "--force").returncode == 0  # writes renewal state and the lock files too
    expected = {"": 0o755, "live": 0o700, "archive": 0o700, "renewal": 0o755, "accounts": 0o700,
                ".locks": 0o700, "live/modes.example.test": 0o700, "archive/modes.example.test": 0o700,
                "renewal/modes.example.test.conf": 0o644, "archive/modes.example.test/privkey1.pem": 0o600,
                "archive/modes.example.test/cert1.pem": 0o644, ".locks/renew.lock": 0o600,
                ".locks/modes.example.test.lock": 0o600}
    assert {name: mode(config / name) for name in expected} == expected
    for folder in (config / "accounts").rglob("*"):
        if folder.is_dir():
            assert mode(folder) == 0o700, folder
    (key,) = (config / "accounts").rglob("private_key.json")
    assert mode(key) == 0o600


# -- 2. StrictModes: what another user can write never becomes a command root runs --------------------------
def test_nobody_cannot_plant_a_hook_that_root_runs(pebble, shared_dir):
    config = shared_dir / "le"
    marker = shared_dir / "root-ran-nobodys-hook"
    for name in ("victim.example.test", "bystander.example.test"):
        issue(pebble, config, name)
    conf = config / "renewal" / "victim.example.test.conf"
    hook = f"\npre_hook = touch {marker}\n"
    # Today's tree: nobody can neither change a renewal file nor plant one.
    attempt = as_nobody(f"printf '{hook}' >> {conf}; printf 'x' > {config}/renewal/planted.conf")
    assert attempt.returncode != 0 and "Permission denied" in attempt.stderr
    assert hook.strip() not in conf.read_text() and not (config / "renewal/planted.conf").exists()

    # A tree an older version left under umask 000: the file is 0666, nobody edits it in place.
    os.chmod(conf, 0o666)
    assert as_nobody(f"printf '{hook}' >> {conf}").returncode == 0
    result = renew(config, "--force")
    assert not marker.exists(), "root ran a hook nobody wrote"
    assert statuses(result) == {"victim.example.test": "skipped", "bystander.example.test": "renewed"}
    why = reasons(result)["victim.example.test"]
    assert "writable by group and others (mode 0666)" in why and f"chmod go-w {conf}" in why
    assert result.returncode == 7

    # A renewal folder others can write: nobody replaces the file with one of their own.
    os.chmod(conf, 0o644)
    os.chmod(config / "renewal", 0o777)
    text = conf.read_text()
    replace = as_nobody(f"rm -f {conf} && cat > {conf} <<'EOF'\n{text}\nEOF\n")
    assert replace.returncode == 0, replace.stderr
    assert conf.stat().st_uid != 0
    result = renew(config, "--force")
    assert not marker.exists()
    assert set(statuses(result).values()) == {"skipped"}
    assert "chmod go-w" in reasons(result)["victim.example.test"]


def test_a_script_planted_in_renewal_hooks_is_not_run_and_blocks_the_run_with_the_fix(pebble, shared_dir):
    config = shared_dir / "le"
    marker = shared_dir / "root-ran-nobodys-script"
    issue(pebble, config, "hooks.example.test")
    folder = config / "renewal-hooks" / "pre"
    folder.mkdir(parents=True)
    os.chmod(folder, 0o777)  # a careless admin
    planted = as_nobody(f"printf '#!/bin/sh\\ntouch {marker}\\n' > {folder}/00-evil && chmod 755 {folder}/00-evil")
    assert planted.returncode == 0, planted.stderr
    result = renew(config, "--force")
    assert not marker.exists()
    assert statuses(result) == {"hooks.example.test": "failed"}
    document = json.loads(result.stdout)
    assert any(f"chmod go-w {folder}" in error for error in document["run_errors"]), document
    os.chmod(folder, 0o755)  # fixed folder, but the script is nobody's: still refused
    result = renew(config, "--force")
    assert not marker.exists()
    assert any("owned by nobody" in error for error in json.loads(result.stdout)["run_errors"])


def test_an_account_nobody_planted_in_a_world_writable_accounts_tree_is_never_used(pebble, shared_dir):
    """An account key signs every order and can revoke every certificate: one nobody holds must never be used."""
    config, nobodys = shared_dir / "le", shared_dir / "nobodys"
    issue(pebble, config, "account.example.test")
    issue(pebble, nobodys, "nobodys.example.test")  # an account the CA knows, whose key nobody holds
    (planted,) = [key.parent for key in (nobodys / "accounts").rglob("private_key.json")]
    loot = shared_dir / "loot"
    shutil.copytree(planted, loot)
    subprocess.run(["chmod", "-R", "a+rX", str(loot)], check=True)
    (victim,) = [key.parent for key in (config / "accounts").rglob("private_key.json")]
    for folder in (config / "accounts", *victim.relative_to(config / "accounts").parents, victim):
        os.chmod(config / "accounts" / folder, 0o777)  # as an older version left it under umask 000
    attempt = as_nobody(f"cp -r {loot} {victim.parent}/{planted.name}")
    assert attempt.returncode == 0, attempt.stderr

    result = run_lehttpd("issue", "second.example.test", *pebble.client_args(config))
    assert result.returncode == 5, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"lehttpd: error: {config / 'accounts'}") and "chmod go-w" in line, line
    assert not (config / "renewal" / "second.example.test.conf").exists()
    result = renew(config, "--force")
    assert statuses(result) == {"account.example.test": "failed"}
    assert "writable by group and others" in reasons(result)["account.example.test"]
    assert planted.name not in (config / "renewal" / "account.example.test.conf").read_text()


def test_a_hook_command_naming_a_program_nobody_controls_is_never_run_by_root(pebble, shared_dir):
    """The renewal file is root's, but the script its hook names sits where nobody can change it."""
    marker = shared_dir / "root-ran-nobodys-program"
    bin_dir = shared_dir / "bin"
    bin_dir.mkdir()
    os.chown(bin_dir, 65534, 65534)  # nobody's own folder, as a careless admin handed it out
    planted = as_nobody(f"printf '#!/bin/sh\\ntouch {marker}\\n' > {bin_dir}/reload && chmod 755 {bin_dir}/reload")
    assert planted.returncode == 0, planted.stderr
    config = shared_dir / "le"
    result = run_lehttpd("issue", "program.example.test", *pebble.client_args(config),
                         "--deploy-hook", f"{bin_dir}/reload --graceful")
    assert not marker.exists(), "root ran a program nobody wrote"
    assert result.returncode == 9, result.stderr  # the certificate is kept, the hook is reported
    assert "not run" in result.stderr and "owned by nobody" in result.stderr
    assert (config / "live" / "program.example.test" / "cert.pem").exists()

    result = renew(config, "--force")  # the stored hook, from root's own renewal file
    assert not marker.exists()
    (entry,) = json.loads(result.stdout)["lineages"]
    assert entry["status"] == "renewed" and "owned by nobody" in entry["hook_error"], entry
    assert result.returncode == 7

    os.chown(bin_dir, 0, 0)
    os.chown(bin_dir / "reload", 0, 0)
    os.chmod(bin_dir, 0o777)  # root's script, but in a folder anyone can write: it could be swapped
    result = renew(config, "--force")
    assert not marker.exists()
    assert f"chmod go-w {bin_dir}" in json.loads(result.stdout)["lineages"][0]["hook_error"]
    os.chmod(bin_dir, 0o755)
    result = renew(config, "--force")  # trusted at last: it runs, and --json's stdout is still one document
    assert result.returncode == 0 and marker.exists(), result.stdout
    assert statuses(result) == {"program.example.test": "renewed"}


def test_a_ca_bundle_in_a_folder_nobody_owns_is_not_trusted_for_the_acme_server(pebble, shared_dir):
    """Whoever can swap the CA bundle decides which server lehttpd takes for the CA (orders, ARI, revoke)."""
    config, folder = shared_dir / "le", shared_dir / "ca"
    folder.mkdir()
    bundle = folder / "ca.pem"
    bundle.write_bytes(pebble.ca_bundle.read_bytes())
    args = pebble.client_args(config)
    args[args.index("--ca-bundle") + 1] = str(bundle)
    assert run_lehttpd("issue", "bundle.example.test", *args).returncode == 0
    os.chown(folder, 65534, 65534)  # handed to nobody: they could put their own CA in it at any time
    result = renew(config, "--force")
    assert statuses(result) == {"bundle.example.test": "skipped"}
    why = reasons(result)["bundle.example.test"]
    assert "CA bundle" in why and f"{folder} " in why and "owned by nobody" in why, why
    result = run_lehttpd("issue", "other.example.test", *args)
    assert result.returncode == 5 and "owned by nobody" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    os.chown(folder, 0, 0)
    os.chmod(bundle, 0o666)  # root's file, but anyone may write it
    result = run_lehttpd("issue", "other.example.test", *args)
    assert result.returncode == 5 and f"chmod go-w {bundle}" in result.stderr, result.stderr


def test_renewal_state_nobody_planted_never_holds_a_renewal_back(pebble, shared_dir):
    """A back-off until 2099 in a state folder an older version left world-writable would let the lineage expire."""
    config = shared_dir / "le"
    name = "state.example.test"
    issue(pebble, config, name)
    state_dir = config / ".lehttpd" / "renew-state"
    state_dir.mkdir(parents=True, exist_ok=True)
    for folder in (config / ".lehttpd", state_dir):
        os.chmod(folder, 0o777)
    planted = json.dumps({"failures": 9, "last_error": "planted", "retry_not_before": "2099-01-01T00:00:00+00:00",
                          "last_failure": "2026-01-01T00:00:00+00:00"})
    attempt = as_nobody(f"printf '%s' '{planted}' > {state_dir}/{name}.json")
    assert attempt.returncode == 0, attempt.stderr
    result = renew(config)
    assert statuses(result) == {name: "not_due"}
    assert "backing off" not in reasons(result)[name] and "2099" not in reasons(result)[name]
    monitor = run_lehttpd("check", "--all", "--no-apache", "--json", "--config-dir", str(config))
    (row,) = json.loads(monitor.stdout)["rows"]
    assert row["last_error"] is None and "2099" not in str(row["next_due"]), row
    failing = renew(config, "--force", "--ca-bundle", "/etc/ssl/certs/ca-certificates.crt")  # Pebble untrusted
    assert statuses(failing) == {name: "failed"}  # its back-off cannot be kept there, and the run says why
    assert f"renewal state not saved: {config / '.lehttpd'} (folder) is writable by group and others" \
        in failing.stderr and f"chmod go-w {config / '.lehttpd'}" in failing.stderr, failing.stderr
    assert statuses(renew(config, "--force")) == {name: "renewed"}


# -- 4. only https servers; values checked like the command line, one lineage at a time -----------------------
def test_http_server_and_out_of_range_port_fail_only_their_lineage(pebble, tmp_path):
    config = tmp_path / "le"
    names = ("plain.example.test", "port.example.test", "fine.example.test")
    for name in names:
        issue(pebble, config, name, umask_000=False)
    plain = config / "renewal" / f"{names[0]}.conf"
    plain.write_text(plain.read_text().replace("server = https://", "server = http://"))
    port = config / "renewal" / f"{names[1]}.conf"
    port.write_text(port.read_text().replace(f"http01_port = {pebble.http_port}", "http01_port = 99999"))
    result = renew(config, "--force")
    assert statuses(result) == {names[0]: "skipped", names[1]: "skipped", names[2]: "renewed"}, result.stderr
    assert "must be an https:// ACME directory URL" in reasons(result)[names[0]]
    assert "http01_port 99999: not a port number" in reasons(result)[names[1]]
    assert "Traceback" not in result.stderr and result.returncode == 7


# -- 9. nothing hangs: FIFOs, devices, a lock held too long --------------------------------------------------
def test_a_fifo_renewal_file_and_a_cert_linked_to_dev_zero_do_not_hang_renew(pebble, tmp_path):
    config = tmp_path / "le"
    for name in ("fifo.example.test", "zero.example.test", "fine9.example.test"):
        issue(pebble, config, name, umask_000=False)
    fifo = config / "renewal" / "fifo.example.test.conf"
    fifo.unlink()
    os.mkfifo(fifo)
    zero = config / "live" / "zero.example.test" / "cert.pem"
    zero.unlink()
    zero.symlink_to("/dev/zero")
    started = time.monotonic()
    result = renew(config)
    assert time.monotonic() - started < 30
    assert statuses(result) == {"fifo.example.test": "skipped", "zero.example.test": "skipped",
                                "fine9.example.test": "not_due"}
    assert "not a regular file" in reasons(result)["fifo.example.test"]
    assert "outside" in reasons(result)["zero.example.test"]


def test_a_renew_lock_held_longer_than_a_run_can_take_is_reported_with_its_holder(tmp_path, pebble):
    config = tmp_path / "le"
    issue(pebble, config, "lock.example.test", umask_000=False)
    lock = config / ".locks" / "renew.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.ftruncate(fd, 0); os.write(fd, f'{os.getpid()} {int(time.time()) - int(sys.argv[1])}\\n'.encode())\n"
        "print('held', flush=True); time.sleep(60)\n"), str(4 * 3600)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_lehttpd("renew", "--config-dir", str(config), "--quiet")
        assert result.returncode == 5, result.stderr
        assert f"held by PID {holder.pid} since" in result.stderr and "4.0 h" in result.stderr
    finally:
        holder.kill()
        holder.wait()


# -- 6. crash ordering: no live lineage is left without a renewal file -----------------------------------------
def test_a_live_lineage_without_renewal_file_is_reported_and_issue_repairs_it(pebble, tmp_path):
    config = tmp_path / "le"
    issue(pebble, config, "orphan.example.test", umask_000=False)
    (config / "renewal" / "orphan.example.test.conf").unlink()  # as a crash or ENOSPC left it before the fix
    result = renew(config, "--force")
    assert statuses(result) == {"orphan.example.test": "skipped"} and result.returncode == 7
    assert reasons(result)["orphan.example.test"].startswith("not renewable: ")
    listing = run_lehttpd("certificates", "--config-dir", str(config))
    assert listing.returncode == 7 and "not renewable" in listing.stderr
    again = run_lehttpd("issue", "orphan.example.test", *pebble.client_args(config))
    assert again.returncode == 0, again.stderr
    assert (config / "renewal" / "orphan.example.test.conf").exists()
    assert statuses(renew(config, "--force")) == {"orphan.example.test": "renewed"}


# -- 8. two `issue` at once for the same names issue once -----------------------------------------------------
def test_two_concurrent_issues_for_the_same_name_issue_once(pebble, tmp_path):
    config = tmp_path / "le"
    argv = [sys.executable, "-m", "lehttpd", "issue", "twice.example.test", *pebble.client_args(config), "-q"]
    procs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    archive = config / "archive" / "twice.example.test"
    assert sorted(p.name for p in archive.glob("cert*.pem")) == ["cert1.pem"]


# -- 10. a full disk: one line, a proper exit code, the old certificate stays live ------------------------------
def test_a_full_disk_is_one_line_and_the_previous_certificate_stays_live(pebble, tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the unit test injects ENOSPC at the writer instead)")
    try:
        config = mount_point / "le"
        issue(pebble, config, "full.example.test", umask_000=False)
        cert = (config / "live/full.example.test/cert.pem").read_bytes()
        subprocess.run(["dd", "if=/dev/zero", f"of={mount_point}/filler", "bs=4k"], capture_output=True)
        result = run_lehttpd("issue", "full.example.test", *pebble.client_args(config), "--force-renewal")
        assert result.returncode == 5, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"lehttpd: error: no space left on tmpfs (mounted on {mount_point}) while writing "
                               f"{config}/"), line
        assert (config / "live/full.example.test/cert.pem").read_bytes() == cert
        renewed = renew(config, "--force")  # renew goes on without its caches, and fails the lineage alone
        assert statuses(renewed) == {"full.example.test": "failed"}
        assert "no space left" in reasons(renewed)["full.example.test"]
        assert (config / "live/full.example.test/cert.pem").read_bytes() == cert
        os.unlink(mount_point / "filler")
        assert statuses(renew(config, "--force")) == {"full.example.test": "renewed"}
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
