"""`lehttpd revoke` and `lehttpd delete`: the end of a lineage's life."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from lehttpd import checks
from lehttpd.console import Console
from lehttpd.errors import AcmeServerError, UsageError
from lehttpd.renew.lineages import Candidate, read_candidate
from lehttpd.renew.state import delete_state, load_state, save_state
from lehttpd.store import CertStore, check_lineage_name, utcnow

# RFC 5280 reason codes accepted by ACME servers (RFC 8555 7.6; Let's Encrypt takes these five).
REASONS = {"unspecified": 0, "keycompromise": 1, "affiliationchanged": 3, "superseded": 4,
           "cessationofoperation": 5}


def revoke(store: CertStore, name: str, reason: str, ca_bundle: Path | None, console: Console) -> str:
    """Revoke the lineage's current certificate with the account that obtained it (or, when that account is not
    on this machine, as on a fleet node that did not order it, with the certificate's own key); returns its
    serial."""
    from acme import client as acme_client
    from cryptography import x509

    import josepy as jose

    from lehttpd.issuance.account import load_account, signing_alg
    from lehttpd.issuance.network import RetryingNetwork, translate_errors

    candidate = _candidate(store, name)
    request = candidate.request
    server = request.server
    cert = x509.load_pem_x509_certificate(store.read_current("cert", name))
    account = load_account(store, server, candidate.account_id)
    if account is not None and candidate.account_id and account.id != candidate.account_id:
        account = None  # another account of the server here did not order it: the CA would refuse it
    bundle = ca_bundle or checks.check_ca_bundle(request.ca_bundle, f"{candidate.conf_path}: lehttpd_ca_bundle")
    with translate_errors(server):
        if account is not None:
            net = RetryingNetwork(account.key, alg=account.alg, verify=str(bundle) if bundle else True,
                                  log=console.detail)
            net.account = account.regr
        else:  # RFC 8555 7.6: the certificate's own key may sign its revocation (a fleet node that did not order it)
            key = jose.JWK.load(store.read_current("privkey", name))
            console.step(f"The account that ordered it is not under {store.config_dir}/accounts: the revocation is "
                         "signed with the certificate's own key")
            net = RetryingNetwork(key, alg=signing_alg(key), verify=str(bundle) if bundle else True,
                                  log=console.detail)
        client = acme_client.ClientV2(acme_client.ClientV2.get_directory(server, net), net)
        console.step(f"Revoking {name} (serial {cert.serial_number:x}) at {server}")
        client.revoke(cert, REASONS[reason])
    serial = hex(cert.serial_number)
    with store.lock(name):
        state = replace(load_state(store.config_dir, name), revoked_serial=serial)
        problem = save_state(store.config_dir, name, state)
    if problem:  # renew then does not know it was revoked, and waits for the usual time
        console.warn(f"{problem}; run `lehttpd renew --force --cert-name {name}` to replace it now")
    return serial


def delete(store: CertStore, name: str) -> list[str]:
    """Remove live/, archive/, the renewal file and renewal state of one lineage, under its lock.

    Returns what could not be removed, with why (an immutable file, a folder that is a symlink): the caller
    must not say "deleted" then, since private keys may still be on disk.
    """
    check_lineage_name(name)
    paths = (store.renewal_conf(name), store.live_dir(name), store.archive_dir(name))
    if not any(os.path.lexists(path) for path in paths):
        raise UsageError(f"no certificate named {name!r} under {store.config_dir}")
    with store.lock(name):
        left = store.delete(name)
        delete_state(store.config_dir, name)
    return left


def _candidate(store: CertStore, name: str) -> Candidate:
    check_lineage_name(name)
    conf = store.renewal_conf(name)
    if not conf.exists():
        raise UsageError(f"no certificate named {name!r} under {store.config_dir} (no {conf})")
    found = read_candidate(store, name)
    if not isinstance(found, Candidate):
        raise UsageError(found.reason)
    if found.lineage.not_after < utcnow():
        raise AcmeServerError(f"the certificate of {name} expired on {found.lineage.not_after:%Y-%m-%d}; "
                              "there is nothing left to revoke")
    return found
