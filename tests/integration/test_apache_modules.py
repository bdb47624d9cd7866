"""Modules the way a2enmod enables them (with the modules their `# Depends:` line names), on a real private Apache."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, make_lineage  # noqa: E402
from test_apache_instance import der, lehttpd, served_der  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


@pytest.fixture
def bare(tmp_path):
    """A server without mod_ssl and without ssl's dependencies mime and setenvif (an admin trimmed them)."""
    inst = make_instance(tmp_path / "srv")
    for module in ("mime", "setenvif"):
        for suffix in (".load", ".conf"):
            link = inst.confdir / "mods-enabled" / f"{module}{suffix}"
            if link.is_symlink():
                link.unlink()
    inst.add_site("m.test")
    inst.start()
    yield inst
    inst.stop()


def test_harden_without_an_ssl_vhost_enables_no_module(bare, tmp_path):
    before = bare.snapshot()
    result = lehttpd(bare, "harden", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    assert "no SSL vhost in this configuration" in result.stdout and "mod_ssl is not enabled" in result.stdout
    added = set(bare.snapshot()) - set(before)
    assert added == {"lehttpd/options-ssl.conf"}
    assert bare.run_ctl("configtest", check=False).returncode == 0


def test_install_enables_ssl_with_its_dependencies(bare, tmp_path):
    lineage = make_lineage(tmp_path / "le", "m.test", ("m.test",))
    result = lehttpd(bare, "install", "--cert-name", "m.test", "--config-dir", str(lineage.config_dir),
                     work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    enabled = {p.name for p in (bare.confdir / "mods-enabled").iterdir()}
    assert {"ssl.load", "ssl.conf", "socache_shmcb.load", "mime.load", "mime.conf", "setenvif.load",
            "setenvif.conf"} <= enabled
    assert served_der(bare.https_port, "m.test") == der(lineage.cert_path)
