"""`lehttpd renew` against a real Pebble: concurrency, SIGKILL, corrupt files, server faults, ARI, hooks.

One Pebble issues 40-second certificates, so every lineage is due (half of a short lifetime left) 20 s after
it was issued, on the real clock. All lineages are issued once, in parallel, when the module starts; each
test owns a separate configuration folder.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lehttpd.sandbox.pebble import Pebble, free_port
from lehttpd.store import CertStore
from tests.conftest import run_lehttpd
from tests.integration.renew_fixtures import (FaultProxy, issue_lineages, live_serial, live_target_versions,
                                              versions, wait_until_due)

VALIDITY = 40
SETS = {"concurrent": 20, "waiting": 20, "sigkill": 16, "corrupt": 4, "down": 2, "ratelimit": 3,
        "reject": 2, "hooks": 2, "dryrun": 1, "backoff": 1, "revoke": 2, "recheck": 1, "ari": 3}  # ari last: youngest


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    if not shutil.which("pebble"):
        pytest.fail("Pebble is not installed: run `make test` (Debian package 'pebble')")
    with Pebble(tmp_path_factory.mktemp("pebble"), http_port=free_port(), validity_seconds=VALIDITY) as pebble:
        proxy = FaultProxy(pebble).start()
        yield pebble, proxy
        proxy.stop()


@pytest.fixture(scope="module")
def sets(ca, tmp_path_factory):
    """{set name: (config dir, [lineage names])}, all issued now; the first test to need them waits."""
    pebble, proxy = ca
    base = tmp_path_factory.mktemp("renew")
    made = {}
    for key, count in SETS.items():
        names = [(f"{i}.{key}.example.test",) for i in range(count)]
        if key == "reject":
            names = [(f"{i}.reject.example.test", f"www{i}.reject.example.test") for i in range(count)]
        made[key] = (base / key, issue_lineages(base / key, names, proxy.directory_url, pebble.ca_bundle,
                                                pebble.http_port))
    return made


@pytest.fixture
def proxy(ca):
    ca[1].reset()
    yield ca[1]
    ca[1].reset()
    if ca[1]._server is None:
        ca[1].start()


def renew(config, *args, **kwargs):
    return run_lehttpd("renew", "--config-dir", str(config), *args, **kwargs)


def summary(result):
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def statuses(document):
    return {entry["name"]: entry["status"] for entry in document["lineages"]}


def start_renew(config, *args):
    return subprocess.Popen([sys.executable, "-m", "lehttpd", "renew", "--config-dir", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def key_matches_cert(config, name) -> bool:
    live = config / "live" / name
    cert = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((live / "privkey.pem").read_bytes(), None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


# -- renewal information (RFC 9773); first, while the certificates are young ----------------------------------
def test_ari_window_decides_and_replaces_is_sent_or_dropped_when_refused(sets, proxy):
    config, names = sets["ari"]
    later, early, accepted = names
    from lehttpd.renew.ari import cert_id
    from lehttpd.renewal import renewal_time
    ids = {n: cert_id(x509.load_pem_x509_certificate((config / "live" / n / "cert.pem").read_bytes()))
           for n in names}
    utc = dt.datetime.now(dt.timezone.utc)
    lineage = CertStore(config).load(early)
    assert utc < renewal_time(lineage.not_before, lineage.not_after), "not yet due by the lifetime rule"
    future = (utc + dt.timedelta(days=1), utc + dt.timedelta(days=2))
    past = (utc - dt.timedelta(hours=2), utc - dt.timedelta(hours=1))
    proxy.ari_window = lambda cid: future if cid == ids[later] else past
    proxy.refuse_replaces = True
    first = summary(renew(config, "--json", "--cert-name", early))
    assert statuses(first) == {early: "renewed"}, first  # the CA's window makes it due before the lifetime rule"
    # `replaces` was sent, refused, and the order retried without it.
    assert [o.get("replaces") for o in proxy.new_orders] == [ids[early], None]
    proxy.refuse_replaces = False
    proxy.new_orders = []
    second = summary(renew(config, "--json", "--cert-name", accepted))
    assert statuses(second) == {accepted: "renewed"}
    assert [o.get("replaces") for o in proxy.new_orders] == [ids[accepted]]
    # Due by the lifetime rule, but the CA suggests a later window: not renewed.
    wait_until_due(config, [later])
    third = summary(renew(config, "--json", "--cert-name", later))
    assert statuses(third) == {later: "not_due"}
    assert "the CA suggests renewing from" in third["lineages"][0]["reason"]
    state = json.loads((config / ".lehttpd" / "renew-state" / f"{later}.json").read_text())
    assert future[0] <= dt.datetime.fromisoformat(state["ari"]["point"]) <= future[1]


# -- the two concurrency checks and SIGKILL -----------------------------------------------------------------
@pytest.mark.parametrize("key, extra", [("concurrent", []), ("waiting", ["--wait", "60"])])
def test_two_runs_at_once_renew_each_lineage_exactly_once(sets, proxy, key, extra):
    config, names = sets[key]
    wait_until_due(config, names)
    first, second = start_renew(config, "--json", *extra), start_renew(config, "--json", *extra)
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    documents = [json.loads(out) for out, _ in outputs]
    renewed = [sum(1 for s in statuses(d).values() if s == "renewed") for d in documents]
    assert sorted(renewed) == [0, len(names)], documents
    for name in names:
        assert versions(config, name) == [1, 2], name
        assert set(live_target_versions(config, name).values()) == {2}
    if key == "concurrent":  # the second run exits at once, cleanly
        assert any(d["locked_out"] for d in documents)
    else:  # the second run waited, then found nothing due
        idle = [d for d in documents if d["counts"]["renewed"] == 0][0]
        assert not idle["locked_out"] and idle["counts"]["not_due"] == len(names)


def test_sigkill_mid_run_leaves_complete_versions_and_the_next_run_finishes(sets, proxy):
    config, names = sets["sigkill"]
    wait_until_due(config, names)
    process = start_renew(config, "--workers", "2")
    deadline = time.monotonic() + 60
    while sum((config / "archive" / n / "cert2.pem").exists() for n in names) < 3:
        assert process.poll() is None and time.monotonic() < deadline, "renew ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    store = CertStore(config)
    renewed_before = [n for n in names if store.current_version(n) >= 2]
    assert 0 < len(renewed_before) < len(names), "killed mid-run"
    for name in names:  # every live link points at a complete version
        for kind, version in live_target_versions(config, name).items():
            assert version in versions(config, name), (name, kind, version)
    # Killed after a new version was completely written but before its links moved: the next run may find that
    # switch finished by the repair (then the lineage is not due) or renew it again; either way it ends renewed.
    written = [n for n in names if n not in renewed_before and max(versions(config, n)) >= 2]
    result = renew(config, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = summary(result)
    renewed = {n for n, s in statuses(document).items() if s == "renewed"}
    assert renewed >= set(names) - set(renewed_before) - set(written), (written, document)
    for name in written:
        assert store.current_version(name) >= 2, name
    for name in names:
        assert len(set(live_target_versions(config, name).values())) == 1
        assert store.current_version(name) >= 2 and key_matches_cert(config, name)
    again = summary(renew(config, "--json"))
    assert again["counts"] == {"renewed": 0, "not_due": len(names), "failed": 0, "skipped": 0, "dry_run": 0}


# -- bad renewal files ----------------------------------------------------------------------------------------
def test_corrupt_half_written_and_unknown_version_files_are_skipped_and_left_alone(sets, proxy):
    config, names = sets["corrupt"]
    wait_until_due(config, names)
    good, corrupt, half, unknown = names
    renewal = config / "renewal"
    (renewal / f"{corrupt}.conf").write_bytes(b"\x00\xff garbage [[[ \n" + os.urandom(64))
    text = (renewal / f"{half}.conf").read_text()
    (renewal / f"{half}.conf").write_text(text[: len(text) // 3])
    (renewal / f"{unknown}.conf").write_text(text.replace("version = 0.1.0", "version = 99.0.0")
                                             .replace(half, unknown))
    before = {n: (renewal / f"{n}.conf").read_bytes() for n in names}
    result = renew(config, "--json")
    assert result.returncode == 7, result.stderr
    document = summary(result)
    assert statuses(document) == {good: "renewed", corrupt: "skipped", half: "skipped", unknown: "skipped"}
    reasons = {entry["name"]: entry["reason"] for entry in document["lineages"]}
    assert "99.0.0" in reasons[unknown] and str(renewal / f"{half}.conf") in reasons[half]
    for name in (corrupt, half, unknown):
        assert (renewal / f"{name}.conf").read_bytes() == before[name], "left as it was"
        assert versions(config, name) == [1]
    assert versions(config, good) == [1, 2]
    text_run = renew(config, "--quiet")  # a quiet run still reports what failed
    assert text_run.returncode == 7 and "skipped" in text_run.stdout
    assert f"lehttpd: error: {corrupt} skipped" in text_run.stderr, "failures go to stderr"


# -- the ACME server down, rate limiting, rejecting a name ----------------------------------------------------
def test_server_down_is_reported_per_lineage_and_the_next_run_retries(sets, proxy):
    config, names = sets["down"]
    wait_until_due(config, names)
    serials = {n: live_serial(config, n) for n in names}
    proxy.stop()
    result = renew(config, "--json")
    assert result.returncode == 7
    document = summary(result)
    for entry in document["lineages"]:
        assert entry["status"] == "failed" and "cannot reach" in entry["reason"], entry
    assert {n: live_serial(config, n) for n in names} == serials, "live certificates unchanged"
    proxy.start()
    again = summary(renew(config, "--json"))
    assert set(statuses(again).values()) == {"renewed"}
    assert all(versions(config, n) == [1, 2] for n in names)
    assert not (config / ".lehttpd" / "renew-state" / f"{names[0]}.json").exists(), "failure state reset"


def test_rate_limited_lineage_honours_retry_after_and_the_others_renew(sets, proxy):
    config, names = sets["ratelimit"]
    wait_until_due(config, names)
    short, long_, fine = names
    proxy.rate_limited = {short: 1, long_: 3600}
    started = time.monotonic()
    document = summary(renew(config, "--json"))
    assert statuses(document) == {short: "failed", long_: "failed", fine: "renewed"}
    reasons = {e["name"]: e["reason"] for e in document["lineages"]}
    assert "rateLimited" in reasons[short] and "retry after 3600 s" in reasons[long_]
    assert time.monotonic() - started >= 2, "short Retry-After values are waited for within the run"
    assert versions(config, short) == [1] and versions(config, long_) == [1]
    proxy.reset()
    time.sleep(1.1)
    second = summary(renew(config, "--json"))
    assert statuses(second)[short] == "renewed", second
    backing_off = [e for e in second["lineages"] if e["name"] == long_][0]
    assert backing_off["status"] == "not_due" and "backing off" in backing_off["reason"]
    assert not proxy.new_orders or all(long_ not in json.dumps(o) for o in proxy.new_orders)
    forced = summary(renew(config, "--json", "--force", "--cert-name", long_))
    assert statuses(forced) == {long_: "renewed"}


def test_rejected_name_fails_that_lineage_only_and_live_stays(sets, proxy):
    config, names = sets["reject"]
    wait_until_due(config, names)
    bad, good = names
    proxy.rejected = {f"www0.reject.example.test"}
    serial = live_serial(config, bad)
    result = renew(config)
    assert result.returncode == 7
    assert f"lehttpd: error: renewal of {bad} failed" in result.stderr and "rejectedIdentifier" in result.stderr
    assert "www0.reject.example.test" in result.stderr and "1 failed" in result.stdout
    assert live_serial(config, bad) == serial and versions(config, good) == [1, 2]
    proxy.reset()
    assert renew(config).returncode == 0 and versions(config, bad) == [1, 2]


def test_back_off_after_repeated_failures_does_not_contact_the_ca(sets, proxy):
    config, (name,) = sets["backoff"]
    wait_until_due(config, [name])
    proxy.rejected = {name}
    for _ in range(2):
        assert renew(config).returncode == 7
    state = json.loads((config / ".lehttpd" / "renew-state" / f"{name}.json").read_text())
    assert state["failures"] == 2 and "rejectedIdentifier" in state["last_error"]
    orders = len(proxy.new_orders)
    third = summary(renew(config, "--json"))
    assert third["lineages"][0]["status"] == "not_due" and "backing off after 2" in third["lineages"][0]["reason"]
    assert len(proxy.new_orders) == orders, "the CA was not contacted"
    proxy.reset()
    assert renew(config, "--force").returncode == 0 and versions(config, name) == [1, 2]
    assert not (config / ".lehttpd" / "renew-state" / f"{name}.json").exists()


# -- hooks, dry run, revoke, delete ---------------------------------------------------------------------------
def test_hooks_once_per_run_deploy_per_lineage_remembered_and_failure_keeps_cert(sets, proxy, tmp_path):
    config, names = sets["hooks"]
    log = tmp_path / "hooks.log"
    hooks = ["--pre-hook", f"echo pre >> {log}", "--post-hook", f"echo post >> {log}",
             "--deploy-hook", f'echo "deploy $RENEWED_LINEAGE $RENEWED_DOMAINS" >> {log}']
    wait_until_due(config, names)
    result = renew(config, *hooks)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "pre" and lines[1] == "post" and len(lines) == 4, lines
    assert sorted(lines[2:]) == sorted(f"deploy {config / 'live' / n} {n}" for n in names)
    conf = (config / "renewal" / f"{names[0]}.conf").read_text()
    assert f"pre_hook = echo pre >> {log}" in conf and "renew_hook = echo" in conf
    idle = renew(config, *hooks)  # nothing due now: no hook at all
    assert idle.returncode == 0 and log.read_text().splitlines() == lines
    # A failing deploy hook is reported, the new certificate stays; stored hooks run without flags.
    result = renew(config, "--force", "--deploy-hook", "exit 3", "--cert-name", names[0])
    assert result.returncode == 7 and "exited with status 3" in result.stderr
    assert versions(config, names[0]) == [1, 2, 3] and CertStore(config).current_version(names[0]) == 3
    timeout = renew(config, "--force", "--cert-name", names[1], "--deploy-hook", "sleep 5", "--hook-timeout", "0.5")
    assert timeout.returncode == 7 and "did not finish within" in timeout.stderr
    assert CertStore(config).current_version(names[1]) == 3


def test_dry_run_saves_nothing_and_runs_no_deploy_hook(sets, proxy, tmp_path):
    config, (name,) = sets["dryrun"]
    before = sorted(p.relative_to(config) for p in config.rglob("*"))
    marker = tmp_path / "deployed"
    result = renew(config, "--dry-run", "--force", "--server", proxy.directory_url, "--deploy-hook",
                   f"touch {marker}", "--json")
    assert result.returncode == 0, result.stderr
    assert statuses(summary(result)) == {name: "dry_run"}
    assert not marker.exists()
    after = sorted(p.relative_to(config) for p in config.rglob("*") if ".locks" not in p.parts)
    assert after == [p for p in before if ".locks" not in p.parts]


def test_revoke_then_renew_replaces_it_and_delete_removes_everything(sets, proxy):
    config, (revoked, deleted) = sets["revoke"]
    assert renew(config, "--force", "--cert-name", revoked).returncode == 0  # a valid certificate to revoke
    result = run_lehttpd("revoke", "--config-dir", str(config), "--cert-name", revoked, "--reason", "keyCompromise")
    assert result.returncode == 0 and "Revoked" in result.stdout, result.stderr
    again = run_lehttpd("revoke", "--config-dir", str(config), "--cert-name", revoked)
    assert again.returncode == 3 and "alreadyRevoked" in again.stderr
    document = summary(renew(config, "--json", "--cert-name", revoked))
    assert document["lineages"][0]["status"] == "renewed", "a revoked certificate is due at once"
    gone = run_lehttpd("delete", "--config-dir", str(config), "--cert-name", deleted, "--yes")
    assert gone.returncode == 0, gone.stderr
    for path in (config / "live" / deleted, config / "archive" / deleted, config / "renewal" / f"{deleted}.conf"):
        assert not path.exists()
    missing = run_lehttpd("delete", "--config-dir", str(config), "--cert-name", deleted, "--yes")
    assert missing.returncode == 2 and "no certificate named" in missing.stderr


def test_lineage_renewed_by_someone_else_after_the_decision_is_not_renewed_again(sets, proxy):
    """check -> lock -> re-check: `lehttpd issue --force-renewal` wins the race; the renewal notices."""
    from lehttpd.console import Console
    from lehttpd.renew.lineages import discover
    from lehttpd.renew.runner import RenewOptions, effective_request, renew_one

    config, (name,) = sets["recheck"]
    store = CertStore(config)
    (candidate,) = discover(store)  # decided on version 1
    other = run_lehttpd("issue", name, "--config-dir", str(config), "--server", proxy.directory_url,
                        "--ca-bundle", str(proxy.pebble.ca_bundle), "--http-port", str(proxy.pebble.http_port),
                        "--http-address", "127.0.0.1", "--force-renewal")
    assert other.returncode == 0, other.stderr
    options = RenewOptions(config_dir=config, force=True)
    outcome = renew_one(store, candidate, effective_request(candidate, options), options, Console(quiet=True),
                        None, False)
    assert outcome.status == "not_due" and "renewed meanwhile by another process" in outcome.reason
    assert versions(config, name) == [1, 2]


def test_webroot_lineage_renews_through_the_running_sites_document_root(ca, proxy, tmp_path):
    """Renewal reuses the challenge mode a lineage was issued with: here files in a site's document root."""
    import functools
    import http.server
    import threading

    from lehttpd.console import Console
    from lehttpd.issuance.account import Registration
    from lehttpd.issuance.order import obtain
    from lehttpd.model import ChallengeSetup, IssueRequest

    pebble, _ = ca
    docroot = tmp_path / "www"
    docroot.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(docroot))
    handler.log_message = lambda *args: None
    site = http.server.ThreadingHTTPServer(("127.0.0.1", pebble.http_port), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        config = tmp_path / "le"
        request = IssueRequest(names=("webroot.example.test",), server=proxy.directory_url,
                               ca_bundle=pebble.ca_bundle, challenge=ChallengeSetup(mode="webroot", webroot=docroot))
        obtain(request, CertStore(config), Console(quiet=True), Registration(agree_tos=True))
        assert "authenticator = webroot" in (config / "renewal" / "webroot.example.test.conf").read_text()
        result = renew(config, "--force", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        assert statuses(summary(result)) == {"webroot.example.test": "renewed"}
        assert versions(config, "webroot.example.test") == [1, 2]
        assert list(docroot.iterdir()) == [], "challenge files and folders removed"
    finally:
        site.shutdown()
        site.server_close()
