import http.client
import os
import stat
import time
import socket

import pytest

from lehttpd.errors import EnvironmentProblem, UsageError
from lehttpd.issuance import solvers
from lehttpd.issuance.solvers import standalone, webroot_files


def get(port, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path)
    response = conn.getresponse()
    return response.status, response.read()


def test_standalone_serves_exactly_the_current_tokens():
    with standalone(0, "127.0.0.1") as server:
        with server.serving({"tok1": "tok1.thumb"}):
            assert get(server.port, "/.well-known/acme-challenge/tok1") == (200, b"tok1.thumb")
            assert get(server.port, "/.well-known/acme-challenge/tok1", "HEAD") == (200, b"")
            assert get(server.port, "/.well-known/acme-challenge/other")[0] == 404
            assert get(server.port, "/")[0] == 404
            assert get(server.port, "/.well-known/acme-challenge/tok1/../tok1")[0] == 404
            assert get(server.port, "/.well-known/acme-challenge/tok1", "POST")[0] == 501
        assert get(server.port, "/.well-known/acme-challenge/tok1")[0] == 404, "tokens leave with their order"


def test_standalone_refuses_oversized_requests_and_drops_silent_clients(monkeypatch):
    monkeypatch.setattr(solvers, "REQUEST_TIMEOUT", 1)
    with standalone(0, "127.0.0.1") as server:
        status, _ = get(server.port, "/.well-known/acme-challenge/" + "x" * 5000)
        assert status == 414
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        try:
            # The idle client does not block others: the server is threaded ...
            assert get(server.port, "/nothing")[0] == 404
            # ... and drops the idle one when its time is up (recv then reads the end of the stream).
            assert idle.recv(1) == b""
        finally:
            idle.close()


def test_a_client_sending_a_header_line_every_so_often_is_cut_off_at_the_request_deadline(monkeypatch):
    monkeypatch.setattr(solvers, "REQUEST_TIMEOUT", 1)
    with standalone(0, "127.0.0.1") as server:
        drip = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        try:
            drip.sendall(b"GET /.well-known/acme-challenge/x HTTP/1.1\r\n")
            cut_off = False
            for _ in range(16):  # 16 lines 0.3 s apart: each read is quick, the whole request is not
                time.sleep(0.3)
                try:
                    drip.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    cut_off = True
                    break
            assert cut_off, "a per-read time-out alone never fires for a client that drips"
        finally:
            drip.close()


def test_one_client_address_cannot_take_every_connection(monkeypatch):
    monkeypatch.setattr(solvers, "MAX_CONNECTIONS", 16)
    with standalone(0, "127.0.0.1") as server:
        held = [connect_from("127.0.0.2", server.port) for _ in range(16)]  # while there is room: admitted
        try:
            extra = connect_from("127.0.0.2", server.port)
            assert extra.recv(1) == b"", "full, and past its share: the client's new connection is dropped at once"
            extra.close()
            with server.serving({"tok": "tok.v"}):  # another client gets in: the heavy one's oldest makes room
                assert get(server.port, "/.well-known/acme-challenge/tok") == (200, b"tok.v")
            assert held[0].recv(1) == b"", "the heavy client's oldest connection was cut off for it"
        finally:
            for conn in held:
                conn.close()


def test_a_validator_may_hold_more_than_a_share_while_there_is_room():
    # The CA validates every name of up to --workers lineages at once, from the same few addresses.
    count = solvers.MAX_PER_CLIENT + 4
    with standalone(0, "127.0.0.1") as server, server.serving({"tok": "tok.v"}):
        conns = [connect_from("127.0.0.2", server.port) for _ in range(count)]
        try:
            for conn in conns:
                conn.sendall(b"GET /.well-known/acme-challenge/tok HTTP/1.0\r\n\r\n")
            answers = [b"".join(iter(lambda conn=conn: conn.recv(4096), b"")) for conn in conns]  # to EOF
            assert all(answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"tok.v") for answer in answers)
        finally:
            for conn in conns:
                conn.close()


def test_clients_from_many_addresses_holding_every_slot_still_let_a_quick_request_in(monkeypatch):
    monkeypatch.setattr(solvers, "MAX_CONNECTIONS", 16)
    with standalone(0, "127.0.0.1") as server:
        held = [connect_from(f"127.0.3.{n}", server.port) for n in range(1, 18)]  # one each: under their share
        try:
            # Connections are taken in order: the 17th found every slot taken, and the first made room.
            assert held[0].recv(1) == b"", "the connection open longest made room"
            with server.serving({"tok": "tok.v"}):
                assert get(server.port, "/.well-known/acme-challenge/tok") == (200, b"tok.v")
        finally:
            for conn in held:
                conn.close()


def connect_from(source: str, port: int) -> socket.socket:
    conn = socket.socket()
    conn.settimeout(5)
    conn.bind((source, 0))
    conn.connect(("127.0.0.1", port))
    return conn


def test_standalone_shuts_down_and_frees_the_port():
    with standalone(0, "127.0.0.1") as server:
        port = server.port
    with standalone(port, "127.0.0.1") as again:
        assert again.port == port


def test_webroot_files_are_written_readable_and_removed(tmp_path):
    with webroot_files(tmp_path, {"t": "t.v"}):
        token = tmp_path / ".well-known/acme-challenge/t"
        assert token.read_text() == "t.v"
        assert token.stat().st_mode & 0o044 == 0o044
    assert not (tmp_path / ".well-known").exists()


def test_webroot_keeps_folders_it_did_not_create(tmp_path):
    (tmp_path / ".well-known").mkdir()
    (tmp_path / ".well-known/security.txt").write_text("contact")
    with webroot_files(tmp_path, {"t": "t.v"}):
        pass
    assert (tmp_path / ".well-known/security.txt").exists()


def test_webroot_must_exist(tmp_path):
    with pytest.raises(UsageError, match="not a directory"):
        with webroot_files(tmp_path / "missing", {"t": "v"}):
            pass


def test_standalone_default_listens_on_ipv4_and_ipv6():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    with standalone(0) as server:
        with server.serving({"both": "both.v"}):
            assert get(server.port, "/.well-known/acme-challenge/both") == (200, b"both.v")
            conn = http.client.HTTPConnection("::1", server.port, timeout=5)
            conn.request("GET", "/.well-known/acme-challenge/both")
            assert conn.getresponse().read() == b"both.v"


def test_a_busy_port_on_ipv4_alone_is_still_reported():
    blocker = socket.socket()
    blocker.bind(("0.0.0.0", 0))
    blocker.listen()
    try:
        from lehttpd.errors import PortInUseError
        with pytest.raises(PortInUseError, match=f"port {blocker.getsockname()[1]} is already in use"):
            with standalone(blocker.getsockname()[1]):
                pass
    finally:
        blocker.close()


@pytest.mark.parametrize("planted", [".well-known/acme-challenge", ".well-known"])
def test_webroot_refuses_a_challenge_folder_linked_out_of_the_document_root(tmp_path, planted):
    webroot, outside = tmp_path / "www", tmp_path / "etc"
    (webroot / ".well-known").mkdir(parents=True)
    outside.mkdir()
    if planted == ".well-known":
        (webroot / ".well-known").rmdir()
    (webroot / planted).symlink_to(outside)
    with pytest.raises(EnvironmentProblem, match="outside the document root"):
        with webroot_files(webroot, {"tok": "tok.v"}):
            pass
    assert list(outside.iterdir()) == [], "nothing is written where the link points"
    assert (webroot / planted).is_symlink(), "the planted link is left for the admin to look at"


def test_webroot_accepts_a_link_that_stays_inside_the_document_root(tmp_path):
    webroot = tmp_path / "www"
    (webroot / "shared/challenges").mkdir(parents=True)
    (webroot / ".well-known").mkdir()
    (webroot / ".well-known/acme-challenge").symlink_to(webroot / "shared/challenges")
    with webroot_files(webroot, {"tok": "tok.v"}):
        assert (webroot / "shared/challenges/tok").read_text() == "tok.v"
    assert list((webroot / "shared/challenges").iterdir()) == []


def test_a_webroot_swapped_for_a_link_after_it_was_resolved_is_refused_in_one_line(tmp_path, monkeypatch):
    """The site's user may own the folder above the webroot and swap it between lehttpd's look and its open."""
    webroot, outside = tmp_path / "www", tmp_path / "etc"
    webroot.mkdir()
    outside.mkdir()
    real_open = os.open

    def open_after_a_swap(path, flags, *args, **kwargs):
        if str(path) == str(webroot) and not webroot.is_symlink():
            webroot.rename(tmp_path / "moved")
            webroot.symlink_to(outside)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_a_swap)
    with pytest.raises(EnvironmentProblem, match="changed into a link"):
        with webroot_files(webroot, {"tok": "tok.v"}):
            pass
    monkeypatch.undo()
    assert list(outside.iterdir()) == []


def test_webroot_never_writes_through_a_link_named_like_the_token(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "www/.well-known/acme-challenge").mkdir(parents=True)
    (tmp_path / "www/.well-known/acme-challenge/tok").symlink_to(victim)
    with pytest.raises(EnvironmentProblem, match="already there"):
        with webroot_files(tmp_path / "www", {"tok": "tok.v"}):
            pass
    assert victim.read_text() == "keep"


def test_webroot_refuses_a_token_that_is_a_path(tmp_path):
    from lehttpd.errors import AcmeServerError
    with pytest.raises(AcmeServerError, match="not a file name"):
        with webroot_files(tmp_path, {"../../escape": "v"}):
            pass
    assert not (tmp_path / ".well-known").exists()


def test_webroot_modes_do_not_depend_on_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        with webroot_files(tmp_path, {"t": "t.v"}):
            challenge = tmp_path / ".well-known/acme-challenge"
            assert stat.S_IMODE(challenge.stat().st_mode) == 0o755
            assert stat.S_IMODE((challenge / "t").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_webroot_never_follows_a_link_swapped_in_after_the_check(tmp_path, monkeypatch):
    webroot, outside = tmp_path / "www", tmp_path / "etc"
    webroot.mkdir()
    outside.mkdir()
    real_check = solvers._challenge_parts

    def check_then_swap(root):
        parts = real_check(root)  # the check passes: nothing planted yet ...
        (webroot / ".well-known").symlink_to(outside)  # ... then the site's user plants a link
        return parts

    monkeypatch.setattr(solvers, "_challenge_parts", check_then_swap)
    with pytest.raises(EnvironmentProblem, match="'.well-known' changed into a link"):
        with webroot_files(webroot, {"tok": "tok.v"}):
            pass
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("made", ["a folder", "a link"])
def test_a_challenge_folder_made_by_another_writer_between_look_and_mkdir_is_used_or_refused(tmp_path, monkeypatch,
                                                                                          made):
    """Renew workers and the fleet agent write tokens into one webroot at once: a folder another writer made in
    between is used (it was a one-line failure); a link planted in between is still refused, never followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    webroot = tmp_path / "www"
    webroot.mkdir()
    real_mkdir = os.mkdir

    def mkdir_after_another_writer(path, mode=0o777, *, dir_fd=None):
        if made == "a folder":
            real_mkdir(path, 0o755, dir_fd=dir_fd)
        else:
            os.symlink(outside, path, dir_fd=dir_fd)
        raise FileExistsError(17, "File exists", path)
    monkeypatch.setattr(os, "mkdir", mkdir_after_another_writer)
    if made == "a folder":
        with webroot_files(webroot, {"t": "t.v"}):
            assert (webroot / ".well-known" / "acme-challenge" / "t").read_text() == "t.v"
        assert (webroot / ".well-known" / "acme-challenge").is_dir()  # not ours: left in place
    else:
        with pytest.raises(EnvironmentProblem, match="changed into a link or a file"):
            with webroot_files(webroot, {"t": "t.v"}):
                pass
        assert list(outside.iterdir()) == []


def test_a_challenge_folder_another_writer_removes_between_open_and_write_is_opened_again(tmp_path, monkeypatch):
    """The other writer's clean-up removes the empty folder it made just after we opened it: we open it again."""
    real_open_folder, removed = solvers._open_folder, []

    def open_then_removed_by_another_writer(parent, name, root):
        opened = real_open_folder(parent, name, root)
        if name == "acme-challenge" and not removed:
            os.rmdir(name, dir_fd=parent)
            removed.append(name)
        return opened
    monkeypatch.setattr(solvers, "_open_folder", open_then_removed_by_another_writer)
    with webroot_files(tmp_path, {"t": "t.v"}):
        assert (tmp_path / ".well-known" / "acme-challenge" / "t").read_text() == "t.v"
    assert removed and not (tmp_path / ".well-known").exists()  # ours, removed afterwards
