"""`lehttpd issue` against a real Pebble: the issue's "done when" checks and the faults it lists."""
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import http.server
import threading
from functools import partial

import pytest
from cryptography import x509

from tests.conftest import run_lehttpd


def read_sans(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def issue(pebble, config_dir, *names, extra=(), **kwargs):
    return run_lehttpd("issue", *names, *pebble.client_args(config_dir), *extra, **kwargs)


def test_issue_two_names_leaves_four_verifiable_files(pebble, tmp_path):
    config = tmp_path / "le"
    result = issue(pebble, config, "a.example.test", extra=["-d", "b.example.test"])
    assert result.returncode == 0, result.stderr
    live = config / "live" / "a.example.test"
    for kind in ("cert", "chain", "fullchain", "privkey"):
        assert (live / f"{kind}.pem").is_symlink()
        assert (live / f"{kind}.pem").resolve() == config / "archive" / "a.example.test" / f"{kind}1.pem"
    root = tmp_path / "root.pem"
    root.write_bytes(pebble.root_pem())
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted", str(live / "chain.pem"),
                             str(live / "cert.pem")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert sorted(read_sans(live / "cert.pem")) == ["a.example.test", "b.example.test"]
    assert stat.S_IMODE(os.stat(live / "privkey.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(config / "archive" / "a.example.test").st_mode) == 0o700
    assert (live / "fullchain.pem").read_bytes() == (live / "cert.pem").read_bytes() + (live / "chain.pem").read_bytes()
    # The main job's output ends with subject, SANs and expiry.
    assert "SANs:    a.example.test, b.example.test" in result.stdout and "Expires:" in result.stdout
    renewal = (config / "renewal" / "a.example.test.conf").read_text()
    assert f"server = {pebble.directory_url}" in renewal and "authenticator = standalone" in renewal


def test_account_is_created_once_and_reused(pebble, tmp_path):
    config = tmp_path / "le"
    first = issue(pebble, config, "one.example.test")
    second = issue(pebble, config, "two.example.test")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "Registered ACME account" in first.stdout
    assert "Registered ACME account" not in second.stdout
    accounts = list((config / "accounts").rglob("private_key.json"))
    assert len(accounts) == 1
    assert stat.S_IMODE(accounts[0].stat().st_mode) == 0o600


def test_second_issue_is_a_new_version_with_a_fresh_key_unless_reuse_key(pebble, tmp_path):
    config = tmp_path / "le"
    assert issue(pebble, config, "keys.example.test").returncode == 0
    not_due = issue(pebble, config, "keys.example.test")
    assert not_due.returncode == 0 and "not yet due" in not_due.stdout
    assert not (config / "archive" / "keys.example.test" / "cert2.pem").exists()
    assert issue(pebble, config, "keys.example.test", extra=["--force-renewal"]).returncode == 0
    assert issue(pebble, config, "keys.example.test", extra=["--force-renewal", "--reuse-key"]).returncode == 0
    archive = config / "archive" / "keys.example.test"
    key1, key2, key3 = ((archive / f"privkey{n}.pem").read_bytes() for n in (1, 2, 3))
    assert key1 != key2, "a fresh key for every certificate"
    assert key2 == key3, "--reuse-key keeps the key"
    assert os.readlink(config / "live" / "keys.example.test" / "cert.pem").endswith("cert3.pem")


def test_rsa_key_and_unicode_name(pebble, tmp_path):
    config = tmp_path / "le"
    result = issue(pebble, config, "bücher.example.test", extra=["--key-type", "rsa", "--rsa-key-size", "2048"])
    assert result.returncode == 0, result.stderr
    live = config / "live" / "xn--bcher-kva.example.test"
    assert read_sans(live / "cert.pem") == ["xn--bcher-kva.example.test"]
    listing = run_lehttpd("certificates", "--config-dir", str(config), "--json")
    import json
    doc = json.loads(listing.stdout)["certificates"][0]
    assert doc["key_type"] == "rsa" and doc["domains"] == ["xn--bcher-kva.example.test"]
    assert doc["paths"]["privkey"].endswith("live/xn--bcher-kva.example.test/privkey.pem")
    assert 1700 < doc["days_left"] < 1900  # Pebble's default validity is five years


def test_webroot_mode_serves_tokens_from_the_running_site_and_cleans_up(pebble, tmp_path):
    webroot = tmp_path / "www"
    webroot.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(webroot))
    handler.log_message = lambda *a: None
    site = http.server.ThreadingHTTPServer(("127.0.0.1", pebble.http_port), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        result = run_lehttpd("issue", "web.example.test", *pebble.client_args(tmp_path / "le"),
                             "--webroot", str(webroot))
    finally:
        site.shutdown()
        site.server_close()
    assert result.returncode == 0, result.stderr
    assert not (webroot / ".well-known").exists(), "token files and folders we created are removed"
    assert "authenticator = webroot" in (tmp_path / "le" / "renewal" / "web.example.test.conf").read_text()


def test_preferred_chain_picks_the_alternate_issuer(make_pebble, tmp_path):
    server = make_pebble(env={"PEBBLE_ALTERNATE_ROOTS": "1"})
    alternate_root = x509.load_pem_x509_certificate(server.root_pem(1))
    wanted = alternate_root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    result = issue(server, tmp_path / "le", "chain.example.test", extra=["--preferred-chain", wanted])
    assert result.returncode == 0, result.stderr
    chain = x509.load_pem_x509_certificates((tmp_path / "le/live/chain.example.test/chain.pem").read_bytes())
    assert chain[-1].issuer == alternate_root.subject


def test_bad_nonce_rejections_are_retried(make_pebble, tmp_path):
    server = make_pebble(env={"PEBBLE_WFE_NONCEREJECT": "50"})
    for n in range(10):
        result = issue(server, tmp_path / "le", f"nonce{n}.example.test")
        assert result.returncode == 0, f"issuance {n}: {result.stderr}"


def test_port_in_use_names_the_process_and_the_ways_out(pebble, tmp_path):
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier validations leave TIME_WAIT
    blocker.bind(("127.0.0.1", pebble.http_port))
    blocker.listen()
    try:
        result = issue(pebble, tmp_path / "le", "busy.example.test")
    finally:
        blocker.close()
    assert result.returncode == 5
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"port {pebble.http_port} is already in use by " in line and f"(pid {os.getpid()})" in line
    assert "--pre-hook" in line and "--webroot" in line
    assert not (tmp_path / "le" / "live" / "busy.example.test").exists()


def test_pre_and_post_hooks_free_the_port_and_post_runs_on_failure(pebble, tmp_path):
    marker = tmp_path / "hooks.log"
    ok = issue(pebble, tmp_path / "le", "hooks.example.test",
               extra=["--pre-hook", f"echo pre >> {marker}", "--post-hook", f"echo post >> {marker}",
                      "--deploy-hook", f"echo deploy $RENEWED_LINEAGE >> {marker}"])
    assert ok.returncode == 0, ok.stderr
    lines = marker.read_text().split("\n")
    assert lines[:2] == ["pre", "post"] and lines[2].startswith("deploy ") and lines[2].endswith("hooks.example.test")
    marker.unlink()
    failing = issue(pebble, tmp_path / "le", "fail.example.test",
                    extra=["--http-port", "1", "--post-hook", f"echo post >> {marker}"])
    assert failing.returncode != 0
    assert marker.read_text() == "post\n", "the post hook runs whatever happens in between"


def test_failed_validation_is_one_line_with_the_name_and_the_reason(pebble, tmp_path):
    # Listen somewhere Pebble does not look: the validation fails with connection refused.
    from lehttpd.sandbox.pebble import free_port
    result = run_lehttpd("issue", "refused.example.test", *pebble.client_args(tmp_path / "le"),
                         "--http-port", str(free_port()))
    assert result.returncode == 3
    line = result.stderr.strip()
    assert line.startswith("lehttpd: error: validation of refused.example.test failed:") and "\n" not in line
    assert "connection" in line.lower()
    assert not (tmp_path / "le" / "live" / "refused.example.test").exists()


def test_untrusted_server_certificate_is_a_clear_error(pebble, tmp_path):
    args = [a for a in pebble.client_args(tmp_path / "le")]
    i = args.index("--ca-bundle")
    del args[i:i + 2]
    result = run_lehttpd("issue", "tls.example.test", *args, env={"REQUESTS_CA_BUNDLE": ""})
    assert result.returncode == 4
    assert "is not trusted" in result.stderr and "--ca-bundle" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_server_is_a_clear_error(tmp_path):
    from lehttpd.sandbox.pebble import free_port
    result = run_lehttpd("issue", "down.example.test", "--server", f"https://127.0.0.1:{free_port()}/dir",
                         "--config-dir", str(tmp_path), "--agree-tos")
    assert result.returncode == 4
    assert result.stderr.strip().startswith("lehttpd: error: cannot reach https://127.0.0.1:")
    assert "Connection refused" in result.stderr


@pytest.mark.parametrize("kill_after", ["Ordering", "Finalizing"])
def test_sigkill_midway_leaves_the_old_version_live_and_the_next_run_succeeds(pebble, tmp_path, kill_after):
    config = tmp_path / "le"
    assert issue(pebble, config, "kill.example.test").returncode == 0
    old_cert = (config / "live/kill.example.test/cert.pem").read_bytes()
    # A pre-hook that pauses lets the test kill the process at a chosen step of the order.
    proc = subprocess.Popen([sys.executable, "-m", "lehttpd", "issue", "kill.example.test",
                             *pebble.client_args(config), "--force-renewal", "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith(kill_after):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    live = config / "live/kill.example.test"
    assert (live / "cert.pem").read_bytes() == old_cert
    versions = {os.readlink(live / f"{k}.pem")[-5] for k in ("cert", "chain", "fullchain", "privkey")}
    assert versions == {"1"}
    assert not list(live.glob(".*tmp*"))
    after = issue(pebble, config, "kill.example.test", extra=["--force-renewal"])
    assert after.returncode == 0, after.stderr
    assert (live / "cert.pem").read_bytes() != old_cert


def test_without_agree_tos_and_no_terminal_it_is_a_clear_error(pebble, tmp_path):
    args = [a for a in pebble.client_args(tmp_path / "le") if a != "--agree-tos"]
    result = run_lehttpd("issue", "tos.example.test", *args)
    assert result.returncode == 2
    assert "must agree to the ACME server's terms of service" in result.stderr and "--agree-tos" in result.stderr
    assert not (tmp_path / "le" / "accounts").exists() or not list((tmp_path / "le" / "accounts").rglob("*.json"))


def test_external_account_binding(make_pebble, tmp_path):
    hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    server = make_pebble(eab_keys={"kid-1": hmac})
    refused = issue(server, tmp_path / "le", "eab.example.test")
    assert refused.returncode == 2 and "requires external account binding" in refused.stderr
    accepted = issue(server, tmp_path / "le", "eab.example.test", extra=["--eab-kid", "kid-1", "--eab-hmac-key", hmac])
    assert accepted.returncode == 0, accepted.stderr
    wrong = issue(server, tmp_path / "other", "eab2.example.test",
                  extra=["--eab-kid", "kid-1", "--eab-hmac-key", "A" * 64])
    assert wrong.returncode == 3 and "the ACME server refused" in wrong.stderr


def test_quiet_prints_nothing_and_verbose_shows_the_exchange_without_secrets(pebble, tmp_path):
    quiet = issue(pebble, tmp_path / "le", "quiet.example.test", extra=["--quiet"])
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    verbose = issue(pebble, tmp_path / "le", "verbose.example.test", extra=["-v"])
    assert "POST " + pebble.directory_url.rsplit("/", 1)[0] in verbose.stderr
    key_body = (tmp_path / "le/live/verbose.example.test/privkey.pem").read_text().splitlines()[1]
    assert key_body not in verbose.stderr + verbose.stdout
    assert "BEGIN" not in verbose.stderr


def test_two_processes_on_one_lineage_take_turns(pebble, tmp_path):
    config = tmp_path / "le"
    assert issue(pebble, config, "turns.example.test").returncode == 0
    argv = [sys.executable, "-m", "lehttpd", "issue", "turns.example.test", *pebble.client_args(config),
            "--force-renewal", "--quiet"]
    procs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    archive = config / "archive/turns.example.test"
    assert sorted(p.name for p in archive.glob("cert*.pem")) == ["cert1.pem", "cert2.pem", "cert3.pem"]
    assert os.readlink(config / "live/turns.example.test/privkey.pem").endswith("privkey3.pem")


def test_a_server_that_forgot_the_account_gets_a_new_one(make_pebble, tmp_path):
    from lehttpd.sandbox.pebble import Pebble
    first = make_pebble()
    config = tmp_path / "le"
    assert issue(first, config, "forgot1.example.test").returncode == 0
    first.stop()
    # Same address, fresh state: Pebble keeps nothing across restarts, as a CA that deactivated the account.
    second = Pebble(tmp_path / "pebble2", http_port=first.http_port)
    second.api_port = first.api_port
    second.start()
    try:
        result = issue(second, config, "forgot2.example.test")
        again = issue(second, config, "forgot3.example.test")
    finally:
        second.stop()
    assert result.returncode == 0, result.stderr
    assert "no longer knows the stored account; registering a new one" in result.stderr
    assert again.returncode == 0 and "registering" not in again.stderr, "the new account is used from then on"
    assert len(list((config / "accounts").rglob("private_key.json"))) == 2


def test_an_ip_address_where_the_server_issues_for_one(pebble, tmp_path):
    config = tmp_path / "le"
    result = issue(pebble, config, "127.0.0.1", extra=["-d", "ip.example.test"])
    assert result.returncode == 0, result.stderr
    cert = x509.load_pem_x509_certificate((config / "live/127.0.0.1/cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["ip.example.test"]
