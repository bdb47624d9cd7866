"""The pure renewal decision: lifetime rule, ARI window, back-off, force, revocation; and the ARI cert id."""
import datetime as dt

import pytest
from cryptography import x509

from lehttpd.renew.ari import cert_id
from lehttpd.renewal import (BACKOFF_MAX, AriWindow, ari_point, backoff_delay, decide, needs_renewal,
                             renewal_time)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def test_ninety_day_certificate_is_due_with_a_third_left():
    not_after = T0 + 90 * DAY
    assert renewal_time(T0, not_after) == T0 + 60 * DAY
    assert not needs_renewal(T0, not_after, T0 + 60 * DAY - dt.timedelta(seconds=1))
    assert needs_renewal(T0, not_after, T0 + 60 * DAY)


def test_short_lived_certificate_is_due_at_half_its_lifetime():
    assert renewal_time(T0, T0 + 6 * DAY) == T0 + 3 * DAY
    assert renewal_time(T0, T0 + dt.timedelta(seconds=40)) == T0 + dt.timedelta(seconds=20)
    # exactly 10 days is not "under 10 days": a third
    assert renewal_time(T0, T0 + 10 * DAY) == T0 + 10 * DAY - 10 * DAY / 3


@pytest.mark.parametrize("days_in, due", [(59, False), (61, True), (95, True)])
def test_decide_lifetime_rule(days_in, due):
    decision = decide(T0, T0 + 90 * DAY, T0 + days_in * DAY)
    assert decision.due is due
    assert ("expired" in decision.reason) is (days_in >= 90)


def test_force_wins_over_everything():
    decision = decide(T0, T0 + 90 * DAY, T0 + DAY, force=True, retry_not_before=T0 + 2 * DAY, failures=5)
    assert decision.due and "forced" in decision.reason


def test_ari_window_later_than_lifetime_rule_keeps_it():
    window = AriWindow(T0 + 70 * DAY, T0 + 72 * DAY, T0 + 71 * DAY)
    not_yet = decide(T0, T0 + 90 * DAY, T0 + 65 * DAY, ari=window)
    assert not not_yet.due and not_yet.when == T0 + 71 * DAY and "CA suggests" in not_yet.reason
    assert decide(T0, T0 + 90 * DAY, T0 + 71 * DAY, ari=window).due


def test_ari_window_earlier_than_lifetime_rule_renews_early():
    window = AriWindow(T0 + 10 * DAY, T0 + 11 * DAY, T0 + 10 * DAY)  # e.g. a revocation incident
    decision = decide(T0, T0 + 90 * DAY, T0 + 10 * DAY, ari=window)
    assert decision.due and "window suggested by the CA" in decision.reason


def test_expired_certificate_is_due_whatever_ari_says():
    window = AriWindow(T0 + 200 * DAY, T0 + 201 * DAY, T0 + 200 * DAY)
    assert decide(T0, T0 + 90 * DAY, T0 + 91 * DAY, ari=window).due


def test_back_off_blocks_until_its_time_then_the_rule_applies():
    waiting = decide(T0, T0 + 90 * DAY, T0 + 80 * DAY, retry_not_before=T0 + 80 * DAY + dt.timedelta(hours=2),
                     failures=3)
    assert not waiting.due and "backing off after 3 failed attempts" in waiting.reason
    assert decide(T0, T0 + 90 * DAY, T0 + 80 * DAY + dt.timedelta(hours=2),
                  retry_not_before=T0 + 80 * DAY + dt.timedelta(hours=2), failures=3).due


def test_revoked_certificate_is_due_at_once():
    assert decide(T0, T0 + 90 * DAY, T0 + DAY, revoked=True).due


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.999])
def test_ari_point_is_inside_the_window(fraction):
    start, end = T0, T0 + 2 * DAY
    point = ari_point(start, end, fraction)
    assert start <= point <= end
    assert point == start + (end - start) * fraction


def test_ari_point_of_an_empty_or_inverted_window_is_its_start():
    assert ari_point(T0, T0, 0.7) == T0
    assert ari_point(T0 + DAY, T0, 0.7) == T0 + DAY


def test_back_off_grows_doubles_and_is_capped():
    assert backoff_delay(1) == dt.timedelta(0), "the first failure is retried by the next run"
    middle = [backoff_delay(n, 0.5) for n in range(2, 8)]
    assert middle[:4] == [dt.timedelta(hours=h) for h in (1, 2, 4, 8)]
    assert backoff_delay(30, 0.5) == BACKOFF_MAX
    low, high = backoff_delay(3, 0.0), backoff_delay(3, 1.0)
    assert low == dt.timedelta(hours=1.5) and high == dt.timedelta(hours=2.5)


def test_retry_after_longer_than_back_off_wins():
    assert backoff_delay(1, retry_after=dt.timedelta(seconds=90)) == dt.timedelta(seconds=90)
    assert backoff_delay(3, 0.5, retry_after=dt.timedelta(seconds=90)) == dt.timedelta(hours=2)


class _FakeCert:
    """Only what cert_id reads: the AKI extension and the serial (RFC 9773 section 4.1 example)."""

    serial_number = 0x0087654321

    class extensions:  # noqa: N801
        @staticmethod
        def get_extension_for_class(cls):
            aki = x509.AuthorityKeyIdentifier(bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4"), None, None)
            return type("Ext", (), {"value": aki})


def test_cert_id_matches_the_rfc_9773_example():
    assert cert_id(_FakeCert()) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
