"""Scanning many pages: spread over every core, results streamed back in a stable order, memory bounded."""
from __future__ import annotations

import multiprocessing
import os
from typing import Iterable, Iterator

from lehttpd.scan.model import PageResult, Problem
from lehttpd.scan.pages import ScanOptions, scan_file, scan_packed, unpack

CHUNK = 32   # pages per task: one round trip to a worker per ~600 KB of pages, not one per page
WINDOW = 16  # tasks in flight per worker: enough to keep it busy, few enough to keep memory flat

_options = ScanOptions()


def _init(options: ScanOptions) -> None:
    global _options
    _options = options


def _work(chunk: list[tuple[str, str]]) -> list[tuple]:
    return [scan_packed(path, relative, _options) for path, relative in chunk]


def scan_files(items: Iterable[tuple[str, str] | Problem], options: ScanOptions) -> Iterator[PageResult]:
    """Yield one PageResult per file, in input order; problems from the walk come through first, as empty pages.

    Workers read the files themselves and send back plain tuples for a chunk of pages at a time, so only
    paths and findings cross process boundaries, in few messages. Pool.imap queues its whole input and
    buffers results as fast as workers produce them, so chunks are handed over in windows: a slow reader
    (a terminal, a pipe) cannot make results pile up in memory.
    """
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
    window = WINDOW * jobs
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs, initializer=_init, initargs=(options,)) as pool:
        pending = pool.imap(_work, chunks[:window])
        for start in range(window, len(chunks) + window, window):
            # start the next window before draining this one, so that workers never wait for the reader
            following = pool.imap(_work, chunks[start:start + window]) if start < len(chunks) else None
            for chunk_start, packed in zip(range(start - window, start), pending):
                for (path, relative), page in zip(chunks[chunk_start], packed):
                    yield unpack(path, relative, page)
            pending = following
