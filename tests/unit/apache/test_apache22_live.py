"""Apache 2.2 as really shipped, through the live discovery path: fake control programs answer -V/-S/-M as 2.2.15
(RHEL 6, OpenSSL 1.0.1e) and 2.2.22 (Debian 7, OpenSSL 1.0.1t, ports.conf with Listen 443) do. Golden files per
version pin the output; a second run changes nothing.

Set LEHTTPD_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change (and review the diff).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import run_lehttpd
from tests.unit.apache.test_apache22_golden import check_golden

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))
from apache_instance import make_lineage  # noqa: E402

FAKE = Path(__file__).with_name("fake_httpd22.py")
BLOG = ("<VirtualHost *:80>\n\tServerName blog.example\n\tServerAlias www.blog.example\n\tDocumentRoot /var/www/blog\n"
        "\t<Directory /var/www/blog>\n\t\tOrder allow,deny\n\t\tAllow from all\n\t</Directory>\n</VirtualHost>\n")


def rhel6(root: Path) -> Path:
    conf = root / "etc" / "httpd"
    (conf / "conf").mkdir(parents=True)
    (conf / "conf.d").mkdir()
    (conf / "conf" / "httpd.conf").write_text(
        f'ServerRoot "{conf}"\nListen 80\nLoadModule rewrite_module modules/mod_rewrite.so\n'
        "LoadModule headers_module modules/mod_headers.so\nLoadModule logio_module modules/mod_logio.so\n"
        "Include conf.d/*.conf\nNameVirtualHost *:80\n")
    (conf / "conf.d" / "ssl.conf").write_text(
        "LoadModule ssl_module modules/mod_ssl.so\nListen 443\nSSLSessionCache shmcb:/var/cache/mod_ssl/scache(512000)\n"
        "<VirtualHost _default_:443>\nSSLEngine on\nSSLProtocol all -SSLv2\n"
        "SSLCipherSuite ALL:!ADH:!EXPORT:!SSLv2:RC4+RSA:+HIGH:+MEDIUM:+LOW\n"
        "SSLCertificateFile /etc/pki/tls/certs/localhost.crt\nSSLCertificateKeyFile /etc/pki/tls/private/localhost.key\n"
        "</VirtualHost>\n")
    (conf / "conf.d" / "blog.conf").write_text(BLOG)
    return conf


def debian7(root: Path) -> Path:
    conf = root / "etc" / "apache2"
    for sub in ("mods-available", "mods-enabled", "sites-available", "sites-enabled", "conf.d"):
        (conf / sub).mkdir(parents=True)
    (conf / "apache2.conf").write_text("Include mods-enabled/*.load\nInclude mods-enabled/*.conf\nInclude ports.conf\n"
                                       "Include conf.d/\nInclude sites-enabled/\n")
    (conf / "ports.conf").write_text("NameVirtualHost *:80\nListen 80\n\n<IfModule mod_ssl.c>\n    Listen 443\n"
                                     "</IfModule>\n\n<IfModule mod_gnutls.c>\n    Listen 443\n</IfModule>\n")
    for module in ("ssl", "rewrite", "headers", "setenvif", "mime"):
        (conf / "mods-available" / f"{module}.load").write_text(
            f"LoadModule {module}_module /usr/lib/apache2/modules/mod_{module}.so\n")
    for module in ("setenvif", "mime"):
        (conf / "mods-enabled" / f"{module}.load").symlink_to(f"../mods-available/{module}.load")
    (conf / "sites-available" / "blog").write_text(BLOG)
    (conf / "sites-enabled" / "blog").symlink_to("../sites-available/blog")
    return conf


@pytest.fixture(params=["rhel6", "debian7"])
def server22(request, tmp_path):
    conf = (rhel6 if request.param == "rhel6" else debian7)(tmp_path)
    ctl = tmp_path / "httpd22"
    ctl.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} {request.param} {conf} \"$@\"\n")
    ctl.chmod(0o755)
    lineage = make_lineage(tmp_path / "le", "blog.example", ("blog.example", "www.blog.example"))
    return request.param, tmp_path, conf, ctl, lineage


def cli(server, *args):
    flavor, root, conf, ctl, lineage = server
    return run_lehttpd(*args, "--apache-ctl", str(ctl), "--work-dir", str(root / "work"), "--no-reload")


def test_22_install_and_harden_through_live_discovery_match_golden_and_a_second_run_changes_nothing(server22):
    flavor, root, conf, ctl, lineage = server22
    install = ("install", "--cert-name", "blog.example", "--config-dir", str(lineage.config_dir), "--redirect")
    harden = ("harden", "--hsts", "--log-format", "vhost_combined")
    dry = cli(server22, *install, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    diff = check_golden(f"{flavor}-install-redirect.diff", dry.stdout, root)
    assert f"<ROOT>/etc/{'httpd' if flavor == 'rhel6' else 'apache2'}" in diff  # the root -V names, not /etc/...
    added = [line for line in diff.splitlines() if line.startswith("+")]
    assert not [line for line in added if "Listen" in line]  # both listen on 443 already (Debian 7: for mod_ssl)
    assert sum("NameVirtualHost *:443" in line for line in added) == 1
    assert "Satisfy Any" in diff and "[L,NE,R=301]" in diff and "[END" not in diff
    assert cli(server22, *install).returncode == 0

    hardened = cli(server22, *harden, "--dry-run")
    assert hardened.returncode == 0, hardened.stderr
    diff = check_golden(f"{flavor}-harden.diff", hardened.stdout, root)
    assert "+SSLProtocol -all +TLSv1.2\n" in diff  # the distribution backported TLS 1.2 to this 2.2
    assert "ECDHE" not in diff.split("SSLCipherSuite ", 2)[1].split("\n")[0]
    assert "forward secrecy is lost" in hardened.stdout
    assert "CHACHA20" not in diff and "@SECLEVEL" not in diff and "SSLCompression" not in diff  # before 2.2.24
    assert "Include <ROOT>" in diff and "TLS options server-wide" in diff
    assert cli(server22, *harden).returncode == 0

    for args in (install, harden):
        again = cli(server22, *args)
        assert again.returncode == 0, again.stderr
        assert "nothing to change" in again.stdout, again.stdout


def test_22_log_format_without_mod_logio_uses_b_and_stapling_says_it_needs_24(server22):
    flavor, root, conf, ctl, lineage = server22
    result = cli(server22, "harden", "--log-format", "vhost_combined", "--staple-ocsp", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "OCSP stapling needs Apache 2.4.13 (this is 2.2." in result.stdout
    assert ('%O' in result.stdout) == (flavor == "rhel6")  # RHEL 6 loads mod_logio; this Debian 7 tree does not
