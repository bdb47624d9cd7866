"""`lehttpd check` against scripted servers: what the system OpenSSL cannot offer (SSLv3, RC4) is still found, and
every broken server (dropped, garbage, silent, plain HTTP, refusing all, nobody listening) gives one clear line and
exit code 4, never a traceback or a hang."""
import io
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from scripted import RC4_SUITES, ScriptedServer, free_port  # noqa: E402

from lehttpd.check.hello import SSL3, TLS10, Offer, Target, probe  # noqa: E402
from lehttpd.cli import run  # noqa: E402
from lehttpd.console import Console  # noqa: E402


def check(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run(["check", *argv, "--http-port", "0", "--config-dir", "/nonexistent"], Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def test_an_sslv3_and_rc4_server_is_found_by_hand_built_hellos_and_graded_down():
    with ScriptedServer(versions=((3, 0), (3, 1)), suites=RC4_SUITES) as server:
        code, out, err = check(f"127.0.0.1:{server.port}", "--sni", "scripted.test", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["offered_protocols"] == ["SSLv3", "TLSv1.0"]
    for protocol in report["protocols"]:
        if protocol["offered"]:
            assert [s["name"] for s in protocol["suites"]] == ["TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_RC4_128_MD5"]
            assert protocol["server_order"] is True
    caps = {c["id"]: c["cap"] for c in report["rating"]["caps"]}
    assert caps["rc4"] == "B" and caps["sslv3"] == "B" and caps["no-tls12"] == "C"
    assert caps["no-forward-secrecy"] == "B" and caps["no-aead"] == "B"
    assert caps["untrusted"] == "T"  # a throwaway certificate, and no --ca-bundle
    assert report["grade"] == "T" and report["rating"]["without_trust_issues"] == "C"
    assert report["certificate"]["served"][0]["names"] == ["scripted.test"]  # read in clear from the TLS 1.0 hello


def test_rc4_offered_with_tls12_caps_at_c():
    with ScriptedServer(versions=((3, 3),), suites=(0xC02F, 0x0005)) as server:
        code, out, _ = check(f"127.0.0.1:{server.port}", "--json")
    caps = {c["id"]: c["cap"] for c in json.loads(out)["rating"]["caps"]}
    assert caps["rc4-modern"] == "C"


def test_an_sslv3_only_server_is_graded_f_and_the_text_report_names_the_fix():
    with ScriptedServer(versions=((3, 0),), suites=RC4_SUITES) as server:
        code, out, _ = check(f"127.0.0.1:{server.port}")
    assert code == 0
    assert "SSLv3 is the best protocol offered  ->  lehttpd harden --profile intermediate" in out
    assert "(F if trust issues are fixed)" in out


def test_an_export_suite_is_offered_and_found_and_graded_f():
    with ScriptedServer(versions=((3, 1),), suites=(0x0003, 0x0009)) as server:
        code, out, _ = check(f"127.0.0.1:{server.port}", "--json")
    report = json.loads(out)
    found = [s["name"] for p in report["protocols"] for s in p["suites"]]
    assert found == ["TLS_RSA_EXPORT_WITH_RC4_40_MD5", "TLS_RSA_WITH_DES_CBC_SHA"]
    assert report["rating"]["without_trust_issues"] == "F"


def test_tls12_groups_come_from_the_server_key_exchange_without_tls13():
    with ScriptedServer(versions=((3, 3),), suites=(0xC02F,), groups=(24, 23)) as server:
        _code, out, _ = check(f"127.0.0.1:{server.port}", "--json")
    assert json.loads(out)["groups"] == ["secp384r1", "secp256r1"]  # the server's order


def test_a_small_dhe_prime_lowers_the_grade():
    for bits, cap in ((1024, ("dh-2048", "B")), (512, ("dh-1024", "F"))):
        with ScriptedServer(versions=((3, 3),), suites=(0x009E, 0xC02F), dh_bits=bits) as server:
            _code, out, _ = check(f"127.0.0.1:{server.port}", "--json")
        report = json.loads(out)
        assert report["dh_bits"] == bits
        assert cap in {(c["id"], c["cap"]) for c in report["rating"]["caps"]}


def test_an_sslv2_server_is_found_and_graded_f():
    with ScriptedServer(mode="sslv2") as server:
        code, out, _ = check(f"127.0.0.1:{server.port}", "--json")
    report = json.loads(out)
    assert code == 0 and report["offered_protocols"] == ["SSLv2"]
    assert ("sslv2", "F") in {(c["id"], c["cap"]) for c in report["rating"]["caps"]}


def test_a_raw_probe_reads_the_sslv3_server_hello():
    with ScriptedServer(versions=((3, 0),), suites=RC4_SUITES) as server:
        target = Target("127.0.0.1", server.port, None)
        assert probe(target, Offer(SSL3, (0x002F, 0x0005))).suite == 0x0005
        refused = probe(target, Offer(TLS10, (0x0005,)))
    assert not refused.accepted and "protocol_version" in refused.detail


def test_min_grade_below_is_exit_8():
    with ScriptedServer(versions=((3, 3),), suites=(0xC02F,)) as server:
        code, _, err = check(f"127.0.0.1:{server.port}", "--min-grade", "A")
    assert code == 8 and "below --min-grade A" in err


@pytest.mark.parametrize("mode, message", [
    ("drop", "accepts no protocol"),
    ("half", "in the middle of a message"),
    ("refuse", "accepts no protocol"),
    ("garbage", "not TLS"),
    ("http", "plain HTTP"),
    ("silent", "said nothing"),
])
def test_broken_servers_give_one_line_and_exit_4_without_hanging(mode, message):
    with ScriptedServer(mode=mode) as server:
        started = time.monotonic()
        code, out, err = check(f"127.0.0.1:{server.port}", "--timeout", "1")
        elapsed = time.monotonic() - started
    assert code == 4
    assert message in err and err.startswith("lehttpd: error: ") and err.count("\n") == 1
    assert "Traceback" not in err + out
    assert elapsed < 10  # bounded by the time-outs, not by the server


def test_nobody_listening_is_exit_4_and_json_says_why():
    code, out, _ = check(f"127.0.0.1:{free_port()}", "--json")
    assert code == 4
    report = json.loads(out)
    assert report["grade"] is None and report["failure"].startswith("cannot connect")


@pytest.mark.parametrize("argv, message", [
    ([], "check needs HOST[:PORT] or --all"),
    (["a.test", "--all"], "not both"),
    (["a.test:notaport"], "the port must be a number"),
    (["a.test:70000"], "is not HOST[:PORT]"),
    (["a.test", "--ca-bundle", "/nonexistent.pem"], "no such file"),
    (["a.test", "--min-grade", "Z"], "--min-grade 'Z'"),
    (["a.test", "--prometheus", "/tmp/x.prom"], "go with --all"),
    (["a.test", "--sni", "bad name"], "not a valid host name"),
])
def test_bad_flags_are_refused_before_any_connection(argv, message):
    code, _, err = check(*argv)
    assert code == 2 and message in err
