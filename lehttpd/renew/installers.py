"""After a renewal run: make each Apache that serves a renewed lineage pick it up, and prove it does.

A lineage installed into Apache (`installer = apache` in its renewal file, certbot's key) names the live paths,
so a renewal changes no configuration, but Apache keeps the old certificate in memory until it reloads. Once
per run and per Apache: config test, graceful reload, then a TLS handshake with SNI to every SSL vhost that uses
the lineage, which must present the new certificate. A failure is that lineage's failure (the new certificate
stays on disk; Apache serves the old one until it is reloaded).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import LehttpdError
from lehttpd.model import IssueRequest, Lineage


@dataclass(frozen=True)
class Installed:
    request: IssueRequest
    lineage: Lineage  # the renewed version


def reload_installers(renewed: list[Installed], console: Console) -> dict[str, str]:
    """Reload each Apache once; returns an error text per lineage name that did not reach its site."""
    groups: dict[str | None, list[Installed]] = {}
    for item in renewed:
        if item.request.installer == "apache":
            groups.setdefault(item.request.challenge.apache_ctl, []).append(item)
    errors: dict[str, str] = {}
    for ctl, items in groups.items():
        errors.update(_reload_one(ctl, items, console))
    return errors


def _reload_one(ctl: str | None, items: list[Installed], console: Console) -> dict[str, str]:
    from lehttpd.apache.apply import configtest, reload
    from lehttpd.apache.discover import discover

    names = ", ".join(item.lineage.name for item in items)
    try:
        info = discover(ctl)
        configtest(info)
        reload(info)
    except LehttpdError as error:
        return {item.lineage.name: f"renewed, but reloading Apache failed ({error}); the new certificate is in "
                                   f"{item.lineage.live_dir}" for item in items}
    console.step(f"Apache ({info.ctl[0] if info.ctl else ctl}) reloaded for {names}")
    errors = {}
    for item in items:
        error = _check_served(info, item.lineage)
        if error:
            errors[item.lineage.name] = error
    return errors


def _check_served(info, lineage: Lineage) -> str | None:
    """None when every SSL vhost using the lineage presents its new certificate."""
    from lehttpd.apache.apply import verify
    from lehttpd.apache.changes import Check
    from lehttpd.apache.discover import port_of
    from lehttpd.apache.operations import leaf_der
    from lehttpd.apache.vhosts import read_listing

    vhosts, _errors = read_listing(info)
    live = str(lineage.live_dir)
    checks = []
    for vhost in vhosts:
        if vhost.ssl and vhost.cert_file and str(Path(vhost.cert_file).parent) == live:
            for address in vhost.addresses:
                host = address.rpartition(":")[0].strip("[]")
                host = "127.0.0.1" if host in ("*", "_default_", "0.0.0.0", "::", "") else host
                checks.append(Check(vhost.server_name or lineage.names[0], host, port_of(address) or 443))
    if not checks:
        return None  # installed nowhere any more: nothing to prove
    try:
        verify(checks, leaf_der(lineage))
    except LehttpdError as error:
        return f"renewed and Apache reloaded, but {error}"
    return None
