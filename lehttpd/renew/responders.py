"""The http-01 responders one renewal run shares among its orders: a standalone listener per (port, address), and
one temporary include per Apache (two reloads for the whole run, however many lineages)."""
from __future__ import annotations

import contextlib
from typing import Iterator

from lehttpd.console import Console
from lehttpd.errors import LehttpdError
from lehttpd.model import IssueRequest


@contextlib.contextmanager
def shared_responders(requests: list[IssueRequest], console: Console) -> Iterator[tuple[dict, dict[str, str]]]:
    """One standalone http-01 listener per (port, address) any due lineage needs, shared by its orders.

    Yields (listeners by (port, address), bind errors by lineage name).
    """
    from lehttpd.issuance import solvers
    from lehttpd.issuance.modes import wait_until_free

    servers: dict[tuple[int, str], solvers.StandaloneServer] = {}
    failed: dict[tuple[int, str], str] = {}
    errors: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        apache_responders(requests, stack, servers, errors, console)
        for request in requests:
            if request.challenge.mode != "standalone":
                continue
            where = (request.challenge.http_port, request.challenge.http_address)
            if where not in servers and where not in failed:
                if request.hooks.pre:  # it stopped the server on the port: give that server a moment to let go
                    wait_until_free(request.challenge.http_port)
                try:
                    servers[where] = stack.enter_context(solvers.standalone(*where, console.detail))
                except LehttpdError as error:
                    failed[where] = error.message
            if where in failed:
                errors[request.lineage_name] = failed[where]
        yield servers, errors


def solver_key(request: IssueRequest) -> tuple:
    """Which shared responder answers for a request: per (port, address) standalone, per Apache otherwise."""
    setup = request.challenge
    if setup.mode == "apache":
        return ("apache", setup.apache_ctl, setup.http_port)
    return (setup.http_port, setup.http_address)


def apache_responders(requests: list[IssueRequest], stack: contextlib.ExitStack, servers: dict,
                       errors: dict[str, str], console: Console) -> None:
    """One temporary include per Apache for the whole run (two reloads, however many lineages)."""
    from lehttpd.issuance.answering import start_apache_responder

    groups: dict[tuple, list[IssueRequest]] = {}
    for request in requests:
        if request.challenge.mode == "apache":
            groups.setdefault(solver_key(request), []).append(request)
    for key, group in groups.items():
        names = tuple(name for request in group for name in request.names)
        try:
            servers[key] = stack.enter_context(start_apache_responder(group[0].challenge, names, console))
        except LehttpdError as error:
            errors.update({request.lineage_name: error.message for request in group})
