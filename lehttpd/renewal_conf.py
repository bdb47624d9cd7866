"""renewal/NAME.conf: what a later renewal needs, in certbot's format so both tools read each other's files.

The format is configobj's INI dialect as certbot writes it: top-level `key = value` lines (paths of the live
files), then a `[renewalparams]` section, with `[[webroot_map]]` nested inside. Names are not stored: as in
certbot, they are read from the current certificate. lehttpd-only settings use a `lehttpd_` prefix, which
certbot ignores.

Values are quoted the way configobj (certbot's reader and writer) does, so a hook command such as
`"/bin/true" "x"` or `echo a,b # c` comes back byte for byte from either tool; `%` is never interpolated.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lehttpd import __version__, checks
from lehttpd.errors import UsageError
from lehttpd.model import ChallengeSetup, Hooks, IssueRequest, KeySpec
from lehttpd.store.trust import check_file_and_folders

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
    from lehttpd.store import CertStore  # the one key-builder of the config dir

    name = request.lineage_name
    store = CertStore(config_dir)
    live = store.live_dir(name)
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
        ("pre_hook", request.hooks.pre), ("post_hook", request.hooks.post),
        ("renew_hook", request.hooks.deploy), ("preferred_chain", request.preferred_chain),
        ("lehttpd_ca_bundle", str(request.ca_bundle) if request.ca_bundle else None),
        # certbot's keys: its Apache plugin's control program, installer, ACME profile
        ("apache_ctl", request.challenge.apache_ctl), ("installer", request.installer),
        ("preferred_profile", request.profile if not request.profile_required else None),
        ("required_profile", request.profile if request.profile_required else None),
        ("lehttpd_token_root", str(request.challenge.token_root) if request.challenge.mode == "apache" else None),
    ]
    optional_written = [(key, value) for key, value in optional if value]
    params += optional_written
    for key, value in params:
        if "\n" in value or "\r" in value:
            raise UsageError(f"{key} may not contain a line break")
    written = [(key, _quoted(value, key)) for key, value in params]
    roots = _roots(request.challenge)
    if roots:  # a list, as certbot writes it
        written.insert(len(written) - len(optional_written), ("webroot_path", _list([str(r) for r in roots],
                                                                                    "webroot_path")))
    lines = [
        f"# renewal settings for {name}, written by lehttpd {__version__}; certbot can read this file",
        f"version = {__version__}",
        f"archive_dir = {_quoted(str(store.archive_dir(name)), 'archive_dir')}",
        *(f"{kind} = {_quoted(str(live / f'{kind}.pem'), kind)}" for kind in ("cert", "privkey", "chain", "fullchain")),
        "",
        "# Options used in the renewal process",
        "[renewalparams]",
        *(f"{key} = {value}" for key, value in written),
    ]
    if request.challenge.webroot:
        lines += ["[[webroot_map]]", *(f"{n} = {_quoted(str(root), n)}" for n, root in _pairs(request))]
    return "\n".join(lines) + "\n"


def _pairs(request: IssueRequest) -> list[tuple[str, Path]]:
    """(name, webroot) for every name: the map given with -w, the single --webroot for the others."""
    mapped = dict(request.challenge.webroot_map)
    default = request.challenge.webroot
    return [(name, mapped.get(name, default)) for name in request.names if mapped.get(name, default)]


def _roots(setup: ChallengeSetup) -> list[Path]:
    """The distinct webroots, in order (certbot's webroot_path list)."""
    roots = [setup.webroot] if setup.webroot else []
    return list(dict.fromkeys([*roots, *(root for _, root in setup.webroot_map)]))


def _list(values: list[str], key: str) -> str:
    """A configobj list: `a, b`, or `a,` for one value."""
    for value in values:
        if "\n" in value or "\r" in value:
            raise UsageError(f"{key} may not contain a line break")
    quoted = [_quoted(value, key) for value in values]
    return ", ".join(quoted) if len(quoted) > 1 else f"{quoted[0]},"


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
        key, value = match.group(1), _unquoted(match.group(2).strip())
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
    listed = _list_items(p.get("webroot_path", ""))
    webroot = next(iter(listed), "") or next(iter(conf.webroot_map.values()), "")
    mapped = tuple((name, Path(conf.webroot_map.get(name) or webroot)) for name in names
                   if conf.webroot_map.get(name) or webroot) if mode == "webroot" else ()
    try:
        key = KeySpec(key_type=p.get("key_type", "rsa"), rsa_key_size=int(p.get("rsa_key_size", "2048")),
                      elliptic_curve=p.get("elliptic_curve", "secp256r1"))
    except ValueError as error:
        raise UsageError(f"{where}: invalid number ({error})") from None
    return _checked(where, IssueRequest(
        names=names, server=p["server"], cert_name=lineage_name, key=key,
        reuse_key=p.get("reuse_key", "False").lower() == "true",
        challenge=ChallengeSetup(mode=mode, http_port=checks.check_port(p.get("http01_port") or "80",
                                                                        f"{where}: http01_port"),
                                 http_address=p.get("http01_address", ""),
                                 webroot=Path(webroot) if webroot else None, webroot_map=mapped,
                                 apache_ctl=p.get("apache_ctl") or None, **_token_root(p)),
        hooks=Hooks(pre=p.get("pre_hook") or None, post=p.get("post_hook") or None,
                    deploy=p.get("renew_hook") or p.get("deploy_hook") or None),
        preferred_chain=p.get("preferred_chain") or None,
        ca_bundle=Path(p["lehttpd_ca_bundle"]) if p.get("lehttpd_ca_bundle") else None,
        profile=p.get("required_profile") or p.get("preferred_profile") or None,
        profile_required=bool(p.get("required_profile")),
        installer="apache" if installer == "apache" else None,
    ))


def _token_root(params: dict[str, str]) -> dict[str, Path]:
    root = params.get("lehttpd_token_root")
    return {"token_root": Path(root)} if root else {}  # a relative one is refused by _checked


def with_installer(text: str, apache_ctl: str | None) -> str:
    """The renewal file with `installer = apache` (and the control program used) set in [renewalparams]."""
    for key, value in (("installer", "apache"), ("apache_ctl", apache_ctl)):
        if not value:
            continue
        if "\n" in value or "\r" in value:
            raise UsageError(f"{key} may not contain a line break")
        pattern = re.compile(rf"^{key}\s*=.*$", re.M)
        if pattern.search(text):
            text = pattern.sub(lambda _: f"{key} = {_quoted(value, key)}", text, count=1)
        else:
            text = re.sub(r"^\[renewalparams\][ \t]*$", lambda _: f"[renewalparams]\n{key} = {_quoted(value, key)}",
                          text, count=1, flags=re.M)
    return text


def _checked(where: str, request: IssueRequest) -> IssueRequest:
    """The values the command line would refuse are refused here too, naming the file (its lineage fails)."""
    from lehttpd.issuance.keys import check_key_spec

    checks.check_server(request.server, f"{where}: server")
    checks.check_address(request.challenge.http_address, f"{where}: http01_address")
    checks.check_absolute(request.challenge.webroot, f"{where}: webroot_path")
    for name, root in request.challenge.webroot_map:
        checks.check_absolute(root, f"{where}: webroot_map {name}")
    checks.check_absolute(request.ca_bundle, f"{where}: lehttpd_ca_bundle")
    checks.check_absolute(request.challenge.token_root, f"{where}: lehttpd_token_root")
    if request.ca_bundle is not None and os.path.exists(request.ca_bundle):
        # checked here, as the file is read, so that no use (ARI, revoke, the order) takes one others can change;
        # a missing or non-PEM bundle fails the lineage later, where it is loaded
        check_file_and_folders(request.ca_bundle, f"the CA bundle ({where}: lehttpd_ca_bundle)")
    try:
        check_key_spec(request.key)
    except UsageError as error:
        raise UsageError(f"{where}: {error.message}") from None
    return request


_NEEDS_QUOTES_AT_EDGE = " \t\v'\""  # configobj quotes a value that starts or ends with one of these
_QUOTED = re.compile(r"""^(?:'([^']*)'|"([^"]*)")\s*(?:#.*)?$""")
_TRIPLE_QUOTED = re.compile("^(?:'''(.*?)'''|" + '"""(.*?)"""' + r")\s*(?:#.*)?$")


def _quoted(value: str, key: str) -> str:
    """VALUE as configobj writes it: bare when that reads back the same, else in the first quotes that fit."""
    if (value and value[0] not in _NEEDS_QUOTES_AT_EDGE and value[-1] not in _NEEDS_QUOTES_AT_EDGE
            and "," not in value and "#" not in value):
        return value  # a comma would make a list, a '#' a comment
    if "'" in value and '"' in value:
        for triple in ("'''", '"""'):
            if triple not in value:
                return f"{triple}{value}{triple}"
        raise UsageError(f"{key} holds both ''' and \"\"\"; it cannot be stored in a renewal file")
    return f"'{value}'" if '"' in value else f'"{value}"'


_LIST_ITEM = re.compile(r"""\s*('[^']*'|"[^"]*"|[^,'"]+?)\s*(?:,|$)""")


def _list_items(text: str) -> list[str]:
    """configobj's list value (`a, "b,c",`) as its items."""
    return [_unquoted(item) for item in _LIST_ITEM.findall(text) if item.strip()]


def _unquoted(text: str) -> str:
    """A value as configobj reads it when quoted (single, double or triple quotes, then maybe a comment).

    Anything else is taken as written (older lehttpd wrote every value unquoted), and a bare list such as
    `/var/www,` is left for the caller to split.
    """
    for pattern in (_TRIPLE_QUOTED, _QUOTED):
        match = pattern.match(text)
        if match:
            return next(group for group in match.groups() if group is not None)
    return text
