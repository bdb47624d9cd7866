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
