"""Renewal of lineages answered through Apache and installed into it: the new certificate reaches the site.

The private Apache holds Pebble's http-01 port, so the only way to renew is through it (authenticator =
apache); after the run Apache is reloaded once and must present the new serial in the TLS handshake.
"""
from __future__ import annotations

import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


def served_serial(port: int, name: str) -> int:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the serial is compared exactly; the chain is Pebble's throwaway CA
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def live_serial(config: Path, name: str) -> int:
    return x509.load_pem_x509_certificate((config / "live" / name / "cert.pem").read_bytes()).serial_number


@pytest.fixture
def site(pebble, tmp_path):
    inst = make_instance(tmp_path / "apache", http_port=pebble.http_port)
    inst.enable_module("ssl")
    inst.enable_module("socache_shmcb")
    inst.add_site("renewed.test")
    inst.start()
    yield inst
    inst.stop()


def issue_and_install(pebble, inst, tmp_path, work_dir) -> Path:
    config = tmp_path / "le"
    result = run_lehttpd("issue", "renewed.test", *pebble.client_args(config), "--apache-ctl", str(inst.ctl),
                         "--work-dir", str(work_dir), "--install", "--https-port", str(inst.https_port))
    assert result.returncode == 0, result.stderr
    assert "http-01 mode: apache" in result.stdout
    return config


def test_renewed_lineage_installed_into_apache_is_served_after_the_run(pebble, site, tmp_path, work_dir):
    config = issue_and_install(pebble, site, tmp_path, work_dir)
    conf = (config / "renewal" / "renewed.test.conf").read_text()
    assert "installer = apache" in conf and "authenticator = apache" in conf
    first = live_serial(config, "renewed.test")
    assert served_serial(site.https_port, "renewed.test") == first
    # what a `lehttpd issue` killed with SIGKILL would have left: the renewal run removes it
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftover = site.confdir / "conf-enabled" / f"lehttpd-http01-{gone.pid}-0badc0de.conf"
    leftover.write_text("# lehttpd temporary http-01 configuration, owner pid %d\n" % gone.pid)

    renewed = run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = live_serial(config, "renewed.test")
    assert second != first
    assert served_serial(site.https_port, "renewed.test") == second  # reloaded by renew, no hook needed
    assert not list((site.confdir / "conf-enabled").glob("lehttpd-http01-*"))
    assert "left behind by an interrupted lehttpd run" in renewed.stdout


def test_a_failed_reload_after_renewal_is_reported_and_the_run_fails(pebble, site, tmp_path, work_dir):
    config = issue_and_install(pebble, site, tmp_path, work_dir)
    first = served_serial(site.https_port, "renewed.test")
    # The deploy hook (run after the renewal, before the reload) breaks the configuration: the test fails.
    broken = site.confdir / "conf-enabled" / "zz-broken.conf"
    renewed = run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force",
                          "--deploy-hook", f"printf 'NotADirective on\\n' > {broken}")
    assert renewed.returncode == 7, renewed.stdout + renewed.stderr
    assert "reloading Apache failed" in renewed.stdout + renewed.stderr
    assert live_serial(config, "renewed.test") != first  # the new certificate is kept on disk
    broken.unlink()


def test_a_certbot_apache_lineage_renews_through_apache_and_is_reloaded(pebble, site, tmp_path, work_dir):
    """A renewal file as certbot's Apache plugin writes it (authenticator and installer apache)."""
    config = issue_and_install(pebble, site, tmp_path, work_dir)
    path = config / "renewal" / "renewed.test.conf"
    text = path.read_text()
    account = re.search(r"^account = (\S+)$", text, re.M).group(1)
    live = config / "live" / "renewed.test"
    path.write_text(
        "# renew_before_expiry = 30 days\nversion = 2.9.0\n"
        f"archive_dir = {config / 'archive' / 'renewed.test'}\n"
        f"cert = {live}/cert.pem\nprivkey = {live}/privkey.pem\nchain = {live}/chain.pem\n"
        f"fullchain = {live}/fullchain.pem\n\n# Options used in the renewal process\n[renewalparams]\n"
        f"account = {account}\nserver = {pebble.directory_url}\nauthenticator = apache\ninstaller = apache\n"
        f"key_type = ecdsa\napache_ctl = {site.ctl}\nhttp01_port = {pebble.http_port}\n")
    first = live_serial(config, "renewed.test")
    renewed = run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force",
                          "--work-dir", str(work_dir))
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = live_serial(config, "renewed.test")
    assert second != first
    assert served_serial(site.https_port, "renewed.test") == second


def test_lehttpd_install_records_the_installer_too(pebble, site, tmp_path, work_dir):
    config = tmp_path / "le"
    issued = run_lehttpd("issue", "renewed.test", *pebble.client_args(config), "--apache-ctl", str(site.ctl),
                         "--work-dir", str(work_dir))
    assert issued.returncode == 0, issued.stderr
    assert "installer" not in (config / "renewal" / "renewed.test.conf").read_text()
    installed = run_lehttpd("install", "--cert-name", "renewed.test", "--config-dir", str(config), "--apache-ctl",
                            str(site.ctl), "--https-port", str(site.https_port), "--work-dir", str(work_dir))
    assert installed.returncode == 0, installed.stderr
    conf = (config / "renewal" / "renewed.test.conf").read_text()
    assert "installer = apache" in conf and f"apache_ctl = {site.ctl}" in conf
