"""The operations log: commands that change something append to LOG_DIR/lehttpd.log, 0600 in a 0700 folder, rotated
by size, never through a symlink, never with a secret in it."""
import io
import os
import stat

import pytest

from lehttpd import oplog
from lehttpd.cli import run
from lehttpd.console import Console

PEM_KEY = ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBx9k3TwHkJ0h1bq0f4ZQ3x5m2Uj8Ue4xM1n0sQ4G2k0oAoGCCqGSM49\n"
           "-----END EC PRIVATE KEY-----")


def call(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def test_a_changing_command_appends_its_command_line_steps_errors_and_exit_status(tmp_path):
    logs = tmp_path / "log"
    code, _, err = call("delete", "--cert-name", "missing.example", "--config-dir", str(tmp_path / "le"), "--yes",
                        "--log-dir", str(logs))
    assert code == 2
    text = (logs / "lehttpd.log").read_text()
    assert "lehttpd delete --cert-name missing.example" in text
    assert "ERROR no certificate named 'missing.example'" in text
    assert text.rstrip().endswith("exit status 2")
    assert stat.S_IMODE(os.stat(logs).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(logs / "lehttpd.log").st_mode) == 0o600
    call("delete", "--cert-name", "other.example", "--config-dir", str(tmp_path / "le"), "--yes",
         "--log-dir", str(logs))
    assert (logs / "lehttpd.log").read_text().startswith(text), "appended, not rewritten"


def test_reading_commands_and_dry_runs_do_not_log(tmp_path):
    logs = tmp_path / "log"
    assert call("certificates", "--config-dir", str(tmp_path), "--log-dir", str(logs))[0] == 0
    (tmp_path / "site").mkdir()
    call("scan", str(tmp_path / "site"), "--fix", "--dry-run", "--log-dir", str(logs))
    assert not logs.exists()
    call("scan", str(tmp_path / "site"), "--fix", "--log-dir", str(logs))
    assert "lehttpd scan" in (logs / "lehttpd.log").read_text()


def test_a_symlink_in_place_of_the_log_is_never_written_through(tmp_path):
    logs = tmp_path / "log"
    logs.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (logs / "lehttpd.log").symlink_to(victim)
    code, _, err = call("delete", "--cert-name", "x.example", "--config-dir", str(tmp_path / "le"), "--yes",
                        "--log-dir", str(logs))
    assert victim.read_text() == "precious\n"
    assert "is a symlink, which lehttpd never follows" in err
    assert code == 2, "the command itself still ran"


def test_the_log_rotates_by_size(tmp_path, monkeypatch):
    monkeypatch.setattr(oplog, "MAX_BYTES", 2000)
    for _ in range(30):
        logger = oplog.open_log(tmp_path, ["renew"])
        logger.info("x" * 200)
        oplog.close_log(logger, 0)
    assert (tmp_path / "lehttpd.log.1").exists()
    assert not (tmp_path / f"lehttpd.log.{oplog.BACKUPS + 1}").exists()
    assert all(p.stat().st_size <= 2500 for p in tmp_path.iterdir())
    assert stat.S_IMODE((tmp_path / "lehttpd.log").stat().st_mode) == 0o600


def test_secrets_are_masked_in_the_command_line_and_in_every_line(tmp_path):
    hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    argv = ["issue", "a.example", "--eab-kid", "kid-1", "--eab-hmac-key", hmac, "--eab-hmac-key=" + hmac]
    logger = oplog.open_log(tmp_path, argv)
    logger.info("account key %s", '{"kty": "EC", "crv": "P-256", "d": "c2VjcmV0LXByaXZhdGUtc2NhbGFyLXZhbHVl"}')
    logger.info("a key:\n%s\nthe end", PEM_KEY)
    logger.info("the binding used %s", hmac)
    oplog.close_log(logger, 0)
    text = (tmp_path / "lehttpd.log").read_text()
    assert hmac not in text and "c2VjcmV0" not in text and "MHcCAQEE" not in text
    assert "--eab-hmac-key <redacted>" in text and "--eab-kid kid-1" in text and '"kty": "EC"' in text
    assert "the end" in text


def test_verbose_detail_goes_to_the_log_even_when_quiet(tmp_path):
    logger = oplog.open_log(tmp_path, ["renew", "-q"])
    console = Console(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True, log=logger)
    console.detail("POST https://acme.example/new-order -> 201")
    console.detail("every byte of the exchange", level=2)
    oplog.close_log(logger, 0)
    text = (tmp_path / "lehttpd.log").read_text()
    assert "new-order -> 201" in text and "every byte" not in text
    assert console.stderr.getvalue() == ""



def test_the_help_names_the_default_log_folder():
    from lehttpd.cli import build_parser

    assert str(oplog.DEFAULT_LOG_DIR) in " ".join(build_parser(["renew"]).format_help().split())


def test_a_symlink_in_place_of_the_log_folder_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "log").symlink_to(elsewhere)
    with pytest.raises(oplog.StorageError, match="symlink or a file is in its place"):
        oplog.open_log(tmp_path / "log", ["renew"])
    assert not any(elsewhere.iterdir())
