"""Planning redirect and harden (pure, like plan.py): the :80 redirect block, the managed TLS options file and its
Include in every SSL vhost lehttpd manages."""
from __future__ import annotations

from lehttpd.apache import render
from lehttpd.apache.changes import Changes
from lehttpd.apache.plan import Tree, _child_indent, _line_span, ensure_modules, global_file, insert_before_close
from lehttpd.apache.policy import TlsPolicy
from lehttpd.apache.tree import Node
from lehttpd.apache.vhosts import VirtualHost, is_http, ssl_twin
from lehttpd.errors import UsageError


def plan_redirect(tree: Tree, names, https_port: int, changes: Changes, now_on_https=(),
                  force: bool = False) -> list[str]:
    """In each :80 vhost serving `names`, a 301 to https before the site's own rewrites; returns vhosts changed."""
    targets = [v for v in tree.vhosts if is_http(v, https_port) and any(v.serves(n) for n in names)]
    if not targets:
        raise UsageError(f"no port-80 virtual host serves {', '.join(names)} (see `lehttpd apache vhosts`)")
    changed: list[str] = []
    for vhost in targets:
        parsed = tree.files[vhost.file]
        block = parsed.data[vhost.node.start:vhost.node.end]
        label = f"{vhost.file}:{vhost.line} ({vhost.server_name or 'no ServerName'})"
        if render.REDIRECT_BEGIN.encode() in block:
            changes.notes.append(f"{label}: lehttpd's redirect is already there")
            continue
        if existing_redirect(vhost.node):
            changes.notes.append(f"{label}: already redirects to https; left as is")
            continue
        has_https = ssl_twin(vhost, list(tree.vhosts), https_port) is not None or \
            (vhost.server_name or "").lower() in now_on_https
        if not has_https and not force:
            raise UsageError(f"{label}: no HTTPS vhost serves {vhost.server_name}; run `lehttpd install` first "
                             "(or --force to redirect anyway)")
        indent = _child_indent(parsed.data, vhost.node)
        text = render.render(tree.info.generation, "redirect.conf.j2",
                             render.build_redirect_context(indent, https_port))
        at = parsed.data.index(b"\n", parsed.data.index(b"<", vhost.node.start)) + 1
        changes.splice(parsed.path, parsed.data, at, at, text, f"redirect {vhost.server_name} to https")
        changed.append(label)
    if changed:
        ensure_modules(tree, ("rewrite",), changes)
    return changed


def existing_redirect(node: Node) -> bool:
    """A whole-site redirect to https already present (Redirect / RedirectMatch / an R= RewriteRule)."""
    for child in node.children:
        name, values = child.name.lower(), [v.lower() for v in child.values]
        if name in ("redirect", "redirectpermanent") and any(v.startswith("https://") for v in values):
            path = values[1] if name == "redirect" and len(values) > 2 else values[0]
            if path == "/":
                return True
        if name == "redirectmatch" and any(v.startswith("https://") for v in values):
            if any(v in ("^", "^/", "^/(.*)$", "^(.*)$", "(.*)", "/(.*)", "^/?(.*)$") for v in values):
                return True
        if name == "rewriterule" and len(values) >= 2 and values[1].startswith("https://%{"):
            flags = values[2] if len(values) > 2 else ""
            if "r" in flags.strip("[]").replace("=", ",").split(",") or "r=" in flags or "redirect" in flags:
                return True
    return False


def plan_harden(tree: Tree, policy: TlsPolicy, context: dict, changes: Changes, force: bool = False) -> list[str]:
    """The managed options file (refused when edited by hand, unless force) and its Include in managed vhosts."""
    path = tree.options_file
    body = render.render(tree.info.generation, "options-ssl.conf.j2", context)
    content = render.stamp_options(body)
    current = tree.read(path)
    state = render.options_state(current)
    if state == "edited" and not force:
        raise UsageError(f"{path} was edited by hand (its hash no longer matches); keep your edits, or rerun "
                         "with --force to replace it")
    if current != content.encode():
        changes.replace_file(path, content, f"TLS options: {policy.profile} (Mozilla {policy.guideline})")
    managed = [v for v in tree.vhosts if v.managed and v.ssl]
    if not managed:
        changes.notes.append("no SSL vhost managed by lehttpd yet: the options file will be included by the "
                             "vhosts `lehttpd install` creates")
    for vhost in managed:
        ensure_include(tree, vhost, str(path), changes)
        if context.get("log_format"):
            switch_log_format(tree, vhost, context["log_format"], changes)
    modules = ["ssl"] + (["headers"] if context.get("hsts") or context.get("uir") else [])
    ensure_modules(tree, modules, changes)
    if policy.stapling and not tree.has_global("SSLStaplingCache") and tree.info.run_dir is not None:
        text = render.render(tree.info.generation, "stapling.conf.j2", {"cache_dir": str(tree.info.run_dir)})
        changes.add_file(global_file(tree), text.lstrip("\n"), "OCSP stapling cache")
    return [f"{v.file}:{v.line}" for v in managed]


def ensure_include(tree: Tree, vhost: VirtualHost, options: str, changes: Changes) -> None:
    if any(child.values[:1] == (options,) for child in vhost.node.named("Include")):
        return
    parsed = tree.files[vhost.file]
    indent = _child_indent(parsed.data, vhost.node)
    insert_before_close(parsed, vhost.node, f"{indent}Include {options}\n", changes,
                        f"include TLS options in {vhost.server_name}")


def switch_log_format(tree: Tree, vhost: VirtualHost, log_format: str, changes: Changes) -> None:
    parsed = tree.files[vhost.file]
    for log in vhost.node.named("CustomLog"):
        if len(log.args) >= 2 and log.values[1] != log_format and "%" not in log.values[1]:
            start, end, indent = _line_span(parsed.data, log)
            rest = " ".join(log.args[2:])
            line = f"{indent}CustomLog {log.args[0]} {log_format}{' ' + rest if rest else ''}\n"
            changes.splice(parsed.path, parsed.data, start, end, line, f"log format {log_format}")
