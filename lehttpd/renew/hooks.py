"""Hooks around a renewal run: each distinct pre-hook and post-hook once per run, a deploy hook per lineage.

Pre-hooks run before the standalone listeners open (to stop a server holding port 80), post-hooks after
they close (to start it again), and deploy hooks last, once per renewed lineage, so that a reload
(`apache2ctl graceful`) reaches a running server. A failed hook is reported; it never undoes a certificate.

As in certbot, executables in CONFIG_DIR/renewal-hooks/{pre,post,deploy}/ run too (in name order, before the
command-line and stored hooks), so a certbot user's reload script keeps working after the switch.
"""
from __future__ import annotations

from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import HookError
from lehttpd.hooks import run_hook
from lehttpd.model import IssueRequest


def _distinct(commands: list[str | None]) -> list[str]:
    return list(dict.fromkeys(c for c in commands if c))


def pre_hooks(requests: list[IssueRequest], timeout: float, console: Console, run_errors: list[str],
              for_all: list[str] = ()) -> dict[str, str]:
    """Run every distinct pre-hook once; returns the lineages whose pre-hook failed, with the reason.

    `for_all` (the renewal-hooks/pre/ folder) applies to every lineage: its failure blocks them all.
    """
    blocked: dict[str, str] = {}
    for command in _distinct([*for_all, *(r.hooks.pre for r in requests)]):
        console.step(f"Running pre-hook: {command}")
        try:
            run_hook("pre", command, timeout=timeout)
        except HookError as error:
            run_errors.append(error.message)
            for request in requests:
                if request.hooks.pre == command or command in for_all:
                    blocked[request.lineage_name] = f"not attempted: {error.message}"
    return blocked


def post_hooks(requests: list[IssueRequest], timeout: float, console: Console, run_errors: list[str],
               for_all: list[str] = ()) -> None:
    for command in _distinct([*for_all, *(r.hooks.post for r in requests)]):
        console.step(f"Running post-hook: {command}")
        try:
            run_hook("post", command, timeout=timeout)
        except HookError as error:
            run_errors.append(error.message)


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
