"""Which way `lehttpd issue` answers http-01, and the one line that says why.

--webroot, --standalone and --apache decide. Without them: when the http-01 port is free, the built-in server;
when an Apache that lehttpd can control (found as the Apache commands find it, or --apache-ctl) holds it, that
Apache (a temporary include, no downtime); when something else holds it, the standalone server's own error.
On a fleet node with a challenge webroot (`fleet join --challenge-webroot`): that folder.
"""
from __future__ import annotations

import errno
import socket
import time
from dataclasses import replace
from pathlib import Path

from lehttpd.errors import LehttpdError
from lehttpd.model import ChallengeSetup

APACHE_NAMES = ("apache2", "httpd", "apache")


def choose(setup: ChallengeSetup, forced: str | None, pre_hook: bool = False,
           fleet_webroot: Path | None = None) -> tuple[ChallengeSetup, str]:
    """(the setup to use, why) — `forced` is "apache", "standalone", "webroot" or None. A pre-hook is taken to
    free the port (the recipe that stops Apache around the order), so it means standalone. A fleet node with a
    challenge webroot answers from it: every node's Apache serves that folder, the agents write tokens there."""
    port = setup.http_port
    if fleet_webroot is not None and forced is None and not pre_hook:
        return (replace(setup, mode="webroot", webroot=fleet_webroot, webroot_map=()),
                f"this fleet node's challenge webroot {fleet_webroot}, which every node's Apache serves")
    if forced == "webroot":
        roots = dict.fromkeys([setup.webroot, *(root for _, root in setup.webroot_map)])
        return replace(setup, mode="webroot"), " ".join(f"--webroot {root}" for root in roots) + " given"
    if forced == "standalone":
        return replace(setup, mode="standalone"), "--standalone given"
    if forced == "apache":
        _check_apache(setup.apache_ctl)
        return replace(setup, mode="apache"), "--apache given"
    if pre_hook:
        return replace(setup, mode="standalone"), "a --pre-hook is given to free the port"
    owner = port_holder(port)
    if owner is None:
        return replace(setup, mode="standalone"), f"port {port} is free, so lehttpd's own server answers"
    name, pid = owner
    if name in APACHE_NAMES and _controls(setup.apache_ctl, pid):
        return replace(setup, mode="apache"), (f"{name} (pid {pid}) holds port {port} and lehttpd can reload it, "
                                               "so it answers through a temporary include")
    # the standalone server's bind error names the process and the ways out
    hint = "; give --apache-ctl for the Apache that runs" if name in APACHE_NAMES else ""
    return replace(setup, mode="standalone"), (f"port {port} is held by {name} (pid {pid}), not an Apache "
                                               f"lehttpd controls{hint}")


def port_holder(port: int) -> tuple[str, int] | None:
    """(process name, pid) of the parent-most process listening on the port, or None when it is free."""
    from lehttpd.issuance.solvers import port_owner

    if _bindable(port):
        return None  # free: spares the walk over every process's sockets in /proc
    owner = port_owner(port)
    if owner is None:
        return None
    name, _, rest = owner.partition(" (pid ")
    pid = int(rest.rstrip(")"))
    parent = _parent(pid)
    while name in APACHE_NAMES and parent and _comm(parent) == name:  # workers share the socket: the parent
        pid, parent = parent, _parent(parent)
    return name, pid


PORT_RELEASE_WAIT = 10.0  # `apache2ctl stop` returns before Apache's workers let go of the port


def wait_until_free(port: int, timeout: float = PORT_RELEASE_WAIT) -> bool:
    """After a pre-hook that stops the server on the port: poll until the port can be bound, up to `timeout`."""
    deadline = time.monotonic() + timeout
    while not _bindable(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT from the last order is no owner
        try:
            sock.bind(("", port))
        except OSError as error:
            return error.errno != errno.EADDRINUSE
    return True


def _controls(apache_ctl: str | None, pid: int) -> bool:
    """Does the Apache that the control program reads run as `pid` (its pid file names it)?"""
    try:
        info = _check_apache(apache_ctl)
    except LehttpdError:
        return False
    from lehttpd.apache.challenge import running_pid

    return running_pid(info) == pid


def _check_apache(apache_ctl: str | None):
    from lehttpd.apache.challenge import apache_info, conf_dir

    info = apache_info(apache_ctl)
    conf_dir(info)  # raises when lehttpd does not know where a server-level include goes
    return info


def _parent(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]) or None
    except (OSError, IndexError, ValueError):
        return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
