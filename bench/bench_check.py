#!/usr/bin/env python3
"""Bench: `lehttpd check` beside testssl.sh on the same endpoint, and `check --all` on 100 names.

    .venv/bin/python bench/bench_check.py [--repeat 5] [--testssl full|quick|none] [--names 100]

A private Apache (Debian's apache2, own tree, loopback ports) serves a lineage installed by `lehttpd install
--redirect`; for each of lehttpd's profiles (`harden --profile intermediate|old --hsts`) it times:

  - `lehttpd check` as a user runs it (a new process each time: median of --repeat runs, interpreter start
    included), and the probes alone in-process (median);
  - testssl.sh on the same endpoint: a full run (`full`, as the issue's 40-90 s figure), or only protocols and
    suites per protocol (`quick`); and whether both found the same protocols and the same suites per protocol.

Then `check --all` on --names names served by one vhost. Goals (issue 12): one endpoint under 1 s on loopback,
at least 40x faster than testssl.sh's full run with the same findings; 100 names under 10 s.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from apache_instance import apache_available, free_port, make_instance, make_lineage  # noqa: E402
from check_sites import add_ssl_site, parse_testssl, run_testssl  # noqa: E402

from lehttpd.check.probe import CheckOptions, check  # noqa: E402

LEHTTPD = [sys.executable, "-m", "lehttpd"]


def lehttpd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LEHTTPD, *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, cwd=REPO)


def time_cli(args: list[str], repeat: int) -> tuple[float, dict]:
    walls, report = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        result = lehttpd(*args)
        walls.append(time.perf_counter() - started)
        report = json.loads(result.stdout)
    return statistics.median(walls), report


def bench_profile(inst, lineage, profile: str, repeat: int, testssl: str, work: Path) -> None:
    done = lehttpd("harden", "--profile", profile, "--hsts", "--apache-ctl", str(inst.ctl), "--https-port",
                   str(inst.https_port), "--work-dir", str(work))
    if done.returncode != 0:
        raise SystemExit(f"harden failed: {done.stderr}")
    args = ["check", f"127.0.0.1:{inst.https_port}", "--sni", "a.test", "--ca-bundle", str(lineage.chain_path),
            "--config-dir", str(lineage.config_dir), "--http-port", str(inst.http_port), "--json"]
    wall, report = time_cli(args, repeat)
    options = CheckOptions(ca_bundle=lineage.chain_path, config_dir=lineage.config_dir, http_port=inst.http_port)
    inner = statistics.median(_timed(lambda: check("127.0.0.1", inst.https_port, "a.test", options))
                              for _ in range(repeat))
    suites = sum(len(p["suites"]) for p in report["protocols"])
    print(f"{profile:<13} lehttpd check: grade {report['grade']:<3} {wall:6.2f} s per run (process), "
          f"{inner:5.3f} s probes in-process; {len(report['offered_protocols'])} protocols, {suites} suites")
    if testssl == "none" or not shutil.which("testssl"):
        print(f"{'':<13} testssl.sh: not run")
        return
    if testssl == "full":  # the reference figure: testssl.sh with no option (no suites per protocol)
        started = time.perf_counter()
        full = run_testssl(inst.https_port, "a.test", work / f"testssl-full-{profile}.json", full=True)
        reference = time.perf_counter() - started
        rating = next((e["finding"] for e in full if e["id"] == "overall_grade"), "none (testssl.sh < 3.1)")
        print(f"{'':<13} testssl.sh full run: {reference:6.1f} s, grade {rating}; "
              f"{reference / wall:5.0f}x the time of lehttpd check")
    started = time.perf_counter()
    entries = run_testssl(inst.https_port, "a.test", work / f"testssl-{profile}.json")
    quick = time.perf_counter() - started
    offered, by_protocol = parse_testssl(entries)
    ours = {p["protocol"]: {int(s["code"], 16) for s in p["suites"]} for p in report["protocols"] if p["offered"]}
    same = offered == set(report["offered_protocols"]) and by_protocol == ours
    print(f"{'':<13} testssl.sh --protocols --cipher-per-proto: {quick:6.1f} s ({quick / wall:4.0f}x); "
          f"same protocols and suites per protocol as lehttpd: {'yes' if same else 'NO'}")
    if not same:
        print(f"{'':<13}   testssl: {sorted(offered)} {by_protocol}\n{'':<13}   lehttpd: {ours}")


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def bench_all(base: Path, names: int, repeat: int) -> None:
    inst = make_instance(base / "many")
    wanted = tuple(f"n{i}.bench.test" for i in range(names))
    lineage = make_lineage(base / "many-le", wanted[0], wanted)
    port = free_port()
    aliases = "".join(f"    ServerAlias {name}\n" for name in wanted[1:])
    add_ssl_site(inst, wanted[0], port, lineage.fullchain_path, lineage.key_path, aliases)
    inst.start()
    try:
        args = ["check", "--all", "--apache-ctl", str(inst.ctl), "--config-dir", str(lineage.config_dir),
                "--ca-bundle", str(lineage.chain_path), "--http-port", str(inst.http_port), "--json"]
        wall, report = time_cli(args, repeat)
        served = [r for r in report["rows"] if r["kind"] == "served"]
        print(f"check --all: {len(served)} names in {wall:.2f} s (median of {repeat}, one process each)")
    finally:
        inst.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--testssl", choices=("full", "quick", "none"), default="full")
    parser.add_argument("--names", type=int, default=100)
    args = parser.parse_args()
    if not apache_available():
        print("needs Debian's apache2 and root")
        return 1
    base = Path(tempfile.mkdtemp(prefix="lehttpd-bench-check-"))
    inst = make_instance(base / "site")
    try:
        inst.add_site("a.test")
        lineage = make_lineage(base / "le", "a.test", ("a.test", "www.a.test"))
        inst.start()
        done = lehttpd("install", "--cert-name", "a.test", "--config-dir", str(lineage.config_dir), "--redirect",
                       "--apache-ctl", str(inst.ctl), "--https-port", str(inst.https_port),
                       "--work-dir", str(base / "work"))
        if done.returncode != 0:
            raise SystemExit(f"install failed: {done.stderr}")
        for profile in ("intermediate", "old"):
            bench_profile(inst, lineage, profile, args.repeat, args.testssl, base)
        inst.stop()
        bench_all(base, args.names, args.repeat)
    finally:
        inst.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
