"""A hook command line is judged by every file it makes root run, not only its first word."""
import os

import pytest

from lehttpd.errors import HookError
from lehttpd.hooks import run_hook
from lehttpd.store.hook_programs import programs_run_by

NOBODY = 65534


@pytest.mark.parametrize("command, expected", [
    ("apache2ctl graceful", [("apache2ctl", "program")]),
    ("systemctl reload apache2 && /srv/deploy/after.sh",
     [("systemctl", "program"), ("/srv/deploy/after.sh", "program")]),
    ("FOO=1 /srv/x --flag", [("/srv/x", "program")]),
    ("sh /srv/x.sh arg", [("sh", "program"), ("/srv/x.sh", "script")]),
    ("/usr/bin/python3 -u /srv/a.py", [("/usr/bin/python3", "program"), ("/srv/a.py", "script")]),
    ("env A=1 perl /srv/p.pl", [("env", "program"), ("perl", "program"), ("/srv/p.pl", "script")]),
    ("bash -c 'cd /x; /srv/y.sh'", [("bash", "program"), ("cd", "program"), ("/srv/y.sh", "program")]),
    ("timeout 30 nice -n 10 /srv/t", [("timeout", "program"), ("nice", "program"), ("/srv/t", "program")]),
    ("a;(b 2>&1 >/dev/null)|c &", [("a", "program"), ("b", "program"), ("c", "program")]),
    ("sh 2>/dev/null /srv/s.sh", [("sh", "program"), ("/srv/s.sh", "script")]),
    ("if /srv/test; then /srv/z; fi", [("/srv/test", "program"), ("/srv/z", "program"), ("fi", "program")]),
    ("echo 'a;b' > /srv/out", [("echo", "program")]),
    ("python3 -m http.server", [("python3", "program")]),
    ("python3 -c 'import os'", [("python3", "program")]),
    ("unbalanced 'quote", []),
])
def test_every_program_and_interpreted_script_of_a_command_line_is_found(command, expected):
    assert programs_run_by(command) == expected


@pytest.fixture
def nobodys_folder(tmp_path):
    os.chmod(tmp_path, 0o755)
    folder = tmp_path / "deploy"
    folder.mkdir()
    marker = tmp_path / "ran"
    script = folder / "after.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    os.chown(folder, NOBODY, NOBODY)  # a deploy user's folder: it can swap the script at any time
    os.chown(script, NOBODY, NOBODY)
    return script, marker


@pytest.mark.parametrize("template", [
    "sh {script}",  # root's /bin/sh reading nobody's script: the first word alone said "trusted"
    "true && {script}",
    "/bin/true; {script} --now",
    "FOO=1 {script}",  # an assignment first: nothing at all was judged
    "timeout 30 {script}",
    "sh -c '{script}'",
])
def test_a_script_another_user_can_change_is_never_run_whatever_runs_it(nobodys_folder, template):
    script, marker = nobodys_folder
    with pytest.raises(HookError, match="not run: .*owned by nobody"):
        run_hook("deploy", template.format(script=script))
    assert not marker.exists()


def test_the_same_script_runs_once_root_owns_it_and_its_folder(nobodys_folder):
    script, marker = nobodys_folder
    os.chown(script.parent, 0, 0)
    os.chown(script, 0, 0)
    run_hook("deploy", f"true && sh {script} > /dev/null 2>&1")
    assert marker.exists()
