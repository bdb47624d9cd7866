"""Where Augeas is missing or too old: one line with the install command, and --emit prints the blocks (2.2 or 2.4)
from the same templates without reading or writing any configuration file."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import run_lehttpd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))
from apache_instance import make_lineage  # noqa: E402

CORPUS_TREE = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "apache-configs" / \
    "debian_apache_2_4" / "multiple_vhosts" / "apache2"
MISSING = 'raise ImportError("No module named augeas")\n'
TOO_OLD = '''\
class Augeas:
    NO_MODL_AUTOLOAD = ENABLE_SPAN = NO_LOAD = 0

    def __init__(self, flags=0):
        pass

    def get(self, path):
        return "0.10.0"

    def close(self):
        pass
'''


@pytest.fixture
def lineage(tmp_path):
    return make_lineage(tmp_path / "le", "blog.example", ("blog.example", "www.blog.example"))


def with_shim(tmp_path: Path, text: str) -> dict:
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "augeas.py").write_text(text)
    return {"PYTHONPATH": f"{shim}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.mark.parametrize("shim,said", [(MISSING, "cannot be loaded"), (TOO_OLD, "Augeas 0.10.0 is too old")])
def test_a_command_needing_augeas_says_so_in_one_line_with_the_install_command(tmp_path, lineage, shim, said):
    tree = tmp_path / "tree"
    (tree / "sites-enabled").mkdir(parents=True)
    (tree / "apache2.conf").write_text("Include sites-enabled/\n")
    result = run_lehttpd("install", "--cert-name", "blog.example", "--config-dir", str(lineage.config_dir),
                         "--server-root", str(tree), "--dry-run", env=with_shim(tmp_path, shim))
    assert result.returncode == 5 and result.stderr.count("\n") == 1, result.stderr
    assert said in result.stderr and "apt-get install libaugeas0 augeas-lenses" in result.stderr
    assert "--emit" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("version,expect,absent", [
    ("2.2.22", ("NameVirtualHost *:443", "[L,NE,R=301]", "SSLCertificateChainFile", "Satisfy Any"),
     ("[END", "Require all granted", "socache_shmcb")),
    ("2.4.62", ("[END,NE,R=301]", "Require all granted", "socache_shmcb", "fullchain.pem"),
     ("NameVirtualHost", "SSLCertificateChainFile"))])
def test_emit_prints_the_blocks_for_22_or_24_and_touches_nothing(tmp_path, lineage, version, expect, absent):
    env = with_shim(tmp_path, MISSING)  # Augeas cannot even be imported: --emit does not need it
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run_lehttpd("install", "--cert-name", "blog.example", "--config-dir", str(lineage.config_dir),
                         "--redirect", "--emit", "--apache-version", version, env=env)
    assert result.returncode == 0, result.stderr
    for text in expect + ("<VirtualHost *:443>", "ServerName blog.example", "ServerAlias www.blog.example",
                          "# BEGIN lehttpd redirect", "Listen 443"):
        assert text in result.stdout, text
    for text in absent:
        assert text not in result.stdout, text
    assert result.stdout.rstrip().endswith("--emit: nothing written")
    harden = run_lehttpd("harden", "--emit", "--apache-version", version, "--hsts", env=env)
    assert harden.returncode == 0, harden.stderr
    assert "SSLProtocol -all +TLSv1.2" in harden.stdout and "Managed by lehttpd: TLS options" in harden.stdout
    assert 'Strict-Transport-Security "max-age=63072000"' in harden.stdout
    assert sorted(p.name for p in tmp_path.rglob("*") if "__pycache__" not in p.parts) == before
