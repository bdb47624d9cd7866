import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
