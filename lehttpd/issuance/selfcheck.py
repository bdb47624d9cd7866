"""Before the CA is told to validate: fetch each token the way the CA will, from this machine, and compare.

GET http://NAME/.well-known/acme-challenge/TOKEN is sent to the local server on the http-01 port (a local
address NAME resolves to, else loopback) with `Host: NAME`, redirects not followed. A mismatch is reported the
way a person would debug it: "got 301 to https://… from 127.0.0.1:80". Separately, a name that resolves to no
address of this machine is only a warning (a load balancer or NAT may forward to it).
"""
from __future__ import annotations

import concurrent.futures
import http.client
import ipaddress
import socket
import time
from dataclasses import dataclass

from lehttpd.issuance.solvers import CHALLENGE_PREFIX

TIMEOUT = 3.0
RESOLVE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Probe:
    """What one name must answer: the token path and the key authorization expected as its body."""

    name: str
    token: str
    expected: str


@dataclass(frozen=True)
class Answer:
    probe: Probe
    where: str  # "127.0.0.1:80"
    status: int | None
    location: str | None
    matches: bool
    error: str | None = None

    @property
    def redirects_to_same_path(self) -> bool:
        return self.status in (301, 302, 303, 307, 308) and bool(self.location) and \
            self.location.split("?")[0].endswith(CHALLENGE_PREFIX + self.probe.token)

    def describe(self) -> str:
        if self.error is not None:
            return f"no answer from {self.where} ({self.error})"
        if self.status in (301, 302, 303, 307, 308):
            return f"got {self.status} to {self.location} from {self.where}"
        if self.status == 200:
            return f"got 200 with another body from {self.where}"
        return f"got {self.status} from {self.where}"


def fetch(probe: Probe, address: str, port: int) -> Answer:
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    host = f"[{probe.name}]" if ":" in probe.name else probe.name
    connection = http.client.HTTPConnection(address, port, timeout=TIMEOUT)
    try:
        connection.request("GET", CHALLENGE_PREFIX + probe.token,
                           headers={"Host": host, "User-Agent": "lehttpd self-check", "Connection": "close"})
        response = connection.getresponse()
        body = response.read(4096)
    except (OSError, http.client.HTTPException) as error:
        return Answer(probe, where, None, None, False, str(error) or type(error).__name__)
    finally:
        connection.close()
    matches = response.status == 200 and body.decode("utf-8", "replace").strip() == probe.expected
    return Answer(probe, where, response.status, response.getheader("Location"), matches)


def check(probes: list[Probe], port: int, address: str = "", wait: float = 0.0) -> list[Answer]:
    """The answers that do not match. With `wait`, mismatches are asked again until that many seconds have
    passed (a reload still taking effect), but no longer than one more round once any name matched."""
    deadline = time.monotonic() + wait
    todo, delay, reload_seen, last_round = list(probes), 0.01, False, False
    while True:
        answers = [fetch(probe, target_address(probe.name, address), port) for probe in todo]
        failed = [answer for answer in answers if not answer.matches]
        reload_seen = reload_seen or len(failed) < len(answers)
        if not failed or time.monotonic() >= deadline or last_round:
            return failed
        last_round = reload_seen  # the new configuration is live: one more round for the others, then judge
        todo = [answer.probe for answer in failed]
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def target_address(name: str, address: str = "") -> str:
    """Where to ask for NAME: the address the server listens on, a local address NAME resolves to, else loopback."""
    if address and address not in ("*", "0.0.0.0", "::"):
        return address.strip("[]")
    local = [ip for ip in resolve(name) if is_local(ip)]
    return local[0] if local else "127.0.0.1"


def resolve(name: str) -> list[str]:
    """The addresses a name resolves to here ([] when it does not, or not within a couple of seconds)."""
    try:
        return [str(ipaddress.ip_address(name))]
    except ValueError:
        pass
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(socket.getaddrinfo, name, None, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=RESOLVE_TIMEOUT)
    except (OSError, UnicodeError, concurrent.futures.TimeoutError):
        return []
    finally:
        pool.shutdown(wait=False)
    return list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))


def is_local(address: str) -> bool:
    """True when this machine holds the address (it can bind to it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
        return True
    except OSError:
        return False


def locality_warning(name: str) -> str | None:
    """A warning when the name resolves, but to no address of this machine (None when it does not resolve at
    all: the CA then fails with a DNS error that says so itself)."""
    addresses = resolve(name)
    if addresses and not any(is_local(address) for address in addresses):
        return (f"{name} resolves to {', '.join(addresses[:3])}, no address of this machine; "
                "the CA will validate wherever that points (fine behind a load balancer or NAT)")
    return None
