"""`scan` of a URL that cannot be read exits 4 (network), as the README's exit codes say, and `scan -q` prints
nothing but errors (like `grep -q`: the exit code is the answer). Local servers on loopback, started and stopped
by each test."""
from __future__ import annotations

import io
import socket
import ssl
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_scan_crawl_safety import servers  # noqa: E402,F401  (the fixture)

from lehttpd.cli import run  # noqa: E402
from lehttpd.console import Console  # noqa: E402
from lehttpd.sandbox.tls import throwaway_ca_and_leaf  # noqa: E402


def scan(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run(["scan", *argv], Console(stdout=out, stderr=err, color=False))
    return code, out.getvalue(), err.getvalue()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_an_unreachable_start_url_exits_4_with_one_error_line():
    code, out, err = scan(f"http://127.0.0.1:{closed_port()}/", "--timeout", "2")
    assert code == 4, out + err
    errors = [line for line in err.splitlines() if line.startswith("lehttpd: error:")]
    assert len(errors) == 1 and "nothing was scanned" in errors[0], err


def test_an_untrusted_start_url_exits_4_and_names_the_certificate(servers, tmp_path):  # noqa: F811
    pair = throwaway_ca_and_leaf(("localhost",))
    (tmp_path / "leaf.pem").write_bytes(pair.leaf_pem + pair.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    port, _ = servers("127.0.0.1", {"/": (200, {}, '<script src="http://i.test/x.js"></script>')}, tls=context)
    code, out, err = scan(f"https://localhost:{port}/", "--timeout", "2")
    assert code == 4, out + err
    assert "certificate" in err and "--ca-bundle" in err, err
    (tmp_path / "ca.pem").write_bytes(pair.ca_pem)  # trusted, the same site is scanned: exit 8 (blockable)
    code, out, err = scan(f"https://localhost:{port}/", "--timeout", "2", "--ca-bundle", str(tmp_path / "ca.pem"))
    assert code == 8, out + err


def test_quiet_prints_nothing_but_errors(servers, tmp_path):  # noqa: F811
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text('<script src="http://js.test/x.js"></script>')
    (site / "bin.html").write_bytes(b"\x00\x01")  # skipped: a warning without -q
    assert scan(str(site), "-q") == (8, "", "")
    (site / "index.html").write_text('<script src="/x.js"></script>')
    assert scan(str(site), "-q") == (0, "", "")
    code, out, err = scan(f"http://127.0.0.1:{closed_port()}/", "-q", "--timeout", "2")
    assert code == 4 and out == "" and err.startswith("lehttpd: error:") and len(err.splitlines()) == 1, err


def test_a_start_url_the_crawler_refuses_exits_2_with_the_reason(servers):  # noqa: F811
    code, out, err = scan("http://169.254.169.254/latest/meta-data/", "--crawl")
    assert code == 2 and "cloud metadata address; nothing was scanned" in err, out + err
    port, _ = servers("127.0.0.1", {"/": (301, {"Location": "https://127.0.0.1/"}, "")})
    code, out, err = scan(f"http://127.0.0.1:{port}/")
    assert code == 2 and "start from https://127.0.0.1/" in err.splitlines()[-1], out + err
