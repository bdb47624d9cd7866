"""A per-lineage lock in etcd, held through a lease and fenced by the revision that created it.

Acquire: grant a lease of `ttl` seconds, then one transaction "if locks/NAME does not exist, create it attached
to my lease". A thread refreshes the lease every ttl/3; if the process dies (or pauses longer than ttl), etcd
drops the lease and with it the lock key, and the next node's transaction succeeds.

Fencing: every write made under the lock is a transaction that also compares locks/NAME's mod_revision with
the revision our create got, and its lease with ours. A process that paused past its lease and woke up
finds the key gone or re-created (another revision, another lease): its write is refused, never applied.
"""
from __future__ import annotations

import json
import os
import threading
import time

from lehttpd.errors import LockHeldError
from lehttpd.fleet.etcd import (Etcd, EtcdUnavailable, compare_absent, compare_lease, compare_mod, header_revision,
                                op_delete, op_get, op_put, unb64)

POLL = 0.5


class LostLock(LockHeldError):
    """The lease ran out (or the lock key was taken over) while we held it: nothing more is written."""


class LeaseLock:
    def __init__(self, etcd: Etcd, key: str, owner: str, ttl: int) -> None:
        self.etcd, self.key, self.owner, self.ttl = etcd, key, owner, max(2, ttl)
        self.lease = 0
        self.revision = 0
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    def acquire(self, wait: float) -> None:
        """Take the lock, waiting up to `wait` seconds while another node holds it (or its lease runs out)."""
        deadline = time.monotonic() + wait
        self.lease = self.etcd.grant(self.ttl)
        holder = json.dumps({"node": self.owner, "pid": os.getpid(), "since": time.time()})
        try:
            while True:
                ok, answer = self.etcd.txn([compare_absent(self.key)], [op_put(self.key, holder, self.lease)],
                                           [op_get(self.key)])
                if ok:
                    self.revision = header_revision(answer)
                    break
                if time.monotonic() >= deadline:
                    raise LockHeldError(f"etcd lock {self.key} is held by {_holder(answer)}; gave up after {wait:.0f} s")
                self.etcd.keepalive(self.lease)
                time.sleep(POLL)
        except BaseException:
            self.etcd.revoke(self.lease)
            raise
        self._keeper = threading.Thread(target=self._keep, name=f"lease {self.key}", daemon=True)
        self._keeper.start()

    def fence(self) -> list[dict]:
        """Comparisons that make a transaction apply only while this lock is still ours."""
        return [compare_mod(self.key, self.revision), compare_lease(self.key, self.lease)]

    def release(self) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        try:
            self.etcd.txn(self.fence(), [op_delete(self.key)])
            self.etcd.revoke(self.lease)
        except EtcdUnavailable:
            pass  # the lease expires by itself

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if self.etcd.keepalive(self.lease) <= 0:
                    return  # expired: fencing refuses any later write
            except EtcdUnavailable:
                continue  # retried at the next tick; the lease may still be alive

    def __enter__(self) -> "LeaseLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(answer: dict) -> str:
    try:
        kv = answer["responses"][0]["response_range"]["kvs"][0]
        holder = json.loads(unb64(kv["value"]))
        return f"node {holder['node']} (PID {holder['pid']})"
    except (KeyError, IndexError, ValueError):
        return "another node"
