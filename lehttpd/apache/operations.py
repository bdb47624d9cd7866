"""The three jobs end to end (read → plan → dry-run diff or apply), shared by the CLI and `install_lineage`."""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from lehttpd.apache import render
from lehttpd.apache.apply import apply_plan, tree_lock
from lehttpd.apache.changes import Plan
from lehttpd.apache.discover import mod_ssl_openssl_version
from lehttpd.apache.harden_settings import HardenSettings, SettingsChange, conflicts, merge, read_settings
from lehttpd.apache.redirects import plan_redirect
from lehttpd.apache.tls_options import http2_support, plan_harden
from lehttpd.apache.plan import Certificate, Tree, new_changes, plan_install
from lehttpd.apache.policy import APACHE_CAPS, build_policy, has
from lehttpd.apache.reading import Source, open_tree
from lehttpd.model import Lineage

DEFAULT_WORK_DIR = Path("/var/lib/lehttpd")


@dataclass(frozen=True)
class Options:
    source: Source = field(default_factory=Source)
    https_port: int | None = None      # None: the port the configuration listens on for https, else 443
    http_port: int | None = None       # None: 80, or the only port the names are served on
    work_dir: Path = DEFAULT_WORK_DIR
    dry_run: bool = False
    reload: bool = True
    force: bool = False


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    checkpoint: Path | None
    warnings: tuple[str, ...] = ()


@contextmanager
def _locked_tree(options: Options, **which):
    """Read the tree under the tree lock (taken once discovery has named the server root) and keep it until the
    plan made from what was read is applied: a second command waits for nothing and plans on nothing stale."""
    with ExitStack() as stack:
        hold = None if options.dry_run else (lambda root: stack.enter_context(tree_lock(root)))
        yield open_tree(options.source, options.https_port, on_discovered=hold, **which)


def _finish(tree: Tree, plan: Plan, options: Options, command: str, expected_der: bytes | None,
            log) -> Outcome:
    if options.dry_run or plan.empty:
        return Outcome(plan, None)
    folder = apply_plan(plan, tree.info, options.work_dir, command, expected_der, options.reload, log, locked=True)
    return Outcome(plan, folder)


def leaf_der(lineage: Lineage) -> bytes:
    cert = x509.load_pem_x509_certificate(lineage.cert_path.read_bytes())
    return cert.public_bytes(Encoding.DER)


def install_lineage(lineage: Lineage, *, apache_ctl: str | None = None, https_port: int | None = None,
                    redirect: bool = False, work_dir: Path = DEFAULT_WORK_DIR, dry_run: bool = False,
                    log=lambda message: None, http_port: int | None = None) -> Outcome:
    """Install a stored lineage into Apache: SSL vhosts for its names (optionally the :80 redirect), applied
    safely (checkpoint, config test, graceful reload, SNI check, rollback on failure). Raises LehttpdError."""
    options = Options(source=Source(apache_ctl=apache_ctl), https_port=https_port, work_dir=work_dir,
                      dry_run=dry_run, http_port=http_port)
    return install(lineage, options, redirect, log)[0]


def install(lineage: Lineage, options: Options, redirect: bool, log) -> tuple[Outcome, list]:
    cert = Certificate.from_lineage(lineage)
    der = leaf_der(lineage) if not options.dry_run else None
    with _locked_tree(options, names=cert.names) as (tree, errors):
        changes = new_changes(tree)
        on_https = plan_install(tree, cert, tree.https_port, changes, options.http_port)
        if redirect:
            plan_redirect(tree, cert.names, tree.https_port, changes, now_on_https=on_https, force=options.force,
                          http_port=options.http_port)
        return _finish(tree, changes.freeze(), options, f"install {lineage.name}", der, log), errors


def redirect(names, options: Options, log) -> tuple[Outcome, list]:
    with _locked_tree(options, names=names) as (tree, errors):
        changes = new_changes(tree)
        plan_redirect(tree, names, tree.https_port, changes, force=options.force, http_port=options.http_port)
        return _finish(tree, changes.freeze(), options, f"redirect {' '.join(names)}", None, log), errors


PROFILE_HSTS = -1  # --hsts without a value: the profile's hsts_min_age


@dataclass(frozen=True)
class HardenRequest:
    """One run's flags: None leaves a setting as the last harden left it (harden_settings.py)."""
    profile: str | None = None
    hsts: int | None = None               # PROFILE_HSTS: the profile's max-age
    hsts_subdomains: bool | None = None
    hsts_preload: bool | None = None
    staple_ocsp: bool | None = None
    uir: bool | None = None
    log_format: str | None = None
    openssl_version: tuple[int, int, int] | None = None
    vhosts: tuple[str, ...] = ()          # --vhost: names (or FILE:LINE) to harden; empty: every SSL vhost
    remove: frozenset[str] = frozenset()  # --no-hsts, --no-uir, --no-staple-ocsp

    def change(self) -> SettingsChange:
        change = SettingsChange(profile=self.profile, hsts=self.hsts, hsts_subdomains=self.hsts_subdomains,
                                hsts_preload=self.hsts_preload, uir=self.uir, staple_ocsp=self.staple_ocsp,
                                log_format=self.log_format, remove=self.remove)
        conflicts(change)
        return change


def harden(request: HardenRequest, options: Options, log) -> tuple[Outcome, list]:
    change = request.change()
    with _locked_tree(options, ssl_only=True) as (tree, errors):
        # this machine's mod_ssl says nothing about a tree read statically or an Apache version given by hand
        live = tree.info.ctl is not None and not options.source.apache_version
        openssl = request.openssl_version or (mod_ssl_openssl_version(tree.info) if live else None)
        if tree.info.generation == "2.2" and openssl is not None and openssl >= (1, 1, 0) \
                and not request.openssl_version:
            openssl = None  # a mod_ssl for 2.2 never links OpenSSL 1.1.0+: what was found is not this Apache's
        previous = read_settings(tree.read(tree.options_file))
        profile = change.profile or previous.profile
        policy = build_policy(profile, tree.info.version, openssl, False, tree.info.layout.family)
        settings = merge(previous, change, policy.hsts_min_age)
        policy = replace(policy, stapling=settings.staple_ocsp and has(tree.info.version, APACHE_CAPS["ocsp_stapling"]))
        http2, why_not = http2_support(tree)
        context = render.build_options_context(policy, tree.info.version, openssl, settings.hsts,
                                               settings.hsts_subdomains, settings.hsts_preload, settings.uir,
                                               settings.log_format, http2, tree.info.has_module("logio"),
                                               settings=settings.line())
        changes = new_changes(tree)
        changes.notes.extend(policy.notes + ((why_not,) if why_not else ()))
        if tree.read(tree.options_file) is not None:
            changes.notes.append(f"settings (the last harden's, changed only by this run's flags): {describe(settings)}")
        plan_harden(tree, policy, context, changes, force=options.force, wanted=request.vhosts,
                    staple_ocsp=settings.staple_ocsp)
        return _finish(tree, changes.freeze(), options, f"harden {profile}", None, log), errors


def describe(settings: HardenSettings) -> str:
    """`intermediate, HSTS max-age=63072000, CSP upgrade-insecure-requests`: what the options file now asks."""
    parts = [settings.profile]
    if settings.hsts is not None:
        parts.append(f"HSTS max-age={settings.hsts}" + ("; includeSubDomains" if settings.hsts_subdomains else "")
                     + ("; preload" if settings.hsts_preload else ""))
    parts += [label for flag, label in ((settings.uir, "CSP upgrade-insecure-requests"),
                                        (settings.staple_ocsp, "OCSP stapling"),
                                        (settings.log_format, f"log format {settings.log_format}")) if flag]
    return ", ".join(parts)
