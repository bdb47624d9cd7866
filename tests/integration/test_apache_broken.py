"""An Apache configuration already broken before lehttpd runs (a ~1000-character Include line cut mid-path), on a
real private Apache: one clear line, saying first that lehttpd changed nothing, then Apache's first error (long
paths shortened in the middle, never cut off at the end), then where the full `configtest` output is."""
from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance  # noqa: E402
from test_apache_instance import lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")
LONG = "/srv/www/" + "/".join(f"deeply-nested-folder-name-{i:02d}" for i in range(40))


@pytest.fixture
def broken(tmp_path):
    inst = make_instance(tmp_path / "srv")
    line = f"    Include {LONG}/site.conf"[:1000]  # cut mid-path, as an editor or a copy-paste leaves it
    inst.add_site("broken.test", text=f"<VirtualHost 127.0.0.1:{inst.http_port}>\n    ServerName broken.test\n"
                                      f"{line}\n</VirtualHost>\n")
    assert inst.run_ctl("-t", check=False).returncode != 0  # Apache itself refuses it: broken before lehttpd
    return inst


def the_error(result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lehttpd: error: "), result.stderr
    return lines[0]


def test_a_tree_broken_before_lehttpd_ran_gets_one_line_and_the_full_output_in_the_work_dir(broken, tmp_path):
    before = broken.snapshot()
    work = tmp_path / "work"
    result = lehttpd(broken, "harden", work=work)
    assert result.returncode == 6, result.stdout + result.stderr
    error = the_error(result)
    assert error.startswith("lehttpd: error: lehttpd changed nothing: Apache's configuration was already broken")
    assert "Syntax error on line 3 of" in error and "broken.test.conf: Could not open configuration file" in error
    assert "No such file or directory" in error  # Apache's reason, after the path, is kept
    assert "deeply-nested-folder-name-00/" in error and "…" in error  # the path shortened in the middle
    assert "Included configuration files" not in error and len(error) < 600, error
    saved = Path(re.search(r"full output in (\S+?\.txt)", error).group(1))
    assert saved.is_relative_to(work) and stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert LONG[:990 - len("    Include ")] in saved.read_text()  # all of it, the whole path included
    assert broken.snapshot() == before


def test_without_a_work_dir_the_line_names_the_command_that_shows_the_rest(broken):
    result = lehttpd(broken, "apache", "vhosts")
    assert result.returncode == 6, result.stdout + result.stderr
    error = the_error(result)
    assert error.startswith("lehttpd: error: lehttpd changed nothing")
    assert f"run `{broken.ctl} -t` for all of it" in error and len(error) < 600, error
    dry = lehttpd(broken, "redirect", "-d", "broken.test", "--dry-run")  # a dry run writes nothing, not even that
    assert dry.returncode == 6 and f"run `{broken.ctl} -t` for all of it" in the_error(dry)
