"""A certbot user with its Apache plugin switches: `certbot certonly --apache` made the lineage (authenticator =
apache) through the private Apache, `lehttpd install` serves it (and records installer = apache in certbot's
file); `lehttpd renew` renews it through that Apache and reloads it. (`certbot run --apache` is not used: it
creates its SSL vhost on port 443, which tests must never bind.)

certbot (with its Apache plugin) is looked up as in test_renew_certbot.py, plus /tmp/i9-certbot-venv; the test
skips when it is absent: python3 -m venv /tmp/certbot-venv && /tmp/certbot-venv/bin/pip install certbot
certbot-apache
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, open_work_dir  # noqa: E402
from test_renew_apache import live_serial, served_serial  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")
NAME = "certbot-apache.test"


def find_certbot_with_apache() -> str | None:
    for candidate in (os.environ.get("LEHTTPD_CERTBOT"), "/tmp/certbot-venv/bin/certbot",
                      "/tmp/i9-certbot-venv/bin/certbot", shutil.which("certbot")):
        if candidate and os.access(candidate, os.X_OK):
            plugins = subprocess.run([candidate, "plugins"], capture_output=True, text=True, timeout=60)
            if "* apache" in plugins.stdout:
                return candidate
    return None


def test_certbots_apache_lineage_is_renewed_through_apache_and_served(pebble, tmp_path):
    certbot = find_certbot_with_apache()
    if certbot is None:
        pytest.skip("certbot with its Apache plugin is not installed (see this module's docstring)")
    work = open_work_dir()
    inst = make_instance(work / "apache", http_port=pebble.http_port)
    inst.enable_module("ssl")
    inst.enable_module("socache_shmcb")
    inst.add_site(NAME)
    (inst.confdir / "sites-available" / "default-ssl.conf").unlink()  # names the snakeoil pair Debian lacks here
    inst.start()
    config = tmp_path / "le"
    try:
        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(pebble.ca_bundle), "APACHE_CONFDIR": str(inst.confdir)}
        made = subprocess.run(
            [certbot, "certonly", "--apache", "-d", NAME, "--server", pebble.directory_url,
             "--http-01-port", str(pebble.http_port),
             "--apache-server-root", str(inst.confdir), "--apache-vhost-root", str(inst.confdir / "sites-available"),
             "--apache-ctl", str(inst.ctl), "--apache-challenge-location", str(inst.confdir),
             "--apache-logs-root", str(inst.state / "log"), "--config-dir", str(config),
             "--work-dir", str(work / "certbot-work"), "--logs-dir", str(work / "certbot-logs"),
             "-n", "--agree-tos", "--register-unsafely-without-email"],
            capture_output=True, text=True, env=env, timeout=180)
        assert made.returncode == 0, made.stderr[-2000:]
        conf = (config / "renewal" / f"{NAME}.conf").read_text()
        assert "authenticator = apache" in conf and "written by lehttpd" not in conf
        assert not list(inst.confdir.rglob("*-le-ssl.conf")) and "443" not in (inst.confdir / "ports.conf").read_text()
        installed = run_lehttpd("install", "--cert-name", NAME, "--config-dir", str(config), "--apache-ctl",
                                str(inst.ctl), "--https-port", str(inst.https_port), "--work-dir", str(work / "lehttpd"))
        assert installed.returncode == 0, installed.stderr
        assert "installer = apache" in (config / "renewal" / f"{NAME}.conf").read_text()
        first = live_serial(config, NAME)
        assert served_serial(inst.https_port, NAME) == first

        renewed = run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force",
                              "--work-dir", str(work / "lehttpd"))
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        second = live_serial(config, NAME)
        assert second != first
        assert served_serial(inst.https_port, NAME) == second
        assert not list((inst.confdir / "conf-enabled").glob("lehttpd-http01-*"))
    finally:
        inst.stop()
        shutil.rmtree(work, ignore_errors=True)
