from pathlib import Path

import pytest

from lehttpd.errors import UsageError
from lehttpd.model import ChallengeSetup, Hooks, IssueRequest, KeySpec
from lehttpd.renewal_conf import parse, render, to_request

CERTBOT_FILE = """# renew_before_expiry = 30 days
version = 2.11.0
archive_dir = /etc/letsencrypt/archive/example.com
cert = /etc/letsencrypt/live/example.com/cert.pem
privkey = /etc/letsencrypt/live/example.com/privkey.pem
chain = /etc/letsencrypt/live/example.com/chain.pem
fullchain = /etc/letsencrypt/live/example.com/fullchain.pem

# Options used in the renewal process
[renewalparams]
account = 0123456789abcdef0123456789abcdef
authenticator = webroot
webroot_path = /var/www/html,
server = https://acme-v02.api.letsencrypt.org/directory
key_type = rsa
renew_hook = systemctl reload apache2
[[webroot_map]]
example.com = /var/www/html
"""


def test_round_trip_keeps_everything_a_renewal_needs(tmp_path):
    request = IssueRequest(
        names=("a.example", "b.example"), server="https://ca.example/dir", cert_name="site",
        key=KeySpec("rsa", 3072, "secp384r1"), reuse_key=True,
        challenge=ChallengeSetup("standalone", 8080, "127.0.0.1"),
        hooks=Hooks("apache2ctl stop", "apache2ctl start", "apache2ctl graceful"),
        preferred_chain="Alt Root", ca_bundle=Path("/etc/ssl/private-ca.pem"))
    text = render(request, "acct", tmp_path)
    conf = parse(text, "site.conf")
    assert conf.params["account"] == "acct"
    assert conf.top["fullchain"] == str(tmp_path / "live/site/fullchain.pem")
    again = to_request(conf, request.names, "site", "site.conf")
    assert again == request


def test_certbots_own_file_is_understood():
    conf = parse(CERTBOT_FILE, "example.com.conf")
    request = to_request(conf, ("example.com",), "example.com", "example.com.conf")
    assert request.challenge.mode == "webroot" and request.challenge.webroot == Path("/var/www/html")
    assert request.key.key_type == "rsa" and request.hooks.deploy == "systemctl reload apache2"
    assert request.server == "https://acme-v02.api.letsencrypt.org/directory"


@pytest.mark.parametrize("text, message", [
    (CERTBOT_FILE[:120], "incomplete renewal file"),
    ("cert = /x\nthis is not a key value line\n", "cannot parse"),
    (CERTBOT_FILE.replace("[renewalparams]", "[mystery]"), "no \\[renewalparams\\] server"),
    (CERTBOT_FILE.replace("[renewalparams]", "[two words]"), "cannot parse section"),
    ("\x00\x01\x02garbage", "cannot parse"),
])
def test_corrupt_or_half_written_files_name_the_file_and_line(text, message):
    with pytest.raises(UsageError, match=message) as caught:
        parse(text, "broken.conf")
    assert "broken.conf" in str(caught.value)


def test_unsupported_authenticator_is_refused():
    conf = parse(CERTBOT_FILE.replace("authenticator = webroot", "authenticator = dns-route53"), "x.conf")
    with pytest.raises(UsageError, match="dns-route53"):
        to_request(conf, ("example.com",), "example.com", "x.conf")


def test_a_hook_with_a_line_break_cannot_inject_settings(tmp_path):
    request = IssueRequest(names=("a.example",), hooks=Hooks(pre="true\nserver = https://evil.example/"))
    with pytest.raises(UsageError, match="line break"):
        render(request, "acct", tmp_path)


def test_sections_certbot_adds_later_are_read_and_left_aside():
    # certbot 4+ records its ARI cache in the renewal file after a renew; lehttpd must still renew it.
    text = CERTBOT_FILE + "[acme_renewal_info]\nari_retry_after = 2026-11-28T11:00:43\n"
    conf = parse(text, "example.com.conf")
    assert "ari_retry_after" not in conf.params and conf.params["authenticator"] == "webroot"
    assert to_request(conf, ("example.com",), "example.com", "x.conf").server == \
        "https://acme-v02.api.letsencrypt.org/directory"


CERTBOT_TWO_ROOTS = CERTBOT_FILE.replace("webroot_path = /var/www/html,", "webroot_path = /var/www/html, /srv/shop") \
    .replace("example.com = /var/www/html", "example.com = /var/www/html\nshop.example.com = /srv/shop")


def test_certbots_webroot_map_gives_each_name_its_own_root():
    conf = parse(CERTBOT_TWO_ROOTS, "example.com.conf")
    request = to_request(conf, ("example.com", "shop.example.com", "www.example.com"), "example.com", "x.conf")
    # a name the map does not list gets the first webroot_path, as certbot does
    assert dict(request.challenge.webroot_map) == {"example.com": Path("/var/www/html"),
                                                   "shop.example.com": Path("/srv/shop"),
                                                   "www.example.com": Path("/var/www/html")}


def test_a_webroot_map_round_trips_in_certbots_shape(tmp_path):
    pairs = (("a.example", Path("/srv/a")), ("b.example", Path("/srv/b,c")), ("c.example", Path("/srv/a")))
    request = IssueRequest(names=tuple(n for n, _ in pairs), server="https://ca.example/dir", cert_name="site",
                           challenge=ChallengeSetup("webroot", webroot=Path("/srv/a"), webroot_map=pairs))
    text = render(request, "acct", tmp_path)
    assert 'webroot_path = /srv/a, "/srv/b,c"\n' in text
    assert text.endswith('[[webroot_map]]\na.example = /srv/a\nb.example = "/srv/b,c"\nc.example = /srv/a\n')
    again = to_request(parse(text, "site.conf"), request.names, "site", "site.conf")
    assert again.challenge == request.challenge


def test_a_relative_root_in_the_webroot_map_is_refused():
    conf = parse(CERTBOT_TWO_ROOTS.replace("= /srv/shop\n", "= srv/shop\n"), "x.conf")
    with pytest.raises(UsageError, match="webroot_map shop.example.com"):
        to_request(conf, ("example.com", "shop.example.com"), "example.com", "x.conf")


def test_a_quoted_first_webroot_with_a_comma_is_read_whole():
    conf = parse(CERTBOT_FILE.replace("webroot_path = /var/www/html,", 'webroot_path = "/srv/a,b", /srv/c')
                 .replace("example.com = /var/www/html\n", ""), "x.conf")
    request = to_request(conf, ("example.com",), "example.com", "x.conf")
    assert request.challenge.webroot == Path("/srv/a,b")
