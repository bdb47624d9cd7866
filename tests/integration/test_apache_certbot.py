"""certbot's leftovers on a real private Apache: a working certbot setup is taken over in place, a stale disabled
NAME-le-ssl.conf is never written into nor enabled."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, make_lineage  # noqa: E402
from test_apache_harden import enable_ssl  # noqa: E402
from test_apache_instance import der, http_get, lehttpd, served_der  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")

# What certbot --apache leaves: its redirect in the :80 vhost, NAME-le-ssl.conf (unindented certificate lines and
# the Include of its options file, which also says SSLEngine on), enabled by a link.
CERTBOT_HTTP = """\
<VirtualHost 127.0.0.1:{http}>
    ServerName {name}
    ServerAlias www.{name}
    DocumentRoot {docroot}
RewriteEngine on
RewriteCond %{{SERVER_NAME}} =www.{name} [OR]
RewriteCond %{{SERVER_NAME}} ={name}
RewriteRule ^ https://%{{SERVER_NAME}}%{{REQUEST_URI}} [END,NE,R=permanent]
</VirtualHost>
"""
CERTBOT_SSL = """\
<IfModule mod_ssl.c>
<VirtualHost 127.0.0.1:{https}>
    ServerName {name}
    ServerAlias www.{name}
    DocumentRoot {docroot}
SSLCertificateFile {fullchain}
SSLCertificateKeyFile {key}
Include {options}
</VirtualHost>
</IfModule>
"""
CERTBOT_OPTIONS = """\
SSLEngine on
SSLProtocol             all -SSLv2 -SSLv3 -TLSv1 -TLSv1.1
SSLCipherSuite          ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256
SSLHonorCipherOrder     off
SSLSessionTickets       off
SSLOptions +StrictRequire
"""


@pytest.fixture
def certbot_server(tmp_path):
    inst = make_instance(tmp_path / "srv")
    enable_ssl(inst)
    old = make_lineage(tmp_path / "certbot", "site.test", ("site.test", "www.site.test"))
    options = tmp_path / "certbot" / "options-ssl-apache.conf"
    options.write_text(CERTBOT_OPTIONS)
    values = dict(http=inst.http_port, https=inst.https_port, name="site.test", docroot=inst.docroot("site.test"),
                  fullchain=old.fullchain_path, key=old.key_path, options=options)
    inst.add_site("site.test", text=CERTBOT_HTTP.format(**values))
    ssl_file = inst.confdir / "sites-available" / "site.test-le-ssl.conf"
    ssl_file.write_text(CERTBOT_SSL.format(**values))
    (inst.confdir / "sites-enabled" / ssl_file.name).symlink_to(f"../sites-available/{ssl_file.name}")
    inst.start()
    yield inst
    inst.stop()


def ssl_vhosts_serving(inst, name: str) -> list[dict]:
    listed = json.loads(lehttpd(inst, "apache", "vhosts", "--json").stdout)["vhosts"]
    return [v for v in listed if v["ssl"] and (v["server_name"] == name or name in v["aliases"])]


def test_a_working_certbot_setup_is_taken_over_in_place(certbot_server, tmp_path):
    inst = certbot_server
    lineage = make_lineage(tmp_path / "le", "site.test", ("site.test", "www.site.test"))
    available = sorted(p.name for p in (inst.confdir / "sites-available").iterdir())
    result = lehttpd(inst, "install", "--cert-name", "site.test", "--config-dir", str(lineage.config_dir),
                     "--redirect", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (inst.confdir / "sites-available").iterdir()) == available  # no second file
    ssl_text = (inst.confdir / "sites-available" / "site.test-le-ssl.conf").read_text()
    assert f"SSLCertificateFile {lineage.fullchain_path}\n" in ssl_text
    assert f"SSLCertificateKeyFile {lineage.key_path}\n" in ssl_text
    http_text = (inst.confdir / "sites-available" / "site.test.conf").read_text()
    assert "lehttpd redirect" not in http_text and http_text.count("RewriteRule") == 1  # certbot's is kept
    assert served_der(inst.https_port, "www.site.test") == der(lineage.cert_path)
    status, headers = http_get(inst.http_port, "site.test", "/x")
    assert " 301 " in status and headers["location"] == "https://site.test/x"
    assert len(ssl_vhosts_serving(inst, "site.test")) == 1

    hardened = lehttpd(inst, "harden", work=tmp_path / "work")
    assert hardened.returncode == 0, hardened.stderr
    ssl_text = (inst.confdir / "sites-available" / "site.test-le-ssl.conf").read_text()
    assert "options-ssl-apache.conf" not in ssl_text
    assert f"SSLEngine on\nInclude {inst.confdir}/lehttpd/options-ssl.conf\n" in ssl_text
    assert served_der(inst.https_port, "site.test") == der(lineage.cert_path)
    assert len(ssl_vhosts_serving(inst, "site.test")) == 1
    again = lehttpd(inst, "install", "--cert-name", "site.test", "--config-dir", str(lineage.config_dir),
                    "--redirect", work=tmp_path / "work")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout + again.stderr


def test_a_stale_disabled_certbot_file_is_never_enabled_nor_written_into(tmp_path):
    inst = make_instance(tmp_path / "srv")
    inst.add_site("stale.test")
    stale = inst.confdir / "sites-available" / "stale.test-le-ssl.conf"
    stale.write_text(CERTBOT_SSL.format(https=inst.https_port, name="stale.test", docroot=inst.docroot("stale.test"),
                                        fullchain="/nonexistent/live/stale.test/fullchain.pem",
                                        key="/nonexistent/live/stale.test/privkey.pem",
                                        options="/nonexistent/options-ssl-apache.conf"))
    stale_bytes = stale.read_bytes()
    inst.start()
    try:
        lineage = make_lineage(tmp_path / "le", "stale.test", ("stale.test",))
        result = lehttpd(inst, "install", "--cert-name", "stale.test", "--config-dir", str(lineage.config_dir),
                         work=tmp_path / "work")
        assert result.returncode == 0, result.stderr
        assert stale.read_bytes() == stale_bytes
        assert not (inst.confdir / "sites-enabled" / stale.name).exists()
        assert (inst.confdir / "sites-enabled" / "stale.test-lehttpd-ssl.conf").is_symlink()
        assert f"{stale} exists and is not lehttpd's: left alone (not enabled)" in result.stdout
        assert served_der(inst.https_port, "stale.test") == der(lineage.cert_path)
    finally:
        inst.stop()
