"""`issue --install [--redirect] [--harden PROFILE]`: the issued (or kept) lineage into Apache, the way
`lehttpd install` does it, and `installer = apache` in its renewal file so that `renew` reloads Apache."""
from __future__ import annotations

import argparse

from lehttpd.console import Console
from lehttpd.errors import LehttpdError
from lehttpd.model import IssueRequest, Lineage
from lehttpd.store import CertStore


def install(store: CertStore, lineage: Lineage, args: argparse.Namespace, console: Console) -> None:
    install_into_apache(lineage, args, console)
    record_installer(store, lineage.name, args.apache_ctl, console)
    if args.harden:
        harden_apache(lineage, args, console)


def install_kept(store: CertStore, request: IssueRequest, args: argparse.Namespace, console: Console) -> None:
    """A kept certificate with --install: installing it is what was asked (certbot's "reinstall")."""
    if args.install:
        console.step(f"Installing the kept certificate {request.lineage_name}")
        install(store, store.ready_for_apache(request.lineage_name), args, console)


def record_installer(store: CertStore, name: str, apache_ctl: str | None, console: Console) -> None:
    """`installer = apache` in the renewal file, so that `renew` reloads Apache after renewing."""
    from lehttpd.renewal_conf import with_installer

    store.write_renewal_conf(name, with_installer(store.read_renewal_file(name), apache_ctl))
    console.detail(f"  {store.renewal_conf(name)}: installer = apache (renew reloads Apache)")


def harden_apache(lineage: Lineage, args: argparse.Namespace, console: Console) -> None:
    from lehttpd.apache.discover import Source
    from lehttpd.apache.operations import HardenRequest, Options, harden

    options = Options(source=Source(apache_ctl=args.apache_ctl), https_port=args.https_port, work_dir=args.work_dir)
    try:
        outcome, _errors = harden(HardenRequest(profile=args.harden), options, console.step)
    except LehttpdError as error:
        error.message = (f"certificate saved in {lineage.live_dir} and installed, but hardening Apache "
                         f"failed: {error}")
        raise
    console.step(f"Hardened ({args.harden})" if not outcome.plan.empty else f"Already hardened ({args.harden})")


def install_into_apache(lineage: Lineage, args: argparse.Namespace, console: Console) -> None:
    """`issue --install`: the same safe path as `lehttpd install` (checkpoint, config test, reload, rollback)."""
    from lehttpd.apache import install_lineage

    try:
        lineage = CertStore(lineage.config_dir).ready_for_apache(lineage.name)  # key and cert must match
        outcome = install_lineage(lineage, apache_ctl=args.apache_ctl, https_port=args.https_port,
                                  redirect=args.redirect, work_dir=args.work_dir, log=console.step)
    except LehttpdError as error:
        error.message = f"certificate saved in {lineage.live_dir}, but installing it into Apache failed: {error}"
        raise
    if outcome.plan.empty:
        console.step("Apache already serves this certificate; nothing to change")
    else:
        from lehttpd.apache.commands import undo_hint

        console.step(f"Installed into Apache; {undo_hint(args.work_dir, args.apache_ctl, outcome.checkpoint)}")
