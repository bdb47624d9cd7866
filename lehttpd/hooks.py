"""Running the user's hook commands (--pre-hook, --post-hook, --deploy-hook) with a time-out."""
from __future__ import annotations

import os
import subprocess

from lehttpd.errors import HookError

HOOK_TIMEOUT = 300.0


def run_hook(kind: str, command: str, env: dict[str, str] | None = None, timeout: float = HOOK_TIMEOUT) -> None:
    """Run one hook through the shell; a non-zero exit or a time-out raises HookError with its output."""
    environment = dict(os.environ)
    environment.update(env or {})
    try:
        result = subprocess.run(command, shell=True, env=environment, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HookError(f"{kind} hook {command!r} did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()
        last = f": {output[-1][:200]}" if output else ""
        raise HookError(f"{kind} hook {command!r} exited with status {result.returncode}{last}")
