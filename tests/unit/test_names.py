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
