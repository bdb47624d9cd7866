"""Planning install and redirect where no <VirtualHost> exists on the HTTP port (pure): Apache answers every name
from the main server config, so the SSL vhost is made from it (its DocumentRoot, the certificate's names) and the
redirect, limited to those names, goes at the end of the main config file (server context)."""
from __future__ import annotations

import re

from lehttpd.apache import render
from lehttpd.apache.changes import Changes, Check
from lehttpd.apache.plan import Certificate, Tree, cert_lines, ensure_listen, ensure_modules, free_name, \
    update_certificate
from lehttpd.apache.targets import probe_addresses

_DOCROOT_RE = re.compile(rb"(?im)^[ \t]*DocumentRoot[ \t]+(\"[^\"\r\n]*\"|[^\s]+)")
INDENT = "    "


def main_document_root(tree: Tree) -> str | None:
    """The main server's DocumentRoot, as its main config file sets it (Apache's built-in default otherwise)."""
    found = _DOCROOT_RE.findall(tree.read(tree.info.config_file) or b"")
    return found[-1].decode(errors="surrogateescape") if found else None


def plan_main_install(tree: Tree, cert: Certificate, https_port: int, changes: Changes) -> list[str]:
    changes.notes.append(f"no <VirtualHost> on the HTTP port: Apache answers {', '.join(cert.names)} from the main "
                         f"server ({tree.info.config_file}); the SSL vhost is made from it")
    twin = next((v for v in tree.vhosts if v.ssl and any(v.serves(n) for n in cert.names)), None)
    addresses = [f"*:{https_port}"]
    if twin is not None:
        update_certificate(tree, twin, cert, changes)
    else:
        root = main_document_root(tree)
        body = f"{INDENT}DocumentRoot {root}" if root else ""
        options = str(tree.options_file) if tree.read(tree.options_file) is not None else None
        context = render.build_vhost_context(addresses, body, INDENT, cert_lines(tree, cert, INDENT), cert.name,
                                             f"{tree.info.config_file} (main server)", options, cert.names)
        text = render.render(tree.info.generation, "vhost-ssl.conf.j2", context)
        layout, server_root = tree.info.layout, tree.info.server_root
        reason = f"SSL vhost for {cert.names[0]} ({cert.name}), from the main server"
        if layout.vhost_available and layout.vhost_enabled and (server_root / layout.vhost_enabled).is_dir():
            folder = server_root / layout.vhost_available
            name = free_name(tree, folder, cert.names[0], changes, server_root / layout.vhost_enabled)
            changes.add_file(folder / name, text, reason)
            changes.link(server_root / layout.vhost_enabled / name, f"../{layout.vhost_available}/{name}",
                         f"enable {name} (as a2ensite does)")
        else:
            changes.add_file(tree.info.config_file, text, reason)
    for name in cert.names:
        if "*" not in name:
            for address in probe_addresses(tree.globals, addresses, https_port):
                changes.checks.append(Check(name, address, https_port))
    ensure_modules(tree, ("ssl",) if tree.info.generation == "2.2" else ("ssl", "socache_shmcb"), changes)
    ensure_listen(tree, ["*"], https_port, changes)
    return [cert.names[0]]


def plan_main_redirect(tree: Tree, names, https_port: int, changes: Changes) -> list[str]:
    config = tree.info.config_file
    if render.REDIRECT_BEGIN.encode() in (tree.read(config) or b""):
        changes.notes.append(f"{config}: lehttpd's redirect is already there (main server)")
        return []
    text = render.render(tree.info.generation, "redirect.conf.j2",
                         render.build_redirect_context("", https_port, list(names)))
    changes.add_file(config, text, f"redirect {', '.join(names)} to https (main server)")
    ensure_modules(tree, ("rewrite",), changes)
    return [f"{config} (main server)"]
