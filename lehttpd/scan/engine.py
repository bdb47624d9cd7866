"""Scanning many pages: spread over every core, results streamed back in a stable order, memory bounded."""
from __future__ import annotations

import multiprocessing
import os
from typing import Iterable, Iterator

from lehttpd.scan.model import PageResult, Problem
from lehttpd.scan.pages import ScanOptions, scan_file

_options = ScanOptions()


def _init(options: ScanOptions) -> None:
    global _options
    _options = options


def _work(item: tuple[str, str]) -> PageResult:
    return scan_file(item[0], item[1], _options)


def scan_files(items: Iterable[tuple[str, str] | Problem], options: ScanOptions) -> Iterator[PageResult]:
    """Yield one PageResult per file, in input order; problems from the walk come through as empty pages.

    Workers read the files themselves, so only paths and findings cross process boundaries. Pool.imap
    queues its whole input and buffers results as fast as workers produce them, so files are handed over
    in windows: a slow reader (a terminal, a pipe) cannot make results pile up in memory.
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
    context = multiprocessing.get_context("fork")
    window = 512 * jobs
    with context.Pool(jobs, initializer=_init, initargs=(options,)) as pool:
        pending = pool.imap(_work, files[:window], chunksize=32)
        for start in range(window, len(files) + window, window):
            # start the next window before draining this one, so that workers never wait for the reader
            following = pool.imap(_work, files[start:start + window], chunksize=32) if start < len(files) else None
            yield from pending
            pending = following
