"""Scanning many pages: spread over every core, results streamed back in a stable order, memory bounded.

Each worker is a forked process that is sent CHUNK file paths at a time, with the chunk's number; it reads
the files itself and answers with the pages as plain tuples. The parent reads its input as the scan goes,
keeps AHEAD chunks in flight per worker, so that no worker waits for it, and hands out a chunk only while
fewer than WINDOW chunks per worker are ahead of the reader: a slow reader (a terminal, a pipe) cannot make
results pile up in memory, and a big site's list of paths is never held whole. multiprocessing.Pool did the
same with three threads, a lock and a message per task in the parent, which cost about a sixth of a
worker's CPU.
"""
from __future__ import annotations

import collections
import gc
import itertools
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection, wait
from typing import Iterable, Iterator

from lehttpd.scan.model import PageResult, Problem
from lehttpd.scan.pages import ScanOptions, scan_file, scan_packed, unpack

CHUNK = 32   # pages per message: one round trip per ~600 KB of pages, not one per page
AHEAD = 2    # chunks given to a worker at a time: it starts the next while the parent reads the last
WINDOW = 16  # chunks per worker scanned ahead of the reader, at most


def scan_files(items: Iterable[tuple[str, str] | Problem], options: ScanOptions) -> Iterator[PageResult]:
    """Yield one PageResult per file, in input order, problems from the walk as empty pages. The items are
    read as the scan goes, so that memory does not grow with their number."""
    items = iter(items)
    jobs = options.jobs or os.cpu_count() or 1
    head: list = []
    files = 0
    for item in items if jobs > 1 else ():
        head.append(item)
        files += not isinstance(item, Problem)
        if files == 64:
            break
    if files < 64:  # one process, or too few files to be worth the workers
        for item in itertools.chain(head, items):
            yield _serial(item, options)
        return
    with _Workers(itertools.chain(head, items), options, jobs) as workers:
        yield from workers.results()


def _serial(item: tuple[str, str] | Problem, options: ScanOptions) -> PageResult:
    if isinstance(item, Problem):
        return PageResult(item.page, "", (), (item,))
    return scan_file(item[0], item[1], options)


def _scan_chunk(chunk: list[tuple[str, str]], options: ScanOptions) -> list[tuple]:
    return [scan_packed(path, relative, options) for path, relative in chunk]


def _serve(conn: Connection, options: ScanOptions) -> None:
    """A worker: scan the chunk that comes in as (number, files), send back (number, pages); None or EOF
    ends it."""
    # What the parent held at fork time stays shared: the cyclic GC would otherwise write into every
    # inherited object's header and copy its memory page by page.
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers itself
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        index, chunk = task
        try:
            conn.send((index, _scan_chunk(chunk, options)))
        except Exception as error:  # a bug, not bad input (that is a Problem): the parent raises it
            conn.send((index, RuntimeError(f"scan worker failed on {chunk[0][1]}…: {error!r}")))


class _Workers:
    """The worker processes, what each one holds, and the chunks read from the input and not yet yielded."""

    def __init__(self, items: Iterator[tuple[str, str] | Problem], options: ScanOptions, jobs: int) -> None:
        self.items, self.options = items, options
        self.window = WINDOW * jobs
        self.next = 0                    # the number of the next chunk to read from the input
        self.exhausted = False
        self.entries: dict[int, list] = {}  # chunk number → its input items (files and problems)
        self.done: dict[int, list] = {}     # chunk number → pages, received and not yet yielded
        self.held: dict[Connection, collections.deque] = {}  # worker → chunks handed to it, oldest first
        self.procs: dict[Connection, multiprocessing.process.BaseProcess] = {}
        context = multiprocessing.get_context("fork")
        for _ in range(jobs):
            mine, theirs = context.Pipe()
            proc = context.Process(target=_serve, args=(theirs, options), daemon=True)
            proc.start()
            theirs.close()
            self.held[mine], self.procs[mine] = collections.deque(), proc

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc_info) -> None:
        for conn, proc in self.procs.items():
            if exc_info[0] is None:
                try:
                    conn.send(None)
                except OSError:
                    pass
            else:
                proc.terminate()
        for conn, proc in self.procs.items():
            proc.join(5)
            if proc.exitcode is None:
                proc.terminate()
                proc.join()
            conn.close()

    def results(self) -> Iterator[PageResult]:
        index = 0
        while True:
            self._hand_out(index)
            if index == self.next:  # not handed out: the end of the input, or no worker left
                entries = None if self.exhausted else self._read_chunk()
                if entries is None:
                    return
                self.entries[index], self.next = entries, index + 1
                self.done[index] = _scan_chunk(_files(entries), self.options)
            while index not in self.done:
                for conn in wait(list(self.held)):
                    self._receive(conn)
                self._hand_out(index)
            pages = iter(self.done.pop(index))
            for item in self.entries.pop(index):
                if isinstance(item, Problem):
                    yield _serial(item, self.options)
                else:
                    yield unpack(item[0], item[1], next(pages))
            index += 1

    def _read_chunk(self) -> list | None:
        """The next input items up to CHUNK files, or None at the end of the input."""
        entries: list = []
        files = 0
        for item in self.items:
            entries.append(item)
            files += not isinstance(item, Problem)
            if files == CHUNK:
                break
        return entries or None

    def _hand_out(self, reading: int) -> None:
        for conn, held in list(self.held.items()):
            while len(held) < AHEAD and not self.exhausted and self.next - reading < self.window:
                entries = self._read_chunk()
                if entries is None:
                    self.exhausted = True
                    return
                index = self.next
                self.next += 1
                self.entries[index] = entries
                held.append(index)
                try:
                    conn.send((index, _files(entries)))
                except OSError:
                    self._lost(conn)
                    break

    def _receive(self, conn: Connection) -> None:
        try:
            index, pages = conn.recv()
        except (EOFError, OSError):
            self._lost(conn)
            return
        if isinstance(pages, BaseException):
            raise pages
        self.held[conn].remove(index)
        self.done[index] = pages

    def _lost(self, conn: Connection) -> None:
        """A worker died (killed, out of memory): the chunks it held are scanned here."""
        for index in self.held.pop(conn):
            self.done[index] = _scan_chunk(_files(self.entries[index]), self.options)


def _files(entries: list) -> list[tuple[str, str]]:
    return [item for item in entries if not isinstance(item, Problem)]
