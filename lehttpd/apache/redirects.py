"""Planning the HTTP -> HTTPS redirect (pure, like plan.py): lehttpd's block in each :80 vhost serving the names, or
the site's own redirect recognised and left alone."""
from __future__ import annotations

from lehttpd.apache import render
from lehttpd.apache.changes import Changes
from lehttpd.apache.plan import Tree, child_indent, ensure_modules
from lehttpd.apache.tree import Node
from lehttpd.apache.targets import http_targets
from lehttpd.apache.vhosts import ssl_twin
from lehttpd.errors import UsageError


def plan_redirect(tree: Tree, names, https_port: int, changes: Changes, now_on_https=(),
                  force: bool = False, http_port: int | None = None) -> list[str]:
    """In each :80 vhost Apache routes `names` to, a 301 to https before the site's own rewrites (limited to those
    names in a default vhost, which answers others too); returns the vhosts changed."""
    routed = http_targets(tree.vhosts, names, https_port, http_port)
    if routed.main_server:
        from lehttpd.apache.main_server import plan_main_redirect

        return plan_main_redirect(tree, names, https_port, changes)
    changed: list[str] = []
    hosts = list(names) if routed.by_default else []
    for vhost in routed.vhosts:
        parsed = tree.files[vhost.file]
        block = parsed.data[vhost.node.start:vhost.node.end]
        label = f"{vhost.file}:{vhost.line} ({vhost.server_name or 'no ServerName'})"
        if render.REDIRECT_BEGIN.encode() in block:
            changes.notes.append(f"{label}: lehttpd's redirect is already there")
            continue
        found = find_redirect(vhost.node)
        if found is not None:
            changes.notes.append(f"{label}: " + "; ".join(describe_redirect(found)))
            continue
        has_https = ssl_twin(vhost, list(tree.vhosts), https_port) is not None or \
            (vhost.server_name or "").lower() in now_on_https or (routed.by_default and (
                names[0] in now_on_https or any(v.ssl and v.serves(names[0]) for v in tree.vhosts)))
        if not has_https and not force:
            raise UsageError(f"{label}: no HTTPS vhost serves {vhost.server_name}; run `lehttpd install` first "
                             "(or --force to redirect anyway)")
        indent = child_indent(parsed.data, vhost.node)
        text = render.render(tree.info.generation, "redirect.conf.j2",
                             render.build_redirect_context(indent, https_port, hosts))
        at = parsed.data.index(b"\n", parsed.data.index(b"<", vhost.node.start)) + 1
        changes.splice(parsed.path, parsed.data, at, at, text, f"redirect {vhost.server_name} to https")
        changed.append(label)
    if changed:
        ensure_modules(tree, ("rewrite",), changes)
    return changed


def existing_redirect(node: Node) -> bool:
    """A whole-site redirect to https already present (Redirect / RedirectMatch / an R= RewriteRule)."""
    return find_redirect(node) is not None


def find_redirect(node: Node) -> tuple[Node, tuple[Node, ...]] | None:
    """The whole-site https redirect and, for a RewriteRule, the RewriteConds right before it."""
    children = list(node.children)
    for index, child in enumerate(children):
        name, values = child.name.lower(), [v.lower() for v in child.values]
        if name in ("redirect", "redirectpermanent") and any(v.startswith("https://") for v in values):
            path = values[1] if name == "redirect" and len(values) > 2 else values[0]
            if path == "/":
                return child, ()
        if name == "redirectmatch" and any(v.startswith("https://") for v in values):
            if any(v in ("^", "^/", "^/(.*)$", "^(.*)$", "(.*)", "/(.*)", "^/?(.*)$") for v in values):
                return child, ()
        if name == "rewriterule" and len(values) >= 2 and values[1].startswith("https://%{"):
            flags = values[2] if len(values) > 2 else ""
            if "r" in flags.strip("[]").replace("=", ",").split(",") or "r=" in flags or "redirect" in flags:
                conds = []
                for earlier in reversed(children[:index]):
                    if earlier.name.lower() != "rewritecond":
                        break
                    conds.insert(0, earlier)
                return child, tuple(conds)
    return None


def redirect_status(rule: Node) -> int:
    """The status a redirect answers with (Redirect and R without a code: 302)."""
    name, values = rule.name.lower(), [v.lower() for v in rule.values]
    if name == "redirectpermanent":
        return 301
    if name in ("redirect", "redirectmatch"):
        word = values[0] if values else ""
        return {"permanent": 301, "temp": 302, "seeother": 303}.get(word, int(word) if word.isdigit() else 302)
    flags = values[2].strip("[]").split(",") if len(values) > 2 else []
    for flag in flags:
        key, _, code = flag.partition("=")
        if key in ("r", "redirect"):
            return {"permanent": 301, "temp": 302, "seeother": 303}.get(code, int(code) if code.isdigit() else 302)
    return 302


def describe_redirect(found: tuple[Node, tuple[Node, ...]]) -> list[str]:
    """What lehttpd would do differently from a site's own redirect, and why it matters."""
    rule, conds = found
    remarks = []
    certbot = rule.name.lower() == "rewriterule" and any(
        c.values[:1] == ("%{SERVER_NAME}",) and c.values[1:2] and c.values[1].startswith("=") for c in conds)
    status = redirect_status(rule)
    if status != 301:
        remarks.append(f"it answers {status} (temporary): lehttpd would use 301, so that browsers and search engines "
                       "remember the https address")
    exempt = any("acme-challenge" in " ".join(c.values) and c.values[1:2] and c.values[1].startswith("!")
                 for c in conds)
    if not exempt:
        remarks.append("it also redirects /.well-known/acme-challenge/, which breaks webroot renewals over http; "
                       "lehttpd's redirect keeps that path on http")
    kind = "certbot's redirect" if certbot else f"a {rule.name} (line {rule.line})"
    return [f"already redirects to https with {kind}; left as is"] + remarks
