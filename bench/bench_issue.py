#!/usr/bin/env python3
"""Issue N certificates for distinct names against one local Pebble, with lehttpd and with certbot.

Each certificate is one whole process, as a user or a script would run it (`lehttpd issue` vs
`certbot certonly --standalone`), the first one also registering the account. Prints wall times, the peak
resident memory of the largest process, and the ratios.

    .venv/bin/python bench/bench_issue.py [--count 20] [--certbot /tmp/certbot-venv/bin/certbot]

certbot comes from PyPI in a throwaway virtualenv outside the repository:
    python3 -m venv /tmp/certbot-venv && /tmp/certbot-venv/bin/pip install certbot
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lehttpd.sandbox.pebble import Pebble, free_port  # noqa: E402


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, int, float]:
    """(wall seconds, peak RSS in MB, exit code, CPU seconds) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(f"  FAILED ({code}): {' '.join(argv[:4])} …: {proc.stderr.read().decode()[-300:]}", file=sys.stderr)
    return wall, usage.ru_maxrss // 1024, code, usage.ru_utime + usage.ru_stime


def bench_tool(name: str, make_argv, count: int, env: dict[str, str]) -> dict:
    walls, peaks, cpus, failures = [], [], [], 0
    for i in range(count):
        wall, peak, code, cpu = run_measured(make_argv(i), env)
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
        failures += code != 0
    later = sorted(walls[1:]) or walls
    return {"tool": name, "first": walls[0], "total": sum(walls), "per_cert": sum(walls) / count,
            "median": later[len(later) // 2], "fastest": later[0], "cpu": sum(cpus) / count, "peak_mb": max(peaks), "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--certbot", default=shutil.which("certbot") or "/tmp/certbot-venv/bin/certbot")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lehttpd-bench-issue-"))
    results = []
    with Pebble(work / "pebble", http_port=free_port()) as pebble:
        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(pebble.ca_bundle)}
        lehttpd_dir = work / "lehttpd"
        results.append(bench_tool("lehttpd", lambda i: [
            sys.executable, "-m", "lehttpd", "issue", f"le{i}.bench.test", "--quiet",
            *pebble.client_args(lehttpd_dir)], args.count, env))
        if Path(args.certbot).exists():
            certbot_dir = work / "certbot"
            results.append(bench_tool("certbot", lambda i: [
                args.certbot, "certonly", "--standalone", "-d", f"cb{i}.bench.test", "--server",
                pebble.directory_url, "--http-01-port", str(pebble.http_port), "--http-01-address", "127.0.0.1",
                "--non-interactive", "--agree-tos", "--register-unsafely-without-email",
                "--config-dir", str(certbot_dir / "etc"), "--work-dir", str(certbot_dir / "work"),
                "--logs-dir", str(certbot_dir / "logs")], args.count, env))
        else:
            print(f"certbot not found at {args.certbot}: printing lehttpd's figures only", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.count} certificates, one process each, against one local Pebble "
          f"({os.cpu_count()} cores)")
    # On a shared machine the mean follows the neighbours' load; the median and the fastest of the certificates
    # after the first (which registers the account), and the CPU time of the process, show what the tool costs.
    print(f"{'tool':<9} {'first cert':>10} {'total':>9} {'per cert':>9} {'median':>8} {'fastest':>8} "
          f"{'CPU/cert':>8} {'peak RSS':>9} {'failures':>8}")
    for r in results:
        print(f"{r['tool']:<9} {r['first']:>9.2f}s {r['total']:>8.2f}s {r['per_cert']:>8.3f}s {r['median']:>7.3f}s "
              f"{r['fastest']:>7.3f}s {r['cpu']:>7.3f}s {r['peak_mb']:>6d} MB {r['failures']:>8d}")
    if len(results) == 2:
        le, cb = results
        print(f"certbot / lehttpd: wall per certificate {cb['per_cert'] / le['per_cert']:.1f}x (fastest "
              f"{cb['fastest'] / le['fastest']:.1f}x, CPU {cb['cpu'] / le['cpu']:.1f}x), "
              f"peak memory {cb['peak_mb'] / max(le['peak_mb'], 1):.1f}x "
              f"(goal: lehttpd at most 1/4 of certbot's time per certificate, and less memory)")
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
