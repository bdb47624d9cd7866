"""Templates: every block lehttpd writes comes from templates/apache-<generation>/*.j2, fed by a context built here.

The build_* functions are pure: they take values and return the flat dict a template prints; the templates only
test precomputed flags and loop. The options file carries the SHA-256 of its body in its first line, so a copy
edited by hand is recognised (certbot's ALL_SSL_OPTIONS_HASHES idea, without a list of past versions).
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

import jinja2

from lehttpd import __version__
from lehttpd.apache.markers import MANAGED_MARK, OPTIONS_MARK, REDIRECT_BEGIN, REDIRECT_END  # noqa: F401
from lehttpd.apache.policy import TlsPolicy

# Installed (wheel, sdist, pipx): lehttpd/templates, shipped by setup.py; a checkout: templates/ beside the package.
_PACKAGED_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
TEMPLATES = _PACKAGED_TEMPLATES if _PACKAGED_TEMPLATES.is_dir() else Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=4)
def _environment(generation: str) -> jinja2.Environment:
    folder = TEMPLATES / f"apache-{generation}"
    if not folder.is_dir():
        raise FileNotFoundError(f"templates for Apache {generation} missing: {folder}")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)


def render(generation: str, template: str, context: dict) -> str:
    return _environment(generation).get_template(template).render(**context)


def cert_context(indent: str, lineage_paths: dict[str, str], fullchain: bool) -> dict:
    """Which certificate lines: the full chain in SSLCertificateFile from 2.4.8, else cert + chain file."""
    return {
        "indent": indent,
        "cert_file": lineage_paths["fullchain"] if fullchain else lineage_paths["cert"],
        "chain_file": None if fullchain else lineage_paths["chain"],
        "key_file": lineage_paths["key"],
    }


def build_vhost_context(addresses, body: str, indent: str, cert: dict, cert_name: str, source: str,
                        options_file: str | None, names=()) -> dict:
    return {**cert, "addresses": list(addresses), "body": body.rstrip("\r\n"), "indent": indent,
            "cert_name": cert_name, "source": source, "options_file": options_file,
            "managed_mark": MANAGED_MARK, "server_name": names[0] if names else None,
            "server_aliases": list(names[1:])}


def build_redirect_context(indent: str, https_port: int, hosts=()) -> dict:
    """`hosts`: limit the redirect to these names (a default vhost answers other names too)."""
    pattern = "|".join(re.escape(h) for h in hosts)
    return {"indent": indent, "port_suffix": "" if https_port == 443 else f":{https_port}",
            "host_pattern": f"^({pattern})(:[0-9]+)?$" if hosts else None,
            "begin_mark": REDIRECT_BEGIN, "end_mark": REDIRECT_END}


def build_options_context(policy: TlsPolicy, apache_version, openssl_version, hsts: int | None,
                          hsts_subdomains: bool, hsts_preload: bool, uir: bool, log_format: str | None,
                          http2: bool = False, logio: bool = True, settings: str = "") -> dict:
    """`settings`: the line recording what harden was asked (harden_settings.py), part of the hashed body."""
    hsts_value = None
    if hsts is not None:
        hsts_value = f"max-age={hsts}" + ("; includeSubDomains" if hsts_subdomains else "") + \
                     ("; preload" if hsts_preload else "")
    apache = ".".join(map(str, apache_version))
    openssl = ".".join(map(str, openssl_version)) if openssl_version else "unknown"
    return {
        "guideline": policy.guideline, "profile": policy.profile, "protocol": policy.protocol,
        "cipher_suite": policy.cipher_suite, "tls13_suites": policy.tls13_suites, "curves": policy.curves,
        "honor_order": policy.honor_order, "session_tickets_off": policy.session_tickets_off,
        "http2": http2, "logio": logio, "compression_off": policy.compression_off, "hsts": hsts_value, "uir": uir, "log_format": log_format,
        "source": f"generated for Apache {apache}, OpenSSL {openssl} by lehttpd {__version__}",
        "settings": settings,
    }


def stamp_options(body: str) -> str:
    return f"{OPTIONS_MARK}{hashlib.sha256(body.encode()).hexdigest()}\n{body}"


def options_state(data: bytes | None) -> str:
    """'absent', 'managed' (hash matches its body) or 'edited' (changed by hand, or not ours)."""
    if data is None:
        return "absent"
    first, _, body = data.partition(b"\n")
    text = first.decode(errors="replace")
    if not text.startswith(OPTIONS_MARK):
        return "edited"
    return "managed" if hashlib.sha256(body).hexdigest() == text[len(OPTIONS_MARK):].strip() else "edited"


def build_listen_context(listens, name_virtual_hosts=()) -> dict:
    return {"listens": list(listens), "name_virtual_hosts": list(name_virtual_hosts)}
