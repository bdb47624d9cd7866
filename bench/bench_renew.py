#!/usr/bin/env python3
"""Bench: `lehttpd renew` against `certbot renew`, side by side, on the same lineages and the same local Pebble.

    .venv/bin/python bench/bench_renew.py [--lineages 200] [--forced 200] [--certbot PATH] [--repeat 3]

Makes N lineages on one local Pebble (with lehttpd's own pipeline, in parallel), copies the configuration
folder so that both tools start from the same state, then times:

  (a) none due: `lehttpd renew --quiet` (what cron runs) vs `certbot renew --no-random-sleep-on-renew`
      (median of --repeat runs; lehttpd's first run, which reads the ACME directory, is shown apart)
  (b) all due:  `lehttpd renew --force` vs `certbot renew --force-renewal --no-random-sleep-on-renew`
      on --forced lineages (certbot renews serially at about 2.6 s each: 200 take some 9 minutes)

and prints wall time, peak memory (max RSS of the process) and the ratios, against the goals of issue 3:
(a) under 1 s for 200 lineages (issue 8: under 0.25 s, with no cache but the directory's), (b) at least 4x
faster than certbot.
certbot comes from $LEHTTPD_CERTBOT, /tmp/certbot-venv/bin/certbot or PATH; without it only lehttpd is timed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lehttpd.console import Console  # noqa: E402
from lehttpd.issuance import solvers  # noqa: E402
from lehttpd.issuance.account import Registration  # noqa: E402
from lehttpd.issuance.order import obtain  # noqa: E402
from lehttpd.model import ChallengeSetup, IssueRequest  # noqa: E402
from lehttpd.sandbox.pebble import Pebble, free_port  # noqa: E402
from lehttpd.store import CertStore  # noqa: E402

LEHTTPD = [sys.executable, "-m", "lehttpd"]
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  # GNU time (Debian package 'time')


@dataclass(frozen=True)
class Timing:
    wall: float
    peak_mib: float
    status: int


def run_measured(command: list[str], env: dict[str, str]) -> Timing:
    """Wall time and peak RSS of one command, measured by GNU time (a small process, so the bench's own memory
    does not leak into the child's high-water mark through fork, as it would with os.wait4 from here)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        wrapper = [TIME, "-f", "%M", "-o", report.name] if TIME else []
        started = time.perf_counter()
        result = subprocess.run([*wrapper, *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        lines = report.read().strip().splitlines()
    peak = int(lines[-1]) / 1024 if TIME and lines and lines[-1].isdigit() else float("nan")
    if result.returncode != 0:
        print(f"  ! {' '.join(command[:4])} ... exited {result.returncode}: "
              f"{result.stderr.decode()[-500:]}", file=sys.stderr)
    return Timing(wall, peak, result.returncode)


def make_lineages(config: Path, count: int, pebble: Pebble) -> None:
    store, console, registration = CertStore(config), Console(quiet=True), Registration(agree_tos=True)
    requests = [IssueRequest(names=(f"site{i:04d}.bench.test",), server=pebble.directory_url,
                             ca_bundle=pebble.ca_bundle,
                             challenge=ChallengeSetup(http_port=pebble.http_port, http_address="127.0.0.1"))
                for i in range(count)]
    with solvers.standalone(pebble.http_port, "127.0.0.1") as solver:
        obtain(requests[0], store, console, registration, solver=solver)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda r: obtain(r, store, console, registration, solver=solver), requests[1:]))


def copy_state(source: Path, target: Path, keep: int | None = None) -> Path:
    """A copy of the whole configuration folder; renewal files name their own folder (certbot reads those paths)."""
    shutil.copytree(source, target, symlinks=True)
    for conf in (target / "renewal").glob("*.conf"):
        conf.write_text(conf.read_text().replace(f"{source}/", f"{target}/"))
    if keep is not None:
        for conf in sorted((target / "renewal").glob("*.conf"))[keep:]:
            name = conf.name[:-len(".conf")]
            conf.unlink()
            shutil.rmtree(target / "live" / name)
            shutil.rmtree(target / "archive" / name)
    return target


def find_certbot(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("LEHTTPD_CERTBOT"), "/tmp/certbot-venv/bin/certbot",
                      shutil.which("certbot")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def certbot_command(certbot: str, config: Path, *extra: str) -> list[str]:
    work = config.parent / f"{config.name}-work"
    return [certbot, "renew", "--no-random-sleep-on-renew", "-n", "--config-dir", str(config),
            "--work-dir", str(work), "--logs-dir", str(work / "logs"), *extra]


def median(timings: list[Timing]) -> Timing:
    walls = sorted(timings, key=lambda t: t.wall)
    middle = walls[len(walls) // 2]
    return Timing(statistics.median(t.wall for t in timings), max(t.peak_mib for t in timings), middle.status)


def new_versions(config: Path) -> int:
    store = CertStore(config)
    return sum(1 for name in store.names() if store.current_version(name) >= 2)


def row(label: str, ours: Timing, theirs: Timing | None) -> str:
    line = f"{label:<28} lehttpd {ours.wall:7.2f} s {ours.peak_mib:6.1f} MiB"
    if theirs is not None:
        line += (f"   certbot {theirs.wall:7.2f} s {theirs.peak_mib:6.1f} MiB"
                 f"   certbot/lehttpd {theirs.wall / ours.wall:6.1f}x time, "
                 f"{theirs.peak_mib / ours.peak_mib:4.1f}x memory")
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lineages", type=int, default=200)
    parser.add_argument("--forced", type=int, default=None, help="lineages in the all-due run (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the none-due case (median)")
    parser.add_argument("--workers", type=int, default=8, help="lehttpd renew --workers")
    parser.add_argument("--certbot", help="certbot command (default: see the docstring)")
    parser.add_argument("--no-certbot", action="store_true", help="time lehttpd only")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    forced = min(args.forced or args.lineages, args.lineages)
    certbot = None if args.no_certbot else find_certbot(args.certbot)
    work = Path(tempfile.mkdtemp(prefix="lehttpd-bench-renew-"))
    try:
        with Pebble(work / "pebble", http_port=free_port()) as pebble:
            env = {**os.environ, "REQUESTS_CA_BUNDLE": str(pebble.ca_bundle)}
            started = time.perf_counter()
            make_lineages(work / "state", args.lineages, pebble)
            print(f"{args.lineages} lineages issued on a local Pebble in {time.perf_counter() - started:.1f} s "
                  f"(certbot: {certbot or 'not found, lehttpd only'})")
            figures = run_cases(args, forced, certbot, work, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, forced, figures)
    return 0


def run_cases(args, forced: int, certbot: str | None, work: Path, env: dict) -> dict:
    ours_a, theirs_a = copy_state(work / "state", work / "a-lehttpd"), copy_state(work / "state", work / "a-certbot")
    none_due = [*LEHTTPD, "renew", "--quiet", "--config-dir", str(ours_a)]
    lehttpd_cold = run_measured(none_due, env)  # reads the ACME directory (then kept for 6 h)
    lehttpd_a = median([run_measured(none_due, env) for _ in range(args.repeat)])  # the whole decision, each time
    certbot_a = median([run_measured(certbot_command(certbot, theirs_a), env) for _ in range(args.repeat)]) \
        if certbot else None
    ours_b = copy_state(work / "state", work / "b-lehttpd", forced)
    lehttpd_b = run_measured([*LEHTTPD, "renew", "--quiet", "--force", "--workers", str(args.workers),
                              "--config-dir", str(ours_b)], env)
    renewed_b = new_versions(ours_b)
    certbot_b, certbot_renewed = None, None
    if certbot:
        theirs_b = copy_state(work / "state", work / "b-certbot", forced)
        certbot_b = run_measured(certbot_command(certbot, theirs_b, "--force-renewal"), env)
        certbot_renewed = new_versions(theirs_b)
    return {"a": (lehttpd_a, certbot_a), "cold": lehttpd_cold, "b": (lehttpd_b, certbot_b),
            "renewed": (renewed_b, certbot_renewed)}


def report(args, forced: int, figures: dict) -> None:
    (lehttpd_a, certbot_a), (lehttpd_b, certbot_b) = figures["a"], figures["b"]
    renewed, certbot_renewed = figures["renewed"]
    print(row(f"(a) {args.lineages} none due", lehttpd_a, certbot_a))
    print(row("    first run (directory read)", figures["cold"], certbot_a))
    print(row(f"(b) {forced} all due (forced)", lehttpd_b, certbot_b))
    print(f"    renewed: lehttpd {renewed}/{forced}" +
          (f", certbot {certbot_renewed}/{forced}" if certbot_renewed is not None else ""))
    print(f"    lehttpd per certificate: {lehttpd_b.wall / max(forced, 1) * 1000:.0f} ms"
          + (f"; certbot: {certbot_b.wall / max(forced, 1) * 1000:.0f} ms" if certbot_b else ""))
    goals = [f"(a) under 0.25 s: {'yes' if lehttpd_a.wall < 0.25 else 'NO'}"]
    if certbot_b:
        goals.append(f"(b) >= 4x: {'yes' if certbot_b.wall / lehttpd_b.wall >= 4 else 'NO'}")
    print("goals: " + ", ".join(goals))
    if args.json:
        def doc(t):
            return None if t is None else {"wall_s": round(t.wall, 3), "peak_mib": round(t.peak_mib, 1),
                                           "status": t.status}
        args.json.write_text(json.dumps({
            "lineages": args.lineages, "forced": forced, "renewed": {"lehttpd": renewed, "certbot": certbot_renewed},
            "none_due": {"lehttpd": doc(lehttpd_a), "lehttpd_first_run": doc(figures["cold"]),
                         "certbot": doc(certbot_a)},
            "all_due": {"lehttpd": doc(lehttpd_b), "certbot": doc(certbot_b)}}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
