"""`check --all` without Apache (--no-apache): the store's lineages, expiry, renewal state, Prometheus textfile."""
import datetime as dt
import io
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent.parent / "integration"))
from apache_instance import make_lineage  # noqa: E402

from lehttpd.check.metrics import render  # noqa: E402
from lehttpd.check.watch import Row  # noqa: E402
from lehttpd.cli import run  # noqa: E402
from lehttpd.console import Console  # noqa: E402
from lehttpd.renew.state import RenewState, save_state  # noqa: E402


def call(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def test_lineages_inside_the_warning_window_fail_and_show_the_last_renewal_failure(tmp_path):
    make_lineage(tmp_path, "soon.test", ("soon.test",))  # throwaway certificates last 30 days
    now = dt.datetime.now(dt.timezone.utc)
    save_state(tmp_path, "soon.test", RenewState().failed("rate limited", now, now + dt.timedelta(hours=1)))
    code, out, err = call("check", "--all", "--no-apache", "--config-dir", str(tmp_path), "--json",
                          "--warn-days", "31")
    assert code == 8
    row = json.loads(out)["rows"][0]
    assert row["name"] == "soon.test" and row["kind"] == "lineage" and 29 < row["days_left"] < 31
    assert row["last_error"] == "rate limited" and "backing off" in row["due_reason"]
    assert "expires in" in row["problems"][0]

    code, out, _ = call("check", "--all", "--no-apache", "--config-dir", str(tmp_path))
    assert code == 0  # 30 days left, outside the default 14-day window
    assert "soon.test" in out and "last failure" in out and "rate limited" in out

    code, out, err = call("check", "--all", "--no-apache", "--config-dir", str(tmp_path), "--quiet",
                          "--warn-days", "31")
    assert code == 8 and out == "" and "soon.test: expires in" in err  # cron mails only the problems


def test_prometheus_textfile_is_written_atomically_and_replaces_a_planted_link(tmp_path):
    make_lineage(tmp_path / "le", "a.test", ("a.test",))
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    target = tmp_path / "metrics.prom"
    os.symlink(victim, target)
    code, _, err = call("check", "--all", "--no-apache", "--config-dir", str(tmp_path / "le"),
                        "--prometheus", str(target))
    assert code == 0, err
    assert victim.read_text() == "keep me\n" and not target.is_symlink()
    assert 'lehttpd_certificate_expiry_timestamp_seconds{name="a.test",source="lineage",lineage="a.test"}' \
        in target.read_text()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_a_broken_lineage_is_its_own_row_and_a_fifo_in_archive_hangs_nothing(tmp_path):
    """The monitor is what tells anyone a renewal broke: one bad lineage must not stop (or hang) it."""
    import subprocess

    for name in ("linked.test", "fifo.test", "fine.test"):
        make_lineage(tmp_path, name, (name,))
    (tmp_path / "live/linked.test/cert.pem").unlink()
    (tmp_path / "live/linked.test/cert.pem").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "archive/fifo.test/cert7.pem")
    result = subprocess.run([sys.executable, "-m", "lehttpd", "check", "--all", "--no-apache", "--json",
                             "--config-dir", str(tmp_path)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 8, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["rows"]}
    assert set(rows) == {"linked.test", "fifo.test", "fine.test"}
    assert "outside" in rows["linked.test"]["failure"] and rows["linked.test"]["problems"]
    assert rows["fine.test"]["problems"] == [] and rows["fifo.test"]["problems"] == []


def test_a_lineage_renew_would_pass_by_is_a_problem_long_before_it_expires(tmp_path):
    """No renewal file, or one renew skips (another user could change it): the certificate would expire silently."""
    make_lineage(tmp_path, "orphan.test", ("orphan.test",), renewable=False)
    make_lineage(tmp_path, "loose.test", ("loose.test",))
    make_lineage(tmp_path, "fine.test", ("fine.test",))
    os.chmod(tmp_path / "renewal/loose.test.conf", 0o666)
    code, out, err = call("check", "--all", "--no-apache", "--config-dir", str(tmp_path), "--json")
    assert code == 8, err
    rows = {row["name"]: row for row in json.loads(out)["rows"]}
    assert "not renewable" in rows["orphan.test"]["problems"][0]
    (loose,) = rows["loose.test"]["problems"]
    assert "renew skips it" in loose and f"chmod go-w {tmp_path / 'renewal/loose.test.conf'}" in loose
    assert rows["fine.test"]["problems"] == []


def test_metric_labels_are_escaped():
    row = Row("served", 'we"ird\\name', "127.0.0.1:443", grade="B")
    text = render([row], now=0)
    assert 'lehttpd_check_grade{name="we\\"ird\\\\name",endpoint="127.0.0.1:443",grade="B"} 5' in text
    assert "# TYPE lehttpd_check_grade gauge" in text and text.endswith("lehttpd_check_last_run_timestamp_seconds 0\n")


def test_an_empty_setup_says_so():
    code, out, _ = call("check", "--all", "--no-apache", "--config-dir", "/nonexistent")
    assert code == 0 and "no https name in Apache and no lineage in the store" in out


def test_tlslite_and_cryptography_are_loaded_before_any_probe_thread_starts():
    """check --all runs checks in threads: a first import of tlslite racing there failed with NameError
    (GMPY2_LOADED) about one run in ten. Importing the probe module must load them in the importing thread."""
    import subprocess

    code = ("import sys, lehttpd.check.watch; "
            "print(all(m in sys.modules for m in ('tlslite.messages', 'tlslite.utils.cryptomath', "
            "'cryptography.x509', 'lehttpd.scan.pages')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert result.stdout.strip() == "True", result.stderr


def test_one_name_that_breaks_the_probe_is_reported_on_its_row_and_the_others_go_on(monkeypatch):
    from lehttpd.check import watch
    from lehttpd.check.probe import CheckOptions

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(watch, "check", broken)
    row = watch.served_row(watch.Endpoint("a.test", "127.0.0.1", 443), CheckOptions(),
                           dt.datetime.now(dt.timezone.utc), 14)
    assert row.failure.startswith("check failed: RuntimeError: boom") and row.problems
