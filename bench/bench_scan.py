"""Benchmark of `lehttpd scan` against a deterministic blog corpus with ground truth, beside two references
measured in the same run: a naive `grep -E 'src="http://'` and selectolax's lexbor parsing every page and
doing nothing else.

    .venv/bin/python bench/bench_scan.py              # 20,000 pages of about 20 KB
    .venv/bin/python bench/bench_scan.py --pages 2000 # a quick run

The lexbor reference needs selectolax, which lehttpd does not depend on: `.venv/bin/pip install -e '.[bench]'`
(without it that line of the report says so and the other figures are still measured).

Memory is the peak of the summed RSS of the scanning process and its workers, sampled every 20 ms. CPU is the
user+system time of the scanning process and its workers: on a shared machine, the figure to compare.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from corpus import SITE, write_corpus  # noqa: E402


def _scan_child(root: str, jobs: int) -> None:
    """Runs in its own process, so that its memory is measured alone: scan, and print one line per finding
    (page, class, URL as written) then a JSON line of figures. The parent compares with the truth."""
    from lehttpd.scan.engine import scan_files
    from lehttpd.scan.pages import ScanOptions, walk

    out = sys.stdout
    cpu_before = sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f) for f in ("ru_utime", "ru_stime"))
    started = time.perf_counter()
    size = pages = findings = 0
    for result in scan_files(walk(root), ScanOptions(site_url=SITE, jobs=jobs)):
        pages += 1
        size += result.size
        findings += len(result.findings)
        for f in result.findings:
            out.write(f"{result.page}\t{f.cls}\t{f.written}\n")
    wall = time.perf_counter() - started
    # CPU seconds of this process and of its workers (joined by now): a figure a busy machine does not bend
    cpu = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for field in ("ru_utime", "ru_stime")) - cpu_before
    out.write(json.dumps({"wall": wall, "cpu": cpu, "bytes": size, "pages": pages, "findings": findings}) + "\n")


def _tree_rss(pid: int) -> int:
    """Summed RSS (bytes) of a process and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo += [int(c) for c in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def run_lehttpd(root: str, truth: dict, jobs: int) -> dict:
    child = subprocess.Popen([sys.executable, __file__, "--child", root, str(jobs)],
                             stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(child.stdout))
    reader.start()
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_rss(child.pid))
        time.sleep(0.02)
    reader.join()
    result = json.loads(lines.pop())
    got = Counter(tuple(line.rstrip("\n").split("\t", 2)) for line in lines)
    real = Counter((page, cls, url) for page, refs in truth.items() for cls, url in refs)
    result.update(peak_rss=peak, missed=sum((real - got).values()), false=sum((got - real).values()))
    return result


def run_grep(root: str, truth: dict) -> dict:
    started = time.perf_counter()
    out = subprocess.run(["grep", "-rhoE", 'src="http://[^"]*', root], capture_output=True, text=True).stdout
    wall = time.perf_counter() - started
    hits = Counter(line[5:] for line in out.splitlines())
    real = Counter(url for refs in truth.values() for _, url in refs)
    return {"wall": wall, "hits": sum(hits.values()), "missed": sum((real - hits).values()),
            "false": sum((hits - real).values())}


INSTALL_SELECTOLAX = "selectolax is not installed: .venv/bin/pip install -e '.[bench]' to measure the lexbor reference"


def run_lexbor(root: str) -> dict | None:
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError:
        return None

    from lehttpd.scan.pages import walk

    paths = [item[0] for item in walk(root) if isinstance(item, tuple) and item[0].endswith(".html")]
    started = time.perf_counter()
    size = 0
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        size += len(data)
        LexborHTMLParser(data)
    return {"wall": time.perf_counter() - started, "bytes": size, "pages": len(paths)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20000)
    parser.add_argument("--jobs", type=int, default=0, help="lehttpd worker processes (default: one per core)")
    parser.add_argument("--keep", help="generate the corpus here and keep it")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _scan_child(args.child[0], int(args.child[1]))
    with tempfile.TemporaryDirectory(prefix="lehttpd-bench-") as tmp:
        root = args.keep or os.path.join(tmp, "corpus")
        started = time.perf_counter()
        truth = write_corpus(root, args.pages)
        real = sum(len(refs) for refs in truth.values())
        print(f"corpus: {args.pages} pages, {real} real references, generated in {time.perf_counter() - started:.1f} s"
              f" ({os.cpu_count()} cores)")
        _report(run_lehttpd(root, truth, args.jobs), run_grep(root, truth), run_lexbor(root), real)


def _report(scan: dict, grep: dict, lexbor: dict | None, real: int) -> None:
    mb = scan["bytes"] / 1e6
    exact = scan["missed"] == 0 and scan["false"] == 0 and scan["findings"] == real
    print(f"corpus size: {mb:.0f} MB")
    print(f"lehttpd scan : {scan['wall']:6.2f} s  {mb / scan['wall']:6.1f} MB/s  {scan['pages'] / scan['wall']:7.0f} pages/s"
          f"  peak RSS {scan['peak_rss'] / 2**20:.0f} MB  findings {scan['findings']}  "
          f"ground truth: {'exact' if exact else 'NOT exact'} (missed {scan['missed']}, false {scan['false']})")
    print(f"lehttpd scan CPU: {scan['cpu']:6.2f} CPU-s  {mb / scan['cpu']:6.1f} MB per CPU-second "
          "(whatever the load; 2 idle cores give at most twice that)")
    print(f"grep -E 'src=\"http://' : {grep['wall']:6.2f} s  {mb / grep['wall']:6.1f} MB/s  "
          f"{grep['hits']} hits, missed {grep['missed']} real references, {grep['false']} false")
    if lexbor is None:
        print(f"lexbor parse only: not measured; {INSTALL_SELECTOLAX}")
        return
    lmb = lexbor["bytes"] / 1e6
    print(f"lexbor parse only (1 core): {lexbor['wall']:6.2f} s  {lmb / lexbor['wall']:6.1f} MB/s  "
          f"{lexbor['pages'] / lexbor['wall']:7.0f} pages/s")


if __name__ == "__main__":
    main()
