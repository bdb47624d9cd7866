"""The ACME transport: acme's ClientNetwork with the retries RFC 8555 allows, and errors turned into ours.

Retries happen only where the protocol says a retry is safe: `badNonce` (the server asks for a resend with a
fresh nonce) and `rateLimited` / 503 with a Retry-After no longer than we are willing to wait.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import Any, Callable, Iterator

import josepy as jose
import requests
import requests.adapters
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages

from lehttpd import __version__
from lehttpd.errors import AcmeServerError, NetworkError

# A badNonce resend is always safe and costs one round trip. acme's own `post` resends once; 16 calls of it
# (32 POSTs) keep a CA that rejects half of all nonces (Pebble's PEBBLE_WFE_NONCEREJECT=50) from failing one
# request in a billion; 10 POSTs failed about 1 in 2,000.
BAD_NONCE_CALLS = 16
MAX_RETRY_AFTER = 60.0
TIMEOUT = 30


class RateLimitedError(AcmeServerError):
    """The server refused with rateLimited; `retry_after` is its Retry-After in seconds (None if it sent none)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryAfterAdapter(requests.adapters.HTTPAdapter):
    """The transport under acme's session: logs each exchange, resends after a 503's short Retry-After, and
    remembers the last Retry-After seen (acme's problem objects do not carry the response's headers)."""

    def __init__(self, log: Callable[[str], None], max_retry_after: float) -> None:
        super().__init__()
        self.log, self.max_retry_after = log, max_retry_after
        self.last_retry_after: float | None = None

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        attempt = 0
        while True:
            attempt += 1
            response = super().send(request, *args, **kwargs)
            self.log(f"  {request.method} {request.url} -> {response.status_code}")
            delay = self.last_retry_after = retry_after_seconds(response)
            if response.status_code == 503 and delay is not None and delay <= self.max_retry_after and attempt <= 3:
                self.log(f"  503 from the server, retrying in {delay:.0f} s as it asks")
                time.sleep(delay)
                continue
            return response


class RetryingNetwork(acme_client.ClientNetwork):
    """acme's ClientNetwork, through its public `post` and `session` only."""

    def __init__(self, key: jose.JWK, *, alg: jose.JWASignature, verify: bool | str,
                 log: Callable[[str], None] = lambda _: None, max_retry_after: float = MAX_RETRY_AFTER,
                 timeout: int = TIMEOUT) -> None:
        super().__init__(key, alg=alg, verify_ssl=verify,  # type: ignore[arg-type]  # requests takes a CA path
                         user_agent=f"lehttpd/{__version__}", timeout=timeout)
        self._log = log
        self.max_retry_after = max_retry_after
        self.adapter = RetryAfterAdapter(log, max_retry_after)
        self.session.mount("https://", self.adapter)
        self.session.mount("http://", self.adapter)

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        calls = 0
        while True:
            calls += 1
            try:
                return super().post(*args, **kwargs)
            except messages.Error as error:
                if error.code == "badNonce" and calls < BAD_NONCE_CALLS:
                    self._log(f"  badNonce twice, resending with a fresh nonce (call {calls + 1})")
                    continue
                if error.code != "rateLimited":
                    raise
                delay = self.adapter.last_retry_after
                if delay is None or delay > self.max_retry_after or calls > 3:
                    raise RateLimitedError(_refusal(error, delay), delay) from error
                self._log(f"  rate limited, retrying in {delay:.0f} s as the server asks")
                time.sleep(delay)


def _refusal(error: messages.Error, retry_after: float | None) -> str:
    message = f"the ACME server refused: {describe_problem(error)}"
    return message + (f" (retry after {retry_after:.0f} s)" if retry_after else "")


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = acme_client.ClientV2.retry_after(response, default=-1)
        return max(0.0, (when - dt.datetime.now()).total_seconds())


def describe_problem(error: messages.Error) -> str:
    """One line: the problem type and detail, plus its sub-problems (one per failing identifier)."""
    kind = error.typ.split(":")[-1] if error.typ else "error"
    text = f"{kind}: {error.detail or error.title or 'no detail given'}"
    subproblems = getattr(error, "subproblems", None) or []
    for sub in subproblems:
        ident = sub.identifier.value if getattr(sub, "identifier", None) else "?"
        text += f"; {ident}: {sub.detail}"
    return text


@contextlib.contextmanager
def translate_errors(server: str, timeout: float = TIMEOUT) -> Iterator[None]:
    """Turn library and network exceptions into one-line lehttpd errors that name the server."""
    try:
        yield
    except messages.Error as error:
        raise AcmeServerError(_refusal(error, None)) from None
    except requests.exceptions.SSLError as error:
        raise NetworkError(
            f"the TLS certificate of {server} is not trusted ({_reason(error)}); "
            "for a private CA pass its certificate with --ca-bundle") from None
    except requests.exceptions.Timeout:
        raise NetworkError(f"{server} did not answer within {timeout:g} s") from None
    except requests.exceptions.ConnectionError as error:
        raise NetworkError(f"cannot reach {server}: {_reason(error)}") from None
    except requests.exceptions.RequestException as error:
        raise NetworkError(f"request to {server} failed: {_reason(error)}") from None
    except acme_errors.ClientError as error:
        raise AcmeServerError(f"unexpected answer from {server}: {str(error)[:200]}") from None
    except acme_errors.TimeoutError:
        raise AcmeServerError(f"{server} did not complete the order in time") from None
    except (acme_errors.Error, jose.DeserializationError) as error:
        raise AcmeServerError(f"unexpected answer from {server}: {str(error)[:200]}") from None


def _reason(error: Exception) -> str:
    text = str(error)
    for marker in ("certificate verify failed", "Connection refused", "Name or service not known",
                   "timed out", "No route to host"):
        if marker in text:
            return marker
    return text.splitlines()[0][:160] if text else type(error).__name__
