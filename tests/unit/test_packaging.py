"""What lehttpd installs: only what it runs on. Bench-only references are an optional extra."""
import importlib.util
import io
import sys
import tomllib
from contextlib import redirect_stdout
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_selectolax_is_a_bench_extra_not_a_runtime_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("selectolax")]
    assert [d for d in project["optional-dependencies"]["bench"] if d.lower().startswith("selectolax")]
    for module in (REPO / "lehttpd").rglob("*.py"):
        assert "selectolax" not in module.read_text(), f"{module} would need selectolax at run time"


def test_the_scan_bench_says_how_to_install_selectolax_when_it_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds bench/ to it
    spec = importlib.util.spec_from_file_location("bench_scan", REPO / "bench/bench_scan.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setitem(sys.modules, "selectolax", None)  # as on a machine without the extra
    monkeypatch.setitem(sys.modules, "selectolax.lexbor", None)
    assert bench.run_lexbor(str(tmp_path)) is None
    out = io.StringIO()
    with redirect_stdout(out):
        bench._report({"bytes": 1e6, "wall": 1.0, "pages": 1, "peak_rss": 2**20, "findings": 0, "missed": 0,
                       "false": 0, "cpu": 1.0}, {"wall": 1.0, "hits": 0, "missed": 0, "false": 0}, None, 0)
    assert "pip install -e '.[bench]'" in out.getvalue()
