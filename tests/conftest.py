import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Each session gets a temp root of its own, unless --basetemp names one.

    Private Apaches serve document roots from temp folders whose parents the tests open to 0711; a second pytest
    session starting meanwhile resets the shared /tmp/pytest-of-USER to 0700, and Apache then answers 403.
    """
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="lehttpd-pytest-")
        config._lehttpd_basetemp = config.option.basetemp


def pytest_unconfigure(config):
    basetemp = getattr(config, "_lehttpd_basetemp", None)
    if basetemp:
        shutil.rmtree(basetemp, ignore_errors=True)


def run_lehttpd(*args: str, env: dict | None = None, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run the real command line as a separate process, as a user or cron would."""
    return subprocess.run([sys.executable, "-m", "lehttpd", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, **kwargs)


@pytest.fixture(autouse=True)
def private_log_dir(tmp_path_factory, monkeypatch):
    """Tests never write /var/log/lehttpd: every command, in process or as a subprocess, logs to a temp folder."""
    log_dir = tmp_path_factory.mktemp("lehttpd-log")
    monkeypatch.setenv("LEHTTPD_LOG_DIR", str(log_dir))
    return log_dir


@pytest.fixture
def lehttpd_cli():
    return run_lehttpd
