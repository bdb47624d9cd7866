"""The ACME account: created once per server, stored with its key, reused by every later order."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from dataclasses import dataclass

import josepy as jose
from acme import client as acme_client
from acme import messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lehttpd.console import Console
from lehttpd.errors import UsageError
from lehttpd.store import CertStore, load_accounts, save_account


@dataclass(frozen=True)
class Registration:
    """How to register a new account, when none is stored."""

    email: str | None = None
    agree_tos: bool = False
    eab_kid: str | None = None
    eab_hmac_key: str | None = None
    interactive: bool = False


@dataclass(frozen=True)
class Account:
    id: str
    key: jose.JWK
    regr: messages.RegistrationResource

    @property
    def alg(self) -> jose.JWASignature:
        return signing_alg(self.key)


def signing_alg(key: jose.JWK) -> jose.JWASignature:
    if isinstance(key, jose.JWKEC):
        return {256: jose.ES256, 384: jose.ES384, 521: jose.ES512}[key.key.curve.key_size]
    return jose.RS256


def account_id(key: jose.JWK) -> str:
    # certbot's id: the MD5 of the public key's DER, so the same key gets the same folder in both tools.
    der = key.key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.md5(der, usedforsecurity=False).hexdigest()


def load_account(store: CertStore, server: str, wanted_id: str | None = None) -> Account | None:
    accounts = load_accounts(store, server)
    if wanted_id and wanted_id in accounts:
        chosen_id = wanted_id
    elif accounts:
        chosen_id = next(iter(accounts))
    else:
        return None
    files = accounts[chosen_id]
    key = jose.JWK.json_loads(files["private_key.json"])
    regr = messages.RegistrationResource.json_loads(files["regr.json"])
    return Account(chosen_id, key, regr)


def register(client: acme_client.ClientV2, store: CertStore, server: str, how: Registration,
             console: Console) -> Account:
    """Create a new account on the server and store it."""
    directory = client.directory
    terms = getattr(directory.meta, "terms_of_service", None)
    if terms and not how.agree_tos:
        if not _ask_agreement(terms, how.interactive, console):
            raise UsageError(f"you must agree to the ACME server's terms of service ({terms}) with --agree-tos")
    eab = None
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    if how.eab_kid or how.eab_hmac_key:
        if not (how.eab_kid and how.eab_hmac_key):
            raise UsageError("external account binding needs both --eab-kid and --eab-hmac-key")
        eab = messages.ExternalAccountBinding.from_data(
            account_public_key=key.public_key(), kid=how.eab_kid, hmac_key=how.eab_hmac_key, directory=directory)
    elif getattr(directory.meta, "external_account_required", False):
        raise UsageError("this ACME server requires external account binding: pass --eab-kid and --eab-hmac-key")
    client.net.key, client.net.alg = key, signing_alg(key)
    new_reg = messages.NewRegistration.from_data(
        email=how.email, terms_of_service_agreed=True, external_account_binding=eab)
    regr = client.new_account(new_reg)
    # The stored registration keeps what the server said, not the one-time binding we sent.
    regr = regr.update(body=regr.body.update(external_account_binding=None))
    account = Account(account_id(key), key, regr)
    save_account(store, server, account.id, {
        "private_key.json": key.json_dumps().encode(),
        "regr.json": regr.json_dumps().encode(),
        # certbot refuses an account whose meta.json lacks creation_dt: keep its format so it can renew too.
        "meta.json": json.dumps({"creation_dt": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 "creation_host": "lehttpd", "server": server}).encode(),
    })
    console.step(f"Registered ACME account {account.id}" + (f" for {how.email}" if how.email else ""))
    return account


def _ask_agreement(terms: str, interactive: bool, console: Console) -> bool:
    if not interactive:
        return False
    console.stderr.write(f"Do you agree to the terms of service at {terms}? [y/N] ")
    console.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")
