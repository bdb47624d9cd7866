#!/usr/bin/env python3
"""lehttpd vs certbot's Apache plugin on Debian-layout trees with 10, 100 and 1,000 port-80 vhosts (one file each).

Two jobs, each a whole process on the same tree: list the vhosts, and install one certificate with a redirect
into one of them. Neither tool reloads Apache (nothing listens; both run Apache's config test): the ctl wrapper
given to both turns `graceful`/`restart` into no-ops so nothing can ever bind 80/443.

    .venv/bin/python bench/bench_apache.py [--sizes 10,100,1000] [--certbot /tmp/certbot-venv/bin/certbot]

certbot comes from PyPI in a throwaway virtualenv outside the repository (its column is skipped without it):
    python3 -m venv /tmp/certbot-venv && /tmp/certbot-venv/bin/pip install certbot certbot-apache
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))
from apache_instance import ENVVARS, make_lineage  # noqa: E402

SITE = "<VirtualHost *:80>\n    ServerName site{i}.example\n    ServerAlias www.site{i}.example\n" \
       "    DocumentRoot /var/www/site{i}\n    ErrorLog ${{APACHE_LOG_DIR}}/site{i}-error.log\n" \
       "    CustomLog ${{APACHE_LOG_DIR}}/site{i}-access.log combined\n</VirtualHost>\n"
CTL = """#!/bin/sh
export APACHE_CONFDIR='{conf}'
export APACHE_STARTED_BY_SYSTEMD=1
case "$1" in graceful|restart|start|stop|-k) exit 0;; esac
exec /usr/sbin/apache2ctl "$@"
"""
ENMOD = "#!/bin/sh\nexport APACHE_CONFDIR='{conf}'\nexport APACHE_STATE_DIRECTORY='{state}'\nexec /usr/sbin/{tool} \"$@\"\n"


def make_tree(base: Path, count: int) -> Path:
    conf = base / "apache2-bench"
    shutil.copytree("/etc/apache2", conf, symlinks=True)
    for sub in ("run", "lock", "log", "a2state"):
        (base / "state" / sub).mkdir(parents=True, exist_ok=True)
    (conf / "envvars").write_text(ENVVARS.format(state=base / "state"))
    for link in (conf / "sites-enabled").iterdir():
        link.unlink()
    with open(conf / "apache2.conf", "a") as handle:
        handle.write("\nServerName localhost\n")
    for i in range(count):
        (conf / "sites-available" / f"site{i}.example.conf").write_text(SITE.format(i=i))
        (conf / "sites-enabled" / f"site{i}.example.conf").symlink_to(f"../sites-available/site{i}.example.conf")
    for name, body in (("apache2ctl", CTL.format(conf=conf)),
                       ("a2enmod", ENMOD.format(conf=conf, state=base / "state" / "a2state", tool="a2enmod")),
                       ("a2dismod", ENMOD.format(conf=conf, state=base / "state" / "a2state", tool="a2dismod"))):
        (base / name).write_text(body)
        (base / name).chmod(0o755)
    return conf


def timed(argv: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})},
                            stdin=subprocess.DEVNULL, timeout=900)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} … exit {result.returncode}: {result.stderr[-400:]}")
    return wall


def apache_dump(base: Path) -> float:
    """Apache's own discovery on the tree (the one -t run lehttpd makes), the floor under any listing."""
    return timed([str(base / "apache2ctl"), "-t", "-D", "DUMP_VHOSTS", "-D", "DUMP_RUN_CFG", "-D", "DUMP_INCLUDES",
                  "-D", "DUMP_MODULES"])


def lehttpd_jobs(base: Path, conf: Path, target: int, lineage) -> tuple[float, float]:
    ctl = ["--apache-ctl", str(base / "apache2ctl")]
    cli = [sys.executable, "-m", "lehttpd"]
    listing = timed(cli + ["apache", "vhosts"] + ctl)
    install = timed(cli + ["install", "--cert-name", lineage.name, "--config-dir", str(lineage.config_dir),
                           "--redirect", "--no-reload", "--work-dir", str(base / "work")] + ctl)
    assert (conf / "sites-available" / f"site{target}.example-le-ssl.conf").exists()
    return listing, install


def certbot_jobs(certbot: str, base: Path, conf: Path, target: int, lineage) -> tuple[float, float]:
    common = [certbot, "--non-interactive", "--config-dir", str(base / "cb" / "config"),
              "--work-dir", str(base / "cb" / "work"), "--logs-dir", str(base / "cb" / "logs"),
              "--apache-server-root", str(conf), "--apache-vhost-root", str(conf / "sites-available"),
              "--apache-ctl", str(base / "apache2ctl"), "--apache-enmod", str(base / "a2enmod"),
              "--apache-dismod", str(base / "a2dismod")]
    # `plugins --init --prepare` loads the whole tree through Augeas and enumerates the vhosts (prepare()).
    listing = timed(common[:1] + ["plugins", "--init", "--prepare", "--apache"] + common[1:])
    install = timed(common + ["install", "--apache", "--redirect", "-d", f"site{target}.example",
                              "--cert-name", lineage.name, "--cert-path", str(lineage.cert_path),
                              "--key-path", str(lineage.key_path), "--chain-path", str(lineage.chain_path),
                              "--fullchain-path", str(lineage.fullchain_path)])
    made = list((conf / "sites-available").glob(f"site{target}.example-le-ssl.conf"))
    assert made and "RewriteRule" in (conf / "sites-available" / f"site{target}.example.conf").read_text(), \
        "certbot did not install"
    return listing, install


def measure(size: int, tool: str, certbot: str | None, runs: int) -> tuple[float, ...]:
    best: tuple[float, ...] = (float("inf"), float("inf"), float("inf"))
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-apache-") as folder:
            base = Path(folder)
            conf = make_tree(base, size)
            target = size // 2
            lineage = make_lineage(base / "le", f"site{target}.example",
                                   (f"site{target}.example", f"www.site{target}.example"))
            if tool == "lehttpd":
                floor = apache_dump(base)
                result = (*lehttpd_jobs(base, conf, target, lineage), floor)
            else:
                result = (*certbot_jobs(certbot, base, conf, target, lineage), float("inf"))
            best = tuple(min(b, r) for b, r in zip(best, result))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--runs", type=int, default=3, help="best of N for lehttpd (certbot: 1)")
    parser.add_argument("--certbot", default="/tmp/certbot-venv/bin/certbot")
    args = parser.parse_args()
    certbot = args.certbot if Path(args.certbot).exists() else None
    if certbot is None:
        print(f"certbot not found at {args.certbot}: its column is skipped")
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start; "
          f"best of {args.runs} for lehttpd and Apache's dump, one certbot run")
    print(f"{'vhosts':>7} | {'apache -t dump':>14} | {'lehttpd list':>12} {'install':>8} | {'certbot list':>12} "
          f"{'install':>8} | ratio list/install")
    for size in (int(s) for s in args.sizes.split(",")):
        ours = measure(size, "lehttpd", None, args.runs)
        theirs = None
        if certbot:
            try:
                theirs = measure(size, "certbot", certbot, 1)
            except RuntimeError as error:
                print(f"  certbot failed at {size}: {error}")
        row = f"{size:>7} | {ours[2]:>13.2f}s | {ours[0]:>11.2f}s {ours[1]:>7.2f}s |"
        if theirs:
            row += f" {theirs[0]:>11.2f}s {theirs[1]:>7.2f}s | {theirs[0] / ours[0]:.1f}x / {theirs[1] / ours[1]:.1f}x"
        else:
            row += f" {'-':>12} {'-':>8} |"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
