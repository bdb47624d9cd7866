"""Scanning many pages: spread over every core, results streamed back in a stable order, memory bounded.

Each worker is a forked process that is sent CHUNK file paths at a time, with the chunk's number; it reads
the files itself and answers with the pages as plain tuples. The parent keeps AHEAD chunks in flight per worker, so that no worker waits for it, and hands out a
chunk only while fewer than WINDOW chunks per worker are ahead of the reader: a slow reader (a terminal, a
pipe) cannot make results pile up in memory. multiprocessing.Pool did the same with three threads, a lock
and a message per task in the parent, which cost as much CPU as a fifth of a worker.
"""
from __future__ import annotations

import collections
import gc
import multiprocessing
import os
from multiprocessing.connection import Connection, wait
from typing import Iterable, Iterator

from lehttpd.scan.model import PageResult, Problem
from lehttpd.scan.pages import ScanOptions, scan_file, scan_packed, unpack

CHUNK = 32   # pages per message: one round trip per ~600 KB of pages, not one per page
AHEAD = 2    # chunks given to a worker at a time: it starts the next while the parent reads the last
WINDOW = 16  # chunks per worker scanned ahead of the reader, at most


def scan_files(items: Iterable[tuple[str, str] | Problem], options: ScanOptions) -> Iterator[PageResult]:
    """Yield one PageResult per file, in input order; problems from the walk come first, as empty pages."""
    files: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, Problem):
            yield PageResult(item.page, "", (), (item,))
        else:
            files.append(item)
    jobs = options.jobs or os.cpu_count() or 1
    if jobs == 1 or len(files) < 64:
        for item in files:
            yield scan_file(item[0], item[1], options)
        return
    chunks = [files[start:start + CHUNK] for start in range(0, len(files), CHUNK)]
    with _Workers(chunks, options, jobs) as workers:
        for index, chunk in enumerate(chunks):
            for (path, relative), page in zip(chunk, workers.result(index)):
                yield unpack(path, relative, page)


def _scan_chunk(chunk: list[tuple[str, str]], options: ScanOptions) -> list[tuple]:
    return [scan_packed(path, relative, options) for path, relative in chunk]


def _serve(conn: Connection, options: ScanOptions) -> None:
    """A worker: scan the chunk that comes in as (number, files), send back (number, pages); None or EOF
    ends it."""
    # What the parent held at fork time stays shared: the cyclic GC would otherwise write into every
    # inherited object's header and copy its memory page by page.
    gc.freeze()
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
    """The worker processes, what each one holds, and the chunks received ahead of the reader."""

    def __init__(self, chunks: list[list[tuple[str, str]]], options: ScanOptions, jobs: int) -> None:
        self.chunks, self.options = chunks, options
        self.window = WINDOW * jobs
        self.next = 0                    # the next chunk to hand out
        self.done: dict[int, list] = {}  # chunk number → pages, received and not yet read
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

    def result(self, index: int) -> list:
        """The pages of chunk `index`, in order; chunks held by a worker that died are scanned here."""
        while index not in self.done:
            self._hand_out(index)
            if not self.held:  # no worker left
                self.done[index] = _scan_chunk(self.chunks[index], self.options)
                break
            for conn in wait(list(self.held)):
                self._receive(conn)
        self._hand_out(index + 1)
        return self.done.pop(index)

    def _hand_out(self, reading: int) -> None:
        for conn, held in list(self.held.items()):
            while len(held) < AHEAD and self.next < len(self.chunks) and self.next - reading < self.window:
                held.append(self.next)
                self.next += 1
                try:
                    conn.send((held[-1], self.chunks[held[-1]]))  # the paths, a few KB: workers never
                    # touch the parent's list, so their memory does not grow with the number of pages
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
            self.done[index] = _scan_chunk(self.chunks[index], self.options)
