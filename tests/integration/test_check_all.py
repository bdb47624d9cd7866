"""`lehttpd check --all` on a real private Apache with three SSL vhosts: one fine, one still serving the previous
version of its lineage (renewed, never reloaded), one expiring inside the warning window."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, free_port, make_instance  # noqa: E402
from check_sites import add_ssl_site, three_level_lineage  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


@pytest.fixture(scope="module")
def three_sites(tmp_path_factory):
    base = tmp_path_factory.mktemp("apache-watch")
    config_dir = base / "le"
    inst = make_instance(base)
    root_pem, _one, ca = three_level_lineage(config_dir, "one.test", ("one.test",), days=60)
    _, _two, _ = three_level_lineage(config_dir, "two.test", ("two.test",), days=60, ca=ca)
    _, three, _ = three_level_lineage(config_dir, "three.test", ("three.test",), days=5, ca=ca)
    (base / "root.pem").write_bytes(root_pem)
    ports = {}
    for name in ("one.test", "two.test", "three.test"):
        ports[name] = free_port()
        live = config_dir / "live" / name
        add_ssl_site(inst, name, ports[name], live / "fullchain.pem", live / "privkey.pem")
    inst.start()
    # two.test is renewed after Apache loaded it, and Apache is not reloaded: it keeps serving version 1
    three_level_lineage(config_dir, "two.test", ("two.test",), days=60, ca=ca)
    try:
        yield inst, config_dir, base / "root.pem", ports
    finally:
        inst.stop()


def test_check_all_flags_the_stale_and_the_expiring_certificate(three_sites, tmp_path):
    inst, config_dir, root, ports = three_sites
    metrics = tmp_path / "textfile" / "lehttpd.prom"
    result = run_lehttpd("check", "--all", "--apache-ctl", str(inst.ctl), "--config-dir", str(config_dir),
                         "--ca-bundle", str(root), "--http-port", str(inst.http_port), "--json",
                         "--prometheus", str(metrics), timeout=120)
    assert result.returncode == 8, result.stderr
    report = json.loads(result.stdout)
    served = {r["name"]: r for r in report["rows"] if r["kind"] == "served"}
    lineages = {r["name"]: r for r in report["rows"] if r["kind"] == "lineage"}
    assert set(served) == set(lineages) == {"one.test", "two.test", "three.test"}
    assert served["one.test"]["problems"] == [] and served["one.test"]["grade"] == "A", served  # no HSTS: no A+
    assert served["one.test"]["endpoint"] == f"127.0.0.1:{ports['one.test']}"
    assert served["one.test"]["issuer"] == "CN=check test intermediate"
    assert (served["two.test"]["served_version"], served["two.test"]["current_version"]) == (1, 2)
    assert "reload Apache" in served["two.test"]["problems"][0]
    assert lineages["two.test"]["current_version"] == 2 and lineages["two.test"]["problems"] == []
    assert served["three.test"]["days_left"] < 6 and "expires in" in served["three.test"]["problems"][0]
    assert lineages["three.test"]["next_due"] is not None and "expires in" in lineages["three.test"]["problems"][0]
    assert len(report["problems"]) == 3

    text = metrics.read_text()
    assert f'lehttpd_certificate_served_current{{name="two.test",source="served",endpoint="127.0.0.1:' \
           f'{ports["two.test"]}",lineage="two.test"}} 0' in text
    assert 'lehttpd_check_grade{name="one.test",' in text and 'grade="A"} 7' in text
    assert text.count("lehttpd_certificate_expiry_timestamp_seconds{") == 6


def test_check_all_text_output_and_a_wider_window(three_sites):
    inst, config_dir, root, _ports = three_sites
    result = run_lehttpd("check", "--all", "--apache-ctl", str(inst.ctl), "--config-dir", str(config_dir),
                         "--ca-bundle", str(root), "--http-port", "0", "--warn-days", "2", timeout=120)
    assert result.returncode == 8  # the stale two.test still counts; three.test (5 days) is outside 2 days
    assert "two.test v1 (current: v2)" in result.stdout
    assert "expires in" not in result.stderr and "reload Apache" in result.stderr
