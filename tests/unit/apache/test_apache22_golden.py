"""Apache 2.2 cannot be installed here: its output is pinned by golden files and checked against 2.2's rules.

Set LEHTTPD_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate template change (and review the diff).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lehttpd.apache import operations
from lehttpd.apache.operations import HardenRequest, Options
from lehttpd.apache.reading import Source
from lehttpd.model import Lineage

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "apache-2.2"


def make_tree(root: Path) -> Path:
    conf = root / "apache2"
    for sub in ("mods-available", "mods-enabled", "sites-available", "sites-enabled"):
        (conf / sub).mkdir(parents=True)
    (conf / "apache2.conf").write_text("# main\nInclude ports.conf\nInclude mods-enabled/*.load\n"
                                       "Include sites-enabled/\n")
    (conf / "ports.conf").write_text("NameVirtualHost *:80\nListen 80\n")
    for module in ("ssl", "rewrite", "headers"):
        (conf / "mods-available" / f"{module}.load").write_text(
            f"LoadModule {module}_module /usr/lib/apache2/modules/mod_{module}.so\n")
    (conf / "sites-available" / "blog").write_text(
        "<VirtualHost *:80>\n\tServerName blog.example\n\tServerAlias www.blog.example\n"
        "\tDocumentRoot /var/www/blog\n\t<Directory /var/www/blog>\n\t\tOrder allow,deny\n\t\tAllow from all\n"
        "\t</Directory>\n\tRewriteEngine On\n\tRewriteRule ^/feed$ /rss.xml [PT]\n</VirtualHost>\n")
    (conf / "sites-enabled" / "blog").symlink_to("../sites-available/blog")
    return conf


def lineage(root: Path) -> Lineage:
    import datetime as dt

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    return Lineage(name="blog.example", config_dir=root / "le", names=("blog.example", "www.blog.example"),
                   version=1, not_before=now, not_after=now, key_type="ecdsa", serial=1, issuer="CN=test")


def check_golden(name: str, text: str, root: Path) -> str:
    text = text.replace(str(root.resolve()), "<ROOT>").replace(str(root), "<ROOT>")
    path = GOLDEN / name
    if os.environ.get("LEHTTPD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}: run with LEHTTPD_UPDATE_GOLDEN=1"
    assert text == path.read_text()
    return text


@pytest.fixture
def tree22(tmp_path):
    conf = make_tree(tmp_path)
    options = Options(source=Source(server_root=conf, apache_version="2.2.34"), dry_run=True)
    return tmp_path, conf, options


def test_install_with_redirect_on_22_matches_golden_and_22_rules(tree22):
    root, conf, options = tree22
    outcome, errors = operations.install(lineage(root), options, redirect=True, log=lambda m: None)
    assert not errors
    diff = check_golden("install-redirect.diff", outcome.plan.diff(), root)
    assert "+\tNameVirtualHost *:443" in diff.replace("    NameVirtualHost", "\tNameVirtualHost")
    assert f"SSLCertificateFile <ROOT>/le/live/blog.example/cert.pem" in diff
    assert f"SSLCertificateChainFile <ROOT>/le/live/blog.example/chain.pem" in diff
    assert "fullchain" not in diff
    assert "Require " not in diff and "Order allow,deny" in diff and "Allow from all" in diff
    assert "[END" not in diff and "[L,NE,R=301]" in diff  # [END] arrived in 2.3.9
    assert diff.count("Listen 443") == 1
    assert "socache_shmcb" not in diff  # a 2.4 module; 2.2's mod_ssl has shmcb built in


def test_harden_on_22_matches_golden_and_has_no_24_only_directives(tree22):
    root, conf, options = tree22
    request = HardenRequest(profile="intermediate", hsts=31536000, openssl_version=(1, 0, 2))
    outcome, _ = operations.harden(request, options, log=lambda m: None)
    diff = check_golden("harden-intermediate.diff", outcome.plan.diff(), root)
    assert "SSLOpenSSLConfCmd" not in diff and "TLSv1.3" not in diff and "SSLUseStapling" not in diff
    assert "+SSLProtocol -all +TLSv1.2\n" in diff
    assert "+SSLSessionTickets off" in diff  # 2.2.30 and later have it
    old = operations.harden(HardenRequest(profile="old", openssl_version=(1, 0, 2)), options, lambda m: None)[0]
    assert "+SSLProtocol -all +TLSv1 +TLSv1.1 +TLSv1.2\n" in old.plan.diff()
    assert "@SECLEVEL" not in old.plan.diff()  # only OpenSSL 3 needs it


def test_modern_is_refused_on_22(tree22):
    from lehttpd.errors import UsageError

    root, conf, options = tree22
    with pytest.raises(UsageError, match="2.4.36"):
        operations.harden(HardenRequest(profile="modern"), options, lambda m: None)
