"""Redirects and certificate pairs as real deployments write them, on a real private Apache 2.4."""
from __future__ import annotations

import socket
import ssl
import sys
from pathlib import Path

import pytest

from lehttpd.sandbox.tls import write_self_signed

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_lineage  # noqa: E402
from test_apache_harden import enable_ssl  # noqa: E402
from test_apache_instance import der, http_get, lehttpd, served_der  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


def rsa_pair(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return write_self_signed(folder, name, rsa.generate_private_key(65537, 2048), f"{name}-rsa")


def served_with(port: int, name: str, ciphers: str) -> bytes:
    context = ssl._create_unverified_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)


def test_two_certificate_pairs_only_the_lineages_key_type_is_replaced(inst, tmp_path):
    enable_ssl(inst)
    rsa_cert, rsa_key = rsa_pair(tmp_path / "rsa", "dual.test")
    old = make_lineage(tmp_path / "old", "dual.test", ("dual.test",))  # ECDSA
    docroot = inst.docroot("dual.test")
    inst.add_site("dual.test", text=(
        f"<VirtualHost 127.0.0.1:{inst.http_port}>\n    ServerName dual.test\n    DocumentRoot {docroot}\n"
        f"</VirtualHost>\n<VirtualHost 127.0.0.1:{inst.https_port}>\n    ServerName dual.test\n"
        f"    DocumentRoot {docroot}\n    SSLEngine on\n"
        f"    SSLCertificateFile {rsa_cert}\n    SSLCertificateKeyFile {rsa_key}\n"
        f"    SSLCertificateFile {old.fullchain_path}\n    SSLCertificateKeyFile {old.key_path}\n</VirtualHost>\n"))
    inst.start()
    lineage = make_lineage(tmp_path / "le", "dual.test", ("dual.test",))
    result = lehttpd(inst, "install", "--cert-name", "dual.test", "--config-dir", str(lineage.config_dir),
                     work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    text = (inst.confdir / "sites-available" / "dual.test.conf").read_text()
    assert f"SSLCertificateFile {rsa_cert}\n    SSLCertificateKeyFile {rsa_key}\n" in text
    assert f"SSLCertificateFile {lineage.fullchain_path}\n" in text and str(old.fullchain_path) not in text
    assert served_with(inst.https_port, "dual.test", "ECDHE-ECDSA-AES128-GCM-SHA256") == der(lineage.cert_path)
    assert served_with(inst.https_port, "dual.test", "ECDHE-RSA-AES128-GCM-SHA256") == der(rsa_cert)


def test_a_redirect_only_vhost_keeps_its_redirect_on_https(inst, tmp_path):
    inst.add_site("go.test", text=f"<VirtualHost 127.0.0.1:{inst.http_port}>\n    ServerName go.test\n"
                                  "    Redirect permanent / https://other.example/\n</VirtualHost>\n")
    inst.start()
    lineage = make_lineage(tmp_path / "le", "go.test", ("go.test",))
    result = lehttpd(inst, "install", "--cert-name", "go.test", "--config-dir", str(lineage.config_dir),
                     "--redirect", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    ssl_text = (inst.confdir / "sites-available" / "go.test-le-ssl.conf").read_text()
    assert "Redirect permanent / https://other.example/" in ssl_text
    context = ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", inst.https_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="go.test") as tls:
            tls.sendall(b"GET /x HTTP/1.1\r\nHost: go.test\r\nConnection: close\r\n\r\n")
            answer = tls.recv(4096).decode()
    assert " 301 " in answer.split("\r\n")[0] and "Location: https://other.example/x" in answer


def test_a_users_redirect_is_left_alone_with_what_lehttpd_would_change(inst, tmp_path):
    enable_ssl(inst)
    inst.add_site("user.test", text=f"<VirtualHost 127.0.0.1:{inst.http_port}>\n    ServerName user.test\n"
                                    "    Redirect / https://user.test/\n</VirtualHost>\n")
    inst.start()
    result = lehttpd(inst, "redirect", "-d", "user.test", "--dry-run", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    assert "already redirects to https with a Redirect (line 3); left as is" in result.stdout
    assert "it answers 302 (temporary): lehttpd would use 301" in result.stdout
    assert "it also redirects /.well-known/acme-challenge/, which breaks webroot renewals" in result.stdout
    assert "nothing to change" in result.stdout


def test_the_acme_path_stays_on_http_despite_later_catch_all_rules_and_error_documents(inst, tmp_path):
    docroot = inst.docroot("app.test")
    inst.add_site("app.test", text=(
        f"<VirtualHost 127.0.0.1:{inst.http_port}>\n    ServerName app.test\n    DocumentRoot {docroot}\n"
        f"    <Directory {docroot}>\n        Require all granted\n    </Directory>\n"
        "    ErrorDocument 404 https://elsewhere.example/not-found\n"
        "    RewriteEngine On\n    RewriteRule ^ /index.html [L]\n</VirtualHost>\n"))
    token = docroot / ".well-known" / "acme-challenge" / "tok"
    token.parent.mkdir(parents=True)
    token.write_text("token-content")
    for folder in (token.parent.parent, token.parent):
        folder.chmod(0o755)
    token.chmod(0o644)
    inst.start()
    assert " 200 " in http_get(inst.http_port, "app.test", "/.well-known/acme-challenge/tok")[0]
    lineage = make_lineage(tmp_path / "le", "app.test", ("app.test",))
    result = lehttpd(inst, "install", "--cert-name", "app.test", "--config-dir", str(lineage.config_dir),
                     "--redirect", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    with socket.create_connection(("127.0.0.1", inst.http_port), timeout=5) as sock:
        sock.sendall(b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert b" 200 " in answer.split(b"\r\n")[0] and answer.endswith(b"token-content")  # not index.html
    status, headers = http_get(inst.http_port, "app.test", "/.well-known/acme-challenge/missing")
    assert " 404 " in status and "location" not in headers  # not sent elsewhere by the site's ErrorDocument
    assert " 301 " in http_get(inst.http_port, "app.test", "/page")[0]
    assert served_der(inst.https_port, "app.test") == der(lineage.cert_path)
