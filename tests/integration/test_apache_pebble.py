"""`lehttpd issue` against Pebble, then `lehttpd install` into a private Apache: a verified HTTPS request with SNI."""
from __future__ import annotations

import socket
import ssl
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


def test_certificate_issued_by_pebble_is_served_with_sni(pebble, tmp_path):
    inst = make_instance(tmp_path / "apache")
    inst.add_site("pebble-site.test")
    inst.start()
    try:
        config = tmp_path / "le"
        issued = run_lehttpd("issue", "pebble-site.test", "-d", "www.pebble-site.test",
                             *pebble.client_args(config))
        assert issued.returncode == 0, issued.stderr
        installed = run_lehttpd("install", "--cert-name", "pebble-site.test", "--config-dir", str(config),
                                "--redirect", "--apache-ctl", str(inst.ctl), "--https-port", str(inst.https_port),
                                "--work-dir", str(tmp_path / "work"))
        assert installed.returncode == 0, installed.stderr
        root = tmp_path / "pebble-root.pem"
        root.write_bytes(pebble.root_pem())
        context = ssl.create_default_context(cafile=str(root))  # full verification: chain and hostname
        for name in ("pebble-site.test", "www.pebble-site.test"):
            with socket.create_connection(("127.0.0.1", inst.https_port), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname=name) as tls:
                    tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
                    answer = tls.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        inst.stop()


def test_issue_with_install_and_redirect_in_one_command(pebble, tmp_path):
    """`lehttpd issue --install --redirect`: webroot validation through the running Apache, then HTTPS and 301."""
    inst = make_instance(tmp_path / "apache", http_port=pebble.http_port)
    docroot = Path(inst.add_site("chained.test").read_text().split("DocumentRoot ")[1].split()[0])
    inst.start()
    try:
        result = run_lehttpd("issue", "chained.test", "-d", "www.chained.test", *pebble.client_args(tmp_path / "le"),
                             "--webroot", str(docroot), "--install", "--redirect", "--apache-ctl", str(inst.ctl),
                             "--https-port", str(inst.https_port), "--work-dir", str(tmp_path / "work"))
        assert result.returncode == 0, result.stderr
        assert "Installed into Apache" in result.stdout
        root = tmp_path / "pebble-root.pem"
        root.write_bytes(pebble.root_pem())
        context = ssl.create_default_context(cafile=str(root))
        with socket.create_connection(("127.0.0.1", inst.https_port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="www.chained.test") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: www.chained.test\r\nConnection: close\r\n\r\n")
                assert tls.recv(65536).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", inst.http_port), timeout=5) as plain:
            plain.sendall(b"GET /a?b=c HTTP/1.1\r\nHost: chained.test\r\nConnection: close\r\n\r\n")
            answer = plain.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 301") and "Location: https://chained.test" in answer
        assert "/a?b=c" in answer
        # Running it again changes nothing in Apache (the certificate is not due either).
        again = run_lehttpd("issue", "chained.test", "-d", "www.chained.test", *pebble.client_args(tmp_path / "le"),
                            "--webroot", str(docroot), "--install", "--redirect", "--apache-ctl", str(inst.ctl),
                            "--https-port", str(inst.https_port), "--work-dir", str(tmp_path / "work"))
        assert again.returncode == 0, again.stderr
    finally:
        inst.stop()


def test_issue_install_failure_says_the_certificate_is_kept(pebble, tmp_path):
    install = ["--install", "--apache-ctl", str(tmp_path / "missing-apache2ctl"), "--work-dir", str(tmp_path / "work")]
    # an Apache that cannot be read is found before anything is ordered (issue 11)...
    refused = run_lehttpd("issue", "noapache.test", *pebble.client_args(tmp_path / "le"), *install)
    assert refused.returncode != 0 and "nothing ordered" in refused.stderr, refused.stderr
    assert not (tmp_path / "le/live/noapache.test").exists()
    # ...and when installing fails after a certificate is there (here: kept, not due), the error says it is kept
    assert run_lehttpd("issue", "noapache.test", *pebble.client_args(tmp_path / "le")).returncode == 0
    result = run_lehttpd("issue", "noapache.test", *pebble.client_args(tmp_path / "le"), *install)
    assert result.returncode != 0
    assert "certificate saved in" in result.stderr and "installing it into Apache failed" in result.stderr
    assert (tmp_path / "le/live/noapache.test/cert.pem").exists()
