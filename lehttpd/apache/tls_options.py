"""Planning `harden` (pure, like plan.py): the managed TLS options file, and in every SSL vhost Apache serves (or the
ones `--vhost` names) its Include, with the vhost's own lines that would override it commented out, so that what
Apache applies is the profile. Each hardened vhost gets a handshake check (apply.py) and a before/after note.
"""
from __future__ import annotations

import re
from pathlib import Path

from lehttpd.apache import render
from lehttpd.apache.changes import Changes, Check
from lehttpd.apache.discover import expand, port_of
from lehttpd.apache.plan import Tree, child_indent, ensure_modules, global_file, insert_before_close, line_span
from lehttpd.apache.policy import TlsPolicy
from lehttpd.apache.stapling import plan_stapling
from lehttpd.apache.targets import probe_addresses
from lehttpd.apache.vhosts import VirtualHost
from lehttpd.errors import UsageError

# Server-config TLS settings a vhost line can override; anything in the options file with one of these names wins
# only if the vhost has no such line of its own after the Include, so those lines are commented out.
TLS_SETTINGS = frozenset({"sslprotocol", "sslciphersuite", "sslhonorcipherorder", "sslsessiontickets",
                          "sslopensslconfcmd", "sslusestapling", "sslcompression", "protocols"})
# Sections inside a vhost that are still its server config (a <Directory>'s SSLCipherSuite is a renegotiation).
SCOPES = frozenset({"ifmodule", "ifdefine", "ifversion", "if", "elseif", "else", "ifdirective", "iffile"})
CERTBOT_OPTIONS = "options-ssl-apache.conf"
DEFAULT_PROTOCOL = {"2.2": "all", "2.4": "all -SSLv3"}
_PROTOCOL_RE = re.compile(rb"(?im)^[ \t]*SSLProtocol[ \t]+([^\r\n#]*?)[ \t]*\r?$")


def setting_key(name: str, values) -> str:
    """Which setting a line sets: SSLCipherSuite TLSv1.3 and SSLOpenSSLConfCmd X are settings of their own."""
    name = name.lower()
    first = values[0].lower() if values else ""
    if name == "sslciphersuite" and len(values) > 1 and first.startswith("tlsv1.3"):
        return "sslciphersuite tlsv1.3"
    if name == "sslopensslconfcmd" and values:
        return f"{name} {first}"
    return name


def option_keys(body: str) -> frozenset[str]:
    """The settings the rendered options file makes."""
    keys = set()
    for line in body.splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and words[0].lower() in TLS_SETTINGS:
            keys.add(setting_key(words[0], [w.strip("\"'") for w in words[1:]]))
    return frozenset(keys)


def scoped(nodes):
    """The vhost's own server-config lines in file order, descending into <IfModule> & co."""
    for node in nodes:
        if node.is_block:
            if node.name.lower() in SCOPES:
                yield from scoped(node.children)
        else:
            yield node


def select_vhosts(tree: Tree, wanted: tuple[str, ...]) -> list[VirtualHost]:
    """Every SSL vhost, or those serving a name in `wanted` (or written at FILE:LINE)."""
    ssl = [v for v in tree.vhosts if v.ssl]
    if not wanted:
        return ssl
    chosen = [v for v in ssl if any(v.serves(w) or w == f"{v.file}:{v.line}" for w in wanted)]
    missing = [w for w in wanted if not any(v.serves(w) or w == f"{v.file}:{v.line}" for v in chosen)]
    if missing:
        raise UsageError(f"--vhost {', '.join(missing)}: no SSL virtual host serves it (see `lehttpd apache vhosts`)")
    return chosen


def plan_harden(tree: Tree, policy: TlsPolicy, context: dict, changes: Changes, force: bool = False,
                wanted: tuple[str, ...] = (), staple_ocsp: bool = False) -> list[str]:
    """The managed options file (refused when edited by hand, unless force), then each chosen SSL vhost."""
    path = tree.options_file
    body = render.render(tree.info.generation, "options-ssl.conf.j2", context)
    content = render.stamp_options(body)
    state = render.options_state(tree.read(path))
    if state == "edited" and not force:
        raise UsageError(f"{path} was edited by hand (its hash no longer matches); keep your edits, or rerun "
                         "with --force to replace it")
    changes.replace_file(path, content, f"TLS options: {policy.profile} (Mozilla {policy.guideline})")
    targets = select_vhosts(tree, wanted)
    if not targets:
        plan_stapling(tree, [], asked=staple_ocsp, supported=policy.stapling, changes=changes)
        changes.notes.append("no SSL vhost in this configuration: the options file will be included by the vhosts "
                             "`lehttpd install` creates; mod_ssl is not enabled")
        return []
    keys = option_keys(body)
    if tree.info.generation == "2.2":
        include_server_wide(tree, path, changes)
    for vhost in targets:
        before = effective_protocol(tree, vhost)
        harden_vhost(tree, vhost, path, keys, changes)
        if context.get("log_format"):
            switch_log_format(tree, vhost, context["log_format"], changes)
        changes.notes.append(f"{label(vhost)}: protocols {before[0]} ({before[1]}) -> {policy.protocol} "
                             f"({policy.profile} profile)")
        changes.checks.append(handshake_check(vhost, tree))
    modules = ["ssl"] + (["headers"] if context.get("hsts") or context.get("uir") else []) + \
        (["http2"] if context.get("http2") else [])
    ensure_modules(tree, modules, changes)
    plan_stapling(tree, targets, asked=staple_ocsp, supported=policy.stapling, changes=changes)
    return [label(v) for v in targets]


def http2_support(tree: Tree) -> tuple[bool, str]:
    """Whether `Protocols h2 http/1.1` can be offered (mod_http2 loaded or installed, an MPM that serves it), and
    why not otherwise."""
    info = tree.info
    if info.version < (2, 4, 17):
        return False, f"HTTP/2 not offered: it needs Apache 2.4.17 (mod_http2), this is {'.'.join(map(str, info.version))}"
    if info.mpm.lower() == "prefork":
        return False, "HTTP/2 not offered: the prefork MPM cannot serve it (mod_http2 refuses it); with the event MPM " \
                      "the next harden offers it"
    if info.has_module("http2"):
        return True, ""
    layout, root = info.layout, info.server_root
    if layout.mods_available:
        installed = tree.read(root / layout.mods_available / "http2.load") is not None
    else:
        installed = (root / layout.module_path / "mod_http2.so").exists()
    if not installed:
        return False, "HTTP/2 not offered: mod_http2 is not installed"
    return True, ""


def include_server_wide(tree: Tree, options: Path, changes: Changes) -> None:
    """2.2 with SNI negotiates with the first *:443 vhost's cipher list: the options go server-wide too."""
    target = global_file(tree)
    if f"Include {options}".encode() in (tree.read(target) or b"") or \
            f"Include {options}".encode() in (changes.planned_text(target) or b""):
        return
    text = render.render(tree.info.generation, "options-include.conf.j2", {"options_file": str(options)})
    changes.add_file(target, text.lstrip("\n"), "TLS options server-wide (2.2 SNI)")


def label(vhost: VirtualHost) -> str:
    return f"{vhost.file}:{vhost.line} ({vhost.server_name or 'no ServerName'})"


def handshake_check(vhost: VirtualHost, tree: Tree) -> Check:
    """A TLS handshake with SNI to the vhost, where it listens (an address Apache binds)."""
    name = next((n for n in vhost.names if "*" not in n and "?" not in n), "") or "localhost"
    port = next((port_of(a) for a in vhost.addresses if port_of(a)), tree.https_port)
    return Check(name, probe_addresses(tree.globals, vhost.addresses, port)[0], port)


def harden_vhost(tree: Tree, vhost: VirtualHost, options: Path, keys: frozenset[str], changes: Changes) -> None:
    """The Include of the options file, the vhost's overriding lines commented out with the reason."""
    parsed = tree.files[vhost.file]
    use_options_file(tree, vhost, options, changes, add=True)
    for node in scoped(vhost.node.children):
        if node.name.lower() in TLS_SETTINGS and setting_key(node.name, node.values) in keys:
            start, end, line_indent = line_span(parsed.data, node)
            changes.splice(parsed.path, parsed.data, start, end,
                           comment_out(parsed.data[start:end], line_indent, f"{options} sets it"),
                           f"{node.name} of {vhost.server_name or vhost.file.name} left to the profile")


def use_options_file(tree: Tree, vhost: VirtualHost, options: Path, changes: Changes, add: bool) -> None:
    """certbot's options Include swapped for lehttpd's (with `SSLEngine on`, which certbot's file also set), any
    second one commented out; `add`: lehttpd's Include added before the close when the vhost has none."""
    parsed = tree.files[vhost.file]
    lines = list(scoped(vhost.node.children))
    includes = [n for n in lines if n.name.lower() in ("include", "includeoptional") and n.values]
    ours = [n for n in includes if n.values[0] == str(options)]
    certbot = [n for n in includes if Path(n.values[0]).name == CERTBOT_OPTIONS]
    own_engine = any(n.name.lower() == "sslengine" for n in lines)
    reason = f"certbot's options replaced by lehttpd's in {vhost.server_name}"
    for position, node in enumerate(certbot):
        start, end, line_indent = line_span(parsed.data, node)
        if position == 0 and not ours:
            engine = "" if own_engine else f"{line_indent}SSLEngine on\n"
            changes.splice(parsed.path, parsed.data, start, end, f"{engine}{line_indent}Include {options}\n", reason)
        else:
            text = comment_out(parsed.data[start:end], line_indent, f"replaced by {options}")
            changes.splice(parsed.path, parsed.data, start, end, text, reason)
    if add and not ours and not certbot:
        insert_before_close(parsed, vhost.node, f"{child_indent(parsed.data, vhost.node)}Include {options}\n",
                            changes, f"include TLS options in {vhost.server_name}")


def comment_out(text: bytes, indent: str, why: str) -> bytes:
    """A directive's line(s) kept as comments under one line saying why (line ends kept as they were)."""
    newline = b"\r\n" if text.endswith(b"\r\n") else b"\n"
    out = [f"{indent}# lehttpd harden: {why}:".encode() + newline]
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip(b" \t")
        out.append(line[:len(line) - len(stripped)] + b"#" + stripped)
    if not out[-1].endswith(b"\n"):
        out[-1] += newline
    return b"".join(out)


def effective_protocol(tree: Tree, vhost: VirtualHost) -> tuple[str, str]:
    """The SSLProtocol Apache applies to the vhost now, and where it comes from."""
    value, source = None, ""
    defines = dict(tree.info.defines)
    for node in scoped(vhost.node.children):
        name = node.name.lower()
        if name == "sslprotocol" and node.values:
            value, source = " ".join(node.values), f"its line {node.line}"
        elif name in ("include", "includeoptional") and node.values:
            path = Path(expand(node.values[0], defines))
            path = path if path.is_absolute() else tree.info.server_root / path
            found = _PROTOCOL_RE.findall(tree.read(path) or b"")
            if found:
                value, source = found[-1].decode(errors="replace").strip(), f"from {path}"
    if value is not None:
        return value, source
    for directive, values, file in tree.globals:
        if directive.lower() == "sslprotocol" and values:
            value, source = " ".join(values), f"server-wide, {file}"
    if value is not None:
        return value, source
    return DEFAULT_PROTOCOL[tree.info.generation], "Apache's default"


def switch_log_format(tree: Tree, vhost: VirtualHost, log_format: str, changes: Changes) -> None:
    parsed = tree.files[vhost.file]
    for log in vhost.node.named("CustomLog"):
        if len(log.args) >= 2 and log.values[1] != log_format and "%" not in log.values[1]:
            start, end, indent = line_span(parsed.data, log)
            rest = " ".join(log.args[2:])
            line = f"{indent}CustomLog {log.args[0]} {log_format}{' ' + rest if rest else ''}\n"
            changes.splice(parsed.path, parsed.data, start, end, line, f"log format {log_format}")

