"""A certbot user switches: a lineage issued by certbot (from PyPI) is renewed by `lehttpd renew`.

certbot is looked up in $LEHTTPD_CERTBOT, /tmp/certbot-venv/bin/certbot, then PATH; the test skips when it
is absent (install it in a throwaway virtualenv: python3 -m venv /tmp/certbot-venv &&
/tmp/certbot-venv/bin/pip install certbot).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from lehttpd.sandbox.pebble import Pebble, free_port
from tests.conftest import run_lehttpd

NAME = "certbot-user.example.test"


def find_certbot() -> str | None:
    for candidate in (os.environ.get("LEHTTPD_CERTBOT"), "/tmp/certbot-venv/bin/certbot", shutil.which("certbot")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def certbot_lineage(tmp_path_factory):
    certbot = find_certbot()
    if certbot is None:
        pytest.skip("certbot is not installed (see this module's docstring)")
    if not shutil.which("pebble"):
        pytest.fail("Pebble is not installed: run `make test` (Debian package 'pebble')")
    work = tmp_path_factory.mktemp("certbot")
    with Pebble(work / "pebble", http_port=free_port()) as pebble:
        config = work / "le"
        dirs = ["--config-dir", str(config), "--work-dir", str(work / "work"), "--logs-dir", str(work / "logs")]
        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(pebble.ca_bundle)}
        issued = subprocess.run(
            [certbot, "certonly", "--standalone", "--http-01-port", str(pebble.http_port), "--http-01-address",
             "127.0.0.1", "--server", pebble.directory_url, *dirs, "-d", NAME, "--agree-tos",
             "--register-unsafely-without-email", "-n"], capture_output=True, text=True, env=env, timeout=120)
        assert issued.returncode == 0, issued.stderr[-2000:]
        yield certbot, pebble, config, dirs, env


def test_certbot_lineage_is_renewed_in_place(certbot_lineage):
    certbot, pebble, config, dirs, env = certbot_lineage
    live = config / "live" / NAME
    conf_before = (config / "renewal" / f"{NAME}.conf").read_text()
    assert "version = " in conf_before and "lehttpd" not in conf_before, "written by certbot"
    old = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())

    not_due = run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle))
    assert not_due.returncode == 0 and "1 not due" in not_due.stdout, not_due.stdout + not_due.stderr

    result = run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    for kind in ("cert", "chain", "fullchain", "privkey"):
        path = live / f"{kind}.pem"
        assert path.is_symlink() and os.readlink(path) == f"../../archive/{NAME}/{kind}2.pem"
        assert path.resolve().is_file()
    new = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert new.serial_number != old.serial_number
    assert new.subject == old.subject and new.not_valid_after_utc >= old.not_valid_after_utc
    # certbot still reads the lineage, and its account, after lehttpd's renewal.
    listed = subprocess.run([certbot, "certificates", *dirs], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0 and f"Serial Number: {new.serial_number:x}" in listed.stdout, listed.stderr[-1500:]


def test_certbot_can_renew_after_lehttpd_rewrote_the_renewal_file(certbot_lineage):
    certbot, pebble, config, dirs, env = certbot_lineage
    before = int(os.readlink(config / "live" / NAME / "cert.pem").rsplit("cert", 1)[1][:-len(".pem")])
    renewed = subprocess.run([certbot, "renew", "--force-renewal", "--no-random-sleep-on-renew", *dirs, "-n"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert renewed.returncode == 0, renewed.stderr[-2000:]
    assert os.readlink(config / "live" / NAME / "cert.pem").endswith(f"cert{before + 1}.pem")


def test_lineage_issued_by_lehttpd_can_be_renewed_by_certbot(certbot_lineage, tmp_path):
    """The way back: lehttpd's renewal file and account (meta.json with creation_dt) satisfy certbot."""
    from tests.integration.renew_fixtures import issue_lineages

    certbot, pebble, _, _, env = certbot_lineage
    config = tmp_path / "le"
    (name,) = issue_lineages(config, [("from-lehttpd.example.test",)], pebble.directory_url, pebble.ca_bundle,
                             pebble.http_port)
    dirs = ["--config-dir", str(config), "--work-dir", str(tmp_path / "work"), "--logs-dir", str(tmp_path / "logs")]
    renewed = subprocess.run([certbot, "renew", "--force-renewal", "--no-random-sleep-on-renew", *dirs, "-n"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert renewed.returncode == 0, renewed.stdout[-1500:] + renewed.stderr[-1500:]
    assert os.readlink(config / "live" / name / "cert.pem") == f"../../archive/{name}/cert2.pem"
    # certbot rewrote the file: its own version line under lehttpd's header comment, lehttpd-only keys dropped
    # (so the CA bundle is passed again). lehttpd still renews it.
    text = (config / "renewal" / f"{name}.conf").read_text()
    assert "written by lehttpd 0.1.0" in text and "version = 0.1.0" not in text and "lehttpd_ca_bundle" not in text
    again = run_lehttpd("renew", "--config-dir", str(config), "--force", "--ca-bundle", str(pebble.ca_bundle))
    assert again.returncode == 0 and "skipped" not in again.stdout, again.stdout + again.stderr
    assert os.readlink(config / "live" / name / "cert.pem") == f"../../archive/{name}/cert3.pem"
