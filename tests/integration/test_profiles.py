"""ACME profiles, IP-address certificates and short lifetimes (Let's Encrypt in 2026), against real Pebble.

Debian's Pebble 2.4 has no profiles: FaultProxy (renew_fixtures) sits in front of it, adds Let's Encrypt's
`meta.profiles` to the directory and records every new order's payload, so the `profile` field sent is seen.
The short-lived path uses a second Pebble issuing 6-day certificates.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json

import pytest
from cryptography import x509

from tests.conftest import run_lehttpd
from tests.integration.renew_fixtures import FaultProxy

LE_PROFILES = {"classic": "The same profile you're accustomed to",
               "tlsserver": "A profile for TLS server certificates, 45-day lifetime",
               "shortlived": "A short-lived (about 6 days) certificate profile"}
SIX_DAYS = 6 * 86400


@pytest.fixture
def proxy(pebble):
    server = FaultProxy(pebble).start()
    server.profiles = dict(LE_PROFILES)
    yield server
    server.stop()


def args_for(pebble, proxy, config) -> list[str]:
    base = pebble.client_args(config)
    base[base.index("--server") + 1] = proxy.directory_url
    return base


def cert(config, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((config / "live" / name / "cert.pem").read_bytes())


def test_list_profiles_prints_each_profile_with_its_description(pebble, proxy):
    result = run_lehttpd("issue", "--list-profiles", "--server", proxy.directory_url, "--ca-bundle",
                         str(pebble.ca_bundle))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert sorted(lines) == sorted(f"{name}\t{text}" for name, text in LE_PROFILES.items())


def test_list_profiles_of_a_server_without_profiles_says_so(pebble):
    result = run_lehttpd("issue", "--list-profiles", "--server", pebble.directory_url, "--ca-bundle",
                         str(pebble.ca_bundle))
    assert result.returncode == 0 and "offers no profiles" in result.stdout


def test_preferred_profile_is_sent_stored_and_used_by_renew(pebble, proxy, tmp_path):
    config = tmp_path / "le"
    issued = run_lehttpd("issue", "profiled.test", *args_for(pebble, proxy, config), "--preferred-profile",
                         "tlsserver")
    assert issued.returncode == 0, issued.stderr
    assert [order.get("profile") for order in proxy.new_orders] == ["tlsserver"]
    assert "preferred_profile = tlsserver" in (config / "renewal" / "profiled.test.conf").read_text()
    renewed = run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force",
                          "--no-ari")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert [order.get("profile") for order in proxy.new_orders] == ["tlsserver", "tlsserver"]


def test_preferred_profile_not_offered_is_said_and_the_order_goes_without_it(pebble, proxy, tmp_path):
    result = run_lehttpd("issue", "fallback.test", *args_for(pebble, proxy, tmp_path / "le"),
                         "--preferred-profile", "nosuch")
    assert result.returncode == 0, result.stderr
    assert "does not offer the profile 'nosuch'" in result.stderr and "offered: classic, shortlived, tlsserver" in result.stderr
    assert [order.get("profile") for order in proxy.new_orders] == [None]


def test_required_profile_not_offered_fails_before_any_order(pebble, tmp_path):
    result = run_lehttpd("issue", "required.test", *pebble.client_args(tmp_path / "le"),
                         "--required-profile", "shortlived")
    assert result.returncode == 3
    assert "does not offer the profile 'shortlived' (--required-profile; offered: none)" in result.stderr
    assert not (tmp_path / "le" / "live" / "required.test").exists()


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_ip_address_certificates_are_issued_under_shortlived(pebble, proxy, tmp_path, address):
    config = tmp_path / "le"
    args = args_for(pebble, proxy, config)
    args[args.index("--http-address") + 1] = address  # Pebble connects to the address itself
    result = run_lehttpd("issue", address, *args, "--required-profile", "shortlived")
    assert result.returncode == 0, result.stderr
    lineage = ipaddress.ip_address(address).exploded.replace(":", "-") if ":" in address else address
    sans = cert(config, lineage).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(address)]
    assert [order.get("profile") for order in proxy.new_orders] == ["shortlived"]
    assert proxy.new_orders[0]["identifiers"] == [{"type": "ip", "value": address}]


@pytest.mark.parametrize("address", ["192.0.2.7", "2001:db8::7"])
def test_ip_addresses_under_a_profile_that_refuses_them_fail_before_any_network_call(pebble, proxy, tmp_path,
                                                                                     address):
    result = run_lehttpd("issue", address, *args_for(pebble, proxy, tmp_path / "le"), "--preferred-profile",
                         "classic")
    assert result.returncode == 2
    assert "does not issue certificates for IP addresses" in result.stderr and "shortlived" in result.stderr
    assert proxy.requests == 0


def test_a_six_day_certificate_is_issued_and_certificates_says_when_it_renews(make_pebble, tmp_path):
    short = make_pebble(validity_seconds=SIX_DAYS)
    proxy = FaultProxy(short).start()
    proxy.profiles = dict(LE_PROFILES)
    try:
        config = tmp_path / "le"
        issued = run_lehttpd("issue", "six-days.test", *args_for(short, proxy, config), "--preferred-profile",
                             "shortlived")
        assert issued.returncode == 0, issued.stderr
    finally:
        proxy.stop()
    leaf = cert(config, "six-days.test")
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert dt.timedelta(days=5, hours=23) < lifetime <= dt.timedelta(days=6)
    listed = run_lehttpd("certificates", "--config-dir", str(config), "--json")
    entry = json.loads(listed.stdout)["certificates"][0]
    due = dt.datetime.fromisoformat(entry["renewal_due"])
    # half-way through a short lifetime: three days after issuance, three days before expiry
    assert abs((due - leaf.not_valid_before_utc) - lifetime / 2) < dt.timedelta(minutes=1)
    text = run_lehttpd("certificates", "--config-dir", str(config)).stdout
    assert f"renewal: due {due:%Y-%m-%d %H:%M} UTC" in text
