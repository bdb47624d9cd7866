"""Hooks around a renewal run: each distinct pre-hook and post-hook once per run, a deploy hook per lineage.

Pre-hooks run before the standalone listeners open (to stop a server holding port 80), post-hooks after
they close (to start it again), and deploy hooks last, once per renewed lineage, so that a reload
(`apache2ctl graceful`) reaches a running server. A failed hook is reported; it never undoes a certificate.
"""
from __future__ import annotations

from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import HookError
from lehttpd.hooks import run_hook
from lehttpd.model import IssueRequest


def _distinct(commands: list[str | None]) -> list[str]:
    return list(dict.fromkeys(c for c in commands if c))


def pre_hooks(requests: list[IssueRequest], timeout: float, console: Console,
              run_errors: list[str]) -> dict[str, str]:
    """Run every distinct pre-hook once; returns the lineages whose pre-hook failed, with the reason."""
    blocked: dict[str, str] = {}
    for command in _distinct([r.hooks.pre for r in requests]):
        console.step(f"Running pre-hook: {command}")
        try:
            run_hook("pre", command, timeout=timeout)
        except HookError as error:
            run_errors.append(error.message)
            for request in requests:
                if request.hooks.pre == command:
                    blocked[request.lineage_name] = f"not attempted: {error.message}"
    return blocked


def post_hooks(requests: list[IssueRequest], timeout: float, console: Console, run_errors: list[str]) -> None:
    for command in _distinct([r.hooks.post for r in requests]):
        console.step(f"Running post-hook: {command}")
        try:
            run_hook("post", command, timeout=timeout)
        except HookError as error:
            run_errors.append(error.message)


def deploy_hook(request: IssueRequest, live_dir: Path, timeout: float, console: Console) -> str | None:
    """Run the lineage's deploy hook; returns the error text when it failed (the certificate stays)."""
    if not request.hooks.deploy:
        return None
    console.step(f"Running deploy-hook for {request.lineage_name}: {request.hooks.deploy}")
    env = {"RENEWED_LINEAGE": str(live_dir), "RENEWED_DOMAINS": " ".join(request.names)}
    try:
        run_hook("deploy", request.hooks.deploy, env, timeout=timeout)
    except HookError as error:
        return error.message
    return None
