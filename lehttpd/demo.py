"""`make demo`: the main job on a local default, with nothing outside this machine.

Starts a throwaway Pebble ACME server on loopback, then runs the real `lehttpd issue` against it for a test
name, and lists the stored certificate. State lives in ./demo-state/ (wiped at every run: Pebble forgets
everything when it stops).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lehttpd.cli import run
from lehttpd.sandbox.pebble import Pebble, free_port

DEMO_NAMES = ("demo.example.test", "www.demo.example.test")


def main(state_dir: Path = Path("demo-state")) -> int:
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    config_dir = state_dir / "letsencrypt"
    print(f"== Starting a local Pebble ACME server (state in {state_dir}/)")
    pebble = Pebble(state_dir / "pebble", http_port=free_port())
    try:
        pebble.start()
        print(f"   ACME directory: {pebble.directory_url}")
        print(f"== lehttpd issue {DEMO_NAMES[0]} -d {DEMO_NAMES[1]}")
        code = run(["issue", DEMO_NAMES[0], "-d", DEMO_NAMES[1], *pebble.client_args(config_dir)])
        if code != 0:
            return code
        print("== lehttpd certificates")
        return run(["certificates", "--config-dir", str(config_dir)])
    except RuntimeError as error:  # Pebble could not start: say where its log is
        print(f"lehttpd demo: error: {error}", file=sys.stderr)
        return 5
    finally:
        pebble.stop()


if __name__ == "__main__":
    sys.exit(main())
