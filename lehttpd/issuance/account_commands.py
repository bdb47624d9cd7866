"""`lehttpd account show | update --email ADDRESS | deactivate`: the stored ACME account, on acme's ClientV2.

One account per server (the one `lehttpd issue` registered, or certbot's, in the same folder). `show` asks the
server for the account as it stands; `update` changes its contact; `deactivate` ends it at the server for good
(asked on a terminal, `--yes`/`-n` otherwise) and removes the local copy, so the next `issue` registers anew.
"""
from __future__ import annotations

import argparse

from lehttpd.console import Console
from lehttpd.errors import AcmeServerError, ExitStatus, UsageError
from lehttpd.issuance.commands import add_server_options, server_url
from lehttpd.store import CertStore, delete_account


def register(subparsers, common: argparse.ArgumentParser) -> None:
    account = subparsers.add_parser("account", parents=[common], help="show, update or deactivate the ACME account",
                                    description="The ACME account stored for a server (certbot's layout).")
    inner = account.add_subparsers(dest="account_command", metavar="SUBCOMMAND")
    show = inner.add_parser("show", parents=[common], help="the account as the server has it")
    update = inner.add_parser("update", parents=[common], help="change the account's contact address")
    update.add_argument("-m", "--email", required=True, help="the new contact address")
    deactivate = inner.add_parser("deactivate", parents=[common],
                                  help="deactivate the account at the server (for good) and remove it here")
    deactivate.add_argument("-y", "--yes", action="store_true",
                            help="do not ask for confirmation (needed when not on a terminal; -n does the same)")
    for parser, handler in ((show, run_show), (update, run_update), (deactivate, run_deactivate)):
        add_server_options(parser)
        parser.set_defaults(handler=handler)


def _client(args: argparse.Namespace, console: Console):
    """(store, server, stored account, client) for the account stored for --server."""
    from acme import client as acme_client

    from lehttpd.issuance.account import load_account
    from lehttpd.issuance.network import RetryingNetwork

    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    if not args.config_dir.is_dir():
        raise UsageError(f"--config-dir {args.config_dir}: no such folder")
    server = server_url(args)
    store = CertStore(args.config_dir)
    account = load_account(store, server)
    if account is None:
        raise UsageError(f"no account for {server} under {store.account_dir(server)} (`lehttpd issue` makes one)")
    net = RetryingNetwork(account.key, alg=account.alg, verify=str(args.ca_bundle) if args.ca_bundle else True,
                          log=console.detail)
    net.account = account.regr
    return store, server, account, acme_client.ClientV2(acme_client.ClientV2.get_directory(server, net), net)


def _show(regr, account_id: str, server: str, console: Console) -> None:
    emails = [c.removeprefix("mailto:") for c in (regr.body.contact or ()) if c.startswith("mailto:")]
    console.result(f"Account {account_id}\n  server:  {server}\n  url:     {regr.uri}\n"
                   f"  email:   {', '.join(emails) or '(none)'}\n  status:  {regr.body.status or 'valid'}")


def run_show(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.issuance.network import translate_errors

    _store, server, account, client = _client(args, console)
    with translate_errors(server):
        regr = client.query_registration(account.regr)
    _show(regr, account.id, server, console)
    return ExitStatus.SUCCESS


def run_update(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.issuance.network import translate_errors
    from lehttpd.store import save_account

    email = _check_email(args.email)
    store, server, account, client = _client(args, console)
    with translate_errors(server):
        current = client.query_registration(account.regr)
        regr = client.update_registration(current, current.body.update(contact=(f"mailto:{email}",)))
    save_account(store, server, account.id, {"regr.json": regr.json_dumps().encode()})
    console.step(f"Updated the contact of account {account.id} at {server}")
    _show(regr, account.id, server, console)
    return ExitStatus.SUCCESS


def _check_email(email: str) -> str:
    local, _, domain = email.strip().partition("@")
    if not local or "." not in domain or any(c in email for c in " ,;<>\"'"):
        raise UsageError(f"--email {email!r}: not an e-mail address")
    return email.strip()


def run_deactivate(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.issuance.network import translate_errors

    store, server, account, client = _client(args, console)
    if not (args.yes or args.non_interactive):
        if not console.can_ask:
            raise UsageError("account deactivate: not on a terminal, so nobody can confirm; add --yes (or -n)")
        answer = console.ask(f"Deactivate account {account.id} at {server}? It cannot be undone, and its "
                             "certificates can then be revoked only with their keys. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console.result("Nothing changed")
            return ExitStatus.SUCCESS
    with translate_errors(server):
        regr = client.deactivate_registration(account.regr)
    if regr.body.status != "deactivated":
        raise AcmeServerError(f"{server} answered status {regr.body.status!r} to the deactivation; account kept")
    folder = delete_account(store, server, account.id)  # it can do nothing now: the next issue registers anew
    console.result(f"Deactivated account {account.id} at {server}; removed {folder}")
    return ExitStatus.SUCCESS
