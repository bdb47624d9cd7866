"""The Apache rewriter against a real private Debian apache2 instance on high loopback ports."""
from __future__ import annotations

import fcntl
import os
import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, make_lineage  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


def lehttpd(inst, *args, work=None):
    extra = [] if args[0] == "apache" else ["--work-dir", str(work or inst.base / "work")]
    return run_lehttpd(*args, "--apache-ctl", str(inst.ctl), "--https-port", str(inst.https_port), *extra)


def served_der(port: int, name: str, cafile: Path | None = None) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)


def der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


def http_get(port: int, host: str, path: str) -> tuple[str, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    status, *lines = head.split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def https_headers(port: int, host: str) -> dict[str, str]:
    context = ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])}


def handshake_with(port: int, name: str, version: ssl.TLSVersion) -> None:
    context = ssl._create_unverified_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name):
            pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("apache")
    inst = make_instance(base)
    inst.add_site("a.test")
    inst.add_site("b.test")
    lineage = make_lineage(base / "le", "a.test", ("a.test", "www.a.test"))
    inst.start()
    yield inst, lineage
    inst.stop()


def test_install_redirect_harden_on_a_real_apache(site):
    inst, lineage = site
    before = inst.snapshot()
    dry = lehttpd(inst, "install", "--cert-name", "a.test", "--config-dir", str(lineage.config_dir),
                  "--redirect", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+    SSLCertificateFile " + str(lineage.fullchain_path) in dry.stdout
    assert inst.snapshot() == before, "--dry-run changed the tree"

    done = lehttpd(inst, "install", "--cert-name", "a.test", "--config-dir", str(lineage.config_dir), "--redirect")
    assert done.returncode == 0, done.stderr
    assert "HTTPS with SNI verified for a.test, www.a.test" in done.stdout
    hardened = lehttpd(inst, "harden", "--profile", "intermediate", "--hsts", "--hsts-include-subdomains", "--uir",
                       "--log-format", "vhost_combined")
    assert hardened.returncode == 0, hardened.stderr
    assert inst.run_ctl("configtest", check=False).returncode == 0

    for name in ("a.test", "www.a.test"):
        assert served_der(inst.https_port, name) == der(lineage.cert_path)
    status, headers = http_get(inst.http_port, "a.test", "/some/path?x=1&y=2")
    assert " 301 " in status
    assert headers["location"] == f"https://a.test:{inst.https_port}/some/path?x=1&y=2"
    status, _ = http_get(inst.http_port, "a.test", "/.well-known/acme-challenge/token")
    assert " 301 " not in status  # webroot renewals keep working over HTTP
    status, _ = http_get(inst.http_port, "b.test", "/x")
    assert " 200 " in status or " 404 " in status  # b.test was not asked for: untouched
    headers = https_headers(inst.https_port, "a.test")
    assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert headers["content-security-policy"] == "upgrade-insecure-requests"
    handshake_with(inst.https_port, "a.test", ssl.TLSVersion.TLSv1_2)
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises((ssl.SSLError, OSError)):
            handshake_with(inst.https_port, "a.test", old)

    # Idempotent: every command again changes nothing at all.
    after = inst.snapshot()
    for args in (("install", "--cert-name", "a.test", "--config-dir", str(lineage.config_dir), "--redirect"),
                 ("redirect", "-d", "a.test"),
                 ("harden", "--profile", "intermediate", "--hsts", "--hsts-include-subdomains", "--uir",
                  "--log-format", "vhost_combined")):
        again = lehttpd(inst, *args)
        assert again.returncode == 0, again.stderr
        assert "nothing to change" in again.stdout
    assert inst.snapshot() == after
    assert sum(1 for v in after.values() if isinstance(v, bytes) and b"lehttpd: HTTPS port" in v) == 1

    # Rollback of the last two changes (harden, install) restores the original tree byte for byte.
    back = lehttpd(inst, "rollback", "--checkpoints", "2")
    assert back.returncode == 0, back.stderr
    assert inst.snapshot() == before
    status, _ = http_get(inst.http_port, "a.test", "/x")
    assert " 301 " not in status


def test_failed_config_test_restores_every_byte(site, tmp_path):
    inst, _ = site
    broken = make_lineage(tmp_path / "le", "b.test", ("b.test",))
    # An empty certificate file, which Apache's config test refuses (a missing link lehttpd would repair).
    broken.fullchain_path.resolve().write_bytes(b"")
    before = inst.snapshot()
    result = lehttpd(inst, "install", "--cert-name", "b.test", "--config-dir", str(broken.config_dir),
                     work=tmp_path / "work")
    assert result.returncode == 6
    assert "config test failed" in result.stderr and "rolled back" in result.stderr
    assert "SSLCertificateFile" in result.stderr  # Apache's own message is passed on
    assert inst.snapshot() == before
    assert inst.run_ctl("configtest", check=False).returncode == 0


def test_install_after_a_half_done_link_switch_serves_a_matching_pair(site, tmp_path):
    """A kill between the cert.pem and privkey.pem switches left cert at 2 and key at 1 (issue 8): install
    repairs the links before Apache reads them, so the config test and the reload succeed."""
    inst, _ = site
    config = tmp_path / "le"
    make_lineage(config, "a.test", ("a.test", "www.a.test"))
    lineage = make_lineage(config, "a.test", ("a.test", "www.a.test"))
    key = lineage.key_path
    key.unlink()
    key.symlink_to("../../archive/a.test/privkey1.pem")
    result = lehttpd(inst, "install", "--cert-name", "a.test", "--config-dir", str(config), work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    assert os.readlink(key).endswith("privkey2.pem")
    assert inst.run_ctl("configtest", check=False).returncode == 0
    assert served_der(inst.https_port, "a.test") == der(lineage.cert_path)


def test_several_vhosts_in_one_file_are_handled_one_by_one(site, tmp_path):
    inst, _ = site
    docroot = inst.base / "www" / "a.test"
    two = "".join(
        f"<VirtualHost 127.0.0.1:{inst.http_port}>\n    ServerName {name}\n    DocumentRoot {docroot}\n"
        f"    # comment for {name}\n</VirtualHost>\n\n" for name in ("one.test", "two.test"))
    path = inst.add_site("pair.test", text=two)
    lineage = make_lineage(tmp_path / "le", "two.test", ("two.test",))
    result = lehttpd(inst, "install", "--cert-name", "two.test", "--config-dir", str(lineage.config_dir),
                     "--redirect", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    text = path.read_text()
    first, second = text.split("</VirtualHost>")[:2]
    assert "lehttpd redirect" not in first and "lehttpd redirect" in second
    ssl_text = (path.parent / "pair.test-le-ssl.conf").read_text()
    assert ssl_text.count("<VirtualHost") == 1 and "two.test" in ssl_text and "one.test" not in ssl_text
    assert served_der(inst.https_port, "two.test") == der(lineage.cert_path)
    assert lehttpd(inst, "rollback", work=tmp_path / "work").returncode == 0
    assert path.read_text() == two


def test_a_second_lehttpd_on_the_same_tree_is_refused(site, tmp_path):
    inst, lineage = site
    fd = os.open(inst.confdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = lehttpd(inst, "install", "--cert-name", "a.test", "--config-dir", str(lineage.config_dir),
                         work=tmp_path / "work")
    finally:
        os.close(fd)
    assert result.returncode == 5 and "another lehttpd" in result.stderr


def test_listing_shows_file_line_names_docroot_and_certificate(site):
    inst, _ = site
    result = lehttpd(inst, "apache", "vhosts", "--json")
    assert result.returncode == 0, result.stderr
    import json

    vhosts = json.loads(result.stdout)["vhosts"]
    a = next(v for v in vhosts if v["server_name"] == "a.test" and not v["ssl"])
    assert a["file"].endswith("sites-enabled/a.test.conf") and a["line"] == 1
    assert a["aliases"] == ["www.a.test"] and a["document_root"].endswith("www/a.test")
    assert a["addresses"] == [f"127.0.0.1:{inst.http_port}"]


def test_bad_input_is_one_line_and_non_zero(site, tmp_path):
    inst, lineage = site
    missing = lehttpd(inst, "install", "--cert-name", "nope", "--config-dir", str(lineage.config_dir))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    nobody = make_lineage(tmp_path / "le", "c.test", ("c.test",))
    result = lehttpd(inst, "install", "--cert-name", "c.test", "--config-dir", str(nobody.config_dir))
    assert result.returncode == 2 and "no port-80 virtual host serves c.test" in result.stderr
    modern = lehttpd(inst, "harden", "--profile", "modern", "--apache-version", "2.4.35", "--dry-run")
    assert modern.returncode == 2 and "2.4.36" in modern.stderr


def test_a_private_apache_whose_config_a_test_broke_is_still_stopped(tmp_path):
    server = make_instance(tmp_path / "srv")
    server.start()
    pid_file = server.state / "run" / "apache2.pid"
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:  # start() returns before the pid file is written
        time.sleep(0.05)
    pid = int(pid_file.read_text().split()[0])
    (server.confdir / "conf-enabled" / "zz-broken.conf").write_text("NotADirective on\n")  # `apache2ctl stop` fails
    server.stop()
    assert not pid_file.exists()
    status = Path(f"/proc/{pid}/status")
    assert not status.exists() or "\nState:\tZ" in status.read_text(), "Apache still runs (at most a zombie may stay)"
