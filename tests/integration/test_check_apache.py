"""`lehttpd check` against the real private Apache: lehttpd's own profiles (intermediate + HSTS → A+, old → B),
a weak TLS 1.0 @SECLEVEL=0 site without HSTS, an incomplete chain, and testssl.sh as the outside referee."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, free_port, make_instance, make_lineage  # noqa: E402
from check_sites import (add_ssl_site, run_testssl, has_testssl, parse_testssl,  # noqa: E402
                         three_level_lineage)

from lehttpd.sandbox.tls import write_tls_pair  # noqa: E402
from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


def lehttpd(inst, *args):
    result = run_lehttpd(*args, "--apache-ctl", str(inst.ctl), "--https-port", str(inst.https_port),
                         "--work-dir", str(inst.base / "work"))
    assert result.returncode == 0, result.stderr
    return result


def check(port: int, name: str, *extra: str, http_port: int = 0) -> tuple[int, dict]:
    result = run_lehttpd("check", f"127.0.0.1:{port}", "--sni", name, "--http-port", str(http_port), "--json",
                         *extra, timeout=60)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def caps(report: dict) -> dict[str, str]:
    return {c["id"]: c["cap"] for c in report["rating"]["caps"]}


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """a.test issued into a store, installed with the redirect; each test hardens it with a profile."""
    base = tmp_path_factory.mktemp("apache-check")
    inst = make_instance(base)
    inst.add_site("a.test")
    lineage = make_lineage(base / "le", "a.test", ("a.test", "www.a.test"))
    inst.start()
    try:
        lehttpd(inst, "install", "--cert-name", "a.test", "--config-dir", str(lineage.config_dir), "--redirect")
        yield inst, lineage
    finally:
        inst.stop()


def check_hardened(inst, lineage, *extra):
    return check(inst.https_port, "a.test", "--ca-bundle", str(lineage.chain_path), "--config-dir",
                 str(lineage.config_dir), *extra, http_port=inst.http_port)


def test_intermediate_with_hsts_is_a_plus(hardened):
    inst, lineage = hardened
    lehttpd(inst, "harden", "--profile", "intermediate", "--hsts")
    code, report = check_hardened(inst, lineage, "--min-grade", "A+")
    assert code == 0
    assert report["grade"] == "A+" and report["rating"]["caps"] == []
    assert report["offered_protocols"] == ["TLSv1.2", "TLSv1.3"]
    assert all(s["forward_secret"] and s["aead"] for p in report["protocols"] for s in p["suites"])
    assert report["certificate"]["trusted"] and report["certificate"]["complete"]
    assert report["certificate"]["store"] == {"lineage": "a.test", "served_version": 1, "current_version": 1,
                                              "current": True}
    assert report["http"]["redirect"]["ok"] and report["http"]["redirect"]["status"] == 301
    assert report["http"]["hsts_max_age"] == 63072000
    assert "x25519" in report["groups"]


def test_modern_is_tls13_only_and_a_plus(hardened):
    inst, lineage = hardened
    lehttpd(inst, "harden", "--profile", "modern", "--hsts")
    code, report = check_hardened(inst, lineage, "--min-grade", "A+")
    assert code == 0 and report["grade"] == "A+"
    assert report["offered_protocols"] == ["TLSv1.3"]
    assert report["secure_renegotiation"] is None and report["fallback_scsv"] is None  # nothing to downgrade to
    assert report["certificate"]["trusted"] and len(report["certificate"]["served"]) == 1  # the leaf, verified


def test_old_is_b_and_names_tls10_and_tls11_as_the_cap(hardened):
    inst, lineage = hardened
    lehttpd(inst, "harden", "--profile", "old", "--hsts")
    code, report = check_hardened(inst, lineage, "--min-grade", "A")
    assert code == 8  # below --min-grade
    assert report["grade"] == "B"
    assert caps(report) == {"tls10-11": "B"}
    assert report["rating"]["caps"][0]["why"].startswith("TLSv1.0, TLSv1.1 offered")
    assert report["rating"]["caps"][0]["fix"] == "lehttpd harden --profile intermediate"
    by_name = {p["protocol"]: p for p in report["protocols"]}
    assert by_name["TLSv1.2"]["server_order"] is True  # the old profile honours the server's order


@pytest.mark.skipif(not has_testssl(), reason="testssl.sh (Debian package testssl.sh) not installed")
def test_protocols_and_suites_per_protocol_agree_with_testssl(hardened, tmp_path):
    inst, lineage = hardened
    lehttpd(inst, "harden", "--profile", "old", "--hsts")  # the profile with the most protocols and suites
    _code, report = check_hardened(inst, lineage)
    reference = run_testssl(inst.https_port, "a.test", tmp_path / "testssl.json")
    offered, suites = parse_testssl(reference)
    assert set(report["offered_protocols"]) == offered
    ours = {p["protocol"]: {int(s["code"], 16) for s in p["suites"]} for p in report["protocols"] if p["offered"]}
    assert ours == suites


@pytest.fixture(scope="module")
def weak_sites(tmp_path_factory):
    """One Apache, two hand-written SSL vhosts: TLS 1.0 only at @SECLEVEL=0 (no HSTS), and a leaf served
    without its intermediate."""
    base = tmp_path_factory.mktemp("apache-weak")
    inst = make_instance(base)
    ca, leaf, key = write_tls_pair(base / "weak-tls", names=("weak.test",))
    weak_port, chain_port = free_port(), free_port()
    add_ssl_site(inst, "weak.test", weak_port, leaf, key,
                 "    SSLProtocol TLSv1\n    SSLCipherSuite @SECLEVEL=0:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA\n")
    root_pem, lineage, _ca = three_level_lineage(base / "le", "chain.test", ("chain.test",))
    (base / "root.pem").write_bytes(root_pem)
    add_ssl_site(inst, "chain.test", chain_port, lineage.cert_path, lineage.key_path)  # cert.pem: no chain
    inst.start()
    try:
        yield inst, {"weak": (weak_port, ca), "chain": (chain_port, base / "root.pem", lineage)}
    finally:
        inst.stop()


def test_a_weak_tls10_site_is_found_and_capped(weak_sites):
    _inst, sites = weak_sites
    port, ca = sites["weak"]
    code, report = check(port, "weak.test", "--ca-bundle", str(ca), "--config-dir", "/nonexistent")
    assert code == 0
    assert report["offered_protocols"] == ["TLSv1.0"]
    assert report["certificate"]["trusted"]  # verified, through a handshake that reaches TLS 1.0
    assert "x25519" in report["groups"]  # no TLS 1.3: read from the TLS 1.0 ServerKeyExchange
    found = caps(report)
    assert found["no-tls12"] == "C" and found["tls10-11"] == "B" and found["no-aead"] == "B"
    assert found["hsts"] == "A"
    assert report["grade"] == "C"


def test_an_incomplete_chain_is_b_when_the_store_has_the_intermediate(weak_sites):
    _inst, sites = weak_sites
    port, root, lineage = sites["chain"]
    code, report = check(port, "chain.test", "--ca-bundle", str(root), "--config-dir", str(lineage.config_dir))
    assert code == 0
    chain = report["certificate"]
    assert chain["trusted"] and not chain["complete"]
    assert chain["missing_issuer"] == "CN=check test intermediate"
    assert caps(report)["incomplete-chain"] == "B" and report["grade"] == "B"
    assert "lehttpd install --cert-name chain.test" in report["rating"]["caps"][0]["fix"]

    # without the store, the same chain cannot be completed: untrusted, and the missing issuer is named
    _code, alone = check(port, "chain.test", "--ca-bundle", str(root), "--config-dir", "/nonexistent")
    assert alone["grade"] == "T" and not alone["certificate"]["trusted"]
    assert alone["certificate"]["missing_issuer"] == "CN=check test intermediate"


def test_apaches_plain_http_port_is_one_clear_line_and_exit_4(hardened):
    inst, _lineage = hardened
    result = run_lehttpd("check", f"127.0.0.1:{inst.http_port}", "--sni", "a.test", "--http-port", "0", timeout=60)
    assert result.returncode == 4
    assert result.stderr.startswith("lehttpd: error: 127.0.0.1:") and "plain HTTP, not TLS" in result.stderr
    assert "400 Bad Request" in result.stderr and result.stderr.count("\n") == 1
