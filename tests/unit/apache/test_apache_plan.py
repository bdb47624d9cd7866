"""plan.py and its neighbours are pure: trees held in memory, plans checked edit by edit (no Apache, no disk)."""
from __future__ import annotations

from pathlib import Path

import pytest

from lehttpd.apache.changes import Changes
from lehttpd.apache.discover import ApacheInfo, VhostLocation
from lehttpd.apache.layouts import DEBIAN, GENERIC
from lehttpd.apache.plan import Certificate, Tree, ensure_listen, new_changes, plan_install, with_dependencies
from lehttpd.apache.redirects import describe_redirect, find_redirect
from lehttpd.apache.targets import http_targets, missing_listens, probe_addresses
from lehttpd.apache.tls_options import comment_out, option_keys, setting_key
from lehttpd.apache.tree import ConfigReader
from lehttpd.apache.vhosts import vhost_from_block
from lehttpd.errors import UsageError

ROOT = Path("/srv/apache")
CERT = Certificate("a.test", ("a.test", "www.a.test"), "/le/cert.pem", "/le/chain.pem", "/le/fullchain.pem",
                   "/le/privkey.pem", "ecdsa")


def tree_of(files: dict[str, str], layout=GENERIC, version=(2, 4, 62), modules=(), globals_=()) -> Tree:
    reader = ConfigReader()
    data = {ROOT / name: text.encode() for name, text in files.items()}
    parsed = {path: reader.parse_bytes(path, raw) for path, raw in data.items()}
    reader.close()
    vhosts = []
    for path, file in parsed.items():
        for node in file.walk():
            if node.is_block and node.name.lower() == "virtualhost":
                names = [c.values[0] for c in node.named("ServerName")]
                location = VhostLocation(path, node.line, node.values, names[0] if names else "localhost")
                vhosts.append(vhost_from_block(location, file, node, 443))
    info = ApacheInfo(ctl=None, version=version, server_root=ROOT, config_file=ROOT / "httpd.conf", mpm="event",
                      modules=frozenset(f"{m}_module" for m in modules), includes=tuple(data), locations=(),
                      layout=layout)
    return Tree(info=info, vhosts=tuple(vhosts), files=parsed, globals=tuple(globals_), read=data.get)


SITE = "<VirtualHost *:80>\n    ServerName a.test\n    ServerAlias www.a.test\n    DocumentRoot /var/www/a\n" \
       "    Redirect permanent /old https://a.test/new\n</VirtualHost>\n"


def test_install_puts_the_ssl_twin_after_the_block_and_checks_each_name():
    tree = tree_of({"httpd.conf": "Listen 80\n", "a.conf": SITE})
    changes = new_changes(tree)
    assert plan_install(tree, CERT, 443, changes) == ["a.test"]
    plan = changes.freeze()
    after = {edit.path.name: edit.after.decode() for edit in plan.edits}
    twin = after["a-le-ssl.conf"]  # a folder of several .conf files: a file of its own beside the site
    assert "<VirtualHost *:443>" in twin and "SSLCertificateFile /le/fullchain.pem" in twin
    assert "DocumentRoot /var/www/a" in twin and "Redirect" not in twin  # a redirect to itself would loop
    assert "Listen 443" in after["httpd.conf"]
    assert [(c.name, c.address, c.port) for c in plan.checks] == [("a.test", "127.0.0.1", 443),
                                                                  ("www.a.test", "127.0.0.1", 443)]


def test_install_with_the_twin_present_plans_nothing():
    tree = tree_of({"httpd.conf": "Listen 80\nListen 443\n", "a.conf": SITE + (
        "<VirtualHost *:443>\n    ServerName a.test\n    SSLEngine on\n    SSLCertificateFile /le/fullchain.pem\n"
        "    SSLCertificateKeyFile /le/privkey.pem\n</VirtualHost>\n")},
        modules=("ssl", "socache_shmcb"), globals_=(("Listen", ("443",), ROOT / "httpd.conf"),))
    changes = new_changes(tree)
    plan_install(tree, CERT, 443, changes)
    assert changes.freeze().empty


def test_a_name_no_vhost_serves_is_refused_with_the_port():
    tree = tree_of({"a.conf": SITE})
    with pytest.raises(UsageError, match="no port-80 virtual host serves other.test"):
        plan_install(tree, Certificate("o", ("other.test",), "c", "ch", "f", "k"), 443, new_changes(tree))


def test_modules_come_with_their_depends_lines_dependencies_first():
    loads = {f"mods-available/{m}.load": f"# Depends: {deps}\nLoadModule {m}_module x\n" for m, deps in
             (("ssl", "setenvif mime socache_shmcb"), ("mime", ""), ("setenvif", ""), ("socache_shmcb", ""))}
    tree = tree_of(loads, layout=DEBIAN, modules=("mime",))
    assert with_dependencies(tree, ["ssl"], Changes(read=tree.read)) == ["setenvif", "socache_shmcb", "ssl"]


def test_listen_lines_only_for_addresses_nobody_listens_on():
    listening = (("Listen", ("127.0.0.1:443",), ROOT / "ports.conf"),)
    assert missing_listens(listening, ["127.0.0.1:443", "[::1]:443"], 443) == ["[::1]:443"]
    assert missing_listens(listening, ["*:443"], 443) == []
    assert missing_listens((), ["*:443", "10.0.0.1:443"], 443) == ["443"]
    assert missing_listens((("Listen", ("443",), ROOT / "p"),), ["[::1]:443"], 443) == []
    assert probe_addresses(listening, ["*:443"], 443) == ["127.0.0.1"]
    assert probe_addresses((), ["[::1]:443", "10.0.0.1:443"], 443) == ["::1", "10.0.0.1"]
    tree = tree_of({"httpd.conf": "Listen 80\n"}, version=(2, 2, 22))
    changes = new_changes(tree)
    ensure_listen(tree, ["*:80"], 443, changes)
    text = changes.freeze().edits[0].after.decode()
    assert "Listen 443" in text and "NameVirtualHost *:443" in text


def test_routing_follows_port_80_then_the_only_port_then_asks():
    tree = tree_of({"a.conf": SITE.replace("*:80", "*:8080") + SITE.replace("*:80", "*:80")})
    assert http_targets(tree.vhosts, ["a.test"], 443).http_port == 80
    two = tree_of({"a.conf": SITE.replace("*:80", "*:8080") + SITE.replace("*:80", "*:8081")})
    with pytest.raises(UsageError, match="--http-port"):
        http_targets(two.vhosts, ["a.test"], 443)
    assert http_targets(two.vhosts, ["a.test"], 443, http_port=8081).vhosts[0].ports == (8081,)
    default = tree_of({"d.conf": "<VirtualHost *:80>\n    DocumentRoot /d\n</VirtualHost>\n"})
    routed = http_targets(default.vhosts, ["d.test"], 443)
    assert routed.by_default and len(routed.vhosts) == 1


@pytest.mark.parametrize("lines,status,acme", [
    ("Redirect / https://a.test/", 302, False),
    ("Redirect permanent / https://a.test/", 301, False),
    ("RewriteEngine on\n    RewriteCond %{SERVER_NAME} =a.test\n"
     "    RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [END,NE,R=permanent]", 301, False),
    ("RewriteCond %{REQUEST_URI} !^/\\.well-known/acme-challenge/\n"
     "    RewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [R,L]", 302, True)])
def test_a_sites_own_redirect_is_described(lines, status, acme):
    tree = tree_of({"a.conf": f"<VirtualHost *:80>\n    ServerName a.test\n    {lines}\n</VirtualHost>\n"})
    said = " ".join(describe_redirect(find_redirect(tree.vhosts[0].node)))
    assert ("answers 302" in said) == (status == 302)
    assert ("also redirects /.well-known/acme-challenge/" in said) == (not acme)
    assert ("certbot's redirect" in said) == ("=a.test" in lines)


def test_tls_settings_keys_and_commenting_out_keep_line_ends():
    assert setting_key("SSLCipherSuite", ["TLSv1.3", "X"]) == "sslciphersuite tlsv1.3"
    assert setting_key("SSLCipherSuite", ["HIGH"]) == "sslciphersuite"
    assert option_keys("SSLProtocol -all\nSSLCipherSuite A\n# SSLCompression off\n") == \
        frozenset({"sslprotocol", "sslciphersuite"})
    assert comment_out(b"    SSLProtocol all\r\n", "    ", "why") == b"    # lehttpd harden: why:\r\n    #SSLProtocol all\r\n"


def test_openssl_1_0_is_read_through_ssleay(monkeypatch):
    """OpenSSL 1.0.x has no OpenSSL_version_num; its SSLeay() gives the same number layout."""
    import ctypes

    from lehttpd.apache import discover

    class OldLibssl:
        def __init__(self):
            self.SSLeay = lambda: 0x1000114F  # 1.0.1t

    monkeypatch.setattr(ctypes, "CDLL", lambda path: OldLibssl())
    assert discover._openssl_library_version("/lib/libssl.so.1.0.0") == (1, 0, 1)


def test_server_names_with_scheme_and_port_and_defines_with_a_dash():
    from lehttpd.apache.discover import expand, host_of_server_name

    assert host_of_server_name("http://www.example.com:80") == "www.example.com"
    assert host_of_server_name("www.example.com:8080") == "www.example.com"
    assert host_of_server_name("[2001:db8::1]:80") == "[2001:db8::1]"
    assert expand("${site-name}.conf", {"site-name": "blog"}) == "blog.conf"
