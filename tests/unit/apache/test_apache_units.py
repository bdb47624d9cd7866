"""Fast tests of the pure parts: -S parsing, Augeas spans and errors, policy data, layouts, redirect logic."""
from __future__ import annotations

from pathlib import Path

import pytest

from lehttpd.apache import render
from lehttpd.apache.discover import parse_dump
from lehttpd.apache.redirects import existing_redirect
from lehttpd.apache.layouts import DEBIAN, GENERIC, RHEL, SUSE, layout_for
from lehttpd.apache.plan import site_body
from lehttpd.apache.policy import PROFILES, build_policy, load_profiles
from lehttpd.apache.tree import ConfigParseError, ConfigReader
from lehttpd.errors import UsageError

DUMP = """\
Included configuration files:
  (*) /etc/apache2/apache2.conf
    (146) /etc/apache2/mods-enabled/ssl.load
VirtualHost configuration:
*:443                  is a NameVirtualHost
         default server a.test (/etc/apache2/sites-enabled/a-le-ssl.conf:2)
         port 443 namevhost a.test (/etc/apache2/sites-enabled/a-le-ssl.conf:2)
                 alias www.a.test
10.0.0.1:80            solo.test (/etc/apache2/sites-enabled/solo conf.conf:7)
*:80                   is a NameVirtualHost
         port 80 namevhost a.test (/etc/apache2/sites-enabled/a.conf:1)
         port 80 namevhost b.test (/etc/apache2/sites-enabled/b.conf:3)
                 alias www.b.test
ServerRoot: "/etc/apache2"
PidFile: "/run/apache2/apache2.pid"
Define: DUMP_VHOSTS
Loaded Modules:
 core_module (static)
 ssl_module (shared)
"""


def test_dump_parsing_gives_files_lines_addresses_names_and_modules():
    values = parse_dump(DUMP)
    locations = {(str(loc.file), loc.line): loc for loc in values["locations"]}
    assert locations[("/etc/apache2/sites-enabled/a-le-ssl.conf", 2)].aliases == ("www.a.test",)
    assert locations[("/etc/apache2/sites-enabled/solo conf.conf", 7)].addresses == ("10.0.0.1:80",)
    assert locations[("/etc/apache2/sites-enabled/b.conf", 3)].aliases == ("www.b.test",)
    assert len(values["locations"]) == 4  # "default server" lines are not vhosts of their own
    assert values["modules"] == ["core_module", "ssl_module"]
    assert [str(p) for p in values["includes"]] == ["/etc/apache2/apache2.conf", "/etc/apache2/mods-enabled/ssl.load"]
    assert values["server_root"] == "/etc/apache2" and str(values["run_dir"]) == "/run/apache2"


def test_augeas_spans_are_byte_exact_and_errors_name_file_and_line(tmp_path):
    reader = ConfigReader()
    data = "# café\n<VirtualHost *:80>\n    ServerName a.test\n</VirtualHost>\n".encode()
    parsed = reader.parse_bytes(tmp_path / "x.conf", data)
    vhost = parsed.nodes[0]
    assert vhost.line == 2 and data[vhost.start:vhost.end].strip().startswith(b"<VirtualHost")
    name = vhost.named("servername")[0]
    assert data[name.start:name.end] == b"    ServerName a.test\n" and name.values == ("a.test",)
    with pytest.raises(ConfigParseError) as error:
        reader.parse_bytes(tmp_path / "bad.conf", b"Listen 80\n<VirtualHost *:80>\nServerName a\n</Virtual>\n")
    assert str(tmp_path / "bad.conf") in error.value.message and error.value.line >= 1
    with pytest.raises(ConfigParseError, match="byte-order mark"):
        reader.parse_bytes(tmp_path / "bom.conf", b"\xef\xbb\xbfListen 80\n")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("apache", [(2, 2, 34), (2, 4, 10), (2, 4, 71)])
def test_no_profile_ever_allows_broken_protocols_or_suites(profile, apache):
    if profile == "modern" and apache < (2, 4, 36):
        with pytest.raises(UsageError, match="2.4.36"):
            build_policy(profile, apache, (3, 0, 19))
        return
    policy = build_policy(profile, apache, (3, 0, 19))
    text = f"{policy.protocol} {policy.cipher_suite or ''}".upper()
    for bad in ("SSLV2", "SSLV3", "RC4", "DES-CBC3", "3DES", "EXP-", "NULL", "MD5"):
        assert bad not in text
    if apache < (2, 4, 36):
        assert "TLSV1.3" not in text and policy.tls13_suites is None
    if apache < (2, 4, 11):
        assert policy.curves is None


def test_profiles_follow_mozilla_data_and_version_gates():
    data = load_profiles()
    assert data["guideline"] == "5.8"
    intermediate = build_policy("intermediate", (2, 4, 71), (3, 0, 19))
    assert intermediate.protocol == "-all +TLSv1.2 +TLSv1.3" and not intermediate.honor_order
    assert intermediate.curves == "X25519:prime256v1:secp384r1"  # no ML-KEM before OpenSSL 3.5
    assert build_policy("intermediate", (2, 4, 71), (3, 5, 0)).curves.startswith("X25519MLKEM768:")
    old = build_policy("old", (2, 4, 71), (3, 0, 19))
    assert old.cipher_suite.startswith("@SECLEVEL=0:") and old.honor_order
    assert build_policy("modern", (2, 4, 71), (3, 0, 19)).protocol == "-all +TLSv1.3"
    with pytest.raises(UsageError, match="OpenSSL >= 1.1.1"):
        build_policy("modern", (2, 4, 71), (1, 1, 0))
    assert not build_policy("intermediate", (2, 4, 12), None, staple_ocsp=True).stapling
    assert build_policy("intermediate", (2, 4, 13), None, staple_ocsp=True).stapling


def test_options_file_hash_detects_hand_edits():
    stamped = render.stamp_options("SSLProtocol -all +TLSv1.2\n").encode()
    assert render.options_state(None) == "absent"
    assert render.options_state(stamped) == "managed"
    assert render.options_state(stamped + b"SSLProtocol all\n") == "edited"
    assert render.options_state(b"SSLProtocol all\n") == "edited"


def test_layouts_by_os_release_id_then_id_like():
    assert layout_for({"ID": "ubuntu"}) is DEBIAN
    assert layout_for({"ID": "rocky", "ID_LIKE": "rhel centos fedora"}) is RHEL
    assert layout_for({"ID": "someday", "ID_LIKE": "opensuse suse"}) is SUSE
    assert layout_for({"ID": "plan9"}) is GENERIC


def test_site_body_keeps_comments_and_drops_redirects(tmp_path):
    text = (b"<VirtualHost *:80>\n    # keep me\n    ServerName a.test\n    Redirect permanent / https://a.test/\n"
            b"    RewriteEngine on\n    RewriteCond %{HTTPS} off\n"
            b"    RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [L,R=301]\n"
            b"    RewriteRule ^/old$ /new [PT]\n</VirtualHost>\n")
    parsed = ConfigReader().parse_bytes(tmp_path / "a.conf", text)
    body = site_body(parsed.data, parsed.nodes[0])
    assert "# keep me" in body and "RewriteRule ^/old$ /new [PT]" in body
    assert "Redirect" not in body and "RewriteCond" not in body and "https://" not in body
    assert existing_redirect(parsed.nodes[0])
    plain = ConfigReader().parse_bytes(tmp_path / "b.conf", b"<VirtualHost *:80>\nServerName b\n</VirtualHost>\n")
    assert not existing_redirect(plain.nodes[0])


def test_cli_defaults_match_the_modules_they_stand_for():
    from lehttpd.apache import commands, operations, policy
    from lehttpd import store

    assert commands.DEFAULT_WORK_DIR == operations.DEFAULT_WORK_DIR
    assert commands.DEFAULT_CONFIG_DIR == store.DEFAULT_CONFIG_DIR
    assert commands.PROFILES == policy.PROFILES
