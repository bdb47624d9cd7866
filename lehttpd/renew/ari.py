"""ACME Renewal Information (RFC 9773): ask the CA when to renew, and tell it which certificate we replace.

The `acme` library can fetch renewal information but picks its random point itself, so that is done here,
the decision itself staying in the pure `lehttpd.renewal`; the order carrying `replaces` is placed by
`lehttpd.issuance.order.new_order_replacing`.
"""
from __future__ import annotations

import base64
import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lehttpd.renewal import ari_point

if TYPE_CHECKING:
    from cryptography import x509

DEFAULT_RECHECK = dt.timedelta(hours=6)  # RFC 9773 4.3.3: when the server sends no Retry-After
MIN_RECHECK = dt.timedelta(minutes=1)
MAX_RECHECK = dt.timedelta(days=1)
TIMEOUT = 10


@dataclass(frozen=True)
class RenewalInfo:
    start: dt.datetime
    end: dt.datetime
    point: dt.datetime
    next_check: dt.datetime
    explanation: str | None


def cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 4.1: base64url(authority key identifier) "." base64url(DER serial number), no padding."""
    from cryptography import x509

    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    if not aki:
        raise ValueError("the certificate has no authority key identifier")
    serial = cert.serial_number
    serial_der = serial.to_bytes(math.ceil((serial.bit_length() + 1) / 8), "big", signed=True)
    return f"{_b64(aki)}.{_b64(serial_der)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def renewal_info_url(server: str, verify: bool | str) -> str | None:
    """The directory's renewalInfo URL, or None when the server offers no ARI."""
    import requests  # lazy: a run with nothing to ask costs no import

    response = requests.get(server, timeout=TIMEOUT, verify=verify)
    response.raise_for_status()
    url = response.json().get("renewalInfo")
    return url if isinstance(url, str) and url.startswith("https://") else None


def fetch(base_url: str, cert: x509.Certificate, verify: bool | str, now: dt.datetime,
          rng: random.Random | None = None) -> RenewalInfo:
    """GET renewalInfo/<cert id>; the point inside the window is drawn here, once, and then remembered."""
    import requests

    response = requests.get(f"{base_url.rstrip('/')}/{cert_id(cert)}", timeout=TIMEOUT, verify=verify)
    response.raise_for_status()
    body = response.json()
    window = body["suggestedWindow"]
    start, end = _parse_time(window["start"]), _parse_time(window["end"])
    if end < start:
        raise ValueError(f"suggested window ends before it starts ({start} > {end})")
    recheck = _retry_after(response.headers.get("Retry-After"), now) or DEFAULT_RECHECK
    recheck = min(max(recheck, MIN_RECHECK), MAX_RECHECK)
    explanation = body.get("explanationURL")
    return RenewalInfo(start=start, end=end, point=ari_point(start, end, (rng or random).random()),
                       next_check=now + recheck, explanation=explanation if isinstance(explanation, str) else None)


def _parse_time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    if not value:
        return None
    try:
        return dt.timedelta(seconds=max(0, int(value)))
    except ValueError:
        from email.utils import parsedate_to_datetime
        try:
            return parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None


def refresh(candidates: list, config_dir, verify_for, workers: int, log, now: dt.datetime,
            cache=None) -> tuple[list, set[str]]:
    """Bring every candidate's ARI advice up to date; returns (candidates, servers that offer ARI).

    The directory is read once per server (and then remembered in `cache`, a renew.state.ServerCache, for a few hours); renewalInfo
    is fetched only for certificates whose stored advice is for another serial or past its Retry-After. A
    failure is a warning: the lifetime rule decides then.
    """
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from lehttpd.renew.state import AriAdvice, save_state

    servers: dict[str, str | None] = {}
    for server in sorted({c.server for c in candidates}):
        known, url = cache.renewal_info_url(server, now) if cache is not None else (False, None)
        if known:
            servers[server] = url
            continue
        try:
            servers[server] = renewal_info_url(server, verify_for(server))
        except Exception as error:  # noqa: BLE001 (any failure: fall back to the lifetime rule)
            log(f"renewal information: cannot read the directory of {server}: {str(error)[:160]}")
            servers[server] = None
            continue
        if cache is not None:
            cache.remember_server(server, servers[server], now)

    def stale(candidate) -> bool:
        advice = candidate.state.ari
        return (servers.get(candidate.server) is not None and candidate.lineage.not_after > now and
                (advice is None or advice.serial != hex(candidate.lineage.serial) or advice.next_check <= now))

    def update(candidate):
        from cryptography import x509

        from lehttpd.fileio import read_regular

        try:  # a regular file only, never more than a size cap (the link was checked by the store)
            cert = x509.load_pem_x509_certificate(read_regular(candidate.lineage.cert_path, follow=True)[0])
            info = fetch(servers[candidate.server], cert, verify_for(candidate.server), now)
        except Exception as error:  # noqa: BLE001
            log(f"renewal information for {candidate.name}: {str(error)[:160]}; using the lifetime rule")
            return candidate
        advice = AriAdvice(serial=hex(candidate.lineage.serial), start=info.start, end=info.end,
                           point=info.point, next_check=info.next_check, explanation=info.explanation)
        state = replace(candidate.state, ari=advice)
        save_state(config_dir, candidate.name, state)
        return replace(candidate, state=state)

    todo = [c for c in candidates if stale(c)]
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
            updated = {c.name: c for c in pool.map(update, todo)}
        candidates = [updated.get(c.name, c) for c in candidates]
    offering = {server for server, url in servers.items() if url}
    # Advice from a server that no longer offers ARI (or for an old serial) is not used.
    candidates = [c if c.server in offering else replace(c, state=replace(c.state, ari=None))
                  for c in candidates]
    return candidates, offering
