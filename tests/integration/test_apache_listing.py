"""`lehttpd apache vhosts` on a private Apache (config test only, nothing started): the plain block reader and the
Augeas fallback give what a full Augeas read gives, with Define'd ${VAR} substituted."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, make_lineage  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("listing")
    inst = make_instance(base)
    inst.enable_module("ssl")
    inst.enable_module("socache_shmcb")
    lineage = make_lineage(base / "le", "odd.test", ("odd.test",))
    main = inst.confdir / "apache2.conf"
    main.write_text(f"Define SITE_NAME defined.test\nDefine SITE_ROOT {inst.docroot('defined.test')}\n"
                    + main.read_text())
    inst.add_site("defined.test", text=(
        f"<VirtualHost 127.0.0.1:{inst.http_port}>\n    ServerName ${{SITE_NAME}}\n"
        f"    ServerAlias www.${{SITE_NAME}}\n    DocumentRoot ${{SITE_ROOT}}\n</VirtualHost>\n"))
    inst.add_site("odd.test", text=(  # a brace word list: the plain reader hands this file to Augeas
        f"<VirtualHost 127.0.0.1:{inst.https_port}>\n    ServerName odd.test\n    SSLEngine on\n"
        f"    SSLCertificateFile {lineage.fullchain_path}\n    SSLCertificateKeyFile {lineage.key_path}\n"
        "    <Location />\n        SSLRequire %{SSL_CIPHER} in {\"ECDHE-RSA-AES128-GCM-SHA256\", \"x\"}\n"
        "    </Location>\n    SetEnv LISTED {a,b}\n</VirtualHost>\n"))
    inst.add_site("pair.test", text="".join(
        f"# {name}\n<VirtualHost 127.0.0.1:{inst.http_port}>\n{mark}    ServerName {name}\n"
        f"    ServerAlias \"alias.{name}\" \\\n        more.{name}\n    DocumentRoot \"/srv/{name}\"\n"
        f"    <IfModule mod_absent.c>\n        ServerAlias not.direct.test\n    </IfModule>\n</VirtualHost>\n\n"
        for name, mark in (("one.test", ""), ("two.test", "    # Managed by lehttpd for certificate x\n"))))
    assert inst.run_ctl("configtest", check=False).returncode == 0, inst.run_ctl("configtest", check=False).stderr
    return inst


def test_listing_matches_a_full_augeas_read_and_substitutes_defines(tree):
    from lehttpd.apache.discover import discover
    from lehttpd.apache.vhosts import read_vhosts

    result = run_lehttpd("apache", "vhosts", "--json", "--apache-ctl", str(tree.ctl))
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert not listed["errors"]
    by_name = {v["server_name"]: v for v in listed["vhosts"]}
    defined = by_name["defined.test"]
    assert defined["aliases"] == ["www.defined.test"]
    assert defined["document_root"] == str(tree.docroot("defined.test")) and not defined["ssl"]
    assert defined["file"].endswith("sites-enabled/defined.test.conf") and defined["line"] == 1
    odd = by_name["odd.test"]
    assert odd["ssl"] and odd["certificate"].endswith("fullchain.pem") and odd["key"].endswith("privkey.pem")
    one, two = by_name["one.test"], by_name["two.test"]
    assert one["aliases"] == ["alias.one.test", "more.one.test"] and one["document_root"] == "/srv/one.test"
    assert (one["line"], two["line"]) == (2, 13) and not one["managed"] and two["managed"]

    full, _parsed, errors = read_vhosts(discover(str(tree.ctl)))  # every file through Augeas, as install reads
    assert not errors
    assert [v.as_json() for v in full] == listed["vhosts"]


def test_text_listing_shows_file_line_names_and_root(tree):
    result = run_lehttpd("apache", "vhosts", "--apache-ctl", str(tree.ctl))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert (f"{tree.confdir}/sites-enabled/defined.test.conf:1  127.0.0.1:{tree.http_port}  defined.test "
            f"+www.defined.test  root={tree.docroot('defined.test')}  http") in lines
    assert any(line.startswith(f"{tree.confdir}/sites-enabled/odd.test.conf:1  ") and line.endswith("fullchain.pem")
               for line in lines)
