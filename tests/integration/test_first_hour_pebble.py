"""Issue 11, a certbot user's first hour: `issue` and `renew` do what was asked, against the real Pebble (and the
private Apache where one is named): local checks before the CA is asked, names never dropped silently, a kept
certificate installed when --install asks for it, `renew --dry-run` rehearsing every lineage."""
from __future__ import annotations

import json
import socket
import ssl
import sys
from pathlib import Path

import pytest
from cryptography import x509

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, free_port, make_instance  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

needs_apache = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


def issue(pebble, config_dir, *args):
    return run_lehttpd("issue", *pebble.client_args(config_dir), *args)


def sans(config_dir, name):
    cert = x509.load_pem_x509_certificate((config_dir / "live" / name / "cert.pem").read_bytes())
    return sorted(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName))


def archive_certs(config_dir, name):
    return sorted(p.name for p in (config_dir / "archive" / name).glob("cert*.pem"))


@pytest.fixture
def apache(tmp_path):
    inst = make_instance(tmp_path / "apache")
    yield inst
    inst.stop()


# -- names are never dropped without consent -------------------------------------------------------------------
def test_issue_for_fewer_names_is_refused_before_the_ca_is_asked_unless_cert_name_is_given(pebble, tmp_path):
    config = tmp_path / "le"
    assert issue(pebble, config, "t1.example.test", "-d", "t1b.example.test").returncode == 0
    # --server at a closed port: a refusal that asked the CA anything would fail with a network error (4)
    closed = ["--server", f"https://127.0.0.1:{free_port()}/dir"]
    refused = issue(pebble, config, "t1.example.test", *closed)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    error = refused.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("lehttpd: error: "), refused.stderr
    assert "t1b.example.test" in error[0] and "--cert-name t1.example.test" in error[0]
    assert archive_certs(config, "t1.example.test") == ["cert1.pem"]
    # explicit --cert-name is certbot's consent: reissued for t1 alone, and said
    consented = issue(pebble, config, "t1.example.test", "--cert-name", "t1.example.test")
    assert consented.returncode == 0, consented.stderr
    assert "without t1b.example.test" in consented.stdout
    assert sans(config, "t1.example.test") == ["t1.example.test"]
    # adding names needs no flag, and is said in one line
    added = issue(pebble, config, "t1.example.test", "-d", "t1c.example.test")
    assert added.returncode == 0, added.stderr
    assert [line for line in added.stdout.splitlines() if line.startswith("Adding t1c.example.test")], added.stdout
    assert sans(config, "t1.example.test") == ["t1.example.test", "t1c.example.test"]


# -- local checks before the account and the order -------------------------------------------------------------
def test_a_port_held_by_another_server_fails_before_an_account_is_registered(pebble, tmp_path):
    config = tmp_path / "le"
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = issue(pebble, config, "held.example.test", "--http-port", str(port))
    assert result.returncode == 5, result.stdout + result.stderr
    assert f"port {port} is already in use" in result.stderr
    assert "Registered ACME account" not in result.stdout
    assert not list(config.glob("accounts/**/private_key.json")), "no account registered for a doomed request"


@needs_apache
def test_issue_install_with_no_vhost_for_the_name_fails_before_ordering(pebble, apache, tmp_path, work_dir):
    apache.add_site("other.test")
    apache.start()
    config = tmp_path / "le"
    result = issue(pebble, config, "novhost.test", "--install", "--apache-ctl", str(apache.ctl),
                   "--work-dir", str(work_dir), "--standalone")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "nothing ordered" in result.stderr and "novhost.test" in result.stderr
    assert not (config / "live" / "novhost.test").exists()
    assert not list(config.glob("accounts/**/private_key.json"))


# -- a kept certificate is installed when --install asks for it ------------------------------------------------
@needs_apache
def test_issue_install_on_a_kept_lineage_installs_the_kept_certificate(pebble, apache, tmp_path, work_dir):
    config = tmp_path / "le"
    assert issue(pebble, config, "kept.test").returncode == 0
    apache.enable_module("ssl")
    apache.enable_module("socache_shmcb")
    apache.add_site("kept.test")
    apache.start()
    result = issue(pebble, config, "kept.test", "--install", "--apache-ctl", str(apache.ctl), "--work-dir",
                   str(work_dir), "--https-port", str(apache.https_port))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not yet due" in result.stdout and "Installed into Apache" in result.stdout
    assert archive_certs(config, "kept.test") == ["cert1.pem"], "kept, not reissued"
    assert "installer = apache" in (config / "renewal" / "kept.test.conf").read_text()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # compared byte for byte below
    with socket.create_connection(("127.0.0.1", apache.https_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="kept.test") as tls:
            served = tls.getpeercert(binary_form=True)
    live = (config / "live" / "kept.test" / "cert.pem").read_bytes()
    assert x509.load_der_x509_certificate(served) == x509.load_pem_x509_certificate(live)


# -- renew --dry-run rehearses every lineage -------------------------------------------------------------------
def test_renew_dry_run_rehearses_every_lineage_even_when_none_is_due(pebble, tmp_path):
    config = tmp_path / "le"
    for name in ("r1.example.test", "r2.example.test"):
        assert issue(pebble, config, name).returncode == 0
    before = sorted(p.relative_to(config) for p in config.rglob("*") if ".locks" not in p.parts)
    result = run_lehttpd("renew", "--config-dir", str(config), "--dry-run", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert {e["name"]: e["status"] for e in document["lineages"]} == {"r1.example.test": "dry_run",
                                                                      "r2.example.test": "dry_run"}
    after = sorted(p.relative_to(config) for p in config.rglob("*") if ".locks" not in p.parts)
    assert after == before, "a rehearsal saves nothing"


# -- each --webroot serves the names after it, as certbot's -w ----------------------------------------------------
@needs_apache
def test_each_webroot_serves_the_names_after_it_and_renew_uses_the_map(pebble, tmp_path):
    inst = make_instance(tmp_path / "apache", http_port=pebble.http_port)
    try:
        roots = {}
        for name in ("wa.test", "wb.test"):
            roots[name] = inst.docroot(name)
            inst.add_site(name)
        inst.start()
        config = tmp_path / "le"
        result = issue(pebble, config, "-w", str(roots["wa.test"]), "-d", "wa.test",
                       "--webroot", str(roots["wb.test"]), "-d", "wb.test")
        assert result.returncode == 0, result.stdout + result.stderr
        assert sans(config, "wa.test") == ["wa.test", "wb.test"]
        conf = (config / "renewal" / "wa.test.conf").read_text()
        webroot_map = conf.split("[[webroot_map]]", 1)[1]
        assert f"wa.test = {roots['wa.test'].resolve()}" in webroot_map
        assert f"wb.test = {roots['wb.test'].resolve()}" in webroot_map
        assert f"webroot_path = {roots['wa.test'].resolve()}, {roots['wb.test'].resolve()}" in conf
        renewed = run_lehttpd("renew", "--config-dir", str(config), "--force", "--json")
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        assert archive_certs(config, "wa.test") == ["cert1.pem", "cert2.pem"]
        for root in roots.values():  # token files cleaned up from both roots
            assert not list((root / ".well-known" / "acme-challenge").glob("*"))
    finally:
        inst.stop()
