"""Running the user's hook commands (--pre-hook, --post-hook, --deploy-hook) with a time-out."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile

from lehttpd.errors import HookError, UntrustedFileError
from lehttpd.store.trust import check_hook_program

HOOK_TIMEOUT = 300.0
OUTPUT_TAIL = 4096  # bytes of a failed hook's output read back for its error line


def run_hook(kind: str, command: str, env: dict[str, str] | None = None, timeout: float = HOOK_TIMEOUT) -> None:
    """Run one hook through the shell; a non-zero exit or a time-out raises HookError with its output.

    The wait is for the shell itself, not for its output: output goes to a file, so a hook that starts a
    background child (`daemon &`) is done when the shell exits, although the child keeps the file open.
    A hook still running at the time-out is stopped with its whole process group.
    """
    try:  # checked here, just before it runs, whoever asked for it (command line, renewal file, renewal-hooks/)
        check_hook_program(command)
    except UntrustedFileError as error:
        raise HookError(f"{kind} hook {command!r} not run: {error.message}") from None
    environment = dict(os.environ)
    environment.update(env or {})
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, shell=True, env=environment, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(process)
            raise HookError(f"{kind} hook {command!r} did not finish within {timeout:.0f} s") from None
        except BaseException:  # Ctrl-C: in its own session the hook would not get the terminal's SIGINT
            _stop_group(process)
            raise
        if returncode != 0:
            lines = _tail(output).strip().splitlines()
            last = f": {lines[-1][:200]}" if lines else ""
            raise HookError(f"{kind} hook {command!r} exited with status {returncode}{last}")


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _tail(output) -> str:
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - OUTPUT_TAIL))
    return output.read().decode(errors="replace")
