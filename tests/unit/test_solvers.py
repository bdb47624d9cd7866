import http.client
import socket

import pytest

from lehttpd.errors import UsageError
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


def test_standalone_refuses_oversized_requests_and_drops_silent_clients():
    with standalone(0, "127.0.0.1") as server:
        status, _ = get(server.port, "/.well-known/acme-challenge/" + "x" * 5000)
        assert status == 414
        idle = socket.create_connection(("127.0.0.1", server.port))
        try:
            # The idle client does not block others: the server is threaded with a time-out per client.
            assert get(server.port, "/nothing")[0] == 404
        finally:
            idle.close()


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
