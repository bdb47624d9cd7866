"""`lehttpd fleet agent`: keep this node equal to etcd, serve the fleet's http-01 tokens, report in.

    pull everything ─► reload Apache if what it serves changed ─► heartbeat ─► watch from the next revision
      └─ a current/NAME change: pull NAME, reload · tokens/T put: write the token file · deleted: remove it

Apache never depends on etcd: when etcd is unreachable the agent says so once, keeps what is on disk, and
tries again every few seconds. A token is written with the same code as `--webroot` (no link followed, files
created new); tokens published by this node's own `renew` are already on disk and skipped.
"""
from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import threading
import time
from pathlib import Path

from lehttpd.console import Console
from lehttpd.errors import LehttpdError
from lehttpd.fileio import atomic_write, file_lock
from lehttpd.fleet.config import sync_path
from lehttpd.fleet.etcd import EtcdUnavailable, WatchEvent
from lehttpd.fleet.sealing import token_is_genuine
from lehttpd.fleet.shared import Fleet

RETRY = 2.0
HEARTBEAT = 5.0
RELOAD_TIMEOUT = 60
RUN_WAIT = 600.0  # a renewal run takes minutes at most; then try again


class Agent:
    def __init__(self, fleet: Fleet, console: Console) -> None:
        self.fleet, self.console = fleet, console
        self.tokens: dict[str, contextlib.ExitStack] = {}
        self.revision = 0
        self.served: dict[str, str] = {}  # lineage -> serial Apache was last reloaded with
        self.last_beat = 0.0
        self.reloader = Reloader(fleet, console)
        self.reloader.start()

    def run(self, stop_after: float | None = None) -> None:
        """Run until killed (or `stop_after` seconds, for tests)."""
        end = time.monotonic() + stop_after if stop_after else None
        try:
            self._loop(end)
        finally:
            self.close()  # token files never outlive the agent

    def _loop(self, end: float | None) -> None:
        down = False
        while end is None or time.monotonic() < end:
            try:
                if self.revision == 0:
                    self.full_sync()
                self.heartbeat()
                if down:
                    self.console.step("etcd reachable again")
                    down = False
                for revision, events in self.fleet.etcd.watch(self.fleet.config.prefix, self.revision + 1,
                                                              idle_timeout=HEARTBEAT):
                    relevant = self.apply(events)
                    self.revision = revision
                    # Not for every event: heartbeats are events too, and would answer each other forever.
                    if relevant or time.monotonic() - self.last_beat >= HEARTBEAT:
                        self.heartbeat()
            except EtcdUnavailable as error:
                if not down:
                    self.console.warn(f"{error.message}; serving what is on disk, retrying every {RETRY:.0f} s")
                down = True
                self.revision = 0  # start over with a full pull: events may have been missed
                time.sleep(RETRY)
            except LehttpdError as error:
                self.console.warn(error.message)
                time.sleep(RETRY)

    def full_sync(self) -> None:
        pointers, revision = self.fleet.pointers()
        for name, kv in sorted(pointers.items()):
            self._pull(name, kv)
        kvs, _ = self.fleet.etcd.get_prefix(self.fleet.config.k("tokens", ""))
        live = {kv.key.rsplit("/", 1)[1] for kv in kvs}
        for token in set(self.tokens) - live:
            self.tokens.pop(token).close()
        for kv in kvs:
            self._guarded(kv.key, self._token_put, kv.key.rsplit("/", 1)[1], kv)
        for kv in self.fleet.etcd.get_prefix(self.fleet.config.k("deleted", ""))[0]:
            self._guarded(kv.key, self._deleted, kv.key.rsplit("/", 1)[1], kv)
        self.revision = revision
        serials = {name: self._guarded(kv.key, _pointer_serial, kv) for name, kv in pointers.items()}
        self.reload_if_changed({name: serial for name, serial in serials.items() if serial})

    def apply(self, events: list[WatchEvent]) -> bool:
        """Apply a batch of events; True when one was about lineages or tokens (what renewers wait for)."""
        changed: dict[str, str] = {}
        relevant = False
        for event in events:
            rest = event.kv.key[len(self.fleet.config.prefix):]
            kind, _, name = rest.partition("/")
            relevant = relevant or kind in ("current", "tokens")
            if kind == "current" and event.kind == "PUT":
                self._pull(name, event.kv)
                serial = self._guarded(event.kv.key, _pointer_serial, event.kv)
                if serial:
                    changed[name] = serial
            elif kind == "tokens" and event.kind == "PUT":
                self._guarded(event.kv.key, self._token_put, name, event.kv)
            elif kind == "tokens" and event.kind == "DELETE" and name in self.tokens:
                self.tokens.pop(name).close()
            elif kind == "deleted" and event.kind == "PUT":
                self._guarded(event.kv.key, self._deleted, name, event.kv)
        if changed:
            self.reload_if_changed({**self.served, **changed})
        return relevant

    def _guarded(self, key: str, handle, *args):
        """One etcd value's handling; a value that is not what lehttpd writes (planted, damaged) is reported
        and skipped: it must not stop the agent, nor hold back the events after it."""
        try:
            return handle(*args)
        except (LehttpdError, KeyError, TypeError, ValueError) as error:
            self.console.warn(f"etcd {key}: ignored: {getattr(error, 'message', None) or repr(error)}")
            return None

    def _pull(self, name: str, kv) -> None:
        try:
            if self.fleet.pull(name, kv):
                self.console.step(f"{name}: version {kv.json()['version']} written from etcd")
        except (LehttpdError, KeyError, TypeError, ValueError) as error:  # planted or damaged: never the agent's end
            self.console.warn(f"{name}: not synced: {getattr(error, 'message', None) or repr(error)}")

    def _deleted(self, name: str, kv) -> None:
        """Another node deleted NAME from the fleet: this node's copy stays (its Apache may still use it) and
        is no longer renewed; say so once, with what to do."""
        tombstone = kv.json()
        self.served.pop(name, None)
        if tombstone.get("node") != self.fleet.config.node and self.fleet.store.exists(name):
            self.console.warn(f"{name} was deleted from the fleet by node {tombstone.get('node', '?')}: this node "
                              f"keeps its copy but no longer renews it; `lehttpd delete --cert-name {name}` here "
                              "once no site uses it")

    def _token_put(self, token: str, kv) -> None:
        from lehttpd.issuance.solvers import webroot_files

        published = kv.json()
        webroot = self.fleet.config.challenge_webroot
        if token in self.tokens or published.get("node") == self.fleet.config.node or not webroot:
            return
        if not token_is_genuine(self.fleet.fleet_key, token, published):
            self.console.warn(f"http-01 token {token[:12]}… in etcd was not published by a node of this fleet (no "
                              "valid tag from the fleet key): not served")
            return
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(webroot_files(Path(webroot), {token: published["validation"]}))
        except (LehttpdError, OSError) as error:
            self.console.warn(f"http-01 token {token[:12]}…: not written: {getattr(error, 'message', error)}")
            return
        self.tokens[token] = stack

    def reload_if_changed(self, serials: dict[str, str]) -> None:
        if serials == self.served:
            return
        self.served = dict(serials)
        if self.fleet.config.reload_command:
            self.reloader.wanted.set()
        self._write_sync_state()

    def heartbeat(self) -> None:
        beat = {"revision": self.revision, "synced_at": time.time(), "lineages": len(self.served)}
        self.last_beat = time.monotonic()
        self.fleet.etcd.put(self.fleet.config.node_key(), json.dumps(beat))
        self._write_sync_state()

    def _write_sync_state(self) -> None:
        """What this node last applied, on disk: `fleet status` shows it when etcd cannot be reached."""
        state = {"revision": self.revision, "synced_at": time.time(), "serials": self.served}
        with contextlib.suppress(LehttpdError, OSError):
            atomic_write(sync_path(self.fleet.store), json.dumps(state).encode(), 0o600)

    def close(self) -> None:
        self.reloader.stop()
        for stack in self.tokens.values():
            stack.close()
        self.tokens.clear()


def _pointer_serial(kv) -> str:
    return kv.json()["serial"]


class Reloader(threading.Thread):
    """Runs the reload command when asked, never while a `renew` run on this node is switching live/ links.

    A graceful restart re-reads every certificate and key; one caught between a lineage's new fullchain and
    its new key fails and stops Apache. So the reload holds the renewal run's lock (a run in progress is
    waited for). In its own thread: meanwhile the agent keeps serving the other nodes' tokens.
    """

    def __init__(self, fleet: Fleet, console: Console) -> None:
        super().__init__(name="reloader", daemon=True)
        self.fleet, self.console = fleet, console
        self.wanted = threading.Event()
        self._stopping = False

    def run(self) -> None:
        store = self.fleet.store
        while self.wanted.wait() and not self._stopping:
            try:
                store.ensure(".locks")
                with file_lock(store.run_lock_path(), RUN_WAIT, f"renewal of {store.config_dir}"):
                    self.wanted.clear()
                    self._reload()
            except LehttpdError as error:
                self.console.warn(f"reload postponed: {error.message}")
                time.sleep(RETRY)

    def _reload(self) -> None:
        command = self.fleet.config.reload_command or ""
        try:
            done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=RELOAD_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as error:
            self.console.warn(f"`{command}` failed: {error}")
            return
        if done.returncode != 0:
            self.console.warn(f"`{command}` failed ({done.returncode}): {done.stderr.strip()[:200]}")

    def stop(self) -> None:
        self._stopping = True
        self.wanted.set()
