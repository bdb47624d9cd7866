"""What `lehttpd issue` checks on this machine before it asks the CA anything.

An account registered or an order created for a request that was going to fail locally costs the user a rate
limit and a confusing error: names a lineage would lose and an Apache with no vhost for the names are told
first, with nothing sent (a port something else holds is found by `obtain`, which binds it under the lineage
lock before the account and the order: two `issue` runs for one lineage take turns on the port).
"""
from __future__ import annotations

import argparse
import datetime as dt

from lehttpd.console import Console
from lehttpd.errors import LehttpdError, UsageError
from lehttpd.model import IssueRequest, Lineage
from lehttpd.store import CertStore


def check_names_kept(store: CertStore, request: IssueRequest, console: Console) -> None:
    """Never drop names from a lineage silently (www would break over https at the next reload): as certbot
    does, only an explicit --cert-name says that the lineage is meant to lose them. Adding names is said."""
    name = request.lineage_name
    if not store.exists(name):
        return
    try:
        current = store.current(name)
    except LehttpdError:
        return  # an unreadable lineage is reported by the issuance itself
    dropped = [n for n in current.names if n not in request.names]
    added = [n for n in request.names if n not in current.names]
    if dropped and request.cert_name is None:
        raise UsageError(f"certificate {name} also covers {', '.join(dropped)}, which this request would drop; "
                         f"list every name to keep (-d), or give --cert-name {name} to reissue it without them")
    if dropped:
        console.step(f"Reissuing {name} without {', '.join(dropped)} (--cert-name {name} given)")
    if added:
        console.step(f"Adding {', '.join(added)} to certificate {name} (it covers {', '.join(current.names)})")


def check_install_plan(store: CertStore, request: IssueRequest, args: argparse.Namespace) -> None:
    """`issue --install`: plan (dry run, nothing written) what `lehttpd install` would do with the lineage's
    future paths, so that an Apache with no vhost for the names is found before the certificate is ordered."""
    from lehttpd.apache import install_lineage

    now = dt.datetime.now(dt.timezone.utc)
    # Only the paths and names matter to the plan; the certificate itself does not exist yet.
    planned = Lineage(name=request.lineage_name, config_dir=store.config_dir, names=request.names, version=0,
                      not_before=now, not_after=now, key_type=request.key.key_type, serial=0, issuer="")
    try:
        install_lineage(planned, apache_ctl=args.apache_ctl, https_port=args.https_port, redirect=args.redirect,
                        work_dir=args.work_dir, dry_run=True)
    except LehttpdError as error:
        error.message = f"nothing ordered: --install could not work: {error.message}"
        raise
