"""The fleet's pure parts: sealing, the etcd key layout and settings validation, the gateway's range ends."""
from __future__ import annotations

import base64

import pytest

from lehttpd.errors import StorageError, UsageError
from lehttpd.fleet.config import FleetConfig
from lehttpd.fleet.etcd import compare_lease, compare_mod, prefix_end, unb64
from lehttpd.fleet.sealing import new_fleet_key, seal, unseal
from lehttpd.fleet.shared import _without_hooks


def test_a_sealed_key_opens_only_with_its_fleet_key_and_under_its_own_etcd_key():
    key = new_fleet_key()
    sealed = seal(key, b"-----BEGIN PRIVATE KEY-----", "/lehttpd/versions/a/00000001")
    assert b"PRIVATE" not in base64.b64decode(sealed)
    assert unseal(key, sealed, "/lehttpd/versions/a/00000001") == b"-----BEGIN PRIVATE KEY-----"
    with pytest.raises(StorageError, match="cannot be opened"):
        unseal(key, sealed, "/lehttpd/versions/b/00000001")  # copied to another lineage
    with pytest.raises(StorageError, match="cannot be opened"):
        unseal(new_fleet_key(), sealed, "/lehttpd/versions/a/00000001")


def test_two_seals_of_the_same_key_differ():
    key = new_fleet_key()
    assert seal(key, b"x", "k") != seal(key, b"x", "k")


def test_the_key_layout_is_built_in_one_place():
    config = FleetConfig(endpoints=("http://127.0.0.1:2379",), node="n1")
    assert config.current_key("a.example") == "/lehttpd/current/a.example"
    assert config.version_key("a.example", 12) == "/lehttpd/versions/a.example/00000012"
    assert config.lock_key("a.example") == "/lehttpd/locks/a.example"
    assert config.node_key() == "/lehttpd/nodes/n1"


@pytest.mark.parametrize("bad", [{"prefix": "lehttpd"}, {"prefix": "/lehttpd"}, {"endpoints": ("127.0.0.1:2379",)}])
def test_settings_that_cannot_work_are_refused(bad):
    with pytest.raises(UsageError):
        FleetConfig(**{"endpoints": ("http://127.0.0.1:2379",), **bad})


def test_a_prefix_range_ends_after_its_last_byte():
    assert unb64(prefix_end("/lehttpd/current/")) == b"/lehttpd/current0"


def test_fencing_compares_the_lock_keys_revision_and_lease():
    assert compare_mod("/l", 7) == {"key": "L2w=", "target": "MOD", "result": "EQUAL", "mod_revision": "7"}
    assert compare_lease("/l", 9)["target"] == "LEASE" and compare_lease("/l", 9)["lease"] == "9"


def test_hooks_are_stripped_from_what_goes_to_etcd():
    conf = "cert = /x\n[renewalparams]\nserver = https://ca/dir\npre_hook = a\nrenew_hook = b\npost_hook = c\n"
    assert _without_hooks(conf, "n") == "cert = /x\n[renewalparams]\nserver = https://ca/dir\n"
