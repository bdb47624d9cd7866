"""Who answers http-01 for an order: the standalone server, token files in a webroot, or the running Apache.

Each responder has `serving(tokens)` (a context manager: the tokens are served inside it) and is itself a
context manager that starts and stops it. `responder_starting()` starts one in the background, so the ACME
order is placed while Apache reloads or the listener binds.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Callable, Iterator, Protocol

from lehttpd.console import Console
from lehttpd.issuance import solvers
from lehttpd.model import ChallengeSetup


class Responder(Protocol):
    def serving(self, tokens: dict[str, str]) -> contextlib.AbstractContextManager[None]: ...


class WebrootResponder:
    """Token files in document roots: each name's own (certbot's webroot_map), else the one webroot."""

    def __init__(self, webroot: Path, roots: dict[str, Path] | None = None) -> None:
        self.webroot, self.roots = webroot, roots or {}

    def __enter__(self) -> "WebrootResponder":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    @contextlib.contextmanager
    def serving(self, tokens: dict[str, str], names: dict[str, str] | None = None) -> Iterator[None]:
        """`names`: the name each token is for, so that it lands in that name's root (all hardened the same)."""
        by_root: dict[Path, dict[str, str]] = {}
        for token, validation in tokens.items():
            root = self.roots.get((names or {}).get(token, ""), self.webroot)
            by_root.setdefault(root, {})[token] = validation
        with contextlib.ExitStack() as stack:
            for root, some in by_root.items():
                stack.enter_context(solvers.webroot_files(root, some))
            yield


class StandaloneResponder:
    """The built-in server for one order. It is stopped in the background (its serving loop takes up to a poll
    interval to notice), while the order is finalized; a later responder on the same port waits for that."""

    _closing: dict[int, threading.Thread] = {}

    def __init__(self, setup: ChallengeSetup, log: Callable[[str], None]) -> None:
        self.setup, self.log = setup, log
        self.server: solvers.StandaloneServer | None = None

    def __enter__(self) -> "StandaloneResponder":
        closing = self._closing.pop(self.setup.http_port, None)
        if closing is not None:
            closing.join()
        self.server = solvers.StandaloneServer(self.setup.http_port, self.setup.http_address, self.log)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            closer = threading.Thread(target=self.server.close, name="lehttpd-standalone-close")
            closer.start()  # not a daemon: the process waits for it before exiting
            self._closing[self.setup.http_port] = closer

    def serving(self, tokens: dict[str, str]):
        assert self.server is not None
        return self.server.serving(tokens)


@contextlib.contextmanager
def stopped_on_exit() -> Iterator[None]:
    """On the way out, wait for standalone servers still stopping in the background: the lineage lock must not be
    released (and another process bind the port) before the port is free."""
    try:
        yield
    finally:
        while StandaloneResponder._closing:
            _port, closer = StandaloneResponder._closing.popitem()
            closer.join()


def make_responder(setup: ChallengeSetup, names: tuple[str, ...], console: Console):
    """The responder for a challenge setup, not yet started."""
    if setup.mode == "webroot":
        assert setup.webroot is not None
        roots = list(dict.fromkeys([setup.webroot, *(root for _, root in setup.webroot_map)]))
        console.step(f"Answering http-01 from {', '.join(f'{r}/.well-known/acme-challenge/' for r in roots)}")
        return WebrootResponder(setup.webroot, dict(setup.webroot_map))
    if setup.mode == "apache":
        from lehttpd.apache.challenge import ApacheResponder, apache_info

        console.step(f"Answering http-01 through the running Apache (port {setup.http_port})")
        return ApacheResponder(apache_info(setup.apache_ctl), setup.token_root, names, setup.http_port,
                               console.detail)
    console.step(f"Answering http-01 on port {setup.http_port} (standalone)")
    return StandaloneResponder(setup, console.detail)


@contextlib.contextmanager
def responder_starting(setup: ChallengeSetup, names: tuple[str, ...], console: Console,
                       shared: Responder | None = None) -> Iterator[Callable[[], Responder]]:
    """Start a responder in a background thread; yields `ready()`, which waits for it (and raises its error).
    A `shared` responder (one listener for a whole renewal run) is used as it is. Stopped on the way out."""
    if shared is not None:
        yield lambda: shared
        return
    started: dict[str, object] = {}

    def start() -> None:
        try:
            responder = make_responder(setup, names, console)
            started["value"] = responder.__enter__()
        except BaseException as error:  # handed to ready(), raised in the caller's thread
            started["error"] = error

    thread = threading.Thread(target=start, name="lehttpd-responder", daemon=True)
    thread.start()

    def ready() -> Responder:
        thread.join()
        if "error" in started:
            raise started["error"]  # type: ignore[misc]
        return started["value"]  # type: ignore[return-value]

    try:
        yield ready
    finally:
        thread.join()
        if "value" in started:
            started["value"].__exit__(None, None, None)  # type: ignore[attr-defined]


def start_apache_responder(setup: ChallengeSetup, names: tuple[str, ...], console: Console):
    """The Apache responder a renewal run shares, after removing what a killed run left in that Apache."""
    from lehttpd.apache.challenge import ApacheResponder, remove_leftovers
    from lehttpd.apache.discover import discover

    info = discover(setup.apache_ctl)
    remove_leftovers(info, console.step)
    return ApacheResponder(info, setup.token_root, names, setup.http_port, console.detail)
