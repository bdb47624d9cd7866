"""`lehttpd issue` and `renew` against a real Pebble, where a planted link, a hook or a hostile client gets in
the way."""
import contextlib
import http.server
import os
import select
import signal
import socket
import subprocess
import threading
import time
from functools import partial

import pytest

from tests.conftest import run_lehttpd


def issue(pebble, config, name, *extra):
    return run_lehttpd("issue", name, *pebble.client_args(config), *extra)


def renew(pebble, config, *extra):
    return run_lehttpd("renew", "--config-dir", str(config), "--ca-bundle", str(pebble.ca_bundle), "--force",
                       *extra)


def one_line(result):
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line and "unexpected" not in line, result.stderr
    return line


# -- webroot: planted links ---------------------------------------------------------------------------------------
class _Site:
    """A running site on Pebble's http-01 port serving WEBROOT; records what the folder held at each request."""

    def __init__(self, port, webroot):
        self.seen = []
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                site.seen.append({str(p.relative_to(webroot)): p.read_bytes() if p.is_file() else None
                                  for p in webroot.rglob("*")})
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=str(webroot)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_webroot_refuses_a_challenge_folder_linked_out_of_the_document_root(pebble, tmp_path):
    webroot, outside = tmp_path / "www", tmp_path / "outside"
    (webroot / ".well-known").mkdir(parents=True)
    outside.mkdir()
    (webroot / ".well-known/acme-challenge").symlink_to(outside)
    site = _Site(pebble.http_port, webroot)
    try:
        result = run_lehttpd("issue", "planted.example.test", *pebble.client_args(tmp_path / "le"),
                             "--webroot", str(webroot))
    finally:
        site.close()
    assert result.returncode == 5, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "outside the document root" in line and str(outside) in line
    assert list(outside.iterdir()) == [], "root wrote nothing where the planted link points"
    assert not (tmp_path / "le/live/planted.example.test").exists()


def test_webroot_serves_only_public_token_files_while_validating(pebble, tmp_path):
    webroot = tmp_path / "www"
    webroot.mkdir()
    site = _Site(pebble.http_port, webroot)
    try:
        result = run_lehttpd("issue", "served.example.test", *pebble.client_args(tmp_path / "le"),
                             "--webroot", str(webroot))
    finally:
        site.close()
    assert result.returncode == 0, result.stderr
    assert site.seen, "Pebble fetched the token through the site"
    for snapshot in site.seen:
        files = {path: body for path, body in snapshot.items() if body is not None}
        assert files and all(path.startswith(".well-known/acme-challenge/") for path in files), snapshot
        for path, body in files.items():
            token = path.rsplit("/", 1)[1]
            assert body.startswith(token.encode() + b".") and b"PRIVATE" not in body, "a key authorization only"
    assert list(webroot.iterdir()) == []


# -- hooks: stored as typed, waited for by their process ----------------------------------------------------------
def test_stored_hooks_round_trip_byte_for_byte_and_renewal_runs_them(pebble, tmp_path):
    config, log = tmp_path / "le", tmp_path / "hooks.log"
    post = f"echo \"post; 100% of $((1+1))\" >> '{log}'"  # quotes, $, ;, % and a trailing quote
    first = issue(pebble, config, "quoted.example.test", "--pre-hook", '"/bin/true" "x"', "--post-hook", post)
    assert first.returncode == 0, first.stderr
    result = renew(pebble, config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 renewed" in result.stdout
    assert log.read_text() == "post; 100% of 2\n" * 2, "the stored post hook ran as typed"


def test_hooks_with_quotes_survive_certbot_renewing_the_lineage_and_lehttpd_after_it(pebble, tmp_path):
    """Both tools read and rewrite the same renewal file: every hook runs as typed, three times over."""
    from tests.integration.test_renew_certbot import find_certbot

    certbot = find_certbot()
    if certbot is None:
        pytest.skip("certbot is not installed (see tests/integration/test_renew_certbot.py)")
    config, log = tmp_path / "le", tmp_path / "hooks.log"
    hooks = {"pre": f'"/bin/sh" "-c" "echo pre >> {log}"',  # read back as /bin/sh" "-c" "echo … before
             "post": f"echo \"post; 50% a,b # c\" >> '{log}'",  # quotes, ;, %, a comma, a '#', a trailing quote
             "deploy": f"echo 'deploy' $((1+1)) >> {log}"}
    name = "certbot-hooks.example.test"
    issued = issue(pebble, config, name, *(arg for kind, command in hooks.items()
                                           for arg in (f"--{kind}-hook", command)))
    assert issued.returncode == 0, issued.stderr
    dirs = ["--config-dir", str(config), "--work-dir", str(tmp_path / "work"), "--logs-dir", str(tmp_path / "logs")]
    by_certbot = subprocess.run([certbot, "renew", "--force-renewal", "--no-random-sleep-on-renew", *dirs, "-n"],
                                capture_output=True, text=True, timeout=120,
                                env={**os.environ, "REQUESTS_CA_BUNDLE": str(pebble.ca_bundle)})
    assert by_certbot.returncode == 0, by_certbot.stdout[-1500:] + by_certbot.stderr[-1500:]
    by_lehttpd = renew(pebble, config)
    assert by_lehttpd.returncode == 0, by_lehttpd.stdout + by_lehttpd.stderr
    runs = sorted(log.read_text().splitlines())
    assert runs == sorted(["pre", "post; 50% a,b # c", "deploy 2"] * 3), "lehttpd, certbot, lehttpd again"


def test_a_hook_leaving_a_background_child_is_not_a_time_out(pebble, tmp_path):
    config, pid_file = tmp_path / "le", tmp_path / "child.pid"
    assert issue(pebble, config, "background.example.test").returncode == 0
    result = renew(pebble, config, "--pre-hook", f"sleep 20 & echo $! > {pid_file}", "--hook-timeout", "5")
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "did not finish" not in result.stdout + result.stderr and "1 renewed" in result.stdout
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


# -- the standalone server under a slowloris attack ---------------------------------------------------------------
class Slowloris:
    """CONNECTIONS connections from SOURCES (loopback addresses, in turn) that each send one header line every
    INTERVAL seconds and never finish their request; each one dropped is reopened. Stops by itself after
    LIFETIME seconds."""

    def __init__(self, port, sources=("127.0.0.2",), connections=64, interval=3.0, lifetime=60.0):
        self.port, self.sources, self.connections, self.interval = port, sources, connections, interval
        self.lifetime = lifetime
        self.opened = 0  # connections opened so far
        self.held = 0  # connections open right now
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)

    def wait_until_steady(self):
        """Every connection opened, and each has had the time to drip a header line."""
        while self.opened < self.connections or time.monotonic() < self.started + self.interval + 0.5:
            assert self.thread.is_alive()
            time.sleep(0.1)

    def _open(self):
        conn = socket.socket()
        try:
            conn.settimeout(1)
            conn.bind((self.sources[self.opened % len(self.sources)], 0))
            conn.connect(("127.0.0.1", self.port))
            conn.sendall(b"GET /.well-known/acme-challenge/slow HTTP/1.1\r\nHost: slow.example.test\r\n")
        except OSError:
            conn.close()
            return None
        self.opened += 1
        return conn

    def _run(self):
        conns = {}  # connection -> when it drips its next header line
        while not self.stop.is_set() and time.monotonic() < self.started + self.lifetime:
            if len(conns) < self.connections and (conn := self._open()):
                conns[conn] = time.monotonic() + self.interval
            for conn, due in list(conns.items()):
                try:
                    if select.select([conn], [], [], 0)[0]:  # readable: the server closed it (or answered)
                        raise ConnectionResetError
                    if due <= time.monotonic():
                        conn.sendall(b"X-Slow: 1\r\n")
                        conns[conn] = due + self.interval
                except OSError:
                    conn.close()
                    del conns[conn]
            self.held = len(conns)
            if len(conns) >= self.connections:
                self.stop.wait(0.1)
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("sources, connections", [
    (("127.0.0.2",), 64),  # the issue's attack: 64 connections from one address
    (tuple(f"127.0.4.{n}" for n in range(1, 161)), 160),  # one each from 160 addresses: more than every slot
], ids=["one-address", "many-addresses"])
def test_pebble_validates_through_a_slowloris_attack_on_the_standalone_server(pebble, tmp_path, sources,
                                                                               connections):
    from lehttpd.console import Console
    from lehttpd.issuance import solvers
    from lehttpd.issuance.account import Registration
    from lehttpd.issuance.order import obtain
    from lehttpd.model import ChallengeSetup, IssueRequest
    from lehttpd.store import CertStore

    request = IssueRequest(names=("slowloris.example.test",), server=pebble.directory_url, ca_bundle=pebble.ca_bundle,
                           challenge=ChallengeSetup(http_port=pebble.http_port, http_address="127.0.0.1"))
    store = CertStore(tmp_path / "le")
    with solvers.standalone(pebble.http_port, "127.0.0.1") as solver:
        with Slowloris(pebble.http_port, sources, connections) as attack:
            attack.wait_until_steady()
            issued = obtain(request, store, Console(quiet=True), Registration(agree_tos=True), solver=solver)
            assert attack.held > 0, "the attack was still holding connections during the validation"
    assert issued.lineage.names == ("slowloris.example.test",)


# -- clear errors -------------------------------------------------------------------------------------------------
def test_more_than_100_names_are_refused_before_any_network_call(tmp_path):
    listener = socket.socket()  # an "ACME server" that records whether anyone came
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    names = [f"n{i}.example.test" for i in range(101)]
    try:
        result = run_lehttpd("issue", *names, "--server", f"https://127.0.0.1:{listener.getsockname()[1]}/dir",
                             "--config-dir", str(tmp_path / "le"), "--agree-tos")
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    assert result.returncode == 2
    assert "more than 100 names" in one_line(result)


@pytest.mark.parametrize("content, message", [(None, "no such file"), ("garbage\n", "not a PEM file")])
def test_a_missing_or_non_pem_ca_bundle_on_the_command_line_is_one_line(pebble, tmp_path, content, message):
    bundle = tmp_path / "bundle.pem"
    if content is not None:
        bundle.write_text(content)
    args = pebble.client_args(tmp_path / "le")
    args[args.index("--ca-bundle") + 1] = str(bundle)
    result = run_lehttpd("issue", "bundle.example.test", *args)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"lehttpd: error: --ca-bundle {bundle}: ") and message in line


@pytest.mark.parametrize("content, message", [(None, "no such file"), ("garbage\n", "not a PEM file")])
def test_a_missing_or_non_pem_ca_bundle_in_a_renewal_file_fails_that_lineage_naming_it(pebble, tmp_path, content,
                                                                                        message):
    config, bundle = tmp_path / "le", tmp_path / "ca.pem"
    bundle.write_bytes(pebble.ca_bundle.read_bytes())
    args = pebble.client_args(config)
    args[args.index("--ca-bundle") + 1] = str(bundle)
    assert run_lehttpd("issue", "stored-bundle.example.test", *args).returncode == 0
    bundle.unlink()
    if content is not None:
        bundle.write_text(content)
    result = run_lehttpd("renew", "--config-dir", str(config), "--force")
    assert result.returncode == 7, result.stdout + result.stderr
    conf = config / "renewal/stored-bundle.example.test.conf"
    assert f"{conf}: lehttpd_ca_bundle {bundle}: {message}" in result.stderr
    assert "unexpected" not in result.stdout + result.stderr


def test_a_failing_hook_is_not_reported_as_a_bug(pebble, tmp_path):
    result = issue(pebble, tmp_path / "le", "prehook.example.test", "--pre-hook", "echo no >&2; exit 4")
    assert result.returncode == 9, "exit 1 is kept for lehttpd's own bugs"
    assert one_line(result) == "lehttpd: error: pre hook 'echo no >&2; exit 4' exited with status 4: no"


def test_a_failed_order_is_told_first_and_a_failed_post_hook_too(pebble, tmp_path):
    from lehttpd.sandbox.pebble import free_port

    result = issue(pebble, tmp_path / "le", "both.example.test", "--http-port", str(free_port()),
                   "--post-hook", "echo cannot start >&2; exit 3")
    assert result.returncode == 3, "the order's own error decides the exit status"
    line = one_line(result)
    assert line.startswith("lehttpd: error: validation of both.example.test failed:")
    assert line.endswith("; then the post hook 'echo cannot start >&2; exit 3' exited with status 3: cannot start")


def test_a_failed_post_hook_after_a_good_order_keeps_the_certificate_and_runs_the_deploy_hook(pebble, tmp_path):
    config, log = tmp_path / "le", tmp_path / "deploy.log"
    result = issue(pebble, config, "posthook.example.test", "--post-hook", "exit 5",
                   "--deploy-hook", f"echo deployed >> {log}")
    assert result.returncode == 9
    assert one_line(result) == (f"lehttpd: error: certificate saved in {config / 'live/posthook.example.test'}, "
                                "but post hook 'exit 5' exited with status 5")
    assert log.read_text() == "deployed\n" and (config / "live/posthook.example.test/privkey.pem").exists()
