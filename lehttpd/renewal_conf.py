"""renewal/NAME.conf: what a later renewal needs, in certbot's format so both tools read each other's files.

The format is configobj's INI dialect as certbot writes it: top-level `key = value` lines (paths of the live
files), then a `[renewalparams]` section, with `[[webroot_map]]` nested inside. Names are not stored: as in
certbot, they are read from the current certificate. lehttpd-only settings use a `lehttpd_` prefix, which
certbot ignores.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lehttpd import __version__
from lehttpd.errors import UsageError
from lehttpd.model import ChallengeSetup, Hooks, IssueRequest, KeySpec

SUPPORTED_AUTHENTICATORS = ("standalone", "webroot", "apache")
SUPPORTED_INSTALLERS = ("apache", "none", "")
_LINE = re.compile(r"^([A-Za-z0-9_.\-]+)\s*=\s*(.*)$")
_SECTION = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class RenewalConf:
    """A parsed renewal file: the top-level keys and the [renewalparams] values (webroot_map flattened)."""

    top: dict[str, str]
    params: dict[str, str]
    webroot_map: dict[str, str]


def render(request: IssueRequest, account_id: str, config_dir: Path) -> str:
    name = request.lineage_name
    live = config_dir / "live" / name
    params: list[tuple[str, str]] = [
        ("account", account_id),
        ("server", request.server),
        ("authenticator", request.challenge.mode),
        ("key_type", request.key.key_type),
        ("rsa_key_size", str(request.key.rsa_key_size)),
        ("elliptic_curve", request.key.elliptic_curve),
        ("reuse_key", str(request.reuse_key)),
        ("http01_port", str(request.challenge.http_port)),
        ("http01_address", request.challenge.http_address),
    ]
    optional = [
        ("webroot_path", f"{request.challenge.webroot}," if request.challenge.webroot else None),
        ("pre_hook", request.hooks.pre), ("post_hook", request.hooks.post),
        ("renew_hook", request.hooks.deploy), ("preferred_chain", request.preferred_chain),
        ("lehttpd_ca_bundle", str(request.ca_bundle) if request.ca_bundle else None),
        # certbot's keys: its Apache plugin's control program, installer, ACME profile
        ("apache_ctl", request.challenge.apache_ctl), ("installer", request.installer),
        ("preferred_profile", request.profile if not request.profile_required else None),
        ("required_profile", request.profile if request.profile_required else None),
        ("lehttpd_token_root", str(request.challenge.token_root) if request.challenge.mode == "apache" else None),
    ]
    params += [(key, value) for key, value in optional if value]
    for key, value in params:
        if "\n" in value or "\r" in value:
            raise UsageError(f"{key} may not contain a line break")
    lines = [
        f"# renewal settings for {name}, written by lehttpd {__version__}; certbot can read this file",
        f"version = {__version__}",
        f"archive_dir = {config_dir / 'archive' / name}",
        *(f"{kind} = {live / (kind + '.pem')}" for kind in ("cert", "privkey", "chain", "fullchain")),
        "",
        "# Options used in the renewal process",
        "[renewalparams]",
        *(f"{key} = {value}" for key, value in params),
    ]
    if request.challenge.webroot:
        lines += ["[[webroot_map]]", *(f"{n} = {request.challenge.webroot}" for n in request.names)]
    return "\n".join(lines) + "\n"


def parse(text: str, where: str) -> RenewalConf:
    """Parse a renewal file; anything malformed raises UsageError naming the file and line."""
    top: dict[str, str] = {}
    params: dict[str, str] = {}
    webroot_map: dict[str, str] = {}
    sections: dict[str, dict[str, str]] = {"": top, "renewalparams": params, "webroot_map": webroot_map}
    section = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            if not _SECTION.match(section):
                raise UsageError(f"{where}:{number}: cannot parse section {line[:60]!r}")
            # certbot adds sections of its own (e.g. [acme_renewal_info], its ARI cache): read, not used
            sections.setdefault(section, {})
            continue
        match = _LINE.match(line)
        if not match:
            raise UsageError(f"{where}:{number}: cannot parse {line[:60]!r}")
        key, value = match.group(1), _unquote(match.group(2).strip())
        sections[section][key] = value
    for required in ("cert", "privkey", "fullchain"):
        if required not in top:
            raise UsageError(f"{where}: incomplete renewal file, no {required!r} path")
    if "server" not in params:
        raise UsageError(f"{where}: incomplete renewal file, no [renewalparams] server")
    return RenewalConf(top, params, webroot_map)


def to_request(conf: RenewalConf, names: tuple[str, ...], lineage_name: str, where: str) -> IssueRequest:
    """The IssueRequest that renews this lineage with what it was issued with."""
    p = conf.params
    mode = p.get("authenticator", "standalone")
    if mode not in SUPPORTED_AUTHENTICATORS:
        raise UsageError(f"{where}: authenticator {mode!r} is not supported by lehttpd (standalone, webroot, apache)")
    installer = p.get("installer", "").lower()  # certbot writes `installer = None` after certonly
    if installer not in SUPPORTED_INSTALLERS:
        raise UsageError(f"{where}: installer {installer!r} is not supported by lehttpd (apache)")
    webroot = p.get("webroot_path", "").split(",")[0].strip() or next(iter(conf.webroot_map.values()), "")
    try:
        key = KeySpec(key_type=p.get("key_type", "rsa"), rsa_key_size=int(p.get("rsa_key_size", "2048")),
                      elliptic_curve=p.get("elliptic_curve", "secp256r1"))
        port = int(p.get("http01_port", "80") or "80")
    except ValueError as error:
        raise UsageError(f"{where}: invalid number ({error})") from None
    return IssueRequest(
        names=names, server=p["server"], cert_name=lineage_name, key=key,
        reuse_key=p.get("reuse_key", "False").lower() == "true",
        challenge=ChallengeSetup(mode=mode, http_port=port, http_address=p.get("http01_address", ""),
                                 webroot=Path(webroot) if webroot else None,
                                 apache_ctl=p.get("apache_ctl") or None, **_token_root(p)),
        hooks=Hooks(pre=p.get("pre_hook") or None, post=p.get("post_hook") or None,
                    deploy=p.get("renew_hook") or p.get("deploy_hook") or None),
        preferred_chain=p.get("preferred_chain") or None,
        ca_bundle=Path(p["lehttpd_ca_bundle"]) if p.get("lehttpd_ca_bundle") else None,
        profile=p.get("required_profile") or p.get("preferred_profile") or None,
        profile_required=bool(p.get("required_profile")),
        installer="apache" if installer == "apache" else None,
    )


def _token_root(params: dict[str, str]) -> dict[str, Path]:
    root = params.get("lehttpd_token_root")
    return {"token_root": Path(root)} if root and root.startswith("/") else {}


def with_installer(text: str, apache_ctl: str | None) -> str:
    """The renewal file with `installer = apache` (and the control program used) set in [renewalparams]."""
    for key, value in (("installer", "apache"), ("apache_ctl", apache_ctl)):
        if not value:
            continue
        if "\n" in value or "\r" in value:
            raise UsageError(f"{key} may not contain a line break")
        pattern = re.compile(rf"^{key}\s*=.*$", re.M)
        if pattern.search(text):
            text = pattern.sub(f"{key} = {value}", text, count=1)
        else:
            text = re.sub(r"^\[renewalparams\][ \t]*$", f"[renewalparams]\n{key} = {value}", text, count=1, flags=re.M)
    return text


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value
