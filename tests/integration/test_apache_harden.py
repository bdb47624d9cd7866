"""`harden` on the SSL vhosts people already have (hand-written, certbot's, given a certificate by `install`), on a
real private Apache 2.4: the profile is what Apache applies afterwards, proved by handshakes."""
from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pytest

from lehttpd.sandbox.tls import write_self_signed

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, make_lineage  # noqa: E402
from test_apache_instance import der, handshake_with, lehttpd, served_der  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")

HTTP_SITE = """\
<VirtualHost 127.0.0.1:{http}>
    ServerName {name}
    DocumentRoot {docroot}
</VirtualHost>
"""
# A hand-written SSL vhost that pins its own TLS settings after an Include of a (server-wide) file: as written,
# TLS 1.2 is refused and only an RSA key-exchange suite is offered.
HAND_SSL = """\
<VirtualHost 127.0.0.1:{https}>
    ServerName {name}
    DocumentRoot {docroot}
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}
    Include {shared}
    <IfModule mod_ssl.c>
        SSLProtocol -all +TLSv1.3
    </IfModule>
    SSLCipherSuite AES128-SHA
    SSLHonorCipherOrder off
</VirtualHost>
"""
PLAIN_SSL = """\
<VirtualHost 127.0.0.1:{https}>
    ServerName {name}
    DocumentRoot {docroot}
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}
</VirtualHost>
"""


def enable_ssl(inst) -> None:
    """What a server with working HTTPS already has: mod_ssl and its dependencies, a Listen for the port."""
    for module in ("ssl", "socache_shmcb", "setenvif", "mime"):
        inst.enable_module(module)
    ports = inst.confdir / "ports.conf"
    ports.write_text(ports.read_text() + f"<IfModule ssl_module>\n    Listen 127.0.0.1:{inst.https_port}\n"
                                          "</IfModule>\n")


def dsa_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed DSA certificate: Apache loads it, no ECDHE/DHE-RSA suite can use it."""
    from cryptography.hazmat.primitives.asymmetric import dsa

    return write_self_signed(folder, name, dsa.generate_private_key(2048), name)


def negotiated_cipher(port: int, name: str) -> str:
    import socket

    context = ssl._create_unverified_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.cipher()[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("harden")
    inst = make_instance(base)
    enable_ssl(inst)
    shared = inst.confdir / "conf-available" / "site-tls.conf"
    shared.write_text("SSLProtocol all -SSLv3\n")
    old = make_lineage(base / "old", "old", ("hand.test", "plain.test"))
    for name, ssl_text in (("hand.test", HAND_SSL), ("plain.test", PLAIN_SSL)):
        docroot = inst.docroot(name)
        values = dict(http=inst.http_port, https=inst.https_port, name=name, docroot=docroot,
                      cert=old.fullchain_path, key=old.key_path, shared=shared)
        inst.add_site(name, text=HTTP_SITE.format(**values) + "\n" + ssl_text.format(**values))
    lineage = make_lineage(base / "le", "hand.test", ("hand.test",))
    inst.start()
    yield inst, lineage
    inst.stop()


def test_harden_applies_the_profile_to_hand_written_ssl_vhosts_install_touched(server):
    inst, lineage = server
    with pytest.raises(ssl.SSLError):
        handshake_with(inst.https_port, "hand.test", ssl.TLSVersion.TLSv1_2)  # as written: TLS 1.3 only
    installed = lehttpd(inst, "install", "--cert-name", "hand.test", "--config-dir", str(lineage.config_dir))
    assert installed.returncode == 0, installed.stderr
    assert served_der(inst.https_port, "hand.test") == der(lineage.cert_path)

    site = inst.confdir / "sites-available" / "hand.test.conf"
    dry = lehttpd(inst, "harden", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "no SSL vhost managed by lehttpd" not in dry.stdout
    # the diff shows how the vhost's own overriding lines are handled
    assert "+        #SSLProtocol -all +TLSv1.3" in dry.stdout
    assert "-    SSLCipherSuite AES128-SHA" in dry.stdout and "+    #SSLCipherSuite AES128-SHA" in dry.stdout
    assert f"+    Include {inst.confdir}/lehttpd/options-ssl.conf" in dry.stdout
    # protocols before and after, per vhost
    assert "(hand.test): protocols -all +TLSv1.3 (its line" in dry.stdout
    assert "(plain.test): protocols all -SSLv3 (server-wide" in dry.stdout
    assert "-> -all +TLSv1.2 +TLSv1.3 (intermediate profile)" in dry.stdout

    done = lehttpd(inst, "harden")
    assert done.returncode == 0, done.stderr
    assert "HTTPS with SNI verified for hand.test, plain.test" in done.stdout
    handshake_with(inst.https_port, "hand.test", ssl.TLSVersion.TLSv1_2)  # the profile's protocols apply
    assert negotiated_cipher(inst.https_port, "hand.test").startswith("ECDHE-")  # and its ciphers
    text = site.read_text()
    assert "# lehttpd harden:" in text and "\n    SSLCipherSuite" not in text
    assert served_der(inst.https_port, "hand.test") == der(lineage.cert_path)

    again = lehttpd(inst, "harden")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout + again.stderr
    assert lehttpd(inst, "rollback", "--checkpoints", "2").returncode == 0


def test_harden_vhost_chooses_and_leaves_the_others_byte_for_byte(server, tmp_path):
    inst, _ = server
    hand = (inst.confdir / "sites-available" / "hand.test.conf").read_bytes()
    result = lehttpd(inst, "harden", "--vhost", "plain.test", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    assert (inst.confdir / "sites-available" / "hand.test.conf").read_bytes() == hand
    assert "Include" in (inst.confdir / "sites-available" / "plain.test.conf").read_text()
    unknown = lehttpd(inst, "harden", "--vhost", "nowhere.test", "--dry-run", work=tmp_path / "work")
    assert unknown.returncode == 2 and "nowhere.test" in unknown.stderr
    assert lehttpd(inst, "rollback", work=tmp_path / "work").returncode == 0


def test_a_harden_no_client_can_handshake_with_is_rolled_back(server, tmp_path):
    """A DSA certificate passes Apache's config test, but no suite of the profile can use it: the handshake after
    the reload fails and every change is undone."""
    inst, _ = server
    cert, key = dsa_pair(tmp_path, "dsa.test")
    docroot = inst.docroot("dsa.test")
    values = dict(https=inst.https_port, name="dsa.test", docroot=docroot, cert=cert, key=key)
    inst.add_site("dsa.test", text=PLAIN_SSL.format(**values).replace(
        "    SSLEngine on\n", "    SSLEngine on\n    SSLCipherSuite ALL:@SECLEVEL=0\n"))
    assert inst.run_ctl("graceful", check=False).returncode == 0
    before = inst.snapshot()
    result = lehttpd(inst, "harden", "--vhost", "dsa.test", "--apache-version", "2.4.30", work=tmp_path / "work")
    assert result.returncode == 6, result.stdout + result.stderr
    assert "HTTPS check failed for dsa.test" in result.stderr and "rolled back" in result.stderr
    assert inst.snapshot() == before


def ocsp_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A CA and a leaf whose Authority Information Access names an OCSP responder (fullchain, key)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocsp test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://127.0.0.1:9/ocsp"))])
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(aia, critical=False).sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    chain, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return chain, key_path


def test_ocsp_stapling_only_for_certificates_naming_a_responder_and_the_cache_goes_with_the_last(tmp_path):
    inst = make_instance(tmp_path / "srv")
    enable_ssl(inst)
    chain, key = ocsp_pair(tmp_path / "ocsp", "ocsp.test")
    lineage = make_lineage(tmp_path / "le", "le.test", ("le.test",))  # like Let's Encrypt's: no OCSP URL
    for name, cert, cert_key in (("ocsp.test", chain, key), ("le.test", lineage.fullchain_path, lineage.key_path)):
        inst.add_site(name, text=PLAIN_SSL.format(https=inst.https_port, name=name, docroot=inst.docroot(name),
                                                  cert=cert, key=cert_key))
    ports = inst.confdir / "ports.conf"
    ports_before = ports.read_bytes()
    inst.start()
    try:
        result = lehttpd(inst, "harden", "--staple-ocsp", work=tmp_path / "work")
        assert result.returncode == 0, result.stderr
        ocsp_site = (inst.confdir / "sites-available" / "ocsp.test.conf").read_text()
        assert "SSLUseStapling on" in ocsp_site and "http://127.0.0.1:9/ocsp" in ocsp_site
        assert "SSLUseStapling" not in (inst.confdir / "sites-available" / "le.test.conf").read_text()
        assert "le.test.conf:1: not stapled: its certificate names no OCSP responder" in result.stdout
        assert "SSLStaplingCache" in ports.read_text()
        assert "SSLUseStapling" not in (inst.confdir / "lehttpd" / "options-ssl.conf").read_text()
        assert "AH02218" not in inst.error_log()

        kept = lehttpd(inst, "harden", work=tmp_path / "work")  # flags change only what they name
        assert kept.returncode == 0 and "nothing to change" in kept.stdout, kept.stdout + kept.stderr
        off = lehttpd(inst, "harden", "--no-staple-ocsp", work=tmp_path / "work")
        assert off.returncode == 0, off.stderr
        assert "SSLUseStapling" not in (inst.confdir / "sites-available" / "ocsp.test.conf").read_text()
        assert ports.read_bytes() == ports_before  # the cache went with the last stapling vhost
    finally:
        inst.stop()


def test_http2_is_offered_with_mod_http2_and_an_event_mpm(server, tmp_path):
    inst, _ = server
    result = lehttpd(inst, "harden", "--vhost", "plain.test", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    assert "Protocols h2 http/1.1" in (inst.confdir / "lehttpd" / "options-ssl.conf").read_text()
    assert (inst.confdir / "mods-enabled" / "http2.load").is_symlink()
    import socket

    context = ssl._create_unverified_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", inst.https_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="plain.test") as tls:
            assert tls.selected_alpn_protocol() == "h2"
    assert lehttpd(inst, "rollback", work=tmp_path / "work").returncode == 0


def test_http2_is_not_offered_with_prefork_and_harden_says_why(tmp_path):
    inst = make_instance(tmp_path / "srv")
    enable_ssl(inst)
    for suffix in (".load", ".conf"):
        link = inst.confdir / "mods-enabled" / f"mpm_event{suffix}"
        if link.is_symlink():
            link.unlink()
    inst.enable_module("mpm_prefork")
    old = make_lineage(tmp_path / "le", "pre.test", ("pre.test",))
    inst.add_site("pre.test", text=PLAIN_SSL.format(https=inst.https_port, name="pre.test",
                                                    docroot=inst.docroot("pre.test"), cert=old.fullchain_path,
                                                    key=old.key_path))
    inst.start()
    try:
        result = lehttpd(inst, "harden", work=tmp_path / "work")
        assert result.returncode == 0, result.stderr
        assert "HTTP/2 not offered: the prefork MPM cannot serve it" in result.stdout
        assert "Protocols" not in (inst.confdir / "lehttpd" / "options-ssl.conf").read_text()
        assert not (inst.confdir / "mods-enabled" / "http2.load").exists()
    finally:
        inst.stop()


def https_headers(port: int, name: str) -> dict[str, str]:
    """The response headers of GET / over TLS with SNI (the name's vhost, not the port's default one)."""
    import socket

    context = ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    _status, *lines = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_harden_flags_change_only_what_they_name_and_preload_needs_a_year_of_hsts(server, tmp_path):
    """`harden --staple-ocsp` after `harden --hsts --uir` keeps both headers (Apache still sends them); `--no-hsts`
    takes only HSTS away; a preload the preload list would refuse is refused with the reason."""
    inst, _ = server
    work = tmp_path / "work"
    options = inst.confdir / "lehttpd" / "options-ssl.conf"
    first = lehttpd(inst, "harden", "--vhost", "plain.test", "--profile", "intermediate", "--hsts", "--uir", work=work)
    assert first.returncode == 0, first.stdout + first.stderr
    second = lehttpd(inst, "harden", "--vhost", "plain.test", "--staple-ocsp", work=work)
    assert second.returncode == 0, second.stdout + second.stderr
    headers = https_headers(inst.https_port, "plain.test")
    assert headers.get("strict-transport-security") == "max-age=63072000"
    assert headers.get("content-security-policy") == "upgrade-insecure-requests"
    assert "HSTS max-age=63072000, CSP upgrade-insecure-requests, OCSP stapling" in second.stdout

    removed = lehttpd(inst, "harden", "--vhost", "plain.test", "--no-hsts", work=work)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    headers = https_headers(inst.https_port, "plain.test")
    assert "strict-transport-security" not in headers
    assert headers.get("content-security-policy") == "upgrade-insecure-requests"

    before = options.read_bytes()
    alone = lehttpd(inst, "harden", "--vhost", "plain.test", "--hsts-preload", work=work)
    assert alone.returncode == 2 and "--hsts-preload needs HSTS" in alone.stderr, alone.stderr
    short = lehttpd(inst, "harden", "--vhost", "plain.test", "--hsts", "86400", "--hsts-preload", work=work)
    assert short.returncode == 2, short.stdout + short.stderr
    assert "at least 31536000 (one year), not 86400" in short.stderr
    both = lehttpd(inst, "harden", "--vhost", "plain.test", "--uir", "--no-uir", work=work)
    assert both.returncode == 2 and "contradict" in both.stderr
    assert options.read_bytes() == before
    year = lehttpd(inst, "harden", "--vhost", "plain.test", "--hsts", "31536000", "--hsts-preload", "--hsts-include-subdomains", work=work)
    assert year.returncode == 0, year.stdout + year.stderr
    assert https_headers(inst.https_port, "plain.test").get("strict-transport-security") == \
        "max-age=31536000; includeSubDomains; preload"
    rolled = lehttpd(inst, "rollback", "--checkpoints", "4", work=work)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
