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
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages

from lehttpd import __version__
from lehttpd.errors import AcmeServerError, NetworkError

# A badNonce resend is always safe and costs one round trip. 30 keeps a CA that rejects half of all nonces
# (Pebble's PEBBLE_WFE_NONCEREJECT=50) from failing one request in a billion; 10 failed about 1 in 2,000.
BAD_NONCE_RETRIES = 30
MAX_RETRY_AFTER = 60.0
TIMEOUT = 30


class RetryingNetwork(acme_client.ClientNetwork):
    def __init__(self, key: jose.JWK, *, alg: jose.JWASignature, verify: bool | str,
                 log: Callable[[str], None] = lambda _: None, max_retry_after: float = MAX_RETRY_AFTER,
                 timeout: int = TIMEOUT) -> None:
        super().__init__(key, alg=alg, verify_ssl=verify,  # type: ignore[arg-type]  # requests takes a CA path
                         user_agent=f"lehttpd/{__version__}", timeout=timeout)
        self._log = log
        self.max_retry_after = max_retry_after

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code == "badNonce" and attempt <= BAD_NONCE_RETRIES:
                    self._log(f"  badNonce, resending with a fresh nonce (attempt {attempt + 1})")
                    continue
                if error.code == "rateLimited" and self._wait_retry_after(error, attempt):
                    continue
                raise

    def _wait_retry_after(self, error: messages.Error, attempt: int) -> bool:
        delay = getattr(error, "_lehttpd_retry_after", None)
        if delay is None or delay > self.max_retry_after or attempt > 3:
            return False
        self._log(f"  rate limited, retrying in {delay:.0f} s as the server asks")
        time.sleep(delay)
        return True

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        attempt = 0
        while True:
            attempt += 1
            response = super()._send_request(method, url, *args, **kwargs)
            self._log(f"  {method} {url} -> {response.status_code}")
            delay = retry_after_seconds(response)
            if response.status_code == 503 and delay is not None and delay <= self.max_retry_after and attempt <= 3:
                self._log(f"  503 from the server, retrying in {delay:.0f} s as it asks")
                time.sleep(delay)
                continue
            return response

    @classmethod
    def _check_response(cls, response: requests.Response, content_type: str | None = None) -> requests.Response:
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as error:
            # Remember Retry-After on the problem so post() can honour it for rateLimited.
            error._lehttpd_retry_after = retry_after_seconds(response)  # type: ignore[attr-defined]
            raise


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
        message = f"the ACME server refused: {describe_problem(error)}"
        if error.code == "rateLimited":
            delay = getattr(error, "_lehttpd_retry_after", None)
            if delay:
                message += f" (retry after {delay:.0f} s)"
        raise AcmeServerError(message) from None
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
