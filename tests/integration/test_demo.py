"""`make demo` runs the main job end to end: this runs the same code in a temporary folder."""
import subprocess
import sys


def test_demo_runs_the_whole_job(tmp_path):
    result = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from lehttpd.demo import main;"
                             " sys.exit(main(Path('state')))"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "SANs:    demo.example.test, www.demo.example.test" in out
    assert "HTTPS with SNI verified for demo.example.test, www.demo.example.test" in out
    assert "-> HTTP/1.1 200 OK over TLSv1.3" in out and "Strict-Transport-Security: max-age=63072000" in out
    assert "-> HTTP/1.1 301 Moved Permanently, Location: https://demo.example.test:" in out
    assert "/2011/hello.html?page=2" in out
    assert "exit code 8" in out and "fixed 5 reference(s); 2 left" in out
    # lehttpd check: A with the reason (third-party mixed content) and its fix, then A+ once that fix is applied
    assert "grade A  score" in out and "blockable mixed content on the home page" in out
    assert "->  lehttpd scan --vhost demo.example.test --fix  (or lehttpd harden --uir)" in out
    assert "grade A+  score" in out
    assert "www.demo.example.test          127.0.0.1:" in out and " (lineage) " in out
    # Everything the demo started is stopped: no Apache of its tree, no Pebble of its state folder.
    leftovers = subprocess.run(["pgrep", "-af", f"lehttpd-demo-apache-|{tmp_path}/state/pebble"],
                               capture_output=True, text=True).stdout
    assert leftovers.strip() == "", leftovers
