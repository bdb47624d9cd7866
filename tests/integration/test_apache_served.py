"""Following what Apache itself serves, on a real private Apache 2.4: odd vhost shapes taken from public deployments
(a tree per case, built the way the other integration tests build theirs)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, free_port, make_lineage  # noqa: E402
from test_apache_harden import enable_ssl  # noqa: E402
from test_apache_instance import der, http_get, lehttpd, served_der  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


def install(inst, tmp_path, name, *more, names=None):
    lineage = make_lineage(tmp_path / "le", name, names or (name,))
    result = lehttpd(inst, "install", "--cert-name", name, "--config-dir", str(lineage.config_dir),
                     *more, work=tmp_path / "work")
    return lineage, result


def test_a_port_less_vhost_serves_port_80_and_is_found(inst, tmp_path):
    inst.add_site("star.test", text=f"<VirtualHost *>\n    ServerName star.test\n"
                                    f"    DocumentRoot {inst.docroot('star.test')}\n</VirtualHost>\n")
    inst.start()
    lineage, result = install(inst, tmp_path, "star.test", "--redirect")
    assert result.returncode == 0, result.stderr
    assert served_der(inst.https_port, "star.test") == der(lineage.cert_path)
    status, headers = http_get(inst.http_port, "star.test", "/p")
    assert " 301 " in status and headers["location"] == f"https://star.test:{inst.https_port}/p"
    assert f"<VirtualHost *:{inst.https_port}>" in (inst.confdir / "sites-available" /
                                                    "star.test-le-ssl.conf").read_text()


def test_a_default_vhost_without_server_name_gets_the_names_apache_routes_to_it(inst, tmp_path):
    inst.add_site("000-default", text=f"<VirtualHost 127.0.0.1:{inst.http_port}>\n"
                                      f"    DocumentRoot {inst.docroot('000-default')}\n</VirtualHost>\n")
    inst.add_site("other.test")
    inst.start()
    lineage, result = install(inst, tmp_path, "d.test", "--redirect", names=("d.test", "www.d.test"))
    assert result.returncode == 0, result.stderr
    assert "000-default.conf:1: no vhost names d.test, www.d.test" in result.stdout
    assert "default vhost" in result.stdout
    ssl_text = (inst.confdir / "sites-available" / "000-default-le-ssl.conf").read_text()
    assert "ServerName d.test\n" in ssl_text and "ServerAlias www.d.test\n" in ssl_text
    assert served_der(inst.https_port, "www.d.test") == der(lineage.cert_path)
    status, _ = http_get(inst.http_port, "d.test", "/p")
    assert " 301 " in status
    status, _ = http_get(inst.http_port, "unknown.test", "/p")  # the default vhost's other names: no redirect
    assert " 301 " not in status
    again = lehttpd(inst, "install", "--cert-name", "d.test", "--config-dir", str(lineage.config_dir), "--redirect",
                    work=tmp_path / "work")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout + again.stderr


def test_define_names_with_a_dash_and_server_name_with_scheme_and_port(inst, tmp_path):
    inst.add_site("dash.test", text=f"Define site-name dash.test\n<VirtualHost 127.0.0.1:{inst.http_port}>\n"
                                    "    ServerName ${site-name}\n"
                                    f"    DocumentRoot {inst.docroot('dash.test')}\n</VirtualHost>\n")
    inst.add_site("scheme.test", text=f"<VirtualHost 127.0.0.1:{inst.http_port}>\n"
                                      "    ServerName http://scheme.test:80\n"
                                      f"    DocumentRoot {inst.docroot('scheme.test')}\n</VirtualHost>\n")
    inst.start()
    for name in ("dash.test", "scheme.test"):
        lineage, result = install(inst, tmp_path, name)
        assert result.returncode == 0, result.stderr
        assert served_der(inst.https_port, name) == der(lineage.cert_path)


def test_the_same_name_on_another_port_is_left_alone_byte_for_byte(inst, tmp_path):
    admin_port = free_port()
    ports = inst.confdir / "ports.conf"
    ports.write_text(ports.read_text() + f"Listen 127.0.0.1:{admin_port}\n")
    admin = inst.confdir / "sites-available" / "admin.conf"
    inst.add_site("same.test")
    inst.add_site("admin", text=f"<VirtualHost 127.0.0.1:{admin_port}>\n    ServerName same.test\n"
                                f"    DocumentRoot {inst.docroot('admin')}\n</VirtualHost>\n")
    admin_bytes = admin.read_bytes()
    inst.start()
    lineage = make_lineage(tmp_path / "le", "same.test", ("same.test",))
    args = ("install", "--cert-name", "same.test", "--config-dir", str(lineage.config_dir), "--redirect")
    unsure = lehttpd(inst, *args, work=tmp_path / "work")
    assert unsure.returncode == 2 and "--http-port" in unsure.stderr
    result = lehttpd(inst, *args, "--http-port", str(inst.http_port), work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    assert admin.read_bytes() == admin_bytes
    assert not (inst.confdir / "sites-available" / "admin-le-ssl.conf").exists()
    assert " 301 " not in http_get(admin_port, "same.test", "/")[0]
    assert " 301 " in http_get(inst.http_port, "same.test", "/")[0]


def test_ipv4_and_ipv6_addresses_are_mirrored_each_with_a_listen_and_the_https_port_is_read(inst, tmp_path):
    """The configuration already listens for https on 127.0.0.1 only (inside <IfModule ssl_module>): no
    --https-port given, that port is used, and the IPv6 address gets its own Listen."""
    enable_ssl(inst)
    ports = inst.confdir / "ports.conf"
    ports.write_text(ports.read_text() + f"Listen [::1]:{inst.http_port}\n")
    inst.add_site("six.test", text=f"<VirtualHost 127.0.0.1:{inst.http_port} [::1]:{inst.http_port}>\n"
                                   f"    ServerName six.test\n    DocumentRoot {inst.docroot('six.test')}\n"
                                   "</VirtualHost>\n")
    inst.start()
    lineage = make_lineage(tmp_path / "le", "six.test", ("six.test",))
    result = run_lehttpd("install", "--cert-name", "six.test", "--config-dir", str(lineage.config_dir),
                         "--apache-ctl", str(inst.ctl), "--work-dir", str(tmp_path / "work"))
    assert result.returncode == 0, result.stderr
    assert f"HTTPS port {inst.https_port}, as {ports} listens for https" in result.stdout
    assert f"Listen [::1]:{inst.https_port}" in ports.read_text()
    assert ports.read_text().count(f"Listen 127.0.0.1:{inst.https_port}") == 1
    ssl_text = (inst.confdir / "sites-available" / "six.test-le-ssl.conf").read_text()
    assert f"<VirtualHost 127.0.0.1:{inst.https_port} [::1]:{inst.https_port}>" in ssl_text
    import socket
    import ssl

    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.create_connection((host, inst.https_port), timeout=5) as raw:
            with ssl._create_unverified_context().wrap_socket(raw, server_hostname="six.test") as tls:
                assert tls.getpeercert(binary_form=True) == der(lineage.cert_path)


def test_latin1_comments_and_crlf_line_ends_are_read_listed_and_edited_byte_exact(inst, tmp_path):
    raw = (f"# Caf\xe9 du coin, \xa9 2009\r\n<VirtualHost 127.0.0.1:{inst.http_port}>\r\n"
           f"    ServerName bytes.test\r\n    # r\xe9dig\xe9 \xe0 la main\r\n"
           f"    DocumentRoot {inst.docroot('bytes.test')}\r\n</VirtualHost>\r\n").encode("latin-1")
    path = inst.add_site("bytes.test", text="")
    path.write_bytes(raw)
    inst.start()
    listed = lehttpd(inst, "apache", "vhosts")
    assert "bytes.test" in listed.stdout, listed.stdout + listed.stderr
    lineage, result = install(inst, tmp_path, "bytes.test", "--redirect")
    assert result.returncode == 0, result.stderr
    after = path.read_bytes()
    assert after.startswith(raw[:raw.index(b"\r\n") + 2]) and b"\xe9dig\xe9 \xe0 la main\r\n" in after
    assert b"\n" not in after.replace(b"\r\n", b"")  # every inserted line ends like the file's own
    assert served_der(inst.https_port, "bytes.test") == der(lineage.cert_path)
    assert lehttpd(inst, "rollback", work=tmp_path / "work").returncode == 0
    assert path.read_bytes() == raw


def test_22_era_directives_in_a_24_tree_are_tolerated_not_duplicated(inst, tmp_path):
    ports = inst.confdir / "ports.conf"
    ports.write_text(ports.read_text() + f"NameVirtualHost 127.0.0.1:{inst.http_port}\n")
    inst.add_site("old.test", text=f"<VirtualHost 127.0.0.1:{inst.http_port}>\n    ServerName old.test\n"
                                   f"    DocumentRoot {inst.docroot('old.test')}\n"
                                   f"    <Directory {inst.docroot('old.test')}>\n        Order allow,deny\n"
                                   "        Allow from all\n    </Directory>\n</VirtualHost>\n")
    inst.start()
    lineage, result = install(inst, tmp_path, "old.test", "--redirect")
    assert result.returncode == 0, result.stderr
    assert "NameVirtualHost" not in ports.read_text().split(f"NameVirtualHost 127.0.0.1:{inst.http_port}\n", 1)[1]
    ssl_text = (inst.confdir / "sites-available" / "old.test-le-ssl.conf").read_text()
    assert ssl_text.count("Order allow,deny") == 1 and "Require" not in ssl_text
    assert served_der(inst.https_port, "old.test") == der(lineage.cert_path)


def test_a_server_without_any_vhost_is_served_from_the_main_server(inst, tmp_path):
    docroot = inst.docroot("main")
    docroot.mkdir(parents=True)
    (docroot / "index.html").write_text("main\n")
    conf = inst.confdir / "apache2.conf"
    conf.write_text(conf.read_text() + f"DocumentRoot {docroot}\n<Directory {docroot}>\n    Require all granted\n"
                                       "</Directory>\n")
    inst.start()
    lineage, result = install(inst, tmp_path, "main.test", "--redirect")
    assert result.returncode == 0, result.stderr
    assert "Apache answers main.test from the main server" in result.stdout
    ssl_text = (inst.confdir / "sites-available" / "main.test-le-ssl.conf").read_text()
    assert f"DocumentRoot {docroot}\n" in ssl_text and "ServerName main.test\n" in ssl_text
    assert served_der(inst.https_port, "main.test") == der(lineage.cert_path)
    status, headers = http_get(inst.http_port, "main.test", "/p")
    assert " 301 " in status and headers["location"] == f"https://main.test:{inst.https_port}/p"
    assert " 301 " not in http_get(inst.http_port, "main.test", "/.well-known/acme-challenge/x")[0]
    again = lehttpd(inst, "install", "--cert-name", "main.test", "--config-dir", str(lineage.config_dir),
                    "--redirect", work=tmp_path / "work")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout + again.stderr


def test_a_default_address_vhost_is_mirrored_on_the_https_port(inst, tmp_path):
    inst.add_site("dflt.test", text=f"<VirtualHost _default_:{inst.http_port}>\n    ServerName dflt.test\n"
                                    f"    DocumentRoot {inst.docroot('dflt.test')}\n</VirtualHost>\n")
    inst.start()
    lineage, result = install(inst, tmp_path, "dflt.test", "--redirect")
    assert result.returncode == 0, result.stderr
    ssl_text = (inst.confdir / "sites-available" / "dflt.test-le-ssl.conf").read_text()
    assert f"<VirtualHost _default_:{inst.https_port}>" in ssl_text
    assert f"Listen {inst.https_port}\n" in (inst.confdir / "ports.conf").read_text()
    assert served_der(inst.https_port, "dflt.test") == der(lineage.cert_path)
    assert " 301 " in http_get(inst.http_port, "dflt.test", "/")[0]
