"""`lehttpd issue NAME` when the private Apache holds the http-01 port: answered through it, no downtime.

Each site below would make http-01 fail if the challenge were served from its document root or through its
own rules: a redirect of everything to https (mod_alias and mod_rewrite), a RewriteRule that swallows every
path, an Alias of the challenge path to elsewhere, an `.htaccess` with `Require all denied`. Pebble validates on the private Apache's port.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance  # noqa: E402

from tests.conftest import run_lehttpd  # noqa: E402

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


REDIRECT_ALIAS = """<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    Redirect permanent / https://{name}/
</VirtualHost>
"""
REDIRECT_REWRITE = """<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    RewriteEngine On
    RewriteRule ^ https://%{{SERVER_NAME}}%{{REQUEST_URI}} [END,NE,R=permanent]
</VirtualHost>
"""
SWALLOW = """<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    DocumentRoot {docroot}
    <Directory {docroot}>
        Require all granted
    </Directory>
    RewriteEngine On
    RewriteRule ^ /index.html [L]
</VirtualHost>
"""
HTACCESS_DENY = """<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    DocumentRoot {docroot}
    <Directory {docroot}>
        AllowOverride All
        Require all granted
    </Directory>
</VirtualHost>
"""
ALIASED = """<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    DocumentRoot {docroot}
    Alias /.well-known/acme-challenge/ /nonexistent/challenges/
</VirtualHost>
"""
IGNORES_INHERIT = """<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    RewriteEngine On
    RewriteOptions IgnoreInherit
    RewriteRule ^ https://%{{SERVER_NAME}}%{{REQUEST_URI}} [END,NE,R=permanent]
</VirtualHost>
"""


@pytest.fixture
def apache_on_pebble_port(pebble, tmp_path):
    inst = make_instance(tmp_path / "apache", http_port=pebble.http_port)
    yield inst
    inst.stop()


def apache_pid(inst) -> str:
    pid_file = inst.state / "run" / "apache2.pid"
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return pid_file.read_text()


def add(inst, name: str, template: str) -> Path:
    docroot = inst.docroot(name)
    inst.add_site(name, template.format(port=inst.http_port, name=name, docroot=docroot))
    return docroot


def issue_args(pebble, inst, tmp_path, work_dir, *names: str) -> list[str]:
    return ["issue", *names, *pebble.client_args(tmp_path / "le"), "--apache-ctl", str(inst.ctl),
            "--work-dir", str(work_dir)]


def temporary_files(inst) -> list[Path]:
    return sorted((inst.confdir / "conf-enabled").glob("lehttpd-http01-*"))


def site_texts(inst) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((inst.confdir / "sites-available").iterdir())}


def test_issue_answers_through_the_running_apache_for_sites_that_would_swallow_the_path(
        pebble, apache_on_pebble_port, tmp_path, work_dir):
    inst = apache_on_pebble_port
    add(inst, "redirect-alias.test", REDIRECT_ALIAS)
    add(inst, "redirect-rewrite.test", REDIRECT_REWRITE)
    add(inst, "swallow.test", SWALLOW)
    add(inst, "aliased.test", ALIASED)
    docroot = add(inst, "denied.test", HTACCESS_DENY)
    (docroot / ".htaccess").write_text("Require all denied\n")
    inst.start()
    pid_before = apache_pid(inst)
    sites_before = site_texts(inst)
    result = run_lehttpd(*issue_args(pebble, inst, tmp_path, work_dir, "redirect-alias.test", "-d", "redirect-rewrite.test",
                                     "-d", "swallow.test", "-d", "aliased.test", "-d", "denied.test"))
    assert result.returncode == 0, result.stderr
    assert "http-01 mode: apache (apache2 (pid" in result.stdout
    assert "holds port" in result.stdout
    assert (tmp_path / "le" / "live" / "redirect-alias.test" / "fullchain.pem").exists()
    # Apache was reloaded, never stopped; the temporary include and the vhost lines are gone.
    assert apache_pid(inst) == pid_before
    assert temporary_files(inst) == []
    assert site_texts(inst) == sites_before
    assert inst.run_ctl("configtest").returncode == 0
    # certbot's key: renewal answers the same way
    conf = (tmp_path / "le" / "renewal" / "redirect-alias.test.conf").read_text()
    assert "authenticator = apache" in conf and f"apache_ctl = {inst.ctl}" in conf


def test_a_vhost_that_ignores_the_challenge_rules_fails_at_the_self_check_before_the_ca_is_asked(
        pebble, apache_on_pebble_port, tmp_path, work_dir):
    inst = apache_on_pebble_port
    add(inst, "ignores.test", IGNORES_INHERIT)
    inst.start()
    result = run_lehttpd(*issue_args(pebble, inst, tmp_path, work_dir, "ignores.test"))
    assert result.returncode == 3, result.stderr
    assert "got 301 to https://ignores.test/.well-known/acme-challenge/" in result.stderr
    assert f"from 127.0.0.1:{inst.http_port}; the CA would fail too" in result.stderr
    # No challenge was answered: every challenge request Apache logged came from lehttpd itself, none from
    # Pebble's validator.
    log = (inst.state / "log" / "other_vhosts_access.log")
    lines = [line for line in log.read_text().splitlines() if "acme-challenge" in line]
    assert any('"lehttpd self-check"' in line for line in lines)
    assert all('"lehttpd self-check"' in line or '"lehttpd reload probe"' in line for line in lines), lines
    assert temporary_files(inst) == []


def test_a_run_killed_with_sigkill_leaves_a_leftover_that_the_next_command_removes(
        pebble, apache_on_pebble_port, tmp_path, work_dir):
    inst = apache_on_pebble_port
    add(inst, "killed.test", REDIRECT_ALIAS)
    inst.start()
    before = site_texts(inst)
    # Killed the moment its include exists (the order is being placed meanwhile).
    proc = subprocess.Popen([sys.executable, "-m", "lehttpd", *issue_args(pebble, inst, tmp_path, work_dir, "killed.test")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not temporary_files(inst) and proc.poll() is None:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert temporary_files(inst)  # SIGKILL: nothing could clean up
    listing = run_lehttpd("apache", "vhosts", "--apache-ctl", str(inst.ctl))
    assert "left behind by an interrupted lehttpd run" in listing.stdout + listing.stderr
    again = run_lehttpd(*issue_args(pebble, inst, tmp_path, work_dir, "killed.test"))
    assert again.returncode == 0, again.stderr
    assert "left behind by an interrupted lehttpd run" in again.stdout
    assert temporary_files(inst) == []
    assert site_texts(inst) == before


def test_issue_install_redirect_harden_in_one_command_through_the_running_apache(
        pebble, apache_on_pebble_port, tmp_path, work_dir):
    import socket
    import ssl

    inst = apache_on_pebble_port
    inst.enable_module("ssl")
    inst.enable_module("socache_shmcb")
    add(inst, "journey.test", SWALLOW)
    inst.start()
    result = run_lehttpd(*issue_args(pebble, inst, tmp_path, work_dir, "journey.test"), "--install", "--redirect",
                         "--harden", "intermediate", "--https-port", str(inst.https_port))
    assert result.returncode == 0, result.stderr
    assert "http-01 mode: apache" in result.stdout and "Hardened (intermediate)" in result.stdout
    assert "installer = apache" in (tmp_path / "le" / "renewal" / "journey.test.conf").read_text()
    live = (tmp_path / "le" / "live" / "journey.test" / "cert.pem").read_bytes()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # compared byte for byte below
    with socket.create_connection(("127.0.0.1", inst.https_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="journey.test") as tls:
            served = tls.getpeercert(binary_form=True)
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    from cryptography import x509
    assert x509.load_der_x509_certificate(served) == x509.load_pem_x509_certificate(live)
    with socket.create_connection(("127.0.0.1", inst.http_port), timeout=5) as plain:
        plain.sendall(b"GET /page HTTP/1.1\r\nHost: journey.test\r\nConnection: close\r\n\r\n")
        assert plain.recv(4096).startswith(b"HTTP/1.1 301")
    hardened = "".join(p.read_text() for p in inst.confdir.rglob("*.conf") if p.is_file())
    assert "SSLProtocol" in hardened and temporary_files(inst) == []


def test_webroot_pointing_at_the_wrong_folder_fails_at_the_self_check(pebble, apache_on_pebble_port, tmp_path,
                                                                      work_dir):
    inst = apache_on_pebble_port
    add(inst, "wrongroot.test", HTACCESS_DENY.replace("AllowOverride All", "AllowOverride None"))
    inst.start()
    elsewhere = work_dir / "not-the-docroot"
    elsewhere.mkdir()
    result = run_lehttpd("issue", "wrongroot.test", *pebble.client_args(tmp_path / "le"), "--webroot",
                         str(elsewhere))
    assert result.returncode == 3, result.stderr
    # 404 (no such file there), or 403 when pytest's tmp tree is closed to Apache's workers meanwhile
    assert re.search(rf"wrongroot.test: got 40[34] from 127.0.0.1:{inst.http_port}; the CA would fail too",
                     result.stderr), result.stderr
    assert "http-01 mode: webroot" in result.stdout


def test_apache_mode_with_apache_stopped_is_refused_and_apache_stays_stopped(pebble, apache_on_pebble_port,
                                                                              tmp_path, work_dir):
    inst = apache_on_pebble_port
    add(inst, "stopped.test", SWALLOW)  # never started
    result = run_lehttpd(*issue_args(pebble, inst, tmp_path, work_dir, "stopped.test"), "--apache")
    assert result.returncode == 5, result.stderr
    assert "is not running, so it cannot answer http-01" in result.stderr
    assert not (inst.state / "run" / "apache2.pid").exists()
    assert temporary_files(inst) == [] and not list(work_dir.glob("http-01/*"))


def test_two_issues_through_the_same_apache_at_once_both_succeed(pebble, apache_on_pebble_port, tmp_path,
                                                                 work_dir):
    inst = apache_on_pebble_port
    add(inst, "pair.test", REDIRECT_ALIAS.replace("</VirtualHost>", "    ServerAlias www.pair.test\n</VirtualHost>"))
    inst.start()
    before = site_texts(inst)
    runs = [subprocess.Popen([sys.executable, "-m", "lehttpd",
                              *issue_args(pebble, inst, tmp_path / name, work_dir, name)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("pair.test", "www.pair.test")]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert [code for code, _ in results] == [0, 0], results
    assert temporary_files(inst) == [] and site_texts(inst) == before
