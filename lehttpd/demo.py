"""`make demo`: the whole main job on a local default, with nothing outside this machine.

A throwaway Pebble ACME server and a private Apache (Debian's apache2, own config tree, high loopback ports)
serving a small old blog over plain HTTP. Then the real command line does what a sysadmin would:
issue + install + redirect, harden, check the live endpoint, find and fix the mixed content, grade the
site (`lehttpd check`) and watch every certificate Apache serves (`check --all`).
State lives in ./demo-state/ (wiped at every run); the Apache tree lives in a /tmp folder that its worker
user can read, removed at the end.
"""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import sys
import tempfile
from pathlib import Path

from lehttpd.cli import run
from lehttpd.sandbox.apache import ApacheInstance, apache_available, make_instance
from lehttpd.sandbox.pebble import Pebble, free_port

SITE = "demo.example.test"
NAMES = (SITE, f"www.{SITE}")
BLOG_PAGES = {
    "index.html": f"""<!doctype html><html><head><title>My old blog</title>
<link rel="stylesheet" href="http://{SITE}/style.css">
<script src="http://cdn.example.test/jquery-1.4.min.js"></script></head>
<body><h1>My old blog</h1><img src="http://{SITE}/images/header.png" alt="header">
<p>Read <a href="http://example.org/">an article</a> (a link: not mixed content).</p></body></html>
""",
    "2011/hello.html": f"""<!doctype html><html><body><h1>Hello, 2011</h1>
<img src="http://{SITE}/images/cat.jpg" srcset="http://{SITE}/images/cat-2x.jpg 2x">
<iframe src="http://videos.example.test/embed/42"></iframe></body></html>
""",
    "style.css": f"body {{ background: url(http://{SITE}/images/paper.png) }}\n",
}


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main(state_dir: Path = Path("demo-state")) -> int:
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    os.environ["LEHTTPD_LOG_DIR"] = str(state_dir.resolve() / "log")  # the demo's log too stays in its state folder
    step(f"Starting a local Pebble ACME server (state in {state_dir}/)")
    if not apache_available():
        print("   Apache (Debian package apache2, as root) is not available: certificate only")
        with Pebble(state_dir / "pebble", http_port=free_port()) as pebble:
            return run(["issue", *NAMES[:1], "-d", NAMES[1], *pebble.client_args(state_dir / "letsencrypt")])
    apache_base = Path(tempfile.mkdtemp(prefix="lehttpd-demo-apache-"))
    apache = make_instance(apache_base)
    # Pebble validates http-01 on the port the private Apache serves: webroot validation through the live site.
    pebble = Pebble(state_dir / "pebble", http_port=apache.http_port)
    try:
        pebble.start()
        print(f"   ACME directory: {pebble.directory_url}")
        return _main_job(pebble, apache, state_dir)
    except RuntimeError as error:  # a service would not start: say where its log is
        print(f"lehttpd demo: error: {error}", file=sys.stderr)
        return 5
    finally:
        apache.stop()
        pebble.stop()
        shutil.rmtree(apache_base, ignore_errors=True)


def _main_job(pebble: Pebble, apache: ApacheInstance, state_dir: Path) -> int:
    config_dir, work_dir = state_dir / "letsencrypt", state_dir / "apache-checkpoints"
    apache_flags = ["--apache-ctl", str(apache.ctl), "--https-port", str(apache.https_port),
                    "--work-dir", str(work_dir)]
    step(f"A private Apache serves http://{SITE}/ on 127.0.0.1:{apache.http_port} (plain HTTP)")
    apache.add_site(SITE)
    docroot = apache.docroot(SITE)
    for relative, text in BLOG_PAGES.items():
        (docroot / relative).parent.mkdir(parents=True, exist_ok=True)
        (docroot / relative).parent.chmod(0o755)
        (docroot / relative).write_text(text)
        (docroot / relative).chmod(0o644)
    apache.start()

    step(f"lehttpd issue {SITE} -d {NAMES[1]} --webroot {docroot} --install --redirect")
    code = run(["issue", SITE, "-d", NAMES[1], *pebble.client_args(config_dir), "--webroot", str(docroot),
                "--install", "--redirect", *apache_flags])
    if code != 0:
        return code
    step("lehttpd harden --profile intermediate --hsts")
    code = run(["harden", "--profile", "intermediate", "--hsts", *apache_flags])
    if code != 0:
        return code

    step("What a browser now sees")
    root = state_dir / "pebble-root.pem"
    root.write_bytes(pebble.root_pem())
    print("   " + _https_get(apache.https_port, NAMES[1], root))
    print("   " + _http_get(apache.http_port, SITE, "/2011/hello.html?page=2"))

    step(f"lehttpd scan {docroot} --site-url https://{SITE}/   (exit 8 = blockable mixed content)")
    print(f"   exit code {run(['scan', str(docroot), '--site-url', f'https://{SITE}/'])}")
    step("lehttpd scan --fix   (own-host URLs rewritten; third-party hosts need --probe)")
    run(["scan", str(docroot), "--site-url", f"https://{SITE}/", "--fix"])

    check_flags = ["--ca-bundle", str(root), "--config-dir", str(config_dir), "--http-port", str(apache.http_port)]
    step(f"lehttpd check 127.0.0.1:{apache.https_port} --sni {SITE}   (expect A+, or the reason and the fix)")
    print(f"   exit code {run(['check', f'127.0.0.1:{apache.https_port}', '--sni', SITE, *check_flags])}")
    step("lehttpd harden --profile intermediate --hsts --uir   (the fix check named), then check again")
    code = run(["harden", "--profile", "intermediate", "--hsts", "--uir", *apache_flags])
    if code != 0:
        return code
    print(f"   exit code {run(['check', f'127.0.0.1:{apache.https_port}', '--sni', SITE, '--min-grade', 'A+', *check_flags])}")
    step("lehttpd check --all   (every name Apache serves, every lineage: exit 8 if one expires within 14 days)")
    print(f"   exit code {run(['check', '--all', '--apache-ctl', str(apache.ctl), *check_flags])}")

    step("lehttpd certificates")
    return run(["certificates", "--config-dir", str(config_dir)])


def _https_get(port: int, name: str, root: Path) -> str:
    context = ssl.create_default_context(cafile=str(root))  # full verification against Pebble's root
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            head = tls.recv(65536).decode(errors="replace").split("\r\n")
            issuer = dict(x[0] for x in tls.getpeercert()["issuer"]).get("commonName", "?")
            hsts = next((h for h in head if h.lower().startswith("strict-transport-security")), "no HSTS")
            return f"https://{name}/ -> {head[0]} over {tls.version()}, certificate from {issuer!r}, {hsts}"


def _http_get(port: int, name: str, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        plain.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        head = plain.recv(65536).decode(errors="replace").split("\r\n")
    location = next((h for h in head if h.lower().startswith("location:")), "no Location")
    return f"http://{name}{path} -> {head[0]}, {location}"


if __name__ == "__main__":
    sys.exit(main())
