import pytest

from lehttpd.errors import InvalidDomainError
from lehttpd.issuance.names import normalize_names


@pytest.mark.parametrize("bad, reason", [
    ("", "empty"),
    ("a..example.com", "empty label"),
    (".example.com", "empty label"),
    ("x." + "a." * 130 + "com", "at most 253"),
    ("a" * 64 + ".example.com", "over 63 characters"),
    ("bad_char.example.com", "may hold only"),
    ("spa ce.example.com", "may hold only"),
    ("-lead.example.com", "may hold only"),
    ("trail-.example.com", "may hold only"),
    ("*.example.com", "dns-01"),
    ("a.*.example.com", "whole first label"),
    ("localhost", "fully qualified"),
    ("example.123", "all digits"),
    ("exa$mple.com", "may hold only"),
])
def test_invalid_names_are_refused_with_the_name_in_the_message(bad, reason):
    with pytest.raises(InvalidDomainError) as caught:
        normalize_names([bad], allow_ip=False)
    message = str(caught.value)
    assert reason in message
    assert (bad[:20] in message) or bad == ""


def test_ip_addresses_only_where_the_server_issues_for_them():
    with pytest.raises(InvalidDomainError, match="IP addresses"):
        normalize_names(["192.0.2.1"], allow_ip=False)
    assert normalize_names(["192.0.2.1", "[2001:db8::1]"], allow_ip=True) == ("192.0.2.1", "2001:db8::1")


def test_unicode_names_are_converted_with_idna2008():
    assert normalize_names(["Bücher.Example"], allow_ip=False) == ("xn--bcher-kva.example",)
    # IDNA 2008 (not 2003): the German sharp s is kept, not mapped to "ss".
    assert normalize_names(["faß.de"], allow_ip=False) == ("xn--fa-hia.de",)


def test_names_are_lowercased_trailing_dot_dropped_and_duplicates_removed():
    assert normalize_names(["WWW.Example.COM.", "www.example.com", "example.com"], allow_ip=False) == (
        "www.example.com", "example.com")


def test_no_names_is_an_error():
    with pytest.raises(InvalidDomainError, match="no domain name"):
        normalize_names([], allow_ip=False)


def test_csr_puts_ip_addresses_in_the_san_only():
    from cryptography import x509

    from lehttpd.issuance.keys import generate_key, make_csr
    from lehttpd.model import KeySpec

    csr = x509.load_pem_x509_csr(make_csr(generate_key(KeySpec()), ("192.0.2.7", "a.example")))
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME) == []
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert san.get_values_for_type(x509.DNSName) == ["a.example"]


def test_csr_for_a_name_longer_than_a_common_name_allows():
    from cryptography import x509

    from lehttpd.issuance.keys import generate_key, make_csr
    from lehttpd.model import KeySpec

    long_name = "a" * 60 + ".example.com"
    csr = x509.load_pem_x509_csr(make_csr(generate_key(KeySpec()), (long_name,)))
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME) == []
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [long_name]


def test_at_most_100_names_and_duplicates_do_not_count():
    from lehttpd.issuance.names import MAX_NAMES

    hundred = [f"n{i}.example.com" for i in range(MAX_NAMES)]
    assert len(normalize_names(hundred + ["N0.example.com."], allow_ip=False)) == 100
    with pytest.raises(InvalidDomainError, match="more than 100 names: a certificate holds at most 100"):
        normalize_names(hundred + ["n100.example.com"], allow_ip=False)
