"""Scripted TLS servers for the check probes: raw sockets on loopback that answer a ClientHello the way old or
broken servers do (SSLv3, RC4, a dropped connection, garbage, silence), without any TLS library on their side.

Each server accepts connections in a thread, reads one ClientHello, answers by its script, and closes.
"""
from __future__ import annotations

import os
import socket
import threading
import time

from tlslite.constants import ExtensionType
from tlslite.messages import ClientHello
from tlslite.utils.codec import Parser

from lehttpd.sandbox.tls import throwaway_ca_and_leaf

RC4_SUITES = (0x0005, 0x0004)  # TLS_RSA_WITH_RC4_128_SHA, TLS_RSA_WITH_RC4_128_MD5
HANDSHAKE_FAILURE, PROTOCOL_VERSION = 40, 70


def _leaf_der() -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pair = throwaway_ca_and_leaf(("scripted.test",))
    return x509.load_pem_x509_certificate(pair.leaf_pem).public_bytes(Encoding.DER)


class ScriptedServer:
    """mode: "hello" (answer by `versions` and `suites`), "sslv2", "drop", "half", "garbage",
    "silent", "http", "refuse"."""

    def __init__(self, mode: str = "hello", versions: tuple[tuple[int, int], ...] = (), suites: tuple[int, ...] = (),
                 renegotiation: bool = True, groups: tuple[int, ...] = (23,), dh_bits: int = 2048) -> None:
        self.mode, self.versions, self.suites, self.renegotiation = mode, versions, suites, renegotiation
        self.groups, self.dh_bits = groups, dh_bits
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        self.certificate = _leaf_der()
        self.hellos = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped = True
        self.thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)  # wakes up to see `stopped`
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                data = conn.recv(65536)
                if self.mode == "silent":
                    time.sleep(6)
                elif self.mode == "garbage":
                    conn.sendall(b"\x01\x02garbage that is not TLS\r\n")
                elif self.mode == "http":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                elif self.mode == "refuse":
                    conn.sendall(_alert(HANDSHAKE_FAILURE))
                elif self.mode == "hello":
                    conn.sendall(self._hello(data))
                elif self.mode == "sslv2":  # a SERVER-HELLO to an SSLv2-format hello, an alert to the rest
                    body = b"\x04\x00\x01\x00\x02" + b"\x00" * 6 + os.urandom(16)
                    conn.sendall(bytes([0x80, len(body)]) + body if data[:1] and data[0] & 0x80
                                 else _alert(PROTOCOL_VERSION))
                elif self.mode == "half":  # the start of a ServerHello, then the connection drops
                    conn.sendall(b"\x16\x03\x03\x00\x4a\x02\x00\x00\x46\x03\x03" + os.urandom(10))
                # "drop": close without a word
            except OSError:
                pass

    def _hello(self, data: bytes) -> bytes:
        if not data or data[0] != 22:  # SSLv2-format hello: this server does not speak SSLv2
            return _alert(PROTOCOL_VERSION)
        hello = ClientHello().parse(Parser(bytearray(data[6:])))
        self.hellos += 1
        offered = tuple(hello.client_version)
        versions = hello.getExtension(ExtensionType.supported_versions)
        if versions is not None:  # a TLS 1.3 client: this server is older
            offered = (3, 3)
        if offered not in self.versions:
            return _alert(PROTOCOL_VERSION)
        chosen = next((s for s in self.suites if s in hello.cipher_suites), None)  # server order
        if chosen is None:
            return _alert(HANDSHAKE_FAILURE)
        extensions = b""
        if self.renegotiation and offered != (3, 0):
            extensions = b"\xff\x01\x00\x01\x00"
        body = bytes(offered) + os.urandom(32) + b"\x00" + chosen.to_bytes(2, "big") + b"\x00"
        if extensions:
            body += len(extensions).to_bytes(2, "big") + extensions
        server_hello = b"\x02" + len(body).to_bytes(3, "big") + body
        cert_list = len(self.certificate).to_bytes(3, "big") + self.certificate
        certificate = b"\x0b" + (len(cert_list) + 3).to_bytes(3, "big") + len(cert_list).to_bytes(3, "big") + cert_list
        key_exchange = self._key_exchange(chosen, hello)
        if key_exchange is None:
            return _alert(HANDSHAKE_FAILURE)
        done = b"\x0e\x00\x00\x00"
        payload = server_hello + certificate + key_exchange + done
        return b"\x16" + bytes(offered) + len(payload).to_bytes(2, "big") + payload


    def _key_exchange(self, chosen: int, hello: ClientHello) -> bytes | None:
        """A ServerKeyExchange whose first fields are real (curve, DH prime); the rest is filler."""
        from lehttpd.check.suites import suite

        name = suite(chosen).name
        if "ECDHE" in name:
            offered = hello.getExtension(ExtensionType.supported_groups)
            curve = next((g for g in self.groups if offered is not None and g in offered.groups), None)
            if curve is None:
                return None
            body = b"\x03" + curve.to_bytes(2, "big") + b"\x41\x04" + os.urandom(64) + b"\x04\x03\x00\x01\x00"
        elif "DHE" in name:
            prime = (1 << (self.dh_bits - 1) | int.from_bytes(os.urandom(self.dh_bits // 8), "big") | 1)
            prime &= (1 << self.dh_bits) - 1
            p = prime.to_bytes(self.dh_bits // 8, "big")
            body = len(p).to_bytes(2, "big") + p + b"\x00\x01\x02" + len(p).to_bytes(2, "big") + os.urandom(len(p))
        else:
            return b""
        return b"\x0c" + len(body).to_bytes(3, "big") + body


def _alert(description: int) -> bytes:
    return b"\x15\x03\x01\x00\x02\x02" + bytes([description])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
