"""--emit: the blocks lehttpd would write (SSL vhost, redirect, options file, Listen, module lines), from the same
templates, printed for hand editing. Nothing is read through Augeas and nothing is written: for hosts whose Augeas
is missing or too old."""
from __future__ import annotations

import subprocess

from lehttpd.apache import render
from lehttpd.apache.discover import Version, find_ctl, parse_version
from lehttpd.apache.layouts import layout_for, read_os_release
from lehttpd.apache.policy import APACHE_CAPS, has
from lehttpd.errors import LehttpdError

INDENT = "    "


def apache_version(given: str | None, ctl: str | None) -> tuple[Version, str]:
    """The version to write for: --apache-version, else `-V` of the control program, else 2.4 (and say which)."""
    if given:
        return parse_version(given), "as given"
    try:
        program = find_ctl(ctl, layout_for(read_os_release()))
        out = subprocess.run([*program, "-V"], capture_output=True, text=True, timeout=30).stdout
        line = next(line for line in out.splitlines() if line.startswith("Server version"))
        return parse_version(line.split("/", 1)[1]), f"from {program[0]} -V"
    except (LehttpdError, OSError, StopIteration, IndexError, subprocess.SubprocessError):
        return (2, 4, 62), "no Apache found: 2.4 assumed (--apache-version to choose)"


def _section(where: str, text: str) -> str:
    return f"# ---- {where} ----\n{text.strip(chr(10))}\n"


def emit_install(version: Version, names, paths: dict[str, str], cert_name: str, https_port: int,
                 redirect: bool) -> str:
    generation = "2.2" if version < (2, 4, 0) else "2.4"
    cert = render.cert_context(INDENT, paths, fullchain=has(version, APACHE_CAPS["fullchain"]))
    body = f"{INDENT}# the lines of your :80 vhost for {names[0]} (DocumentRoot, <Directory>, logs), without its redirects"
    vhost = render.render(generation, "vhost-ssl.conf.j2", render.build_vhost_context(
        [f"*:{https_port}"], body, INDENT, cert, cert_name, "--emit", None, tuple(names)))
    listen = render.render(generation, "listen.conf.j2", render.build_listen_context(
        [str(https_port)], [f"*:{https_port}"] if generation == "2.2" else []))
    modules = ["ssl"] + (["socache_shmcb"] if generation == "2.4" else []) + (["rewrite"] if redirect else [])
    parts = [_section("modules: `a2enmod " + " ".join(modules) + "` on Debian, else these LoadModule lines",
                      _module_lines(generation, modules)),
             _section(f"server-wide (ports.conf or httpd.conf), unless Apache listens on {https_port} already",
                      listen),
             _section(f"the SSL vhost: a new file (sites-available/{names[0]}-le-ssl.conf, then a2ensite)", vhost)]
    if redirect:
        parts.append(emit_redirect(version, https_port))
    return "\n".join(parts)


def emit_redirect(version: Version, https_port: int) -> str:
    generation = "2.2" if version < (2, 4, 0) else "2.4"
    block = render.render(generation, "redirect.conf.j2", render.build_redirect_context(INDENT, https_port))
    return _section("the redirect: first lines inside your <VirtualHost *:80> (and `a2enmod rewrite`)", block)


def emit_options(version: Version, context: dict, options_path: str) -> str:
    generation = "2.2" if version < (2, 4, 0) else "2.4"
    body = render.stamp_options(render.render(generation, "options-ssl.conf.j2", context))
    return "\n".join([_section(f"the TLS options file: {options_path}", body),
                      _section("in each SSL vhost, before </VirtualHost> (and, on 2.2, server-wide too)",
                               f"{INDENT}Include {options_path}")])


def _module_lines(generation: str, modules) -> str:
    lines = [{"name": f"{m}_module", "path": f"modules/mod_{m}.so"} for m in modules]
    return render.render(generation, "loadmodule.conf.j2", {"modules": lines})
