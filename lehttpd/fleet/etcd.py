"""A small client for etcd's documented v3 HTTP/JSON gateway (`/v3/kv/*`, `/v3/lease/*`, `/v3/watch`), on `requests`.

Keys and values travel base64-encoded, int64 fields as strings (grpc-gateway's JSON mapping). Several
endpoints may be given: a request that cannot reach one (refused, timed out, "leader changed" during an
election) goes to the next, and the whole list is retried until `retry_for` seconds have passed; then
EtcdUnavailable says which endpoints were tried and why. TLS: a CA file and an optional client certificate;
verification is never turned off.

Why not a Python client library: python-etcd3 (the only v3 one) has had no release since 2020 and its generated
protobuf modules fail to import with protobuf 4 and later; the gateway is part of etcd itself and documented.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests

from lehttpd.errors import NetworkError, StorageError

REQUEST_TIMEOUT = 2.5  # a follower holds a request this long during an election: then try the next
RETRY_FOR = 8.0  # a leader election takes about a second; a little more covers a slow box
_RETRYABLE_GRPC = {1, 4, 14}  # Canceled (a member shutting down), DeadlineExceeded, Unavailable (leader changed)


class EtcdUnavailable(NetworkError):
    """No endpoint answered: the fleet keeps serving what it has; commands that need etcd say so."""


class EtcdRequestError(NetworkError):
    """etcd answered with an error that retrying will not fix."""


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with `prefix` (its last byte plus one)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return b64(bytes(raw))


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int

    @classmethod
    def from_json(cls, kv: dict) -> "KeyValue":
        return cls(unb64(kv.get("key")).decode(), unb64(kv.get("value")), int(kv.get("create_revision", 0)),
                   int(kv.get("mod_revision", 0)), int(kv.get("lease", 0)))

    def json(self) -> dict:
        """The value as a JSON object; anything else (planted or damaged) is a StorageError naming the key."""
        try:
            data = json.loads(self.value)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise StorageError(f"etcd {self.key} does not hold a JSON object: ignored")
        return data


@dataclass(frozen=True)
class WatchEvent:
    kind: str  # "PUT" | "DELETE"
    kv: KeyValue


class Etcd:
    def __init__(self, endpoints: list[str], cacert: Path | None = None, cert: Path | None = None,
                 key: Path | None = None, retry_for: float = RETRY_FOR) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.retry_for = retry_for
        self.session = requests.Session()
        # Passed with every request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE from the environment.
        self.tls = {"verify": str(cacert) if cacert else True,
                    "cert": ((str(cert), str(key)) if key else str(cert)) if cert else None}
        self._preferred = 0

    # -- transport -----------------------------------------------------------------------------------
    def call(self, path: str, body: dict, retry_for: float | None = None) -> dict:
        """POST `body` to `path` on the first endpoint that answers; retried across endpoints until the deadline."""
        deadline = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        problems: dict[str, str] = {}
        while True:
            for offset in range(len(self.endpoints)):
                index = (self._preferred + offset) % len(self.endpoints)
                endpoint = self.endpoints[index]
                try:
                    response = self.session.post(endpoint + path, json=body, timeout=REQUEST_TIMEOUT, **self.tls)
                except requests.exceptions.SSLError as error:
                    raise EtcdRequestError(f"etcd at {endpoint}: TLS failed ({_short(error)})") from None
                except requests.RequestException as error:
                    problems[endpoint] = _short(error)
                    continue
                answer = _json(response)
                if response.status_code == 200:
                    self._preferred = index
                    return answer
                code = answer.get("code")
                message = answer.get("message") or answer.get("error") or response.text[:200]
                if response.status_code >= 500 or response.status_code == 408 or code in _RETRYABLE_GRPC:
                    problems[endpoint] = f"{response.status_code} {message}"
                    continue
                raise EtcdRequestError(f"etcd at {endpoint}{path}: {response.status_code} {message}")
            if time.monotonic() >= deadline:
                tried = "; ".join(f"{e}: {why}" for e, why in problems.items())
                raise EtcdUnavailable(f"etcd unreachable ({tried})")
            time.sleep(0.3)

    # -- key-value -----------------------------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        kvs = self.call("/v3/kv/range", {"key": b64(key)}).get("kvs") or []
        return KeyValue.from_json(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str, keys_only: bool = False) -> tuple[list[KeyValue], int]:
        """Every key under `prefix`, and the store revision the answer was read at."""
        answer = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": prefix_end(prefix),
                                            "keys_only": keys_only})
        return [KeyValue.from_json(kv) for kv in answer.get("kvs") or []], header_revision(answer)

    def put(self, key: str, value: bytes | str, lease: int = 0) -> int:
        answer = self.call("/v3/kv/put", {"key": b64(key), "value": b64(value), "lease": str(lease)})
        return header_revision(answer)

    def delete(self, key: str, prefix: bool = False) -> int:
        body = {"key": b64(key)}
        if prefix:
            body["range_end"] = prefix_end(key)
        return int(self.call("/v3/kv/deleterange", body).get("deleted", 0))

    def txn(self, compare: list[dict], success: list[dict], failure: list[dict] = ()) -> tuple[bool, dict]:
        answer = self.call("/v3/kv/txn", {"compare": compare, "success": success, "failure": list(failure)})
        return bool(answer.get("succeeded")), answer

    # -- leases --------------------------------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        return int(self.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease: int) -> int:
        """Refresh the lease once; returns its TTL (0: it expired)."""
        answer = self.call("/v3/lease/keepalive", {"ID": str(lease)}, retry_for=1.0)
        return int((answer.get("result") or {}).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        try:
            self.call("/v3/lease/revoke", {"ID": str(lease)}, retry_for=1.0)
        except EtcdRequestError:
            pass  # already expired

    # -- watch ---------------------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, idle_timeout: float = 5.0) -> Iterator[tuple[int, list[WatchEvent]]]:
        """Yield (revision, events) from `start_revision` on; returns after `idle_timeout` without news (the
        caller then does its periodic work and watches again from the last revision it saw)."""
        body = {"create_request": {"key": b64(prefix), "range_end": prefix_end(prefix),
                                   "start_revision": str(start_revision)}}
        endpoint = self.endpoints[self._preferred]
        try:
            with self.session.post(endpoint + "/v3/watch", json=body, stream=True,
                                   timeout=(REQUEST_TIMEOUT, idle_timeout), **self.tls) as response:
                if response.status_code != 200:
                    raise EtcdUnavailable(f"etcd at {endpoint}: watch answered {response.status_code}")
                for line in response.iter_lines():
                    if not line:
                        continue
                    result = json.loads(line).get("result") or {}
                    if result.get("compact_revision") and int(result["compact_revision"]) > 0:
                        raise EtcdUnavailable(f"etcd at {endpoint}: revision {start_revision} was compacted")
                    events = [WatchEvent(e.get("type", "PUT"), KeyValue.from_json(e["kv"]))
                              for e in result.get("events") or []]
                    if events:
                        yield header_revision(result), events
        except (requests.exceptions.ReadTimeout, requests.exceptions.ChunkedEncodingError):
            return  # idle: the caller heartbeats and watches again
        except requests.exceptions.ConnectionError as error:
            if "Read timed out" in str(error):
                return
            self._preferred = (self._preferred + 1) % len(self.endpoints)
            raise EtcdUnavailable(f"etcd at {endpoint}: watch failed ({_short(error)})") from None


def header_revision(answer: dict) -> int:
    return int((answer.get("header") or {}).get("revision", 0))


def compare_mod(key: str, revision: int) -> dict:
    return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}


def compare_lease(key: str, lease: int) -> dict:
    return {"key": b64(key), "target": "LEASE", "result": "EQUAL", "lease": str(lease)}


def compare_absent(key: str) -> dict:
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def op_put(key: str, value: bytes | str, lease: int = 0) -> dict:
    return {"request_put": {"key": b64(key), "value": b64(value), "lease": str(lease)}}


def op_get(key: str) -> dict:
    return {"request_range": {"key": b64(key)}}


def op_delete(key: str, prefix: bool = False) -> dict:
    body = {"key": b64(key)}
    if prefix:
        body["range_end"] = prefix_end(key)
    return {"request_delete_range": body}


def _json(response: requests.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _short(error: Exception) -> str:
    text = str(error)
    for marker in ("Connection refused", "timed out", "Name or service not known", "certificate verify failed"):
        if marker in text:
            return marker
    return text[:160]
