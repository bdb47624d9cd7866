"""run_hook waits for the hook's shell, not for whoever still holds its output."""
import os
import time

import pytest

from lehttpd.errors import HookError
from lehttpd.hooks import run_hook


def gone(pid: int) -> bool:
    """True once PID has exited (a zombie counts: it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_hook_that_leaves_a_background_child_is_done_when_its_shell_exits(tmp_path):
    pid_file = tmp_path / "pid"
    run_hook("post", f"sleep 20 & echo $! > {pid_file}", timeout=3)  # raised "did not finish" before
    child = int(pid_file.read_text())
    assert not gone(child), "the background child is the hook's business: it keeps running"
    os.kill(child, 15)


def test_a_hook_past_its_time_out_is_stopped_with_its_children(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(HookError, match="did not finish within 1 s"):
        run_hook("deploy", f"sleep 30 & echo $! > {pid_file}; wait", timeout=1)
    child = int(pid_file.read_text())
    for _ in range(50):
        if gone(child):
            break
        time.sleep(0.1)
    assert gone(child), "the hook's process group was stopped"


def test_a_failed_hook_reports_its_status_and_last_line_of_output():
    with pytest.raises(HookError, match=r"pre hook 'echo one; echo two >&2; exit 3' exited with status 3: two"):
        run_hook("pre", "echo one; echo two >&2; exit 3")


def test_an_interrupted_run_stops_its_hook(tmp_path, monkeypatch):
    import subprocess

    pid_file = tmp_path / "pid"
    real_wait = subprocess.Popen.wait

    def interrupted(self, timeout=None):
        if timeout is not None:  # the hook's wait: Ctrl-C arrives once the hook is under way
            while not pid_file.exists() or not pid_file.read_text().strip():
                time.sleep(0.05)
            raise KeyboardInterrupt
        return real_wait(self)

    monkeypatch.setattr(subprocess.Popen, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_hook("pre", f"sleep 30 & echo $! > {pid_file}; wait", timeout=60)
    child = int(pid_file.read_text())
    for _ in range(50):
        if gone(child):
            break
        time.sleep(0.1)
    assert gone(child)
