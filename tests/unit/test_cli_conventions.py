"""Conventions admins rely on: certbot's flag names, a help line with its default for every flag, a usage error
that shows the usage of the subcommand at fault, a quiet exit when the reader of stdout goes away, a progress bar
cleared before results print."""
import argparse
import io
import subprocess
import sys

import pytest

from lehttpd.certbot_flags import ALIAS, CERTBOT_FLAGS, translate_certbot_flags
from lehttpd.cli import build_parser, run
from lehttpd.console import Console
from lehttpd.errors import UsageError


def call(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def subcommand_parsers(parser=None, path=()):
    """(command path, parser) for every command and nested subcommand."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from subcommand_parsers(sub, (*path, name))


def test_every_certbot_alias_in_the_table_is_accepted_where_it_applies():
    for entry in (e for e in CERTBOT_FLAGS if e.kind == ALIAS):
        for command, parser in subcommand_parsers():
            if entry.commands and " ".join(command) not in entry.commands:
                continue
            if command in (("apache",), ("account",)):  # groups: their subcommands hold the flags
                continue
            options = {s: a for a in parser._actions for s in a.option_strings}
            assert entry.certbot in options, (entry.certbot, command)
            assert entry.lehttpd in options[entry.certbot].option_strings, (entry.certbot, command)


def test_certbot_spellings_parse_to_the_same_request():
    parser = build_parser(["issue"])
    ours = parser.parse_args(["issue", "a.example", "--webroot", "/srv", "--email", "me@a.example", "--staging",
                              "--http-port", "8080", "--non-interactive"])
    theirs = parser.parse_args(translate_certbot_flags(
        ["certonly", "-n", "--webroot", "-w", "/srv", "-m", "me@a.example", "--test-cert", "--http-01-port", "8080",
         "--expand", "--register-unsafely-without-email", "--keep-until-expiring", "-d", "a.example"]))
    for key in ("webroot", "email", "staging", "http_port", "non_interactive"):
        assert getattr(ours, key) == getattr(theirs, key), key
    assert theirs.more_domains == ["a.example"]


@pytest.mark.parametrize("argv, lehttpd_way", [
    (["issue", "a.example", "--manual"], "http-01 only"),  # --apache is lehttpd's own flag since issue 9
    (["issue", "a.example", "--nginx"], "Apache only"),
    (["issue", "a.example", "--preferred-challenges", "dns"], "http-01 only"),
    (["install", "--cert-name", "a", "--hsts"], "lehttpd harden --hsts"),
    (["issue", "a.example", "--no-verify-ssl"], "--ca-bundle"),
    (["run", "-d", "a.example"], "lehttpd issue … --install"),
])
def test_certbot_flags_lehttpd_does_not_take_are_refused_with_the_lehttpd_way(argv, lehttpd_way):
    code, out, err = call(*argv)
    assert code == 2 and out == ""
    assert err.startswith("lehttpd: error: ") and err.count("\n") == 1
    assert lehttpd_way in err


def test_certbot_cert_path_names_the_lineage():
    assert translate_certbot_flags(["revoke", "--cert-path", "/etc/letsencrypt/live/a.example/cert.pem"]) == \
        ["revoke", "--cert-name", "a.example"]
    assert translate_certbot_flags(["install", "--cert-path", "/x/archive/b/cert3.pem", "--key-path",
                                    "/x/live/b/privkey.pem"]) == ["install", "--cert-name", "b"]
    with pytest.raises(UsageError, match="different lineages"):
        translate_certbot_flags(["install", "--cert-path", "/x/live/b/cert.pem", "--key-path", "/x/live/c/privkey.pem"])
    with pytest.raises(UsageError, match="give --cert-name NAME"):
        translate_certbot_flags(["revoke", "--cert-path", "/root/mycert.pem"])


def test_every_flag_has_a_help_line_and_shows_its_default():
    missing = []
    for command, parser in subcommand_parsers():
        for action in parser._actions:
            if action.option_strings and not action.help:
                missing.append(f"{' '.join(command)} {action.option_strings[0]}")
    assert not missing, missing
    help_text = " ".join(dict(subcommand_parsers(build_parser(["issue"])))[("issue",)].format_help().split())
    assert "(default: ecdsa)" in help_text and "(default: 2048)" in help_text and "default 80" in help_text


@pytest.mark.parametrize("argv, usage", [
    (["issue", "--bogus"], "usage: lehttpd issue"),
    (["apache", "vhosts", "--bogus"], "usage: lehttpd apache vhosts"),
    (["renew", "--workers"], "usage: lehttpd renew"),
])
def test_a_usage_error_shows_the_usage_of_the_subcommand(argv, usage):
    code, _, _ = call(*argv)
    result = subprocess.run([sys.executable, "-m", "lehttpd", *argv], capture_output=True, text=True)
    assert code == 2 and result.returncode == 2
    assert result.stderr.startswith(usage), result.stderr
    assert "unrecognized arguments: --bogus" in result.stderr or "expected one argument" in result.stderr


def test_a_command_group_without_its_subcommand_shows_its_own_help():
    result = subprocess.run([sys.executable, "-m", "lehttpd", "apache"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: lehttpd apache") and "vhosts" in result.stderr


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for index in range(400):
        (site / f"p{index}.html").write_text('<script src="http://cdn.example/x.js"></script>\n' * 5)
    pipeline = f"'{sys.executable}' -m lehttpd scan '{site}' | head -1; echo \"status ${{PIPESTATUS[0]}}\""
    result = subprocess.run(pipeline, shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[1] == "status 141"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_is_cleared_before_anything_else_prints():
    screen = Terminal()
    console = Console(stdout=screen, stderr=screen)
    console.progress(3, 10, "pages")
    console.result("index.html  (2)")
    console.progress(9, 10, "pages")
    console.progress(10, 10, "pages")
    console.result("Summary")
    text = screen.getvalue()
    bar_end = text.index("3/10 pages") + len("3/10 pages")
    assert text[bar_end:].startswith("\r\x1b[K" + "index.html")
    assert text.endswith("9/10 pages\r\x1b[KSummary\n"), "the finished bar is erased, not left on screen"


def test_the_readme_table_of_certbot_flags_is_the_data():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("| certbot | where | lehttpd |\n|---|---|---|\n", 1)[1].split("\n\n", 1)[0]
    documented = {row.split("`")[1] for row in table.splitlines()}
    assert documented == {entry.certbot for entry in CERTBOT_FLAGS}


def test_output_and_log_flags_work_before_the_command_as_after_it(tmp_path):
    parser = build_parser(["delete"])
    before = parser.parse_args(["-q", "-n", "--log-dir", "/x", "delete", "--cert-name", "a"])
    after = parser.parse_args(["delete", "--cert-name", "a", "-q", "-n", "--logs-dir", "/x"])
    neither = parser.parse_args(["delete", "--cert-name", "a"])
    for args in (before, after):
        assert (args.quiet, args.non_interactive, str(args.log_dir)) == (True, True, "/x")
    assert (neither.quiet, neither.verbose, neither.non_interactive, neither.log_dir) == (False, 0, False, None)
    code, out, _ = call("-q", "--log-dir", str(tmp_path / "log"), "delete", "--cert-name", "gone.example", "--yes",
                        "--config-dir", str(tmp_path))
    assert code == 2 and (tmp_path / "log" / "lehttpd.log").exists()


def test_a_webroot_without_its_path_is_still_an_error_unless_certbot_style():
    code, _, _ = call("issue", "a.example", "--webroot", "--http-port", "8080")
    assert code == 2, "lehttpd's --webroot takes a PATH: a forgotten one is never read as standalone"
    certbot_style = ["issue", "--webroot", "-w", "/srv", "-d", "a"]
    assert translate_certbot_flags(certbot_style) == ["issue", "-w", "/srv", "-d", "a"]


def _screen(raw: str) -> list[str]:
    """The lines a terminal shows for `raw`: \\r returns to the start of the line, ESC[K erases to its end."""
    lines = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        shown = ""
        for index, segment in enumerate(line.split("\r")):
            if segment.startswith("\x1b[K"):
                shown, segment = "", segment[3:]
            shown = segment + shown[len(segment):] if index else segment
        lines.append(shown)
    return lines


def test_on_a_terminal_no_result_line_carries_a_piece_of_progress_bar(tmp_path):
    import os
    import pty

    site = tmp_path / "site"
    site.mkdir()
    for index in range(300):
        (site / f"p{index:03}.html").write_text('<script src="http://cdn.example/x.js"></script>\n')
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lehttpd", "scan", str(site), "--jobs", "1"], stdin=follower,
                            stdout=follower, stderr=follower, env={**os.environ, "NO_COLOR": "1"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 8
    raw = b"".join(chunks).decode()
    assert "/300 pages" in raw, "a bar was drawn"
    shown = _screen(raw)
    assert any("p000.html" in line for line in shown)
    assert not [line for line in shown if "] " in line and "pages" in line and line.strip()], "no bar left behind"


def test_no_certbot_flag_handled_before_parsing_shadows_a_lehttpd_flag():
    """A refused or dropped certbot flag must never hide a flag a lehttpd command really has."""
    from lehttpd.certbot_flags import PATH

    for entry in (e for e in CERTBOT_FLAGS if e.kind != ALIAS):
        for command, parser in subcommand_parsers():
            if entry.commands and command[0] not in entry.commands:
                continue
            options = {s for a in parser._actions for s in a.option_strings}
            assert entry.certbot not in options, f"{entry.certbot} is a flag of lehttpd {' '.join(command)}"
    assert any(e.kind == PATH for e in CERTBOT_FLAGS)
