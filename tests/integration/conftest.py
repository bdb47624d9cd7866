"""Real services for integration tests: a Pebble ACME server (Debian package `pebble`) on loopback, a private
Apache, and a lehttpd --work-dir its workers can read challenge files from."""
import shutil
import sys
from pathlib import Path

import pytest

from lehttpd.sandbox.pebble import Pebble, free_port


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _require_pebble() -> None:
    if not shutil.which("pebble"):
        pytest.fail("Pebble is not installed: run `make test`, which installs the Debian package 'pebble'")


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    """One Pebble per test module; its http-01 port is where `lehttpd issue --http-port` must listen."""
    _require_pebble()
    with Pebble(tmp_path_factory.mktemp("pebble"), http_port=free_port()) as server:
        yield server


@pytest.fixture
def make_pebble(tmp_path_factory):
    """A factory for a Pebble with special settings (fault switches, short validity); stopped after the test."""
    _require_pebble()
    started = []

    def start(env=None, validity_seconds=None, eab_keys=None):
        server = Pebble(tmp_path_factory.mktemp("pebble"), http_port=free_port(), env=env,
                        validity_seconds=validity_seconds, eab_keys=eab_keys).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def inst(tmp_path):
    """A private Apache (Debian's apache2, its own tree and loopback ports), stopped after the test."""
    sys.path.insert(0, str(Path(__file__).parent))
    from apache_instance import make_instance

    server = make_instance(tmp_path / "srv")
    yield server
    server.stop()


@pytest.fixture
def work_dir():
    """A --work-dir straight under /tmp, 0711 (see apache_instance.open_work_dir); removed after the test."""
    sys.path.insert(0, str(Path(__file__).parent))
    from apache_instance import open_work_dir

    folder = open_work_dir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
