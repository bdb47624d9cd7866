"""When is a lineage due? A pure decision, tested on its own."""
from __future__ import annotations

import datetime as dt

SHORT_LIFETIME = dt.timedelta(days=10)


def renewal_time(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """The moment from which a certificate is due: a third of its lifetime left (half under 10 days)."""
    lifetime = not_after - not_before
    fraction = 1 / 2 if lifetime < SHORT_LIFETIME else 1 / 3
    return not_after - lifetime * fraction


def needs_renewal(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime) -> bool:
    return now >= renewal_time(not_before, not_after)
