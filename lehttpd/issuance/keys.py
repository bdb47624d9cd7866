"""Private keys and CSRs, with `cryptography` only."""
from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from lehttpd.errors import UsageError
from lehttpd.model import KeySpec

CURVES = {
    "secp256r1": ec.SECP256R1, "p-256": ec.SECP256R1, "prime256v1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1, "p-384": ec.SECP384R1,
    "secp521r1": ec.SECP521R1, "p-521": ec.SECP521R1,
}
RSA_SIZES = (2048, 3072, 4096)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def check_key_spec(spec: KeySpec) -> KeySpec:
    if spec.key_type not in ("ecdsa", "rsa"):
        raise UsageError(f"unknown key type {spec.key_type!r}: use ecdsa or rsa")
    if spec.key_type == "rsa" and spec.rsa_key_size not in RSA_SIZES:
        raise UsageError(f"unsupported RSA key size {spec.rsa_key_size}: use one of {', '.join(map(str, RSA_SIZES))}")
    if spec.key_type == "ecdsa" and spec.elliptic_curve.lower() not in CURVES:
        raise UsageError(f"unsupported elliptic curve {spec.elliptic_curve!r}: use secp256r1, secp384r1 or secp521r1")
    return spec


def generate_key(spec: KeySpec) -> PrivateKey:
    check_key_spec(spec)
    if spec.key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.rsa_key_size)
    return ec.generate_private_key(CURVES[spec.elliptic_curve.lower()]())


def key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise UsageError("the stored private key is neither RSA nor ECDSA")
    return key


def san_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The certificate's subjectAltName entries: DNS names, then IP addresses as text."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName)) + tuple(
        str(ip) for ip in san.get_values_for_type(x509.IPAddress))


def key_type_of(key: PrivateKey | x509.Certificate) -> str:
    public = key.public_key()
    return "rsa" if isinstance(public, rsa.RSAPublicKey) else "ecdsa"


def make_csr(key: PrivateKey, names: tuple[str, ...]) -> bytes:
    """A CSR carrying every name as a SAN (DNS names and IP addresses), the first one also as CN."""
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    builder = x509.CertificateSigningRequestBuilder().add_extension(
        x509.SubjectAlternativeName(alt_names), critical=False)
    # CN is limited to 64 characters, and an IP address there would be read as a DNS name: those stay in the
    # SAN only.
    with_cn = len(names[0]) <= 64 and not any(isinstance(n, x509.IPAddress) and str(n.value) == names[0]
                                              for n in alt_names)
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, names[0])] if with_cn else []
    builder = builder.subject_name(x509.Name(subject))
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)
