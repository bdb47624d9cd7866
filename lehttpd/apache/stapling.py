"""Planning OCSP stapling (pure): `SSLUseStapling on` only in the SSL vhosts whose certificate names an OCSP
responder (Let's Encrypt's carry none since 2025: stapling them only logs AH02218), the server-wide
SSLStaplingCache while any vhost staples, and both taken out again by a harden without --staple-ocsp."""
from __future__ import annotations

from pathlib import Path

from lehttpd.apache import render
from lehttpd.apache.changes import Changes
from lehttpd.apache.discover import expand
from lehttpd.apache.plan import Tree, global_file
from lehttpd.apache.textedit import child_indent, insert_before_close
from lehttpd.apache.vhosts import VirtualHost

VHOST_MARK = b"# lehttpd: OCSP stapling"
CACHE_MARK = b"# Added by lehttpd: OCSP stapling cache"


def ocsp_responder(path: str | None) -> str | None:
    """The OCSP URL in a certificate's Authority Information Access, None without one (or unreadable)."""
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

    if not path:
        return None
    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
        access = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    urls = [d.access_location.value for d in access if d.access_method == AuthorityInformationAccessOID.OCSP]
    return urls[0] if urls else None


def plan_stapling(tree: Tree, targets: list[VirtualHost], asked: bool, supported: bool, changes: Changes) -> None:
    if asked and not supported:
        changes.notes.append(f"OCSP stapling needs Apache 2.4.13 (this is {'.'.join(map(str, tree.info.version))}):"
                             " not enabled")
    stapling = 0
    defines = dict(tree.info.defines)
    for vhost in tree.vhosts:
        if not vhost.ssl:
            continue
        parsed = tree.files[vhost.file]
        block = parsed.data[vhost.node.start:vhost.node.end]
        ours = block.find(VHOST_MARK)
        hand_written = any(n.values[:1] and n.values[0].lower() == "on" for n in vhost.node.named("SSLUseStapling"))
        if vhost not in targets:
            stapling += hand_written or ours >= 0
            continue
        responder = ocsp_responder(expand(vhost.cert_file, defines) if vhost.cert_file else None)
        want = asked and supported and responder is not None
        if asked and supported and responder is None:
            changes.notes.append(f"{vhost.file}:{vhost.line}: not stapled: its certificate names no OCSP responder "
                                 "(Let's Encrypt ended OCSP in 2025)")
        if want and ours < 0 and not hand_written:
            text = render.render(tree.info.generation, "stapling-vhost.conf.j2",
                                 {"indent": child_indent(parsed.data, vhost.node), "mark": VHOST_MARK.decode(),
                                  "responder": responder})
            insert_before_close(parsed, vhost.node, text, changes, f"OCSP stapling for {vhost.server_name}")
        elif not want and ours >= 0:
            start = vhost.node.start + ours
            start = parsed.data.rfind(b"\n", 0, start) + 1
            end = _after_lines(parsed.data, start, 2)
            changes.splice(parsed.path, parsed.data, start, end, b"", f"no OCSP stapling for {vhost.server_name}")
        stapling += want or (hand_written and ours < 0)
    _plan_cache(tree, stapling > 0, changes)


def _after_lines(data: bytes, start: int, count: int) -> int:
    end = start
    for _ in range(count):
        end = data.find(b"\n", end) + 1 or len(data)
    return end


def _plan_cache(tree: Tree, needed: bool, changes: Changes) -> None:
    """SSLStaplingCache while a vhost staples; lehttpd's own block removed once none does (a hand-written one
    stays)."""
    if needed and not tree.has_global("SSLStaplingCache") and tree.info.run_dir is not None:
        text = render.render(tree.info.generation, "stapling.conf.j2", {"cache_dir": str(tree.info.run_dir)})
        changes.add_file(global_file(tree), text.lstrip("\n"), "OCSP stapling cache")
        return
    if needed:
        return
    for directive, _values, path in tree.globals:
        data = tree.read(path) if directive.lower() == "sslstaplingcache" else None
        at = data.find(CACHE_MARK) if data else -1
        if at < 0:
            continue
        start = data.rfind(b"\n", 0, at) + 1
        start = start - 1 if data[start - 2:start] == b"\n\n" else start  # the blank line lehttpd put before it
        end = data.find(b"</IfModule>", at)
        end = data.find(b"\n", end) + 1 if end >= 0 else _after_lines(data, at, 1)
        changes.splice(path, data, start, end, b"", "OCSP stapling cache removed: no vhost staples any more")
        changes.full_restart = True
        changes.notes.append("Apache is restarted (stop, start), not reloaded: it cannot drop SSLStaplingCache on a "
                             "reload")
        return
