"""`lehttpd issue` on a fleet node: without a mode flag it answers http-01 from the node's challenge webroot
(the folder every node's Apache serves, where the agents write the tokens it publishes)."""
from __future__ import annotations

from pathlib import Path

from lehttpd.issuance import modes
from lehttpd.model import ChallengeSetup


def test_a_fleet_node_answers_from_its_challenge_webroot_unless_told_otherwise():
    setup = ChallengeSetup(http_port=80)
    chosen, why = modes.choose(setup, None, fleet_webroot=Path("/var/www/acme"))
    assert (chosen.mode, chosen.webroot, chosen.webroot_map) == ("webroot", Path("/var/www/acme"), ())
    assert why == "this fleet node's challenge webroot /var/www/acme, which every node's Apache serves"
    assert modes.choose(setup, "standalone", fleet_webroot=Path("/var/www/acme"))[0].mode == "standalone"
    given = ChallengeSetup(mode="webroot", webroot=Path("/srv/site"))
    assert modes.choose(given, "webroot", fleet_webroot=Path("/var/www/acme"))[0].webroot == Path("/srv/site")
    assert modes.choose(setup, None, pre_hook=True, fleet_webroot=Path("/var/www/acme"))[0].mode == "standalone"
