"""One ACME order, in RFC 8555 order: directory, account, key and CSR, order, authorizations, finalize, store.

`obtain()` reads top to bottom like the protocol. Every wait has a deadline; polling is short (Pebble and
Let's Encrypt answer in well under a second) and honours Retry-After when the server sends one.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import josepy as jose
import requests
from acme import challenges, messages
from acme import client as acme_client
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lehttpd.console import Console
from lehttpd.errors import AcmeServerError, ValidationFailedError
from lehttpd.issuance import keys, selfcheck
from lehttpd.issuance.answering import Responder, responder_starting, stopped_on_exit
from lehttpd.issuance.account import Account, Registration, load_account, register
from lehttpd.issuance.selfcheck import Probe
from lehttpd.issuance.network import RetryingNetwork, describe_problem, retry_after_seconds, translate_errors
from lehttpd.model import CertificateFiles, IssueRequest, Lineage
from lehttpd.renewal_conf import render as render_renewal_conf
from lehttpd.store import CertStore, lineage_from_cert

ORDER_DEADLINE = dt.timedelta(seconds=90)
# Polling: Pebble validates within 5 ms here, Let's Encrypt in about a second: start short, double, and
# stay polite (about ten polls in the first second and a half, then one a second).
FIRST_POLL, MAX_POLL = 0.005, 1.0
APACHE_RELOAD_WAIT = 2.0  # the responder already waited for its reload; this covers a slow vhost
LOCAL_WAIT = 1.0


def polling_delays(first: float = FIRST_POLL, most: float = MAX_POLL) -> Iterator[float]:
    """0.005, 0.01, 0.02 ... up to `most` seconds: a fast answer is seen fast, a slow one costs few requests."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


@dataclass
class Issued:
    lineage: Lineage
    account_id: str


def obtain(request: IssueRequest, store: CertStore, console: Console, registration: Registration,
           solver: Responder | None = None, account_id: str | None = None, *,
           replaces: str | None = None, recheck: Callable[[], None] | None = None,
           dry_run: bool = False) -> Issued:
    """Obtain a certificate for request.names and store it as a new version of the lineage.

    `solver` is a responder already serving (renewal shares one across lineages); when None, the request's
    responder (standalone, webroot, Apache) is started in the background while the order is placed, and
    stopped when the order ends. Before the CA is told to validate, every token is fetched from this machine
    as the CA will (self-check); on a mismatch the authorizations are deactivated and nothing is asked.
    Renewal adds: `replaces` (RFC 9773 certificate id, dropped if the server refuses it), `recheck`
    (called under the lineage lock before anything else; it raises to abort when another process renewed
    meanwhile) and `dry_run` (the whole order, nothing stored).
    """
    name = request.lineage_name
    deadline = dt.datetime.now() + ORDER_DEADLINE
    with store.lock(name), stopped_on_exit(), translate_errors(request.server):
        if recheck is not None:
            recheck()
        with responder_starting(request.challenge, request.names, console, solver) as ready:
            if solver is None and request.challenge.mode == "standalone":
                ready()  # binding takes no time: a port another server holds fails before any account or order
            client = _connect(request, console)
            profile = choose_profile(client.directory, request, console)
            account = _account(client, store, request.server, registration, console, account_id)
            key_pem = store.read_current("privkey", name) if request.reuse_key and store.exists(name) else None
            key = keys.load_key(key_pem) if key_pem else keys.generate_key(request.key)
            csr_pem = keys.make_csr(key, request.names)

            console.step(f"Ordering a certificate for {', '.join(request.names)}"
                         + (f" (profile {profile})" if profile else ""))
            orderr, account = _new_order(client, account, csr_pem, store, request.server, registration, console,
                                         replaces, profile)
            pending = _pending_challenges(orderr, account)
            if pending:
                responder = ready()
                tokens = {p.token: p.validation for p in pending}
                with _serving(responder, pending), store.answering(tokens):  # a fleet publishes them to its nodes
                    _self_check(client, request, pending, console)
                    for challenge in pending:
                        client.answer_challenge(challenge.challb, challenge.challb.response(account.key))
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


def fetch_directory(server: str, ca_bundle: Path | None) -> messages.Directory:
    """The directory alone (unsigned GET), e.g. to list its profiles."""
    with translate_errors(server):
        net = RetryingNetwork(None, alg=None, verify=str(ca_bundle) if ca_bundle else True)  # type: ignore[arg-type]
        return acme_client.ClientV2.get_directory(server, net)


def _account(client: acme_client.ClientV2, store: CertStore, server: str, registration: Registration,
             console: Console, account_id: str | None) -> Account:
    account = load_account(store, server, account_id)
    if account is None:
        return register(client, store, server, registration, console)
    client.net.key, client.net.alg, client.net.account = account.key, account.alg, account.regr
    console.detail(f"  using stored account {account.id}")
    return account


def _new_order(client: acme_client.ClientV2, account: Account, csr_pem: bytes, store: CertStore, server: str,
               registration: Registration, console: Console, replaces: str | None = None,
               profile: str | None = None) -> tuple[messages.OrderResource, Account]:
    """The new order, and the account it was placed with (a new one if the server forgot the stored one)."""
    try:
        return _order(client, csr_pem, replaces, profile, console), account
    except messages.Error as error:
        if error.code != "accountDoesNotExist":
            raise
    # The server forgot the stored account (a test CA restarted, or the account was deactivated elsewhere).
    console.warn(f"{server} no longer knows the stored account; registering a new one")
    client.net.account = None
    account = register(client, store, server, registration, console)
    # a new account cannot replace the old account's certificate
    return client.new_order(csr_pem, profile=profile), account


def _order(client: acme_client.ClientV2, csr_pem: bytes, replaces: str | None, profile: str | None,
           console: Console) -> messages.OrderResource:
    if not replaces:
        return client.new_order(csr_pem, profile=profile)
    try:
        return new_order_replacing(client, csr_pem, replaces, profile)
    except (messages.Error, acme_errors.ConflictError) as error:
        if isinstance(error, messages.Error) and error.code in ("rateLimited", "accountDoesNotExist", "badNonce"):
            raise
        # RFC 9773 lets the server refuse `replaces` (already replaced, another account...): order without it.
        # acme raises ConflictError, without the problem document, for the 409 of alreadyReplaced.
        why = describe_problem(error) if isinstance(error, messages.Error) else "409 Conflict"
        console.warn(f"the ACME server refused to mark {replaces} as replaced ({why}); ordering without it")
        return client.new_order(csr_pem, profile=profile)


class _NewOrderReplacing(messages.NewOrder):
    """acme's NewOrder plus RFC 9773's `replaces` (ClientV2.new_order has no such argument)."""

    replaces: str = jose.field("replaces", omitempty=True)


def new_order_replacing(client: acme_client.ClientV2, csr_pem: bytes, replaces: str,
                        profile: str | None = None) -> messages.OrderResource:
    """ClientV2.new_order with `replaces`, through the network's public `post` only."""
    from acme.crypto_util import get_identifiers_from_x509

    csr = x509.load_pem_x509_csr(csr_pem)
    dns_names, ips = get_identifiers_from_x509(csr.subject, csr.extensions)
    identifiers = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in dns_names]
    identifiers += [messages.Identifier(typ=messages.IDENTIFIER_IP, value=str(ip)) for ip in ips]
    order = _NewOrderReplacing(identifiers=identifiers, replaces=replaces, profile=profile or "")
    response = _post(client, client.directory["newOrder"], order)
    body = messages.Order.from_json(response.json())
    authorizations = [messages.AuthorizationResource(body=messages.Authorization.from_json(
        post_as_get(client, url).json()), uri=url) for url in body.authorizations]
    return messages.OrderResource(body=body, uri=response.headers.get("Location"),
                                  authorizations=authorizations, csr_pem=csr_pem)


def _post(client: acme_client.ClientV2, url: str, obj) -> requests.Response:
    return client.net.post(url, obj, new_nonce_url=client.directory["newNonce"])


def post_as_get(client: acme_client.ClientV2, url: str) -> requests.Response:
    """RFC 8555 6.3: a signed POST with an empty payload, through the network's public `post`."""
    return _post(client, url, None)


@dataclass(frozen=True)
class PendingChallenge:
    name: str
    authzr: messages.AuthorizationResource
    challb: messages.ChallengeBody
    token: str
    validation: str


def _pending_challenges(orderr: messages.OrderResource, account: Account) -> list[PendingChallenge]:
    """The http-01 challenge of every authorization still pending."""
    pending: list[PendingChallenge] = []
    for authzr in orderr.authorizations:
        if authzr.body.status == messages.STATUS_VALID:
            continue  # authorization reused from an earlier order
        identifier = authzr.body.identifier.value
        for challb in authzr.body.challenges:
            if isinstance(challb.chall, challenges.HTTP01):
                pending.append(PendingChallenge(identifier, authzr, challb, challb.chall.encode("token"),
                                                challb.chall.validation(account.key)))
                break
        else:
            raise AcmeServerError(f"the ACME server offers no http-01 challenge for {identifier}")
    return pending


def _serving(responder, pending: list[PendingChallenge]):
    """The tokens served; a webroot responder is told each token's name (each name may have its own root)."""
    from lehttpd.issuance.answering import WebrootResponder

    tokens = {p.token: p.validation for p in pending}
    if isinstance(responder, WebrootResponder):
        return responder.serving(tokens, {p.token: p.name for p in pending})
    return responder.serving(tokens)


def _self_check(client: acme_client.ClientV2, request: IssueRequest, pending: list[PendingChallenge],
                console: Console) -> None:
    """Fetch every token from this machine as the CA will; on a mismatch, deactivate and stop."""
    setup = request.challenge
    probes = [Probe(p.name, p.token, p.validation) for p in pending]
    wait = APACHE_RELOAD_WAIT if setup.mode == "apache" else LOCAL_WAIT
    failed = selfcheck.check(probes, setup.http_port, setup.http_address, wait)
    if setup.mode == "webroot":
        # lehttpd does not know where that site listens (no answer is no verdict), and the CA follows a redirect
        # to the same path (a site's own http -> https redirect), which lehttpd does not check over TLS.
        unsure = [a for a in failed if a.error is not None or a.redirects_to_same_path]
        for answer in unsure:
            console.warn(f"could not self-check {answer.probe.name} ({answer.describe()}); the CA will tell")
        failed = [answer for answer in failed if answer not in unsure]
    if not failed:
        console.detail(f"  self-check passed for {', '.join(p.name for p in probes)}")
        warn_not_local(request, console)  # served here, but will the CA's request arrive here?
        return
    for challenge in pending:
        with contextlib.suppress(messages.Error, acme_errors.Error, requests.RequestException):
            client.deactivate_authorization(challenge.authzr)
    reasons = "; ".join(f"{answer.probe.name}: {answer.describe()}" for answer in failed)
    raise ValidationFailedError(f"self-check before asking the CA: {reasons}; the CA would fail too (nothing was "
                                "validated; the pending authorizations were deactivated)")


def warn_not_local(request: IssueRequest, console: Console) -> None:
    if console.quiet:
        return  # renewal under cron: the same warning at every run would be noise
    for name in request.names:
        warning = selfcheck.locality_warning(name)
        if warning:
            console.warn(warning)


def _poll_authorizations(client: acme_client.ClientV2, orderr: messages.OrderResource,
                         deadline: dt.datetime) -> None:
    for authzr in orderr.authorizations:
        backoff = polling_delays()
        while authzr.body.status in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
            if dt.datetime.now() >= deadline:
                raise AcmeServerError(f"validation of {authzr.body.identifier.value} did not finish in time")
            time.sleep(next(backoff))
            authzr, response = client.poll(authzr)
            delay = retry_after_seconds(response)
            if delay is not None and authzr.body.status == messages.STATUS_PENDING:
                time.sleep(min(delay, MAX_POLL))
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
    backoff = polling_delays()
    while body.status in (messages.STATUS_PROCESSING, messages.STATUS_READY, messages.STATUS_PENDING):
        if dt.datetime.now() >= deadline:
            raise AcmeServerError("the ACME server did not issue the certificate in time")
        response = post_as_get(client, orderr.uri)
        body = messages.Order.from_json(response.json())
        if body.status in (messages.STATUS_PROCESSING, messages.STATUS_READY):
            delay = retry_after_seconds(response)
            time.sleep(min(delay if delay is not None else next(backoff), 5.0))
    if body.status != messages.STATUS_VALID or body.certificate is None:
        detail = f": {body.error.detail}" if body.error is not None else ""
        raise AcmeServerError(f"the order ended {body.status.name}{detail}")
    response = post_as_get(client, body.certificate)
    alternates = [post_as_get(client, url).text for url in _links(response, "alternate")]
    return orderr.update(body=body, fullchain_pem=response.text, alternative_fullchains_pem=alternates)


def _links(response: requests.Response, relation: str) -> list[str]:
    """Every Link of a relation (RFC 8555 7.4.2 sends several `alternate` ones; response.links keeps one)."""
    header = response.headers.get("Link")
    if not header:
        return []
    return [link["url"] for link in requests.utils.parse_header_links(header)
            if link.get("rel") == relation and "url" in link]


def choose_profile(directory: messages.Directory, request: IssueRequest, console: Console) -> str | None:
    """The profile to put in the order: the one asked for if the server offers it (else say so, or fail)."""
    if not request.profile:
        return None
    offered = offered_profiles(directory)
    if request.profile in offered:
        return request.profile
    listing = ", ".join(offered) or "none"
    if request.profile_required:
        raise AcmeServerError(f"{request.server} does not offer the profile {request.profile!r} "
                              f"(--required-profile; offered: {listing})")
    console.warn(f"{request.server} does not offer the profile {request.profile!r} (offered: {listing}); "
                 "ordering with its default")
    return None


def offered_profiles(directory: messages.Directory) -> dict[str, str]:
    """The directory's meta.profiles: name -> description ({} when the server has none)."""
    meta = getattr(directory, "meta", None)
    profiles = getattr(meta, "profiles", None) if meta is not None else None
    return {str(k): str(v) for k, v in profiles.items()} if hasattr(profiles, "items") else {}


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
