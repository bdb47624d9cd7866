"""One ACME order, in RFC 8555 order: directory, account, key and CSR, order, authorizations, finalize, store.

`obtain()` reads top to bottom like the protocol. Every wait has a deadline; polling is short (Pebble and
Let's Encrypt answer in well under a second) and honours Retry-After when the server sends one.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from acme import challenges, messages
from acme import client as acme_client
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lehttpd.console import Console
from lehttpd.errors import AcmeServerError, ValidationFailedError
from lehttpd.issuance import keys, solvers
from lehttpd.issuance.account import Account, Registration, load_account, register
from lehttpd.issuance.network import RetryingNetwork, describe_problem, retry_after_seconds, translate_errors
from lehttpd.model import CertificateFiles, IssueRequest, Lineage
from lehttpd.renewal_conf import render as render_renewal_conf
from lehttpd.store import CertStore, lineage_from_cert

ORDER_DEADLINE = dt.timedelta(seconds=90)
POLL_INTERVAL = 0.15


@dataclass
class Issued:
    lineage: Lineage
    account_id: str


def obtain(request: IssueRequest, store: CertStore, console: Console, registration: Registration,
           solver: solvers.StandaloneServer | None = None, account_id: str | None = None, *,
           replaces: str | None = None, recheck: Callable[[], None] | None = None,
           dry_run: bool = False) -> Issued:
    """Obtain a certificate for request.names and store it as a new version of the lineage.

    `solver` is a standalone server already listening (renewal shares one across lineages); when None and
    the request is standalone, one is started for this order and shut down when it ends.
    Renewal adds: `replaces` (RFC 9773 certificate id, dropped if the server refuses it), `recheck`
    (called under the lineage lock before anything else; it raises to abort when another process renewed
    meanwhile) and `dry_run` (the whole order, nothing stored).
    """
    name = request.lineage_name
    deadline = dt.datetime.now() + ORDER_DEADLINE
    with store.lock(name), translate_errors(request.server):
        if recheck is not None:
            recheck()
        client = _connect(request, console)
        account = _account(client, store, request.server, registration, console, account_id)
        key_pem = store.read_current("privkey", name) if request.reuse_key and store.exists(name) else None
        key = keys.load_key(key_pem) if key_pem else keys.generate_key(request.key)
        csr_pem = keys.make_csr(key, request.names)

        console.step(f"Ordering a certificate for {', '.join(request.names)}")
        orderr, account = _new_order(client, account, csr_pem, store, request.server, registration, console,
                                     replaces)

        pending = _pending_tokens(orderr, account)
        tokens = {token: validation for token, (_, validation) in pending.items()}
        with _answering(request, solver, pending, console), store.answering(tokens):
            for challb, _ in pending.values():
                client.answer_challenge(challb, challb.response(account.key))
            _poll_authorizations(client, orderr, deadline)

        console.step("Finalizing the order")
        orderr = _finalize(client, orderr, deadline)
        cert_pem, chain_pem = _choose_chain(orderr, request.preferred_chain, console)

        files = CertificateFiles(cert_pem=cert_pem, chain_pem=chain_pem, key_pem=keys.key_to_pem(key))
        if dry_run:
            lineage = lineage_from_cert(name, store.config_dir, x509.load_pem_x509_certificate(cert_pem), 0)
            return Issued(lineage, account.id)
        lineage = store.save_version(name, files, render_renewal_conf(request, account.id, store.config_dir))
    console.step(f"Certificate saved: {lineage.live_dir}/ (version {lineage.version}, "
                 f"expires {lineage.not_after:%Y-%m-%d})")
    return Issued(lineage, account.id)


def _connect(request: IssueRequest, console: Console) -> acme_client.ClientV2:
    verify: bool | str = str(request.ca_bundle) if request.ca_bundle else True
    # The signing key is set once the account is known; the directory is fetched unsigned.
    net = RetryingNetwork(None, alg=None, verify=verify, log=console.detail)  # type: ignore[arg-type]
    directory = acme_client.ClientV2.get_directory(request.server, net)
    return acme_client.ClientV2(directory, net)


def _account(client: acme_client.ClientV2, store: CertStore, server: str, registration: Registration,
             console: Console, account_id: str | None) -> Account:
    account = load_account(store, server, account_id)
    if account is None:
        return register(client, store, server, registration, console)
    client.net.key, client.net.alg, client.net.account = account.key, account.alg, account.regr
    console.detail(f"  using stored account {account.id}")
    return account


def _new_order(client: acme_client.ClientV2, account: Account, csr_pem: bytes, store: CertStore, server: str,
               registration: Registration, console: Console,
               replaces: str | None = None) -> tuple[messages.OrderResource, Account]:
    """The new order, and the account it was placed with (a new one if the server forgot the stored one)."""
    try:
        return _order(client, csr_pem, replaces, console), account
    except messages.Error as error:
        if error.code != "accountDoesNotExist":
            raise
    # The server forgot the stored account (a test CA restarted, or the account was deactivated elsewhere).
    console.warn(f"{server} no longer knows the stored account; registering a new one")
    client.net.account = None
    account = register(client, store, server, registration, console)
    return client.new_order(csr_pem), account  # a new account cannot replace the old account's certificate


def _order(client: acme_client.ClientV2, csr_pem: bytes, replaces: str | None,
           console: Console) -> messages.OrderResource:
    if not replaces:
        return client.new_order(csr_pem)
    from lehttpd.renew.ari import new_order_replacing
    try:
        return new_order_replacing(client, csr_pem, replaces)
    except (messages.Error, acme_errors.ConflictError) as error:
        if isinstance(error, messages.Error) and error.code in ("rateLimited", "accountDoesNotExist", "badNonce"):
            raise
        # RFC 9773 lets the server refuse `replaces` (already replaced, another account...): order without it.
        # acme raises ConflictError, without the problem document, for the 409 of alreadyReplaced.
        why = describe_problem(error) if isinstance(error, messages.Error) else "409 Conflict"
        console.warn(f"the ACME server refused to mark {replaces} as replaced ({why}); ordering without it")
        return client.new_order(csr_pem)


def _pending_tokens(orderr: messages.OrderResource, account: Account) -> dict[str, tuple[messages.ChallengeBody, str]]:
    """The http-01 challenge of every authorization still pending: token -> (challenge, key authorization)."""
    pending: dict[str, tuple[messages.ChallengeBody, str]] = {}
    for authzr in orderr.authorizations:
        if authzr.body.status == messages.STATUS_VALID:
            continue  # authorization reused from an earlier order
        identifier = authzr.body.identifier.value
        for challb in authzr.body.challenges:
            if isinstance(challb.chall, challenges.HTTP01):
                pending[challb.chall.encode("token")] = (challb, challb.chall.validation(account.key))
                break
        else:
            raise AcmeServerError(f"the ACME server offers no http-01 challenge for {identifier}")
    return pending


@contextlib.contextmanager
def _answering(request: IssueRequest, solver: solvers.StandaloneServer | None,
               pending: dict[str, tuple[messages.ChallengeBody, str]], console: Console) -> Iterator[None]:
    """Serve the key authorizations until every authorization is final (the CA fetches each several times)."""
    tokens = {token: validation for token, (_, validation) in pending.items()}
    setup = request.challenge
    if not tokens:
        yield
    elif setup.mode == "webroot":
        assert setup.webroot is not None
        console.step(f"Answering http-01 from {setup.webroot}/.well-known/acme-challenge/")
        with solvers.webroot_files(setup.webroot, tokens):
            yield
    elif solver is not None:
        with solver.serving(tokens):
            yield
    else:
        console.step(f"Answering http-01 on port {setup.http_port} (standalone)")
        with solvers.standalone(setup.http_port, setup.http_address, console.detail) as server:
            with server.serving(tokens):
                yield


def _poll_authorizations(client: acme_client.ClientV2, orderr: messages.OrderResource,
                         deadline: dt.datetime) -> None:
    for authzr in orderr.authorizations:
        while authzr.body.status in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
            if dt.datetime.now() >= deadline:
                raise AcmeServerError(f"validation of {authzr.body.identifier.value} did not finish in time")
            time.sleep(POLL_INTERVAL)
            authzr, _ = client.poll(authzr)
        identifier = authzr.body.identifier.value
        if authzr.body.status != messages.STATUS_VALID:
            raise ValidationFailedError(f"validation of {identifier} failed: {_validation_error(authzr)}")


def _validation_error(authzr: messages.AuthorizationResource) -> str:
    for challb in authzr.body.challenges:
        if challb.error is not None:
            return describe_problem(challb.error)
    return f"authorization is {authzr.body.status.name}"


def _finalize(client: acme_client.ClientV2, orderr: messages.OrderResource,
              deadline: dt.datetime) -> messages.OrderResource:
    """Send the CSR, poll the order until it is valid, download the certificate and its alternate chains."""
    orderr = client.begin_finalization(orderr)
    body = orderr.body
    while body.status in (messages.STATUS_PROCESSING, messages.STATUS_READY, messages.STATUS_PENDING):
        if dt.datetime.now() >= deadline:
            raise AcmeServerError("the ACME server did not issue the certificate in time")
        # _post_as_get is acme's POST-as-GET helper (RFC 8555 6.3); ClientV2 has no public order poll
        # without its fixed 1 s sleep, which would cost every certificate a second.
        response = client._post_as_get(orderr.uri)  # noqa: SLF001
        body = messages.Order.from_json(response.json())
        if body.status in (messages.STATUS_PROCESSING, messages.STATUS_READY):
            delay = retry_after_seconds(response)
            time.sleep(min(delay if delay is not None else POLL_INTERVAL, 5.0))
    if body.status != messages.STATUS_VALID or body.certificate is None:
        detail = f": {body.error.detail}" if body.error is not None else ""
        raise AcmeServerError(f"the order ended {body.status.name}{detail}")
    response = client._post_as_get(body.certificate)  # noqa: SLF001
    alternates = [client._post_as_get(url).text for url in client._get_links(response, "alternate")]  # noqa: SLF001
    return orderr.update(body=body, fullchain_pem=response.text, alternative_fullchains_pem=alternates)


def _choose_chain(orderr: messages.OrderResource, preferred: str | None,
                  console: Console) -> tuple[bytes, bytes]:
    """Split the chosen full chain into (leaf, chain); --preferred-chain picks by the top issuer's name."""
    chains = [orderr.fullchain_pem, *orderr.alternative_fullchains_pem]
    chosen = chains[0]
    if preferred:
        matching = [c for c in chains if _top_issuer(c) == preferred or preferred in _chain_names(c)]
        if matching:
            chosen = matching[0]
        else:
            offered = ", ".join(sorted({_top_issuer(c) for c in chains}))
            console.warn(f"no chain issued by {preferred!r} (offered: {offered}); using the default chain")
    certs = x509.load_pem_x509_certificates(chosen.encode())
    pems = [c.public_bytes(serialization.Encoding.PEM) for c in certs]
    return pems[0], b"".join(pems[1:])


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def _top_issuer(fullchain_pem: str) -> str:
    return _common_name(x509.load_pem_x509_certificates(fullchain_pem.encode())[-1].issuer)


def _chain_names(fullchain_pem: str) -> set[str]:
    certs = x509.load_pem_x509_certificates(fullchain_pem.encode())[1:]
    return {_common_name(c.subject) for c in certs} | {_common_name(c.issuer) for c in certs}
