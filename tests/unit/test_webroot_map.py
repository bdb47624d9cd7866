"""`issue -w A -d x -w B -d y`: each webroot serves the names after it (certbot's -w), checked without a CA."""
from pathlib import Path

import pytest

from lehttpd.certbot_flags import translate_certbot_flags
from lehttpd.cli import build_parser
from lehttpd.errors import UsageError
from lehttpd.issuance.commands import build_request


def request_for(*argv):
    argv = translate_certbot_flags(["issue", *argv, "--server", "https://ca.example/dir"])
    return build_request(build_parser(argv).parse_args(argv))


@pytest.fixture
def roots(tmp_path):
    made = {}
    for name in ("a", "b"):
        made[name] = tmp_path / name
        made[name].mkdir()
    return made


def test_each_webroot_takes_the_names_after_it(roots):
    request = request_for("-w", str(roots["a"]), "-d", "x.example,www.x.example", "--webroot-path",
                          str(roots["b"]), "-d", "Y.example")
    assert request.challenge.mode == "webroot"
    assert request.challenge.webroot_map == (("x.example", roots["a"]), ("www.x.example", roots["a"]),
                                             ("y.example", roots["b"]))


def test_names_before_any_webroot_go_to_the_last_one_as_in_certbot(roots):
    request = request_for("first.example", "-d", "second.example", "-w", str(roots["a"]), "-w", str(roots["b"]))
    assert dict(request.challenge.webroot_map) == {"first.example": roots["b"], "second.example": roots["b"]}


def test_certbots_webroot_plugin_flag_then_paths(roots):
    request = request_for("--webroot", "-w", str(roots["a"]), "-d", "x.example", "-w", str(roots["b"]),
                          "-d", "y.example")
    assert dict(request.challenge.webroot_map) == {"x.example": roots["a"], "y.example": roots["b"]}


def test_every_webroot_must_be_a_folder(roots, tmp_path):
    with pytest.raises(UsageError, match="missing: not a directory"):
        request_for("-w", str(roots["a"]), "-d", "x.example", "-w", str(tmp_path / "missing"), "-d", "y.example")


def test_without_webroot_there_is_no_map():
    request = request_for("x.example")
    assert request.challenge.webroot_map == () and request.challenge.mode == "standalone"
