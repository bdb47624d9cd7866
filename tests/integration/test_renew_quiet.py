"""The cron path end to end on a real Pebble: a clean run stamps quiet-until, later quiet runs are answered
from the stamp until a lineage becomes due, and then the full path renews it."""
import datetime as dt
import time

from lehttpd.renewal import renewal_time
from lehttpd.store import CertStore
from tests.conftest import run_lehttpd
from tests.integration.renew_fixtures import issue_lineages


def test_quiet_runs_answer_from_the_stamp_until_something_is_due(make_pebble, tmp_path):
    pebble = make_pebble(validity_seconds=12)
    config = tmp_path / "le"
    (name,) = issue_lineages(config, [("quiet.example.test",)], pebble.directory_url, pebble.ca_bundle,
                             pebble.http_port)
    cron = ["renew", "--quiet", "--config-dir", str(config)]

    first = run_lehttpd(*cron)
    assert first.returncode == 0 and first.stdout == "" and first.stderr == ""
    stamp = config / ".lehttpd" / "renew-quiet.json"
    assert stamp.exists(), "a clean full run with nothing due stamps quiet-until"
    import json
    until = dt.datetime.fromtimestamp(json.loads(stamp.read_text())["until"], dt.timezone.utc)
    lineage = CertStore(config).load(name)
    assert abs((until - renewal_time(lineage.not_before, lineage.not_after)).total_seconds()) < 1

    lock = config / ".locks" / "renew.lock"
    lock.unlink()
    second = run_lehttpd(*cron)
    assert second.returncode == 0 and second.stdout == ""
    assert not lock.exists(), "answered from the stamp: no lock taken, nothing read beyond the fingerprint"

    time.sleep(max(0.0, (until - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.5)
    due = run_lehttpd(*cron)
    assert due.returncode == 0, due.stdout + due.stderr
    assert lock.exists(), "past quiet-until the full path runs"
    assert CertStore(config).current_version(name) == 2
    assert "renewed" in due.stdout  # --quiet still reports what it renewed
