"""The grade rules on their own: findings made by hand, the caps of the SSL Labs guide (reference B5)."""
import datetime as dt
from dataclasses import replace

import pytest

from lehttpd.check.grade import CAPS, GRADES, grade, rank, score
from lehttpd.check.model import CertificateInfo, ChainResult, Findings, HttpResult, ProtocolResult
from lehttpd.check.suites import suite

NOW = dt.datetime.now(dt.timezone.utc)
GCM = (0xC02B, 0xC02C, 0xCCA9)   # ECDHE-ECDSA AES-GCM and ChaCha20 (Mozilla intermediate, ECDSA key)
TLS13 = (0x1301, 0x1302, 0x1303)
CBC = (0xC009, 0xC00A)           # ECDHE-ECDSA AES-CBC-SHA


def cert(key_type="EC secp256r1", bits=256, sig="ecdsa-with-SHA256", days=60, names=("a.test",)):
    return CertificateInfo("CN=a.test", "CN=CA", names, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=days),
                           key_type, bits, sig, 1, "00", False)


def findings(protocols=None, chain=None, hsts=63072000, redirect_ok=True, mixed=(), uir=False, fallback=True,
             renegotiation=True):
    protocols = protocols or {"TLSv1.2": GCM, "TLSv1.3": TLS13}
    results = tuple(ProtocolResult(name, name in protocols, tuple(suite(c) for c in protocols.get(name, ())))
                    for name in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"))
    chain = chain or ChainResult((cert(),), True, None, True, True, None)
    http = HttpResult(301, "https://a.test/x", redirect_ok, "" if redirect_ok else "http:// redirects with 302 "
                      "(temporary)", hsts, uir, mixed, "")
    return Findings("a.test", 443, "a.test", None, results, ("x25519",), renegotiation, fallback, chain, http)


def caps(result):
    return {c.id: c.cap for c in result.caps}


def test_mozilla_intermediate_with_two_year_hsts_is_a_plus():
    result = grade(findings())
    assert result.letter == "A+" and result.caps == () and score(findings()) >= 80


def test_old_profile_is_b_capped_by_tls10_and_tls11_named_in_the_cap():
    result = grade(findings({"TLSv1.0": CBC, "TLSv1.1": CBC, "TLSv1.2": GCM + CBC, "TLSv1.3": TLS13}))
    assert result.letter == "B"
    assert caps(result) == {"tls10-11": "B"}
    assert result.caps[0].why.startswith("TLSv1.0, TLSv1.1 offered")
    assert result.caps[0].fix == "lehttpd harden --profile intermediate"


@pytest.mark.parametrize("hsts", [None, 86400])
def test_without_long_hsts_the_best_is_a_and_the_fix_is_hsts(hsts):
    result = grade(findings(hsts=hsts))
    assert result.letter == "A" and caps(result) == {"hsts": "A"}
    assert result.caps[0].fix.endswith("--hsts")


def test_a_temporary_redirect_holds_back_a_plus_and_points_at_lehttpd_redirect():
    result = grade(findings(redirect_ok=False))
    assert result.letter == "A" and result.caps[0].fix == "lehttpd redirect -d a.test"


def test_blockable_mixed_content_holds_back_a_plus_unless_upgrade_insecure_requests():
    mixed = (("blockable", "http://cdn.test/x.js"),)
    assert caps(grade(findings(mixed=mixed))) == {"mixed-content": "A"}
    assert grade(findings(mixed=mixed, uir=True)).letter == "A+"


def test_sslv2_is_f_and_sslv3_only_is_f():
    assert grade(findings({"SSLv2": (), "TLSv1.2": GCM})).letter == "F"
    assert grade(findings({"SSLv3": (0x0005,)})).letter == "F"


def test_rc4_sweet32_no_fs_no_aead():
    rc4 = grade(findings({"TLSv1.2": GCM + (0x0005,)}))
    assert caps(rc4)["rc4-modern"] == "C" and rc4.letter == "C"
    des = grade(findings({"TLSv1.2": GCM + (0x000A,)}))
    assert caps(des)["sweet32"] == "C"
    static_rsa = grade(findings({"TLSv1.2": (0x002F, 0x0035)}))
    assert caps(static_rsa)["no-forward-secrecy"] == "B" and caps(static_rsa)["no-aead"] == "B"
    assert caps(grade(findings({"TLSv1.0": CBC})))["no-tls12"] == "C"


def test_incomplete_chain_is_b_and_names_the_missing_issuer():
    chain = ChainResult((cert(),), True, None, True, False, "CN=Intermediate")
    result = grade(findings(chain=chain))
    assert result.letter == "B" and "CN=Intermediate" in result.caps[0].why
    assert result.caps[0].fix.startswith("lehttpd install --cert-name a.test")


def test_trust_problems_give_t_and_m_with_the_grade_they_hide():
    untrusted = grade(findings(chain=ChainResult((cert(),), False, "unable to get local issuer certificate",
                                                 True, False, "CN=CA")))
    assert untrusted.letter == "T" and untrusted.without_trust_issues in ("A", "A+")
    assert untrusted.caps[0].id == "untrusted"
    mismatch = grade(findings(chain=ChainResult((cert(names=("b.test",)),), True, None, False, True, None)))
    assert mismatch.letter == "M" and "b.test" in mismatch.caps[0].why
    expired = grade(findings(chain=ChainResult((cert(days=-2),), True, None, True, True, None)))
    assert expired.letter == "T" and caps(expired)["expired"] == "T"


def test_weak_keys_and_signatures():
    assert caps(grade(findings(chain=ChainResult((cert("RSA", 1024, "sha256WithRSAEncryption"),), True, None, True,
                                                 True, None))))["rsa-2048"] == "B"
    assert grade(findings(chain=ChainResult((cert("RSA", 512, "sha256WithRSAEncryption"),), True, None, True,
                                            True, None))).letter == "F"
    sha1 = grade(findings(chain=ChainResult((cert(sig="sha1WithRSAEncryption"),), True, None, True, True, None)))
    assert caps(sha1)["sha1"] == "T"


def test_warnings_cost_the_plus():
    assert grade(findings(renegotiation=False)).letter == "A-"
    assert grade(findings(fallback=False)).letter == "A"


def test_every_rule_has_one_line_and_a_command():
    for rule in CAPS:
        assert rule.cap in GRADES + ("T", "M")
        assert "\n" not in rule.why and rule.fix and rule.id
    assert len({rule.id for rule in CAPS}) == len(CAPS)


def test_rank_orders_grades_and_puts_trust_failures_last():
    assert rank("A+") > rank("A") > rank("A-") > rank("B") > rank("F") > rank("T") == rank(None)


def test_key_exchange_score_follows_key_size():
    weak = findings(chain=ChainResult((cert("RSA", 1024, "sha256WithRSAEncryption"),), True, None, True, True, None))
    assert score(weak) < score(findings())
    assert score(replace(findings(), protocols=findings({"TLSv1.0": CBC, "TLSv1.2": GCM}).protocols)) < 100


def test_export_null_and_des_suites_are_f():
    for code in (0x0003, 0x0002, 0x0009):  # RSA_EXPORT_WITH_RC4_40_MD5, RSA_WITH_NULL_SHA, RSA_WITH_DES_CBC_SHA
        result = grade(findings({"TLSv1.2": GCM + (code,)}))
        assert result.letter == "F" and caps(result)["weak-cipher"] == "F", hex(code)


def test_suite_properties_come_from_openssl_or_the_iana_name():
    from lehttpd.check.suites import _from_name

    assert suite(0xC02B).forward_secret and suite(0xC02B).aead and suite(0xC02B).bits == 128
    assert not suite(0x002F).forward_secret and not suite(0x002F).aead  # TLS_RSA_WITH_AES_128_CBC_SHA
    assert suite(0x000A).small_block and suite(0x000A).bits == 112       # 3DES
    assert suite(0x0005).rc4 and suite(0x1302).bits == 256
    assert _from_name(1, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256").bits == 128  # SHA256 is the MAC, not the key
    assert _from_name(1, "TLS_ECDH_anon_WITH_RC4_128_SHA").anonymous
