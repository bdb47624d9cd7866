"""Installed as Python tools are installed: `python -m build` makes an sdist and a wheel (built from that sdist),
the wheel goes into a fresh virtualenv, and its `lehttpd` runs Apache commands against a private Apache.

To stay quick and offline-safe, the fresh virtualenv gets lehttpd itself from the wheel (`pip install --no-deps`)
and its dependencies (acme, Jinja2, augeas…) from the test virtualenv's site-packages through a `.pth` line, which
adds that folder to sys.path without running the editable install's finder there: `lehttpd` can only come from
the wheel, and the test checks that it does.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, make_lineage  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", "demo-state", "bench")


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> Path:
    """sdist and wheel built from a copy of the checkout (so that parallel runs never share build/)."""
    base = tmp_path_factory.mktemp("dist")
    source = base / "src"
    shutil.copytree(REPO, source, ignore=SKIP)
    out = base / "out"
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fresh_venv(dists, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", purelib], capture_output=True, text=True,
                               check=True).stdout.strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dists.glob("lehttpd-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=300, capture_output=True)
    return venv


def test_sdist_and_wheel_carry_the_templates_and_the_profile_data(dists):
    wheel = zipfile.ZipFile(next(dists.glob("lehttpd-*.whl"))).namelist()
    for name in ("lehttpd/templates/apache-2.4/vhost-ssl.conf.j2", "lehttpd/templates/apache-2.2/options-ssl.conf.j2",
                 "lehttpd/data/mozilla-tls-profiles.json"):
        assert name in wheel
    sdist = tarfile.open(next(dists.glob("lehttpd-*.tar.gz"))).getnames()
    assert any(n.endswith("/templates/apache-2.4/vhost-ssl.conf.j2") for n in sdist)
    assert any(n.endswith("/lehttpd/data/mozilla-tls-profiles.json") for n in sdist)


@pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")
def test_the_installed_wheel_runs_apache_commands_against_a_private_apache(fresh_venv, tmp_path):
    lehttpd = fresh_venv / "bin" / "lehttpd"
    where = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", "import lehttpd; print(lehttpd.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.startswith(str(fresh_venv)), where
    inst = make_instance(tmp_path / "apache")
    inst.add_site("wheel.test")
    config = tmp_path / "le"
    make_lineage(config, "wheel.test", ("wheel.test", "www.wheel.test"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    apache = ["--apache-ctl", str(inst.ctl), "--https-port", str(inst.https_port)]

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(lehttpd), *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                              env=env, stdin=subprocess.DEVNULL)

    listed = run("apache", "vhosts", *apache)
    assert listed.returncode == 0, listed.stderr
    assert "wheel.test" in listed.stdout
    installed = run("install", "--cert-name", "wheel.test", "--config-dir", str(config), "--redirect", "--dry-run",
                    "--work-dir", str(tmp_path / "work"), *apache)
    assert installed.returncode == 0, installed.stderr
    assert "SSLCertificateFile" in installed.stdout and "RewriteRule" in installed.stdout
    hardened = run("harden", "--profile", "intermediate", "--dry-run", "--work-dir", str(tmp_path / "work"), *apache)
    assert hardened.returncode == 0, hardened.stderr
