"""The ACME transport's retries, against a small fake ACME endpoint on loopback."""
import http.server
import json
import threading

import josepy as jose
import pytest
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec

from lehttpd.errors import AcmeServerError, NetworkError
from lehttpd.issuance.network import RetryingNetwork, describe_problem, translate_errors


class FakeAcme(http.server.BaseHTTPRequestHandler):
    script: list = []  # (status, problem type or None, headers) answered in turn to POSTs
    posts = 0

    def log_message(self, *args):
        pass

    def _nonce(self):
        self.send_header("Replay-Nonce", f"nonce{FakeAcme.posts:04d}AAA")

    def do_HEAD(self):
        self.send_response(200)
        self._nonce()
        self.end_headers()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        status, problem, headers = FakeAcme.script[min(FakeAcme.posts, len(FakeAcme.script) - 1)]
        FakeAcme.posts += 1
        body = json.dumps({"type": f"urn:ietf:params:acme:error:{problem}", "detail": "scripted"} if problem
                          else {"status": "valid"}).encode()
        self.send_response(status)
        self._nonce()
        self.send_header("Content-Type", "application/problem+json" if problem else "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def fake_acme():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeAcme)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeAcme.posts = 0
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def network(log=None):
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    return RetryingNetwork(key, alg=jose.ES256, verify=True, log=log or (lambda _: None))


def post(net, base):
    return net.post(base + "/thing", messages.NewRegistration(), new_nonce_url=base + "/nonce")


def test_bad_nonce_is_resent_with_a_fresh_nonce(fake_acme):
    FakeAcme.script = [(400, "badNonce", {})] * 5 + [(200, None, {})]
    assert post(network(), fake_acme).status_code == 200
    assert FakeAcme.posts == 6


def test_bad_nonce_retries_are_bounded(fake_acme):
    FakeAcme.script = [(400, "badNonce", {})]
    from lehttpd.issuance.network import BAD_NONCE_CALLS

    with pytest.raises(messages.Error):
        post(network(), fake_acme)
    assert FakeAcme.posts == 2 * BAD_NONCE_CALLS == 32  # acme's post resends once itself


def test_503_with_retry_after_is_retried_after_the_delay(fake_acme):
    FakeAcme.script = [(503, None, {"Retry-After": "1"}), (200, None, {})]
    waits = []
    assert post(network(waits.append), fake_acme).status_code == 200
    assert any("retrying in 1 s" in w for w in waits)


def test_rate_limited_short_retry_after_is_honoured(fake_acme):
    FakeAcme.script = [(429, "rateLimited", {"Retry-After": "0"}), (200, None, {})]
    assert post(network(), fake_acme).status_code == 200


def test_rate_limited_long_retry_after_becomes_one_line_with_the_delay(fake_acme):
    FakeAcme.script = [(429, "rateLimited", {"Retry-After": "3600"})]
    with pytest.raises(AcmeServerError) as caught:
        with translate_errors(fake_acme):
            post(network(), fake_acme)
    assert str(caught.value) == "the ACME server refused: rateLimited: scripted (retry after 3600 s)"
    assert FakeAcme.posts == 1


def test_connection_refused_is_a_network_error():
    from lehttpd.sandbox.pebble import free_port
    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NetworkError, match="cannot reach"):
        with translate_errors(base):
            post(network(), base)


def test_problem_with_subproblems_names_each_identifier():
    error = messages.Error.from_json({
        "type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "some names were refused",
        "subproblems": [{"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "blocked by policy",
                         "identifier": {"type": "dns", "value": "bad.example"}}]})
    assert describe_problem(error) == "rejectedIdentifier: some names were refused; bad.example: blocked by policy"


def test_a_server_that_never_answers_is_a_time_out_error():
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    base = f"http://127.0.0.1:{silent.getsockname()[1]}"
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = RetryingNetwork(key, alg=jose.ES256, verify=True, timeout=1)
    try:
        with pytest.raises(NetworkError, match=r"did not answer within 1 s"):
            with translate_errors(base, timeout=1):
                post(net, base)
    finally:
        silent.close()


def test_a_long_rate_limit_carries_its_retry_after_as_a_typed_field(fake_acme):
    from lehttpd.issuance.network import RateLimitedError

    FakeAcme.script = [(429, "rateLimited", {"Retry-After": "7200"})]
    with pytest.raises(RateLimitedError) as caught:
        post(network(), fake_acme)
    assert caught.value.retry_after == 7200.0 and isinstance(caught.value, AcmeServerError)
