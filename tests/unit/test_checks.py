"""A CA bundle is checked where it is named (command line or renewal file): one line that names the file."""
import os

import pytest

from lehttpd.checks import check_ca_bundle
from lehttpd.errors import UsageError
from lehttpd.sandbox.tls import write_tls_pair


def test_a_pem_bundle_passes_with_text_around_it(tmp_path):
    ca, _, _ = write_tls_pair(tmp_path / "tls")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"# our private CA\n" + ca.read_bytes() + b"\ntrailing words\n")
    assert check_ca_bundle(bundle, "--ca-bundle") == bundle
    assert check_ca_bundle(None, "--ca-bundle") is None


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_text("not a certificate\n"), "not a PEM file of CA certificates"),
    (lambda p: p.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "not a PEM file"),
    (lambda p: p.mkdir(), "not a regular file"),
    (lambda p: os.mkfifo(p), "not a regular file"),  # opening a FIFO would hang without O_NONBLOCK
])
def test_a_bad_bundle_is_one_line_naming_it(tmp_path, make, message):
    path = tmp_path / "bundle.pem"
    make(path)
    with pytest.raises(UsageError) as error:
        check_ca_bundle(path, "renewal/a.conf: lehttpd_ca_bundle")
    assert str(error.value).startswith(f"renewal/a.conf: lehttpd_ca_bundle {path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)
