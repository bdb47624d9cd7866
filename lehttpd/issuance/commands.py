"""`lehttpd issue` and `lehttpd certificates`: flags in, one call to the issuance pipeline, results out."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from lehttpd import checks
from lehttpd.console import Console
from lehttpd.errors import ExitStatus, HookError, LehttpdError, UsageError
from lehttpd.hooks import HOOK_TIMEOUT, run_hook
from lehttpd.issuance.names import normalize_names
from lehttpd.model import (LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING, ChallengeSetup, Hooks, IssueRequest,
                           KeySpec, Lineage)
from lehttpd.renewal import needs_renewal
from lehttpd.store import DEFAULT_CONFIG_DIR, CertStore, check_lineage_name, utcnow

# Let's Encrypt issues for IP addresses only under its short-lived profile, which lehttpd does not request.
SERVERS_WITHOUT_IP = (LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ACME server")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--server", metavar="URL", help="ACME directory URL (default: Let's Encrypt production)")
    where.add_argument("--staging", "--test-cert", action="store_true", help="use Let's Encrypt's staging server")
    group.add_argument("--ca-bundle", metavar="FILE", type=Path,
                       help="CA certificate(s) to trust for the ACME server's own TLS certificate")
    parser.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                        help=f"where certificates, accounts and renewal files live (default {DEFAULT_CONFIG_DIR})")


def add_account_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("account")
    group.add_argument("-m", "--email", help="contact address for the new account (default: none)")
    group.add_argument("--agree-tos", action="store_true", help="agree to the ACME server's terms of service")
    group.add_argument("--eab-kid", help="key identifier for external account binding")
    group.add_argument("--eab-hmac-key", help="HMAC key for external account binding (base64url)")


def register(subparsers, common: argparse.ArgumentParser) -> None:
    issue = subparsers.add_parser("issue", parents=[common], help="obtain a certificate (ACME http-01)",
                                  description="Obtain a certificate for one or more names with ACME http-01.")
    issue.add_argument("domains", nargs="*", metavar="DOMAIN", help="names for the certificate")
    issue.add_argument("-d", "--domain", "--domains", action="append", default=[], dest="more_domains",
                       metavar="DOMAIN", help="another name (repeatable, or comma-separated)")
    issue.add_argument("--cert-name", help="lineage name (default: the first domain)")
    issue.add_argument("--force-renewal", "--renew-by-default", action="store_true",
                       help="issue even when a certificate for the same names is not yet due")
    add_server_options(issue)
    add_account_options(issue)
    chall = issue.add_argument_group("http-01 challenge")
    chall.add_argument("--http-port", "--http-01-port", type=int, default=80,
                       help="port of the standalone server (default 80)")
    chall.add_argument("--http-address", "--http-01-address", default="",
                       help="address to listen on (default: all, IPv4 and IPv6)")
    chall.add_argument("--webroot", "-w", "--webroot-path", type=Path, metavar="PATH",
                       help="write the challenge files into this document root of a running site instead")
    hooks = issue.add_argument_group("hooks")
    hooks.add_argument("--pre-hook", help="command run before the challenge server starts (e.g. apache2ctl stop)")
    hooks.add_argument("--post-hook", help="command run after the order, whatever happened (e.g. apache2ctl start)")
    hooks.add_argument("--deploy-hook", help="command run after a certificate is saved (RENEWED_LINEAGE set)")
    key = issue.add_argument_group("private key")
    key.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa", help="kind of certificate key")
    key.add_argument("--rsa-key-size", type=int, default=2048, help="bits, with --key-type rsa (2048, 3072, 4096)")
    key.add_argument("--elliptic-curve", default="secp256r1",
                     help="curve, with --key-type ecdsa (secp256r1, secp384r1, secp521r1)")
    key.add_argument("--reuse-key", action="store_true", help="keep the current private key of the lineage")
    issue.add_argument("--preferred-chain", metavar="ISSUER", help="pick an alternate chain by its issuer's name")
    apache = issue.add_argument_group("installing into Apache (what `lehttpd install` does)")
    apache.add_argument("--install", action="store_true", help="then serve the certificate from Apache")
    apache.add_argument("--redirect", action="store_true", help="with --install: redirect HTTP to HTTPS too")
    apache.add_argument("--apache-ctl", metavar="PATH", help="apache2ctl/apachectl/httpd to use (default: found)")
    apache.add_argument("--https-port", type=int, default=443, metavar="PORT", help="HTTPS port (default 443)")
    apache.add_argument("--work-dir", type=Path, default=Path("/var/lib/lehttpd"), metavar="DIR",
                        help="where Apache checkpoints are kept (default /var/lib/lehttpd)")
    issue.set_defaults(handler=run_issue)

    certificates = subparsers.add_parser("certificates", parents=[common], help="list stored certificates")
    certificates.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR, metavar="DIR",
                              help="where certificates, accounts and renewal files live")
    certificates.add_argument("--cert-name", action="append", default=[], metavar="NAME",
                              help="only these lineages (repeatable; default: all)")
    certificates.add_argument("--json", action="store_true", help="machine-readable output")
    certificates.set_defaults(handler=run_certificates)


def server_url(args: argparse.Namespace) -> str:
    if args.staging:
        return LETSENCRYPT_STAGING
    return checks.check_server(args.server or LETSENCRYPT_PRODUCTION, "--server")


def build_request(args: argparse.Namespace) -> IssueRequest:
    """Validate everything the user typed, before any network call."""
    from lehttpd.issuance.keys import check_key_spec

    server = server_url(args)
    raw = [part for value in [*args.domains, *args.more_domains] for part in value.split(",") if part.strip()]
    names = normalize_names(raw, allow_ip=server not in SERVERS_WITHOUT_IP)
    checks.check_ca_bundle(args.ca_bundle, "--ca-bundle")
    checks.check_port(args.http_port, "--http-port")
    checks.check_address(args.http_address, "--http-address")
    if args.redirect and not args.install:
        raise UsageError("--redirect goes with --install (or use `lehttpd redirect`)")
    if args.webroot is not None and not args.webroot.is_dir():
        raise UsageError(f"--webroot {args.webroot}: not a directory")
    if args.cert_name:
        check_lineage_name(args.cert_name)
    webroot = args.webroot.resolve() if args.webroot else None
    return IssueRequest(
        names=names, server=server, cert_name=args.cert_name, email=args.email,
        key=check_key_spec(KeySpec(args.key_type, args.rsa_key_size, args.elliptic_curve)),
        reuse_key=args.reuse_key,
        challenge=ChallengeSetup(mode="webroot" if webroot else "standalone", http_port=args.http_port,
                                 http_address=args.http_address, webroot=webroot),
        hooks=Hooks(args.pre_hook, args.post_hook, args.deploy_hook),
        preferred_chain=args.preferred_chain,
        ca_bundle=args.ca_bundle.resolve() if args.ca_bundle else None,
        eab_kid=args.eab_kid, eab_hmac_key=args.eab_hmac_key,
    )


def run_issue(args: argparse.Namespace, console: Console) -> int:
    # The ACME stack (acme, josepy, requests) is imported here, not at start-up: other commands don't need it.
    from lehttpd.issuance.account import Registration
    from lehttpd.issuance.order import obtain
    from lehttpd.renew.hooks import deploy_hook  # one way to run deploy hooks, for issue and renew

    request = build_request(args)
    store = CertStore(args.config_dir)
    covered = _already_covered(store, request, args.force_renewal, console)
    if covered is not None:
        console.step(covered)
        return ExitStatus.SUCCESS
    registration = Registration(email=args.email, agree_tos=args.agree_tos, eab_kid=args.eab_kid,
                                eab_hmac_key=args.eab_hmac_key,
                                interactive=sys.stdin.isatty() and not args.non_interactive)
    if request.hooks.pre:
        console.step(f"Running pre-hook: {request.hooks.pre}")
        run_hook("pre", request.hooks.pre)

    def recheck() -> None:  # under the lineage lock: another `issue` may have finished meanwhile
        again = _already_covered(store, request, args.force_renewal, console)
        if again is not None:
            raise AlreadyCovered(again)

    try:
        issued = obtain(request, store, console, registration, recheck=recheck)
    except AlreadyCovered as covered_meanwhile:
        console.step(str(covered_meanwhile))
        post_failed = _post_hook(request, console)
        if post_failed:
            raise HookError(post_failed) from None
        return ExitStatus.SUCCESS
    except LehttpdError as error:  # the post hook runs whatever happened; the order's error is told first
        post_failed = _post_hook(request, console)
        if post_failed:
            error.message = f"{error.message}; then the {post_failed}"
        raise
    except BaseException:
        _post_hook(request, console)
        raise
    post_failed = _post_hook(request, console)
    store.ready_for_apache(request.lineage_name)  # a deploy hook reloads Apache: key and cert must match
    hook_failures = [f for f in (post_failed,
                                 deploy_hook(request, issued.lineage.live_dir, HOOK_TIMEOUT, console)) if f]
    show_lineage(issued.lineage, console)
    if args.install:
        install_into_apache(issued.lineage, args, console)
    if hook_failures:  # reported last: the certificate is saved (and installed) all the same
        raise HookError(f"certificate saved in {issued.lineage.live_dir}, but {'; '.join(hook_failures)}")
    return ExitStatus.SUCCESS


def _post_hook(request: IssueRequest, console: Console) -> str | None:
    """Run the post hook, if any; returns its failure as text instead of raising, so no error hides another."""
    if not request.hooks.post:
        return None
    console.step(f"Running post-hook: {request.hooks.post}")
    try:
        run_hook("post", request.hooks.post)
    except HookError as error:
        return error.message
    return None


class AlreadyCovered(Exception):
    """Raised under the lineage lock when the lineage was issued for the same names meanwhile."""


def _already_covered(store: CertStore, request: IssueRequest, force: bool, console: Console) -> str | None:
    """Why no new certificate is needed (the same names, not yet due, renewable), or None."""
    name = request.lineage_name
    if force or not store.exists(name):
        return None
    current = store.current(name)
    if set(current.names) != set(request.names) or needs_renewal(current.not_before, current.not_after, utcnow()):
        return None
    if not os.path.lexists(store.renewal_conf(name)):
        console.warn(f"{current.live_dir} has no renewal file (an interrupted first issuance?): issuing a new "
                     "version, which writes one, so that it renews again")
        return None
    return (f"Certificate {current.name} for the same names is not yet due for renewal (expires "
            f"{current.not_after:%Y-%m-%d}); keeping it (--force-renewal to replace it)")


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


def show_lineage(lineage: Lineage, console: Console) -> None:
    console.step(f"Subject: CN={lineage.names[0] if lineage.names else '?'}")
    console.step(f"SANs:    {', '.join(lineage.names)}")
    console.step(f"Expires: {lineage.not_after:%Y-%m-%d %H:%M} UTC ({lineage.days_left(utcnow()):.0f} days)")
    console.step(f"Files:   {lineage.live_dir}/{{cert,chain,fullchain,privkey}}.pem")


def lineage_document(lineage: Lineage, now: dt.datetime) -> dict:
    from lehttpd.issuance.status import serial_text, status_of

    status = status_of(lineage, now)
    return {
        "name": lineage.name, "domains": list(lineage.names), "key_type": lineage.key_type,
        "not_before": lineage.not_before.isoformat(), "expiry": lineage.not_after.isoformat(),
        "days_left": round(lineage.days_left(now), 2), "version": lineage.version,
        "serial": serial_text(lineage.serial), "state": status.state.lower(), "state_reason": status.reason,
        "issuer": lineage.issuer,
        "paths": {"cert": str(lineage.cert_path), "chain": str(lineage.chain_path),
                  "fullchain": str(lineage.fullchain_path), "privkey": str(lineage.key_path)},
    }


def run_certificates(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.issuance.status import VALID, serial_text, status_of

    if not args.config_dir.is_dir():
        raise UsageError(f"--config-dir {args.config_dir}: no such folder")
    store = CertStore(args.config_dir)
    now = utcnow()
    lineages, broken = [], []
    wanted = [check_lineage_name(n.strip()) for value in args.cert_name for n in value.split(",") if n.strip()]
    unknown = [name for name in wanted if name not in store.names()]
    if unknown:
        raise UsageError(f"no certificate named {unknown[0]!r} under {args.config_dir}")
    for name in wanted or store.names():  # one unreadable lineage is reported, the others still listed
        try:
            lineages.append(store.load(name))
        except LehttpdError as error:
            broken.append({"name": name, "error": error.message})
            console.warn(error.message)
    from lehttpd.renew.lineages import not_renewable

    for name in store.not_renewable():
        broken.append({"name": name, "error": not_renewable(store, name)})
        console.warn(not_renewable(store, name))
    if args.json:
        console.json({"certificates": [lineage_document(lineage, now) for lineage in lineages], "errors": broken})
        return ExitStatus.PARTIAL if broken else ExitStatus.SUCCESS
    if not lineages:
        console.result(f"No certificates under {args.config_dir}")
    for lineage in lineages:
        status = status_of(lineage, now)
        state = f"{lineage.days_left(now):.0f} days left" if status.state == VALID else \
            f"{console.paint(status.state, 'red')}: {status.reason}"
        console.result(f"{lineage.name}\n  domains: {' '.join(lineage.names)}\n  key:     {lineage.key_type}\n"
                       f"  expires: {lineage.not_after:%Y-%m-%d %H:%M} UTC ({state})\n"
                       f"  serial:  {serial_text(lineage.serial)}\n"
                       f"  cert:    {lineage.fullchain_path}\n  privkey: {lineage.key_path}")
    return ExitStatus.PARTIAL if broken else ExitStatus.SUCCESS
