"""Renewal without a CA: reading renewal files (and refusing bad ones), state, summaries, timers, bad flags."""
import datetime as dt
import io
import json
import os
import shlex
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lehttpd.cli import run
from lehttpd.console import Console
from lehttpd.model import CertificateFiles, ChallengeSetup, Hooks, IssueRequest
from lehttpd.renew import timer
from lehttpd.renew.hooks import deploy_hook, shared_hooks
from lehttpd.renew.lineages import Candidate, Unreadable, discover
from lehttpd.renew.outcome import FAILED, NOT_DUE, RENEWED, SKIPPED, Outcome, Summary, show
from lehttpd.renew.runner import RenewOptions, effective_request, renew_all
from lehttpd.renew.state import AriAdvice, RenewState, load_state, save_state, state_path
from lehttpd.renewal_conf import render
from lehttpd.sandbox.pebble import free_port
from lehttpd.store import CertStore

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime.now(dt.timezone.utc)


def self_signed(name: str, days: int = 90, start: dt.datetime = NOW) -> CertificateFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return CertificateFiles(cert.public_bytes(serialization.Encoding.PEM), b"", key_pem)


def make_lineage(store: CertStore, name: str, days: int = 90, start: dt.datetime = NOW, **request) -> None:
    req = IssueRequest(names=(name,), server="https://ca.invalid/dir", **request)
    store.save_version(name, self_signed(name, days, start), render(req, "acct1", store.config_dir))


@pytest.fixture
def store(tmp_path):
    return CertStore(tmp_path / "le")


def test_discover_reads_lehttpd_and_certbot_files(store):
    make_lineage(store, "a.test")
    make_lineage(store, "b.test")
    certbot_text = (store.renewal_conf("b.test").read_text().splitlines()[1:])  # drop lehttpd's header comment
    store.renewal_conf("b.test").write_text("\n".join(certbot_text).replace("version = 0.1.0", "version = 5.8.0"))
    found = discover(store)
    assert [type(f) for f in found] == [Candidate, Candidate]
    assert found[0].request.names == ("a.test",) and found[0].account_id == "acct1"


@pytest.mark.parametrize("damage, words", [
    (lambda t: t[: len(t) // 3], "incomplete renewal file"),
    (lambda t: t.replace("0.1.0", "7.0.0"), "newer than this lehttpd"),  # header and version line
    (lambda t: "\n".join(t.splitlines()[1:]).replace("version = 0.1.0", "version = 42.1"), "certbot 42.1"),
    (lambda t: t.replace("version = 0.1.0\n", ""), "no 'version' line"),
    (lambda t: t.replace("[renewalparams]", "[surprise]"), "no [renewalparams] server"),
    (lambda t: t.replace("[renewalparams]", "[renewal params]"), "cannot parse section"),
    (lambda t: t.replace("authenticator = standalone", "authenticator = dns-foo"), "not supported"),
    (lambda t: t.replace("live/a.test/cert.pem", "live/other/cert.pem"), "is not"),
])
def test_bad_renewal_files_are_skipped_with_the_reason_and_left_untouched(store, damage, words):
    make_lineage(store, "a.test")
    make_lineage(store, "ok.test")
    path = store.renewal_conf("a.test")
    path.write_text(damage(path.read_text()))
    before = path.read_bytes()
    found = discover(store)
    bad = [f for f in found if isinstance(f, Unreadable)]
    assert len(bad) == 1 and bad[0].name == "a.test" and words in bad[0].reason, bad
    assert path.read_bytes() == before


def test_binary_garbage_and_missing_certificate_are_skipped(store):
    make_lineage(store, "a.test")
    store.renewal_conf("a.test").write_bytes(b"\xff\xfe\x00garbage")
    make_lineage(store, "gone.test")
    for kind in ("cert", "chain", "fullchain", "privkey"):
        (store.live_dir("gone.test") / f"{kind}.pem").unlink()
        (store.archive_dir("gone.test") / f"{kind}1.pem").unlink()
    reasons = {f.name: f.reason for f in discover(store)}
    assert "not a text file" in reasons["a.test"] and "no certificate named" in reasons["gone.test"]


def test_unknown_cert_name_is_a_usage_error(store):
    make_lineage(store, "a.test")
    err = io.StringIO()
    status = run(["renew", "--config-dir", str(store.config_dir), "--cert-name", "nope.test"],
                 Console(stdout=io.StringIO(), stderr=err))
    assert status == 2 and "no renewal file for nope.test" in err.getvalue()


@pytest.mark.parametrize("args, words", [
    (["--server", "https://x.test/dir"], "only apply to --dry-run"),
    (["--workers", "0"], "--workers 0"),
    (["--hook-timeout", "-1"], "--hook-timeout"),
    (["--cert-name", "../etc"], "invalid certificate name"),
    (["--ca-bundle", "/nonexistent.pem"], "no such file"),
    (["--dry-run", "--server", "http://plain.test/dir"], "https://"),
])
def test_bad_flags_fail_with_one_line_and_status_2(tmp_path, args, words):
    err = io.StringIO()
    status = run(["renew", "--config-dir", str(tmp_path), *args], Console(stdout=io.StringIO(), stderr=err))
    assert status == 2 and words in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1


def test_not_due_run_reports_without_network_and_is_silent_when_quiet(store):
    for i in range(3):
        make_lineage(store, f"{i}.test")
    out = io.StringIO()
    status = run(["renew", "--config-dir", str(store.config_dir), "--quiet"], Console(stdout=out, stderr=out))
    assert status == 0 and out.getvalue() == ""
    out = io.StringIO()
    assert run(["renew", "--config-dir", str(store.config_dir), "--json"], Console(stdout=out)) == 0
    document = json.loads(out.getvalue())
    assert document["counts"]["not_due"] == 3 and document["exit_status"] == 0


def test_nothing_configured_is_a_quiet_success(tmp_path):
    out = io.StringIO()
    assert run(["renew", "--config-dir", str(tmp_path / "none"), "-q"], Console(stdout=out, stderr=out)) == 0
    assert out.getvalue() == "" and not (tmp_path / "none").exists()


def test_failed_lineage_due_but_unreachable_server_records_back_off(store):
    make_lineage(store, "due.test", days=90, start=NOW - dt.timedelta(days=80),
                 challenge=ChallengeSetup(http_port=free_port(), http_address="127.0.0.1"))
    conf = store.renewal_conf("due.test")
    conf.write_text(conf.read_text().replace("https://ca.invalid/dir", "https://127.0.0.1:9/dir"))
    options = RenewOptions(config_dir=store.config_dir, ari=False)
    summary = renew_all(options, Console(stdout=io.StringIO(), quiet=True))
    assert [o.status for o in summary.outcomes] == [FAILED] and "cannot reach" in summary.outcomes[0].reason
    assert load_state(store.config_dir, "due.test").failures == 1
    renew_all(options, Console(stdout=io.StringIO(), quiet=True))
    state = load_state(store.config_dir, "due.test")
    assert state.failures == 2 and state.retry_not_before > NOW + dt.timedelta(minutes=30)
    third = renew_all(options, Console(stdout=io.StringIO(), quiet=True))
    assert third.outcomes[0].status == NOT_DUE and "backing off" in third.outcomes[0].reason
    assert third.exit_status == 0


def test_state_round_trip_and_a_corrupt_state_file_is_an_empty_state(tmp_path):
    advice = AriAdvice("0x1", NOW, NOW + dt.timedelta(days=1), NOW, NOW + dt.timedelta(hours=6), "https://x/y")
    state = RenewState(failures=2, last_error="boom", last_failure=NOW, retry_not_before=NOW, ari=advice)
    save_state(tmp_path, "a.test", state)
    assert load_state(tmp_path, "a.test") == state
    assert oct(os.stat(state_path(tmp_path, "a.test")).st_mode & 0o777) == "0o600"
    state_path(tmp_path, "a.test").write_text("{not json")
    assert load_state(tmp_path, "a.test") == RenewState()
    save_state(tmp_path, "a.test", RenewState())
    assert not state_path(tmp_path, "a.test").exists()


def test_command_line_hooks_override_stored_ones_and_dry_run_goes_to_staging(store):
    make_lineage(store, "a.test", hooks=Hooks(pre="stored-pre", deploy="stored-deploy"))
    candidate = discover(store)[0]
    request = effective_request(candidate, RenewOptions(store.config_dir, hooks=Hooks(deploy="cli-deploy")))
    assert request.hooks == Hooks(pre="stored-pre", post=None, deploy="cli-deploy")
    prod = IssueRequest(names=("a.test",))
    assert effective_request(Candidate(candidate.lineage, prod, None, candidate.conf_path, RenewState()),
                             RenewOptions(store.config_dir, dry_run=True)).server.startswith(
        "https://acme-staging-v02")


def test_pre_hook_runs_once_and_its_failure_blocks_only_its_lineages(tmp_path):
    log = tmp_path / "log"
    ok = IssueRequest(names=("a.test",), hooks=Hooks(pre=f"echo a >> {log}", post=f"echo p >> {log}"))
    same = IssueRequest(names=("b.test",), hooks=Hooks(pre=f"echo a >> {log}", post=f"echo p >> {log}"))
    bad = IssueRequest(names=("c.test",), hooks=Hooks(pre="exit 4"))
    errors: list[str] = []
    blocked = shared_hooks("pre", [ok, same, bad], 10, Console(stdout=io.StringIO()), errors)
    assert list(blocked) == ["c.test"] and "exited with status 4" in blocked["c.test"]
    shared_hooks("post", [ok, same, bad], 10, Console(stdout=io.StringIO()), errors)
    assert log.read_text().splitlines() == ["a", "p"] and len(errors) == 1


def test_deploy_hook_gets_the_lineage_and_domains_and_times_out(tmp_path):
    out = tmp_path / "env"
    request = IssueRequest(names=("a.test", "www.a.test"),
                           hooks=Hooks(deploy=f'echo "$RENEWED_LINEAGE|$RENEWED_DOMAINS" > {out}'))
    assert deploy_hook(request, tmp_path / "live" / "a.test", 10, Console(stdout=io.StringIO())) is None
    assert out.read_text().strip() == f"{tmp_path / 'live' / 'a.test'}|a.test www.a.test"
    slow = IssueRequest(names=("a.test",), hooks=Hooks(deploy="sleep 5"))
    assert "did not finish within" in deploy_hook(slow, tmp_path, 0.3, Console(stdout=io.StringIO()))


def test_summary_exit_status_and_quiet_output():
    quiet = Summary((Outcome("a", NOT_DUE, "later"),))
    out = io.StringIO()
    show(quiet, Console(stdout=out, quiet=True), as_json=False)
    assert quiet.exit_status == 0 and out.getvalue() == ""
    busy = Summary((Outcome("a", RENEWED, "renewed", 2, NOW), Outcome("b", FAILED, "rateLimited: slow down"),
                    Outcome("c", SKIPPED, "bad file")))
    out, err = io.StringIO(), io.StringIO()
    show(busy, Console(stdout=out, stderr=err, quiet=True, color=False), as_json=False)
    text = out.getvalue()
    assert busy.exit_status == 7 and "renewed" in text and "1 renewed, 0 not due, 1 failed, 1 skipped" in text
    assert "rateLimited: slow down" not in text and "bad file" not in text, "failures go to stderr"
    assert "lehttpd: error: renewal of b failed: rateLimited: slow down" in err.getvalue()
    assert "lehttpd: error: c skipped: bad file" in err.getvalue()
    hook_only = Summary((Outcome("a", RENEWED, "renewed", 2, NOW, hook_error="deploy hook failed"),))
    assert hook_only.exit_status == 7


def test_contrib_files_are_what_timer_install_writes():
    command = timer.renew_command()
    assert command == "lehttpd renew --quiet"
    assert (REPO / "contrib" / "lehttpd-renew.service").read_text() == timer.service_text(command)
    assert (REPO / "contrib" / "lehttpd-renew.timer").read_text() == timer.timer_text()
    assert (REPO / "contrib" / "cron.d" / "lehttpd").read_text() == timer.cron_text(command)
    assert "RandomizedDelaySec=" in timer.timer_text() and "shuf -i 0-43199" in timer.cron_text(command)


@pytest.mark.parametrize("kind, files", [("systemd", ["etc/systemd/system/lehttpd-renew.service",
                                                      "etc/systemd/system/lehttpd-renew.timer"]),
                                         ("cron", ["etc/cron.d/lehttpd"])])
def test_timer_install_and_remove_under_a_root(tmp_path, kind, files):
    out = io.StringIO()
    status = run(["timer", "install", "--kind", kind, "--root", str(tmp_path), "--lehttpd", "/opt/bin/lehttpd",
                  "--config-dir", "/srv/le"], Console(stdout=out))
    assert status == 0, out.getvalue()
    for name in files:
        text = (tmp_path / name).read_text()
        if name.endswith(".timer"):
            assert "OnCalendar=" in text and "RandomizedDelaySec=12h" in text
        else:
            assert "/opt/bin/lehttpd renew --quiet --config-dir /srv/le" in text
    assert run(["timer", "remove", "--root", str(tmp_path)], Console(stdout=io.StringIO())) == 0
    assert not any((tmp_path / name).exists() for name in files)


@pytest.mark.parametrize("kind", ["systemd", "cron"])
def test_timer_install_check_runs_the_expiry_monitor_after_every_renewal(tmp_path, kind):
    out = io.StringIO()
    status = run(["timer", "install", "--kind", kind, "--root", str(tmp_path), "--lehttpd", "/opt/bin/lehttpd",
                  "--config-dir", "/srv/le", "--check", "--prometheus", "/var/lib/node exporter/le.prom"],
                 Console(stdout=out))
    assert status == 0, out.getvalue()
    check = "/opt/bin/lehttpd check --all --quiet --config-dir /srv/le --prometheus '/var/lib/node exporter/le.prom'"
    if kind == "systemd":
        service = (tmp_path / "etc/systemd/system/lehttpd-renew.service").read_text()
        lines = service.splitlines()
        # ExecStopPost: after a failed renewal too, which ExecStartPost would skip
        assert lines[-2:] == [lines[-2], f"ExecStopPost={check}"] and lines[-2].startswith("#")
        assert "ExecStart=/opt/bin/lehttpd renew --quiet --config-dir /srv/le" in lines
    else:
        (line,) = [line for line in (tmp_path / "etc/cron.d/lehttpd").read_text().splitlines() if " root " in line]
        # `;`, not `&&`: the monitor runs whatever the renewal's exit status (7 when one lineage failed)
        assert line.endswith(f"&& /opt/bin/lehttpd renew --quiet --config-dir /srv/le; {check}")
    assert f"then {check}" in out.getvalue()
    assert timer.service_text("x") == timer.service_text("x", None) and "ExecStopPost" not in timer.service_text("x")
    odd = timer.check_command("lehttpd", Path("/srv/le%d"))  # a % is a specifier to systemd, a newline to cron
    assert "ExecStopPost=lehttpd check --all --quiet --config-dir /srv/le%%d" in timer.service_text("x", odd)
    assert "; lehttpd check --all --quiet --config-dir /srv/le\\%d\n" in timer.cron_text("x", odd)


def test_the_cron_line_runs_the_monitor_after_a_failed_renewal(tmp_path):
    import subprocess

    fake = tmp_path / "lehttpd"  # a stand-in that logs its arguments; renew fails as with one bad lineage
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/log\n[ "$1" = renew ] && exit 7\nexit 0\n')
    fake.chmod(0o755)
    text = timer.cron_text(timer.renew_command(str(fake)), timer.check_command(str(fake)))
    (line,) = [line for line in text.splitlines() if " root " in line]
    command = line.split(" root ", 1)[1].replace('sleep "$(shuf -i 0-43199 -n 1)"', "true")
    subprocess.run(["sh", "-c", command], check=False, timeout=10)
    assert (tmp_path / "log").read_text().splitlines() == ["renew --quiet", "check --all --quiet"]


def test_a_half_done_link_switch_is_finished_before_reading(store):
    make_lineage(store, "a.test")
    live = store.live_dir("a.test")
    store.save_version("a.test", self_signed("a.test"))
    os.unlink(live / "chain.pem")  # as after SIGKILL in the middle of the switch to version 2
    os.symlink("../../archive/a.test/chain1.pem", live / "chain.pem")
    (candidate,) = discover(store)
    assert candidate.lineage.version == 2
    assert os.readlink(live / "chain.pem").endswith("chain2.pem")


def test_certbot_renewal_hooks_folders_run_in_name_order(tmp_path):
    log = tmp_path / "log"
    folder = tmp_path / "renewal-hooks" / "deploy"
    folder.mkdir(parents=True)
    for name in ("20-second", "10 first"):
        script = folder / name
        script.write_text(f'#!/bin/sh\necho "{name} $RENEWED_DOMAINS" >> {log}\n')
        script.chmod(0o755)
    (folder / "README").write_text("not executable: ignored")
    store = CertStore(tmp_path)
    scripts, problems = store.hook_scripts("deploy")
    commands = [shlex.quote(str(script)) for script in scripts]
    assert len(commands) == 2 and problems == [] and store.hook_scripts("pre") == ([], [])
    request = IssueRequest(names=("a.test",))
    assert deploy_hook(request, tmp_path, 10, Console(stdout=io.StringIO()), commands) is None
    assert log.read_text().splitlines() == ["10 first a.test", "20-second a.test"]
