"""`lehttpd issue` and `lehttpd certificates`: flags in, one call to the issuance pipeline, results out."""
from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from dataclasses import replace
from pathlib import Path

from lehttpd import checks
from lehttpd.console import Console
from lehttpd.errors import ExitStatus, HookError, InvalidDomainError, LehttpdError, UsageError
from lehttpd.fleet.config import node_store
from lehttpd.hooks import HOOK_TIMEOUT, run_hook
from lehttpd.issuance import preflight, webroots
from lehttpd.issuance.installing import install as _install, install_kept as _install_kept
from lehttpd.issuance.installing import record_installer  # noqa: F401 (`lehttpd install` imports it from here)
from lehttpd.issuance.names import normalize_names
from lehttpd.model import (LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING, ChallengeSetup, Hooks, IssueRequest,
                           KeySpec, Lineage)
from lehttpd.renewal import needs_renewal
from lehttpd.store import DEFAULT_CONFIG_DIR, CertStore, check_lineage_name, utcnow

# Let's Encrypt issues for IP addresses only under its short-lived profile (its default is classic).
LETSENCRYPT = (LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING)
IP_PROFILES = ("shortlived",)
NON_IP_PROFILES = ("classic", "tlsserver")  # Let's Encrypt's profiles that refuse IP addresses


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
    issue.add_argument("domains", nargs="*", metavar="DOMAIN",
                       help="names for the certificate (IP addresses too, under a profile that allows them)")
    issue.add_argument("-d", "--domain", "--domains", action=webroots.DomainAction, default=[], dest="more_domains",
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
    how = chall.add_mutually_exclusive_group()
    how.add_argument("--webroot", "-w", "--webroot-path", type=Path, metavar="PATH", action=webroots.WebrootAction,
                     help="write the challenge files into this document root of a running site instead; "
                          "repeatable: each serves the -d names after it (names before any: the last one)")
    how.add_argument("--apache", action="store_const", const="apache", dest="mode",
                     help="answer through the running Apache (default when an Apache lehttpd controls holds the port)")
    how.add_argument("--standalone", action="store_const", const="standalone", dest="mode",
                     help="answer with lehttpd's own server (default when the port is free)")
    profiles = issue.add_argument_group("ACME profiles (draft-aaron-acme-profiles)")
    wanted = profiles.add_mutually_exclusive_group()
    wanted.add_argument("--preferred-profile", metavar="NAME",
                        help="ask for this profile when the server offers it (Let's Encrypt: classic, tlsserver, "
                             "shortlived)")
    wanted.add_argument("--required-profile", metavar="NAME", help="the same, but fail when it is not offered")
    profiles.add_argument("--list-profiles", action="store_true", help="print the server's profiles and exit")
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
    apache.add_argument("--harden", metavar="PROFILE", choices=("modern", "intermediate", "old"),
                        help="with --install: then what `lehttpd harden PROFILE` does")
    apache.add_argument("--apache-ctl", metavar="PATH", help="apache2ctl/apachectl/httpd to use (default: found)")
    apache.add_argument("--https-port", type=int, default=443, metavar="PORT", help="HTTPS port (default 443)")
    apache.add_argument("--work-dir", type=Path, default=Path("/var/lib/lehttpd"), metavar="DIR",
                        help="where Apache checkpoints and (--apache) challenge files are kept "
                             "(default /var/lib/lehttpd)")
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
    profile = args.required_profile or args.preferred_profile
    raw = [part for value in [*args.domains, *args.more_domains] for part in value.split(",") if part.strip()]
    check_ip_names(raw, server, profile)
    names = normalize_names(raw, allow_ip=ip_allowed(server, profile))
    mapped = webroots.webroot_map(args, lambda raw_name: normalize_names([raw_name], allow_ip=True)[0])
    checks.check_ca_bundle(args.ca_bundle, "--ca-bundle")
    checks.check_port(args.http_port, "--http-port")
    checks.check_address(args.http_address, "--http-address")
    if (args.harden or args.redirect) and not args.install:
        raise UsageError("--redirect and --harden go with --install (or use `lehttpd redirect` / `lehttpd harden`)")
    if args.cert_name:
        check_lineage_name(args.cert_name)
    webroot = mapped[0][1] if mapped else None
    return IssueRequest(
        names=names, server=server, cert_name=args.cert_name, email=args.email,
        key=check_key_spec(KeySpec(args.key_type, args.rsa_key_size, args.elliptic_curve)),
        reuse_key=args.reuse_key,
        challenge=ChallengeSetup(mode="webroot" if webroot else args.mode or "standalone", http_port=args.http_port,
                                 http_address=args.http_address, webroot=webroot, webroot_map=mapped,
                                 apache_ctl=args.apache_ctl,
                                 token_root=args.work_dir.absolute() / "http-01"),
        profile=profile, profile_required=bool(args.required_profile),
        hooks=Hooks(args.pre_hook, args.post_hook, args.deploy_hook),
        preferred_chain=args.preferred_chain,
        ca_bundle=args.ca_bundle.resolve() if args.ca_bundle else None,
        eab_kid=args.eab_kid, eab_hmac_key=args.eab_hmac_key,
    )


def ip_allowed(server: str, profile: str | None) -> bool:
    """May the names hold IP addresses? Let's Encrypt: only under `shortlived`; others: unless the profile
    chosen is one of Let's Encrypt's that refuse them."""
    if profile in IP_PROFILES:
        return True
    if profile in NON_IP_PROFILES:
        return False
    return server not in LETSENCRYPT


def check_ip_names(raw: list[str], server: str, profile: str | None) -> None:
    """IP addresses are refused before any network call unless the profile allows them, saying why."""
    if ip_allowed(server, profile):
        return
    for name in raw:
        try:
            address = ipaddress.ip_address(name.strip().strip("[]"))
        except ValueError:
            continue
        under = f"the profile {profile!r}" if profile else "Let's Encrypt's default profile (classic)"
        raise InvalidDomainError(
            f"invalid domain name {name.strip()}: the ACME server does not issue certificates for IP addresses "
            f"under {under}; Let's Encrypt issues them only under --preferred-profile shortlived "
            f"(IPv{address.version})")


def run_issue(args: argparse.Namespace, console: Console) -> int:
    # The ACME stack (acme, josepy, requests) is imported here, not at start-up: other commands don't need it.
    from lehttpd.issuance.account import Registration
    from lehttpd.issuance.order import obtain
    from lehttpd.renew.hooks import deploy_hook  # one way to run deploy hooks, for issue and renew

    if args.list_profiles:
        return list_profiles(args, console)
    request = build_request(args)
    store = node_store(args.config_dir, console, "nothing ordered", in_run=False)  # fleet: lock, tokens, publish
    preflight.check_names_kept(store, request, console)
    covered = _already_covered(store, request, args.force_renewal, console)
    if covered is not None:
        console.step(covered)
        _install_kept(store, request, args, console)
        return ExitStatus.SUCCESS
    registration = Registration(email=args.email, agree_tos=args.agree_tos, eab_kid=args.eab_kid,
                                eab_hmac_key=args.eab_hmac_key,
                                interactive=sys.stdin.isatty() and not args.non_interactive)
    request = choose_mode(request, args, console, store.challenge_webroot if store.shared else None)
    if args.install:  # local checks first: nothing ordered for a request that fails (the port: in obtain)
        preflight.check_install_plan(store, request, args)
    if request.hooks.pre:
        console.step(f"Running pre-hook: {request.hooks.pre}")
        run_hook("pre", request.hooks.pre)
        _wait_for_port(request, console)

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
        _install_kept(store, request, args, console)
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
        _install(store, issued.lineage, args, console)
    if hook_failures:  # reported last: the certificate is saved (and installed) all the same
        raise HookError(f"certificate saved in {issued.lineage.live_dir}, but {'; '.join(hook_failures)}")
    return ExitStatus.SUCCESS


def choose_mode(request: IssueRequest, args: argparse.Namespace, console: Console,
                fleet_webroot: Path | None = None) -> IssueRequest:
    """Pick standalone / webroot / apache (the Apache commands' leftovers cleaned first) and say why."""
    from lehttpd.issuance import modes

    forced = "webroot" if request.challenge.mode == "webroot" else args.mode
    setup, why = modes.choose(request.challenge, forced, bool(request.hooks.pre), fleet_webroot)
    if setup.mode == "apache" or args.apache_ctl:
        clean_apache_leftovers(args.apache_ctl, console, required=setup.mode == "apache")
    console.step(f"http-01 mode: {setup.mode} ({why})")
    return replace(request, challenge=setup)


def clean_apache_leftovers(apache_ctl: str | None, console: Console, required: bool = False) -> None:
    """Remove what a killed lehttpd left in Apache (a temporary challenge include); quiet when no Apache."""
    from lehttpd.apache.challenge import apache_info, remove_leftovers

    try:
        info = apache_info(apache_ctl)
    except LehttpdError:
        if required:
            raise
        return
    remove_leftovers(info, console.step)


def list_profiles(args: argparse.Namespace, console: Console) -> int:
    """`issue --list-profiles`: the directory's meta.profiles, one per line (JSON-free, unsigned GET)."""
    from lehttpd.issuance.order import fetch_directory, offered_profiles

    server = server_url(args)
    profiles = offered_profiles(fetch_directory(server, args.ca_bundle))
    if not profiles:
        console.result(f"{server} offers no profiles (it issues with its single default)")
    for name, description in profiles.items():
        console.result(f"{name}\t{description}")
    return ExitStatus.SUCCESS


def _wait_for_port(request: IssueRequest, console: Console) -> None:
    """A pre-hook frees the port for the standalone server; the server it stops may need a moment to let go."""
    from lehttpd.issuance.modes import PORT_RELEASE_WAIT, wait_until_free

    port = request.challenge.http_port
    if request.challenge.mode == "standalone" and not wait_until_free(port):
        console.warn(f"port {port} is still in use {PORT_RELEASE_WAIT:.0f} s after the pre-hook "
                     f"{request.hooks.pre!r}: did it stop the server holding it?")


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
        "issuer": lineage.issuer, "renewal_due": renewal_due(lineage).isoformat(),
        "paths": {"cert": str(lineage.cert_path), "chain": str(lineage.chain_path),
                  "fullchain": str(lineage.fullchain_path), "privkey": str(lineage.key_path)},
    }


def renewal_due(lineage: Lineage) -> dt.datetime:
    """When `renew` will first renew it: the CA's ARI point for this serial when known, else the lifetime rule
    (a third before expiry, half for lifetimes under 10 days such as 6-day shortlived certificates)."""
    from lehttpd.renew.state import load_state
    from lehttpd.renewal import renewal_time

    try:
        advice = load_state(lineage.config_dir, lineage.name).ari
    except LehttpdError:
        advice = None
    if advice is not None and advice.serial == hex(lineage.serial):
        return advice.point
    return renewal_time(lineage.not_before, lineage.not_after)


def _due_note(lineage: Lineage, now: dt.datetime) -> str:
    return " (now: run `lehttpd renew`)" if renewal_due(lineage) <= now else ""


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
                       f"  renewal: due {renewal_due(lineage):%Y-%m-%d %H:%M} UTC{_due_note(lineage, now)}\n"
                       f"  cert:    {lineage.fullchain_path}\n  privkey: {lineage.key_path}")
    return ExitStatus.PARTIAL if broken else ExitStatus.SUCCESS
