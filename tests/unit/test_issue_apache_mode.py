"""Issue 9's pure parts: IP names and profiles checked before the network, the mode choice, what the renewal
file remembers, the temporary Apache include and vhost lines, the self-check's wording, the polling back-off."""
from __future__ import annotations

import http.server
import io
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from lehttpd.apache.challenge import FILE_PREFIX, leftovers, render
from lehttpd.apache.challenge_vhosts import VHOST_MARK, close_vhost, open_vhost, vhosts_to_open
from lehttpd.apache.discover import ApacheInfo, VhostLocation
from lehttpd.apache.layouts import DEBIAN
from lehttpd.cli import run
from lehttpd.console import Console
from lehttpd.issuance import modes, selfcheck
from lehttpd.issuance.order import polling_delays
from lehttpd.model import LETSENCRYPT_PRODUCTION, ChallengeSetup, IssueRequest
from lehttpd.renewal_conf import parse, render as render_conf, to_request, with_installer


def call(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv, message", [
    (["issue", "192.0.2.1"], "under Let's Encrypt's default profile (classic)"),
    (["issue", "2001:db8::1", "--preferred-profile", "tlsserver"], "under the profile 'tlsserver'"),
    (["issue", "192.0.2.1", "--server", "https://ca.example/dir", "--required-profile", "classic"],
     "only under --preferred-profile shortlived"),
    (["issue", "a.example", "--harden", "modern"], "--redirect and --harden go with --install"),
])
def test_ip_names_and_lone_install_options_are_refused_before_any_network_call(argv, message, tmp_path):
    code, _out, err = call(*argv, "--config-dir", str(tmp_path))
    assert code == 2 and message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_ip_names_under_shortlived_pass_validation():
    from lehttpd.issuance.commands import ip_allowed

    assert ip_allowed(LETSENCRYPT_PRODUCTION, "shortlived")
    assert not ip_allowed(LETSENCRYPT_PRODUCTION, None)
    assert ip_allowed("https://pebble.example/dir", None)


def test_an_ipv6_lineage_gets_a_valid_folder_name():
    from lehttpd.store import check_lineage_name

    name = IssueRequest(names=("::1",)).lineage_name
    assert name == "0000-0000-0000-0000-0000-0000-0000-0001" and check_lineage_name(name)


def test_a_free_port_means_standalone_and_the_reason_says_so():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    setup, why = modes.choose(ChallengeSetup(http_port=port), None)
    assert setup.mode == "standalone" and why == f"port {port} is free, so lehttpd's own server answers"
    assert modes.choose(ChallengeSetup(http_port=port), None, pre_hook=True)[1].startswith("a --pre-hook")


def test_a_port_held_by_something_else_is_left_to_the_standalone_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        setup, why = modes.choose(ChallengeSetup(http_port=port), None)
    assert setup.mode == "standalone" and "not an Apache lehttpd controls" in why


def test_the_renewal_file_remembers_apache_mode_profile_and_installer(tmp_path):
    request = IssueRequest(names=("a.example",), challenge=ChallengeSetup(mode="apache", apache_ctl="/x/apache2ctl",
                                                                          token_root=Path("/srv/le/http-01")),
                           profile="shortlived", profile_required=True)
    text = with_installer(render_conf(request, "acct", tmp_path), "/x/apache2ctl")
    conf = parse(text, "t")
    assert conf.params["authenticator"] == "apache" and conf.params["installer"] == "apache"
    assert conf.params["required_profile"] == "shortlived" and "preferred_profile" not in conf.params
    back = to_request(conf, ("a.example",), "a.example", "t")
    assert back.challenge.mode == "apache" and back.challenge.apache_ctl == "/x/apache2ctl"
    assert back.challenge.token_root == Path("/srv/le/http-01")
    assert back.profile == "shortlived" and back.profile_required and back.installer == "apache"
    assert with_installer(text, "/x/apache2ctl") == text  # idempotent


def info_for(tmp_path: Path, locations) -> ApacheInfo:
    return ApacheInfo(ctl=None, version=(2, 4, 62), server_root=tmp_path, config_file=tmp_path / "apache2.conf",
                      mpm="event", modules=frozenset(), includes=(), locations=tuple(locations), layout=DEBIAN)


def test_only_vhosts_without_rewrite_directives_get_the_temporary_lines(tmp_path):
    site = tmp_path / "sites.conf"
    site.write_text("<VirtualHost *:80>\n  ServerName a.example\n  Redirect / https://a.example/\n</VirtualHost>\n"
                    "<VirtualHost *:80>\n  ServerName b.example\n  RewriteEngine On\n</VirtualHost>\n"
                    "<VirtualHost *:80>\n  ServerName c.example\n</VirtualHost>\n")
    locations = [VhostLocation(site, 1, ("*:80",), "a.example"), VhostLocation(site, 5, ("*:80",), "b.example"),
                 VhostLocation(site, 9, ("*:80",), "c.example")]
    info = info_for(tmp_path, locations)
    assert vhosts_to_open(info, ("a.example", "b.example"), 80) == [locations[0]]
    assert vhosts_to_open(info, ("nowhere.example",), 80) == [locations[0]]  # the port's default vhost
    before = site.read_bytes()
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that has exited: its pid owns nothing any more
    open_vhost(site, 1, gone.pid)
    lines = site.read_text().splitlines()
    assert lines[1] == "    " + VHOST_MARK.format(pid=gone.pid) and lines[2] == "    RewriteEngine On"
    assert [leftover.owner_pid for leftover in leftovers(info)] == [gone.pid]
    assert close_vhost(site, gone.pid) and site.read_bytes() == before


def test_the_include_maps_tokens_outside_every_document_root(tmp_path):
    text = render(info_for(tmp_path, []), Path("/var/lib/lehttpd/http-01/1-ab"), 1)
    assert "RewriteOptions InheritDownBefore" in text and "[END,T=text/plain]" in text
    assert 'RewriteCond "/var/lib/lehttpd/http-01/1-ab/$1" -f' in text
    assert "AllowOverride None" in text and "Require all granted" in text
    assert FILE_PREFIX == "lehttpd-http01-"


class Redirecting(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(301)
        self.send_header("Location", "https://site.example" + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_self_check_says_what_came_back_and_from_where():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        failed = selfcheck.check([selfcheck.Probe("site.example", "tok", "tok.key")], port, "127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()
    assert [a.describe() for a in failed] == [
        f"got 301 to https://site.example/.well-known/acme-challenge/tok from 127.0.0.1:{port}"]


def test_polling_starts_short_and_backs_off_to_a_ceiling():
    delays = polling_delays()
    seen = [next(delays) for _ in range(12)]
    assert seen[:3] == [0.005, 0.01, 0.02] and seen[-1] == 1.0


def test_apache_older_than_2_4_8_is_refused_with_the_way_out(tmp_path):
    from dataclasses import replace

    from lehttpd.apache.challenge import conf_dir
    from lehttpd.errors import EnvironmentProblem

    (tmp_path / "conf-enabled").mkdir()
    info = info_for(tmp_path, [])
    assert conf_dir(info) == tmp_path / "conf-enabled"
    with pytest.raises(EnvironmentProblem, match=r"needs Apache 2\.4\.8 or later \(this one is 2\.2\.34\); use --webroot"):
        conf_dir(replace(info, version=(2, 2, 34)))


def test_a_webroot_site_redirecting_to_the_same_path_on_https_is_left_to_the_ca():
    answer = selfcheck.Answer(selfcheck.Probe("a.example", "tok", "tok.k"), "127.0.0.1:80", 301,
                              "https://a.example/.well-known/acme-challenge/tok", False)
    assert answer.redirects_to_same_path
    elsewhere = selfcheck.Answer(answer.probe, "127.0.0.1:80", 301, "https://a.example/", False)
    assert not elsewhere.redirects_to_same_path


@pytest.fixture
def traversable():
    """A folder straight under /tmp (pytest's own tmp tree is 0700, not traversable by others)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="lehttpd-unit-", dir="/tmp"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_token_folder_never_opens_up_an_existing_folder(traversable):
    from lehttpd.apache.challenge import _make_folder
    from lehttpd.errors import EnvironmentProblem

    tmp_path = traversable
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    with pytest.raises(EnvironmentProblem, match=r"closed is not searchable by others \(chmod o\+x"):
        _make_folder(closed / "http-01" / "1-ab")
    assert closed.stat().st_mode & 0o777 == 0o700
    opened = tmp_path / "open"
    opened.mkdir(mode=0o711)
    opened.chmod(0o711)
    _make_folder(opened / "http-01" / "1-ab")
    assert (opened / "http-01" / "1-ab").stat().st_mode & 0o777 == 0o755
    assert (opened / "http-01").stat().st_mode & 0o777 == 0o755


def test_after_a_pre_hook_the_port_is_awaited_until_its_server_lets_go():
    holder = socket.socket()
    holder.bind(("", 0))
    holder.listen()
    port = holder.getsockname()[1]
    threading.Timer(0.5, holder.close).start()  # `apache2ctl stop` returns before the port is released
    assert modes.wait_until_free(port, timeout=10)


def test_a_port_nobody_releases_is_reported_after_the_wait():
    with socket.socket() as holder:
        holder.bind(("", 0))
        holder.listen()
        assert not modes.wait_until_free(holder.getsockname()[1], timeout=0.3)
