"""Sites for `lehttpd check` on the real private Apache: hand-written SSL vhosts (a weak TLS 1.0 one, an
incomplete chain), a three-level chain saved through the real store, and reading testssl.sh's JSON."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lehttpd.model import CertificateFiles, IssueRequest
from lehttpd.renewal_conf import render
from lehttpd.store import CertStore

SSL_SITE = """\
Listen 127.0.0.1:{port}
<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    DocumentRoot {docroot}
    <Directory {docroot}>
        Require all granted
    </Directory>
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}
{extra}</VirtualHost>
"""


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def three_level_lineage(config_dir: Path, lineage: str, names: tuple[str, ...], days: float = 60,
                        ca: tuple | None = None):
    """root → intermediate → leaf, the leaf saved as a new version of `lineage` with chain.pem = the
    intermediate. Returns (root PEM, lineage, the (root, key) pair to sign more versions with)."""
    now = dt.datetime.now(dt.timezone.utc)
    if ca is None:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _ca(_name("check test root"), root_key, _name("check test root"), root_key, now)
        ca = (root, root_key)
    root, root_key = ca
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _ca(_name("check test intermediate"), inter_key, root.subject, root_key, now, path_length=0)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(inter.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key()),
                           critical=False)
            .sign(inter_key, hashes.SHA256()))
    files = CertificateFiles(cert_pem=_pem(leaf), chain_pem=_pem(inter),
                             key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    # with the renewal file `lehttpd issue` writes: a lineage without one is a problem for check --all
    conf = render(IssueRequest(names=names, server="https://ca.invalid/dir", cert_name=lineage), "acct1", config_dir)
    return _pem(root), CertStore(config_dir).save_version(lineage, files, conf), ca


def _ca(subject, key, issuer, issuer_key, now, path_length=None) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))


def add_ssl_site(inst, name: str, port: int, cert: Path, key: Path, extra: str = "") -> None:
    """A hand-written SSL vhost on its own port (mod_ssl enabled)."""
    for module in ("ssl", "socache_shmcb", "headers"):
        inst.enable_module(module)
    inst.add_site(name, SSL_SITE.format(port=port, name=name, docroot=inst.docroot(name), cert=cert, key=key,
                                        extra=extra))


# -- testssl.sh ------------------------------------------------------------------------------------------------
TESTSSL_PROTOCOLS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1", "TLS1_2": "TLSv1.2",
                     "TLS1_3": "TLSv1.3"}
TESTSSL_CIPHER_PREFIX = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1": "TLSv1.0", "tls1_1": "TLSv1.1",
                         "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}


def has_testssl() -> bool:
    return shutil.which("testssl") is not None


def run_testssl(port: int, name: str, out: Path, full: bool = False) -> list[dict]:
    """testssl.sh's JSON for protocols and ciphers per protocol (or a full run)."""
    what = [] if full else ["--protocols", "--cipher-per-proto"]
    subprocess.run(["testssl", "--quiet", *what, "--warnings", "batch", "--jsonfile", str(out),
                    "--ip", "127.0.0.1", f"{name}:{port}"],
                   capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    return json.loads(out.read_text())


def parse_testssl(entries: list[dict]) -> tuple[set[str], dict[str, set[int]]]:
    """(offered protocols, suites by protocol as codes) from testssl.sh's JSON."""
    offered = {TESTSSL_PROTOCOLS[e["id"]] for e in entries
               if e["id"] in TESTSSL_PROTOCOLS and e["finding"].startswith("offered")}
    suites: dict[str, set[int]] = {}
    for entry in entries:
        if entry["id"].startswith("cipher-"):
            prefix, _, code = entry["id"][len("cipher-"):].rpartition("_x")
            suites.setdefault(TESTSSL_CIPHER_PREFIX[prefix], set()).add(int(code, 16))
    return offered, suites
