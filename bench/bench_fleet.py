#!/usr/bin/env python3
"""Bench: a fleet of three nodes on one three-member etcd cluster (issue 14's scale goals).

    .venv/bin/python bench/bench_fleet.py [--lineages 10000] [--forced 100] [--repeat 3]

(a) nothing due at scale: --lineages lineages made locally with `cryptography` (90-day certificates, so none is
    due) on node 0, `fleet init`, `fleet join` on nodes 1 and 2 (timed), then `lehttpd renew --no-ari --quiet`
    on the three nodes at once: the first round (each node reads every lineage and writes its renewal index)
    shown apart, then the median of --repeat rounds per node, wall time and CPU time (user + system; the test
    machine has 2 cores, so three runs at once share them). Goal: under 2 s per node.
(b) forced renewal on Pebble: --forced lineages in the fault-test lab (Pebble, three Apache behind haproxy,
    agents), `renew --force` on the three nodes at once: wall time, and how many lineages each node renewed
    (the goal: spread across the nodes). --forced 0 skips it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from lehttpd.model import CertificateFiles, ChallengeSetup, IssueRequest  # noqa: E402
from lehttpd.renewal_conf import render  # noqa: E402
from lehttpd.sandbox.etcd import EtcdCluster  # noqa: E402
from lehttpd.store import CertStore  # noqa: E402

LEHTTPD = [sys.executable, "-m", "lehttpd"]


def make_lineages(config_dir: Path, count: int) -> None:
    """`count` not-due lineages signed by one local CA (one key shared: only the not-due path is measured)."""
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bench fleet CA")])
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    store = CertStore(config_dir)

    def one(index: int) -> None:
        name = f"site{index:05d}.example"
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=89))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .sign(key, hashes.SHA256()))
        request = IssueRequest(names=(name,), server="https://127.0.0.1:14000/dir",
                               challenge=ChallengeSetup(http_port=80))
        with store.lock(name):
            store.save_version(name, CertificateFiles(cert.public_bytes(serialization.Encoding.PEM), b"", key_pem),
                               render(request, "bench", store.config_dir))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    seconds, _cpu, done = timed_cpu(args)
    return seconds, done


def timed_cpu(args: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall time, CPU time (user + system, from the child's rusage) and the finished process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:  # files: a pipe could fill up
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(args, code, out.read(), err.read())
    return seconds, usage.ru_utime + usage.ru_stime, done


def _figures(runs: list[tuple[float, float]]) -> str:
    wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
    return f"median {wall:.2f} s wall, {cpu:.2f} s CPU (runs: {', '.join(f'{w:.2f}/{c:.2f}' for w, c in runs)})"


def not_due(count: int, repeat: int, base: Path) -> None:
    with EtcdCluster(base / "etcd", size=3) as etcd:
        nodes = [base / f"n{i}" for i in range(3)]
        started = time.perf_counter()
        make_lineages(nodes[0], count)
        print(f"(a) {count} lineages made on node 0 in {time.perf_counter() - started:.1f} s")
        flags = ["--etcd", ",".join(etcd.endpoints)]
        seconds, done = timed([*LEHTTPD, "fleet", "init", *flags, "--node", "n0", "--config-dir", str(nodes[0])])
        assert done.returncode == 0, done.stderr
        print(f"    fleet init (import {count}): {seconds:.1f} s")
        for i in (1, 2):
            seconds, done = timed([*LEHTTPD, "fleet", "join", *flags, "--node", f"n{i}", "--fleet-key",
                                   str(nodes[0] / ".lehttpd" / "fleet.key"), "--config-dir", str(nodes[i])])
            assert done.returncode == 0, done.stderr
            print(f"    fleet join n{i} (write {count} from etcd): {seconds:.1f} s")
        renew = [*LEHTTPD, "renew", "--no-ari", "--quiet", "--json", "--config-dir"]
        rounds: list[list[tuple[float, float]]] = [[], [], []]
        for round_ in range(repeat + 1):  # the first run of each node reads everything and writes its index
            with ThreadPoolExecutor(3) as pool:
                results = list(pool.map(lambda d: timed_cpu([*renew, str(d)]), nodes))
            for i, (seconds, cpu, done) in enumerate(results):
                assert done.returncode == 0, done.stderr
                assert not any(o["status"] == "renewed" for o in json.loads(done.stdout)["lineages"])
                if round_ == 0:
                    print(f"    renew, nothing due, 3 nodes at once, first run (no index yet): n{i} {seconds:.2f} s "
                          f"wall, {cpu:.2f} s CPU")
                else:
                    rounds[i].append((seconds, cpu))
        for i, runs in enumerate(rounds):
            print(f"    renew, nothing due, 3 nodes at once: n{i} {_figures(runs)}; goal < 2 s")
        alone = [timed_cpu([*renew, str(nodes[0])])[:2] for _ in range(repeat)]
        settings = nodes[0] / ".lehttpd" / "fleet.json"
        settings.rename(settings.with_suffix(".off"))  # the same store, not a fleet node: today's baseline
        plain = [timed_cpu([*renew, str(nodes[0])])[:2] for _ in range(repeat)]
        settings.with_suffix(".off").rename(settings)
        print(f"    renew, nothing due, n0 alone: {_figures(alone)} as a fleet node; {_figures(plain)} for the same "
              "store outside a fleet")


def forced(count: int, base: Path) -> None:
    from tests.integration.fleet_lab import start_lab

    started = time.perf_counter()
    lab = start_lab(base / "lab", count, validity=3600)
    print(f"(b) lab with {count} lineages on Pebble up in {time.perf_counter() - started:.1f} s")
    try:
        started = time.perf_counter()
        procs = [node.renew("--force", "--quiet") for node in lab.nodes]
        codes = [p.wait(timeout=1800) for p in procs]
        wall = time.perf_counter() - started
        by_node: dict[str, int] = {}
        for name in lab.names:
            current = json.loads(lab.client().get(f"/lehttpd/current/{name}").value)["version"]
            for version in range(2, current + 1):
                node = json.loads(lab.client().get(f"/lehttpd/versions/{name}/{version:08d}").value)["node"]
                by_node[node] = by_node.get(node, 0) + 1
        behind = lab.wait_served_everywhere(10)
        print(f"    renew --force on 3 nodes at once: {wall:.1f} s, exit codes {codes}; new versions by node: "
              f"{dict(sorted(by_node.items()))}; nodes not serving the new versions after 10 s: {behind or 'none'}")
    finally:
        lab.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lineages", type=int, default=10000)
    parser.add_argument("--forced", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        if args.lineages:
            not_due(args.lineages, args.repeat, Path(tmp))
        if args.forced:
            forced(args.forced, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
