"""Every real-world tree of ../shared/corpus/apache-configs is discovered, listed and planned against (dry-run)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import make_lineage  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "apache-configs"
TREES = {
    "debian-multiple": ("debian_apache_2_4/multiple_vhosts/apache2", None),
    "debian-multi": ("debian_apache_2_4/multi_vhosts/apache2", None),
    "debian-augeas": ("debian_apache_2_4/augeas_vhosts/apache2", None),
    "debian-default": ("debian_apache_2_4/default_vhost/apache2", None),
    "centos7": ("centos7_apache/apache/httpd", "conf/httpd.conf"),
    "gentoo": ("gentoo_apache/apache/apache2", "httpd.conf"),
    "complex": ("complex_parsing", "apache2.conf"),
}


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus absent")
@pytest.mark.parametrize("key", sorted(TREES))
def test_corpus_tree_is_listed_and_planned(key, tmp_path):
    root, config = TREES[key]
    where = ["--server-root", str(CORPUS / root)] + (["--apache-config", config] if config else [])
    listed = run_lehttpd("apache", "vhosts", "--json", *where)
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    document = json.loads(listed.stdout)
    for vhost in document["vhosts"]:
        assert Path(vhost["file"]).is_file() and vhost["line"] >= 1
    named = [v["server_name"] for v in document["vhosts"]
             if not v["ssl"] and v["server_name"] and "." in v["server_name"]]
    # A tree without a named :80 vhost answers names from its default vhost (or its main server): plan for one.
    for name in named or ["unnamed.example"]:
        lineage = make_lineage(tmp_path / "le", name, (name,))
        planned = run_lehttpd("install", "--cert-name", lineage.name, "--config-dir", str(tmp_path / "le"),
                              "--redirect", "--dry-run", "--work-dir", str(tmp_path / "work"), *where)
        assert planned.returncode == 0, planned.stderr
        assert f"SSLCertificateFile {lineage.fullchain_path}" in planned.stdout
        assert "RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI}" in planned.stdout
        if not named:
            assert "ServerName unnamed.example" in planned.stdout
