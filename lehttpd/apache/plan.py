"""Planning, pure: from what was read (a Tree) to the edits that install, redirect and harden need.

Nothing here writes; every function takes values and records splices in a Changes, whose frozen Plan is printed as
a unified diff by --dry-run and handed to apply.py otherwise. Each step recognises its own earlier work, so a
second run plans nothing.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from lehttpd.apache import render
from lehttpd.apache.changes import Changes, Check, uses_crlf
from lehttpd.apache.discover import ApacheInfo, expand, port_of
from lehttpd.apache.markers import MANAGED_VHOST_MARK
from lehttpd.apache.policy import APACHE_CAPS, has
from lehttpd.apache.textedit import child_indent, insert_before_close, line_span, site_body  # noqa: F401
from lehttpd.apache.tree import ParsedFile
from lehttpd.apache.targets import http_targets, missing_listens, probe_addresses
from lehttpd.apache.vhosts import VirtualHost, ssl_twin
from lehttpd.errors import UsageError

CERT_DIRECTIVES = ("SSLCertificateFile", "SSLCertificateChainFile", "SSLCertificateKeyFile")
OPTIONS_PATH = Path("lehttpd") / "options-ssl.conf"
_DEPENDS_RE = re.compile(rb"(?im)^[ \t]*#[ \t]*Depends:[ \t]*([^\r\n]*)")


@dataclass(frozen=True)
class Tree:
    """What planning may look at: discovery, the vhosts read, their parsed files, server-wide directives."""

    info: ApacheInfo
    vhosts: tuple[VirtualHost, ...]
    files: Mapping[Path, ParsedFile]
    globals: tuple[tuple[str, tuple[str, ...], Path], ...]   # (directive, values, file) for Listen & co
    read: Callable[[Path], bytes | None] = field(repr=False, default=lambda path: None)
    https_port: int = 443
    port_note: str = ""                 # how the HTTPS port was chosen, when it was not given

    @property
    def options_file(self) -> Path:
        return self.info.server_root / OPTIONS_PATH

    def has_global(self, name: str, port: int | None = None) -> bool:
        for directive, values, _file in self.globals:
            if directive.lower() == name.lower() and values:
                if port is None or port_of(values[0]) == port or values[0] == str(port):
                    return True
        return False


@dataclass(frozen=True)
class Certificate:
    name: str
    names: tuple[str, ...]
    cert: str
    chain: str
    fullchain: str
    key: str
    key_type: str = ""              # "rsa" | "ecdsa"

    @classmethod
    def from_lineage(cls, lineage) -> "Certificate":
        return cls(lineage.name, tuple(lineage.names), str(lineage.cert_path), str(lineage.chain_path),
                   str(lineage.fullchain_path), str(lineage.key_path), getattr(lineage, "key_type", ""))


def new_changes(tree: Tree) -> Changes:
    changes = Changes(read=tree.read)
    if tree.port_note:
        changes.notes.append(tree.port_note)
    return changes


# ---------------------------------------------------------------------------------------------------- install
def plan_install(tree: Tree, cert: Certificate, https_port: int, changes: Changes, http_port: int | None = None
                 ) -> list[str]:
    """SSL vhosts for the :80 vhosts Apache routes the certificate's names to; returns the names now on HTTPS."""
    routed = http_targets(tree.vhosts, cert.names, https_port, http_port)
    if routed.main_server:
        from lehttpd.apache.main_server import plan_main_install  # it builds on this module

        return plan_main_install(tree, cert, https_port, changes)
    done: list[str] = []
    for vhost in routed.vhosts:
        key = vhost.server_name.lower() or ",".join(vhost.names)
        if routed.by_default:
            key = cert.names[0]
            changes.notes.append(f"{vhost.file}:{vhost.line}: no vhost names {', '.join(cert.names)} on port "
                                 f"{routed.http_port}; Apache answers them from this default vhost: the SSL vhost "
                                 "is made from it, with the certificate's names")
        if key in done:
            continue
        done.append(key)
        twin = ssl_twin(vhost, list(tree.vhosts), https_port) if not routed.by_default else \
            next((v for v in tree.vhosts if v.ssl and any(v.serves(n) for n in cert.names)), None)
        if twin is not None:
            update_certificate(tree, twin, cert, changes)
            if tree.read(tree.options_file) is not None:
                from lehttpd.apache.tls_options import use_options_file  # it builds on this module

                use_options_file(tree, twin, tree.options_file, changes, add=False)
            changes.notes.append(f"{twin.file}:{twin.line}: SSL vhost for {key} exists; certificate paths checked")
        else:
            add_ssl_vhost(tree, vhost, cert, https_port, changes, cert.names if routed.by_default else ())
        target = twin or vhost
        names = cert.names if routed.by_default and twin is None else target.names
        addresses = [_https_address(a, https_port) for a in target.addresses]
        port = https_port if twin is None else next((port_of(a) for a in twin.addresses if port_of(a)), https_port)
        for name in names:
            if "*" not in name and "?" not in name and any(_covers(n, name) for n in cert.names):
                for address in probe_addresses(tree.globals, addresses, port):
                    changes.checks.append(Check(name, address, port))
    # 2.2's mod_ssl has shmcb built in; 2.4 needs socache_shmcb for the session cache Debian's ssl.conf sets up
    ensure_modules(tree, ("ssl",) if tree.info.generation == "2.2" else ("ssl", "socache_shmcb"), changes)
    ensure_listen(tree, [a for v in routed.vhosts for a in v.addresses], https_port, changes)
    return done


def _covers(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower(), name.lower()
    return pattern == name or (pattern.startswith("*.") and name.count(".") == pattern.count(".")
                               and name.endswith(pattern[1:]))


def cert_lines(tree: Tree, cert: Certificate, indent: str) -> dict:
    paths = {"cert": cert.cert, "chain": cert.chain, "fullchain": cert.fullchain, "key": cert.key}
    return render.cert_context(indent, paths, fullchain=has(tree.info.version, APACHE_CAPS["fullchain"]))


def add_ssl_vhost(tree: Tree, vhost: VirtualHost, cert: Certificate, https_port: int, changes: Changes,
                  names: tuple[str, ...] = ()) -> None:
    """The SSL twin of `vhost`; `names`: ServerName/ServerAlias lines to give it (a default vhost has none)."""
    parsed = tree.files[vhost.file]
    node = vhost.node
    indent = child_indent(parsed.data, node)
    body = site_body(parsed.data, node, vhost.names)
    addresses = [_https_address(a, https_port) for a in written_addresses(tree, vhost)]
    options = str(tree.options_file) if tree.read(tree.options_file) is not None else None
    context = render.build_vhost_context(addresses, body, indent, cert_lines(tree, cert, indent), cert.name,
                                         f"{vhost.file}:{vhost.line}", options, names)
    text = render.render(tree.info.generation, "vhost-ssl.conf.j2", context)
    if uses_crlf(parsed.data):  # the site's own line ends, in a file of its own too
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    destination, link = ssl_destination(tree, vhost, changes)
    reason = f"SSL vhost for {vhost.server_name or vhost.file.name} ({cert.name})"
    if destination is None:
        end = node.end
        prefix = b"" if parsed.data[:end].endswith(b"\n") else b"\n"
        changes.splice(parsed.path, parsed.data, end, end, prefix + b"\n" + text.encode("utf-8", "surrogateescape"),
                       reason)
    else:
        changes.add_file(destination, text, reason)
        if link is not None:
            changes.link(link[0], link[1], f"enable {destination.name} (as a2ensite does)")


def written_addresses(tree: Tree, vhost: VirtualHost) -> list[str]:
    """The vhost's addresses as its tag writes them (order, `*` and `_default_` kept), Defines expanded."""
    defines = dict(tree.info.defines)
    written = [expand(value, defines) for value in vhost.node.values] if vhost.node is not None else []
    return [w for w in written if w] or list(vhost.addresses)


def ssl_destination(tree: Tree, vhost: VirtualHost, changes: Changes | None = None
                    ) -> tuple[Path | None, tuple[Path, str] | None]:
    """Where the new SSL vhost goes: the distribution's site folder, a folder included by a glob, or the same file
    right after the :80 block (always included, whatever the layout). A file already there under the name is
    never written into nor enabled (a stale certbot NAME-le-ssl.conf): another name is chosen."""
    layout, root = tree.info.layout, tree.info.server_root
    included = vhost.file
    real = included.resolve()
    if layout.vhost_enabled and layout.vhost_available and included.parent == root / layout.vhost_enabled \
            and real.parent == (root / layout.vhost_available).resolve():
        name = free_name(tree, real.parent, included.stem, changes, included.parent)
        return real.parent / name, (included.parent / name, f"../{layout.vhost_available}/{name}")
    siblings = [p for p in tree.info.includes if p.parent == included.parent and p.suffix == ".conf"]
    if included.suffix == ".conf" and len(siblings) >= 2:
        return included.parent / free_name(tree, included.parent, included.stem, changes), None
    return None, None


def free_name(tree: Tree, folder: Path, stem: str, changes: Changes | None, enabled: Path | None = None) -> str:
    """certbot's NAME-le-ssl.conf when nothing has that name, else NAME-lehttpd-ssl.conf (then -2, -3...); a name
    this plan creates already, or an enabled one lehttpd wrote, is reused (several vhosts of one file)."""
    names = [f"{stem}-le-ssl.conf", f"{stem}-lehttpd-ssl.conf"] + [f"{stem}-lehttpd-ssl-{n}.conf" for n in range(2, 50)]
    for name in names:
        if changes is not None and changes.planned_text(folder / name) is not None:
            return name
        existing = tree.read(folder / name)
        if existing is not None and MANAGED_VHOST_MARK.encode() in existing and \
                (enabled is None or os.path.lexists(enabled / name)):
            return name  # lehttpd's own file, in use: one more vhost goes in it
        taken = tree.read(folder / name) is not None or os.path.lexists(folder / name) or \
            (enabled is not None and os.path.lexists(enabled / name))
        if not taken:
            if name != names[0] and changes is not None:
                changes.notes.append(f"{folder / names[0]} exists and is not lehttpd's: left alone (not enabled); "
                                     f"the SSL vhost goes to {name}")
            return name
    raise UsageError(f"{folder}: no free file name for the SSL vhost of {stem}")


def _https_address(address: str, https_port: int) -> str:
    """The same address on the HTTPS port: `*` and `*:*` (port-less, any port) become `*:443`."""
    host, sep, port = address.rpartition(":")
    if sep and (port.isdigit() or port == "*") and not address.endswith("]"):
        return f"{host}:{https_port}"
    return f"{address}:{https_port}"


def update_certificate(tree: Tree, vhost: VirtualHost, cert: Certificate, changes: Changes) -> None:
    """Point an existing SSL vhost at the lineage: replace, add or (from 2.4.8) drop certificate lines. A vhost with
    pairs of several key types (RSA and ECDSA, allowed since 2.4.8) keeps the pair the lineage does not replace."""
    parsed, node = tree.files[vhost.file], vhost.node
    indent = child_indent(parsed.data, node)
    wanted = cert_lines(tree, cert, indent)
    values = {"sslcertificatefile": wanted["cert_file"], "sslcertificatechainfile": wanted["chain_file"],
              "sslcertificatekeyfile": wanted["key_file"]}
    pair = pair_of_key_type(node, cert.key_type)
    missing = []
    for directive in CERT_DIRECTIVES:
        found = node.named(directive)
        value = values[directive.lower()]
        if pair is not None and directive != "SSLCertificateChainFile":
            found = found[pair:pair + 1]  # the other key type's lines stay as they are
        for old in found[:-1] if value else []:
            start, end, _ = line_span(parsed.data, old)
            changes.splice(parsed.path, parsed.data, start, end, b"", f"{directive} duplicate removed")
        if not found:
            if value:
                missing.append(f"{indent}{directive} {value}\n")
            continue
        last = found[-1]
        if value is None:
            start, end, _ = line_span(parsed.data, last)
            changes.splice(parsed.path, parsed.data, start, end, b"", f"{directive} not needed from 2.4.8")
        elif last.values[:1] != (value,):
            start, end, line_indent = line_span(parsed.data, last)
            changes.splice(parsed.path, parsed.data, start, end, f"{line_indent}{directive} {value}\n",
                           f"certificate of {vhost.server_name} -> {cert.name}")
    if missing:
        insert_before_close(parsed, node, "".join(missing), changes, f"certificate of {vhost.server_name}")


def pair_of_key_type(node, key_type: str) -> int | None:
    """With several certificate/key pairs of different key types: the index of the pair of `key_type` (the last
    pair when none has it); None when the vhost has one pair, or pairs of one type (duplicates)."""
    certs, keys = node.named("SSLCertificateFile"), node.named("SSLCertificateKeyFile")
    if len(certs) < 2 or len(keys) != len(certs):
        return None
    types = [key_type_of_file(c.values[0]) if c.values else None for c in certs]
    if len(set(types)) < 2:
        return None
    return types.index(key_type) if key_type in types else len(certs) - 1


def key_type_of_file(path: str) -> str | None:
    """"rsa" or "ecdsa" for a PEM certificate file, None when it cannot be read."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        key = x509.load_pem_x509_certificate(Path(path).read_bytes()).public_key()
    except (OSError, ValueError):
        return None
    return "rsa" if isinstance(key, rsa.RSAPublicKey) else "ecdsa" if isinstance(key, ec.EllipticCurvePublicKey) \
        else None


def ensure_modules(tree: Tree, modules, changes: Changes) -> None:
    """Enable modules the distribution's way: a2enmod's links on Debian (with the modules each one's `# Depends:`
    line names, as a2enmod follows them), a LoadModule file elsewhere."""
    layout, root = tree.info.layout, tree.info.server_root
    missing = [m for m in modules if not tree.info.has_module(m)]
    if not missing:
        return
    if layout.mods_available and layout.mods_enabled:
        for module in with_dependencies(tree, missing, changes):
            for suffix in (".load", ".conf"):
                if tree.read(root / layout.mods_available / f"{module}{suffix}") is not None:
                    changes.link(root / layout.mods_enabled / f"{module}{suffix}",
                                 f"../{layout.mods_available}/{module}{suffix}", f"enable {module} (a2enmod)")
        return
    folder = root / layout.module_conf_dir if layout.module_conf_dir and (root / layout.module_conf_dir).is_dir() \
        else None  # (RHEL 6 has no conf.modules.d: the main config then)
    target = folder / "00-lehttpd-modules.conf" if folder else tree.info.config_file
    lines = [{"name": f"{m}_module", "path": f"{layout.module_path}/mod_{m}.so"} for m in missing]
    text = render.render(tree.info.generation, "loadmodule.conf.j2", {"modules": lines})
    changes.add_file(target, text, f"load {', '.join(missing)}")


def with_dependencies(tree: Tree, modules, changes: Changes) -> list[str]:
    """The modules to enable, each after the ones its mods-available/NAME.load `# Depends:` line names
    (recursively); modules already loaded are left out, a missing .load file is noted and skipped."""
    folder = tree.info.server_root / tree.info.layout.mods_available
    order: list[str] = []

    def visit(module: str, chain: tuple[str, ...]) -> None:
        if module in order or module in chain or tree.info.has_module(module):
            return
        data = tree.read(folder / f"{module}.load")
        if data is None:
            changes.notes.append(f"cannot enable Apache module {module}: {folder.name}/{module}.load is missing "
                                 "(Apache's config test will tell if it matters)")
            return
        for match in _DEPENDS_RE.finditer(data):
            for dependency in match.group(1).decode(errors="replace").split():
                visit(dependency, chain + (module,))
        order.append(module)

    for module in modules:
        visit(module, ())
    return order


def ensure_listen(tree: Tree, http_addresses, https_port: int, changes: Changes) -> None:
    """A `Listen` for each address the SSL vhosts (mirroring `http_addresses`) need and the configuration lacks
    (inside <IfModule ssl_module>); on 2.2 their NameVirtualHost too."""
    addresses = sorted({_https_address(a, https_port) for a in http_addresses})
    listens = missing_listens(tree.globals, addresses, https_port)
    name_vhosts: list[str] = []
    if tree.info.generation == "2.2":
        known = {values[0] for d, values, _f in tree.globals if d.lower() == "namevirtualhost" and values}
        name_vhosts = sorted(a for a in addresses if a not in known and not a.startswith("_default_"))
    if not listens and not name_vhosts:
        return
    text = render.render(tree.info.generation, "listen.conf.j2", render.build_listen_context(listens, name_vhosts))
    changes.add_file(global_file(tree), text.lstrip("\n"), f"Listen {', '.join(listens) or https_port}")


def global_file(tree: Tree) -> Path:
    """Where server-wide lines go: the layout's ports file when Apache includes it, else the main config."""
    layout = tree.info.layout
    if layout.ports_file:
        candidate = tree.info.server_root / layout.ports_file
        if candidate in tree.info.includes:
            return candidate
    return tree.info.config_file
