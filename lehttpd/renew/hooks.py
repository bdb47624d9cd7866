"""Hooks around a renewal run: each distinct pre-hook and post-hook once per run, a deploy hook per lineage.

Pre-hooks run before the standalone listeners open (to stop a server holding port 80), post-hooks after
they close (to start it again), and deploy hooks last, once per renewed lineage, so that a reload
(`apache2ctl graceful`) reaches a running server. A failed hook is reported; it never undoes a certificate.

As in certbot, executables in CONFIG_DIR/renewal-hooks/{pre,post,deploy}/ run too (in name order, before the
command-line and stored hooks), so a certbot user's reload script keeps working after the switch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from lehttpd.console import Console
from lehttpd.errors import HookError
from lehttpd.hooks import run_hook
from lehttpd.model import IssueRequest


def _distinct(commands: list[str | None]) -> list[str]:
    return list(dict.fromkeys(c for c in commands if c))


def shared_hooks(kind: Literal["pre", "post"], requests: list[IssueRequest], timeout: float, console: Console,
                 run_errors: list[str], for_all: list[str] = ()) -> dict[str, str]:
    """Run every distinct KIND ("pre" or "post") hook once; returns the lineages whose hook failed, with why.

    `for_all` (the renewal-hooks/KIND/ folder) applies to every lineage. A failed pre-hook blocks the lineages
    that needed it; the caller ignores the result of the post-hooks, which run after the renewals.
    """
    failed: dict[str, str] = {}
    for command in _distinct([*for_all, *(getattr(r.hooks, kind) for r in requests)]):
        console.step(f"Running {kind}-hook: {command}")
        try:
            run_hook(kind, command, timeout=timeout)
        except HookError as error:
            run_errors.append(error.message)
            for request in requests:
                if getattr(request.hooks, kind) == command or command in for_all:
                    failed[request.lineage_name] = f"not attempted: {error.message}"
    return failed


def deploy_hook(request: IssueRequest, live_dir: Path, timeout: float, console: Console,
                for_all: list[str] = ()) -> str | None:
    """Run the lineage's deploy hooks; returns the error text when one failed (the certificate stays)."""
    env = {"RENEWED_LINEAGE": str(live_dir), "RENEWED_DOMAINS": " ".join(request.names)}
    errors = []
    for command in _distinct([*for_all, request.hooks.deploy]):
        console.step(f"Running deploy-hook for {request.lineage_name}: {command}")
        try:
            run_hook("deploy", command, env, timeout=timeout)
        except HookError as error:
            errors.append(error.message)
    return "; ".join(errors) or None
