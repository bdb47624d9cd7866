"""The state `certificates` shows: VALID, EXPIRED, REVOKED (never "days left"), INVALID."""
import datetime as dt
import io
from dataclasses import replace

from lehttpd.cli import run
from lehttpd.console import Console
from lehttpd.issuance.status import EXPIRED, INVALID, REVOKED, VALID, serial_text, status_of
from lehttpd.model import CertificateFiles, IssueRequest
from lehttpd.renew.state import RenewState, save_state
from lehttpd.renewal_conf import render
from lehttpd.sandbox.tls import throwaway_ca_and_leaf
from lehttpd.store import CertStore



def lineage(config, name="a.test"):
    pair = throwaway_ca_and_leaf((name,))
    store = CertStore(config)
    conf = render(IssueRequest(names=(name,), server="https://ca.invalid/dir"), "acct1", store.config_dir)
    return store.save_version(
        name, CertificateFiles(cert_pem=pair.leaf_pem, chain_pem=pair.ca_pem, key_pem=pair.key_pem), conf)


def test_states_from_dates_revocation_and_files(tmp_path):
    current = lineage(tmp_path)
    NOW = dt.datetime.now(dt.timezone.utc)  # after the certificate was made: it is not valid before it exists
    assert status_of(current, NOW).state == VALID
    assert status_of(replace(current, not_after=NOW - dt.timedelta(days=1)), NOW).state == EXPIRED
    assert status_of(replace(current, not_before=NOW + dt.timedelta(days=1)), NOW).state == INVALID
    other = lineage(tmp_path, "b.test")
    current.chain_path.resolve().write_bytes(other.chain_path.read_bytes())
    assert "does not start with the certificate's issuer" in status_of(current, NOW).reason
    save_state(tmp_path, "a.test", RenewState(revoked_serial=hex(current.serial)))
    assert status_of(current, NOW).state == REVOKED, "revoked wins over everything else"


def test_a_revoked_lineage_never_shows_days_left(tmp_path):
    current = lineage(tmp_path)
    save_state(tmp_path, "a.test", RenewState(revoked_serial=hex(current.serial)))
    out = io.StringIO()
    assert run(["certificates", "--config-dir", str(tmp_path)], Console(stdout=out, color=False)) == 0
    assert "REVOKED" in out.getvalue() and "days left" not in out.getvalue()
    assert f"serial:  {serial_text(current.serial)}" in out.getvalue() and "0x" not in out.getvalue()
