"""Start-up cost of the command line and of the operations log: median wall time of whole processes.

    .venv/bin/python bench/bench_cli.py [--runs 15] [--source DIR]

`--source` runs another checkout's lehttpd (e.g. an older commit from `git archive`) for comparison.
Prints one line per case; asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "lehttpd --version": ["--version"],
    "lehttpd issue --help (parser of one area)": ["issue", "--help"],
    "lehttpd certificates (nothing stored; no log)": ["certificates", "--config-dir", "{tmp}"],
    "lehttpd delete (logged: opens, writes, closes the log)": ["delete", "--cert-name", "absent", "--yes",
                                                               "--config-dir", "{tmp}", "--log-dir", "{tmp}/log"],
}


# `lehttpd` from SOURCE, whatever the virtualenv's editable install points at (its finder would win otherwise).
LAUNCHER = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
            "sys.path.insert(0, sys.argv.pop(1)); from lehttpd.entry import main; sys.exit(main())")


def measure(argv: list[str], source: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", LAUNCHER, str(source), *argv], capture_output=True, cwd=source)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv in CASES.items():
            seconds = measure([a.replace("{tmp}", tmp) for a in argv], args.source.resolve(), args.runs)
            print(f"{label:<58} {seconds * 1000:7.1f} ms (median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
