"""The quiet-until stamp: a cron run answered without work only when nothing it reads has changed."""
import datetime as dt
import os
from pathlib import Path

import pytest

from lehttpd.renew.quiet import STAMP, clear_stamp, cron_config_dir, fingerprint, nothing_to_do, write_stamp
from lehttpd.store import CertStore
from tests.unit.test_store import self_signed


@pytest.mark.parametrize("argv, expected", [
    (["renew", "--quiet"], "/etc/letsencrypt"),
    (["renew", "-q", "--config-dir", "/srv/le"], "/srv/le"),
    (["renew", "--config-dir=/srv/le", "--quiet"], "/srv/le"),
    (["renew"], None),                                  # not quiet: the summary must be printed
    (["renew", "--quiet", "--force"], None),
    (["renew", "--quiet", "--json"], None),
    (["renew", "--quiet", "--cert-name", "a"], None),
    (["renew", "--quiet", "--dry-run"], None),
    (["renew", "--quiet", "--config-dir"], None),
    (["issue", "--quiet"], None),
    ([], None),
])
def test_only_the_exact_cron_command_is_answered(argv, expected):
    found = cron_config_dir(argv)
    assert (str(found) if found else None) == expected


@pytest.fixture
def config(tmp_path):
    store = CertStore(tmp_path)
    for name in ("a.example", "b.example"):
        store.save_version(name, self_signed([name]), f"# conf for {name}\n")
    return tmp_path


def argv(config):
    return ["renew", "--quiet", "--config-dir", str(config)]


def stamp(config, minutes=60):
    write_stamp(config, dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes))


def test_no_stamp_means_work(config):
    assert not nothing_to_do(argv(config))


def test_a_fresh_stamp_with_the_same_files_means_nothing_to_do(config):
    stamp(config)
    assert nothing_to_do(argv(config))
    assert not nothing_to_do(["renew", "--config-dir", str(config)]), "not quiet: full path"


def test_the_stamp_expires(config):
    stamp(config, minutes=10)
    later = (dt.datetime.now() + dt.timedelta(minutes=11)).timestamp()
    assert not nothing_to_do(argv(config), now=later)


@pytest.mark.parametrize("change", [
    lambda c: (c / "renewal/a.example.conf").write_text("# edited\n"),
    lambda c: (c / "renewal/new.example.conf").write_text("x = y\n"),
    lambda c: (c / "renewal/b.example.conf").unlink(),
    lambda c: CertStore(c).save_version("a.example", self_signed(["a.example"])),  # a new version
    lambda c: (c / ".lehttpd/renew-state").mkdir(parents=True) or (c / ".lehttpd/renew-state/a.example.json")
    .write_text("{}"),
    lambda c: os.utime(c / "archive/b.example/cert1.pem", ns=(1, 1)),  # the certificate file itself
])
def test_any_change_to_what_a_run_reads_means_work(config, change):
    stamp(config)
    change(config)
    assert not nothing_to_do(argv(config))


def test_a_damaged_or_cleared_stamp_means_work(config):
    stamp(config)
    (config / STAMP).write_text("{not json")
    assert not nothing_to_do(argv(config))
    stamp(config)
    clear_stamp(config)
    assert not nothing_to_do(argv(config))
    clear_stamp(config)  # clearing twice is fine


def test_fingerprint_covers_each_lineage(config):
    names = [entry[0] for entry in fingerprint(config)[2:]]
    assert names == ["a.example", "b.example"]
