"""The man page and the shell completions are generated from the parser itself (argparse-manpage, shtab)."""
import argparse
import subprocess
import sys
from pathlib import Path

from lehttpd.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def command_paths(parser=None, path=()):
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from command_paths(sub, (*path, name))


def generate(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "tools/gen_docs.py"), "--man", str(tmp_path / "man"),
                             "--completions", str(tmp_path / "completions")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_man_page_documents_every_command_and_renders(tmp_path):
    generate(tmp_path)
    page = (tmp_path / "man/lehttpd.1").read_text()
    commands = list(command_paths())
    assert ("apache", "vhosts") in commands and ("account", "deactivate") in commands
    for path in commands:
        assert f"lehttpd {' '.join(path)}" in page, path
    assert "EXIT STATUS" in page and "/var/log/lehttpd/lehttpd.log" in page
    rendered = subprocess.run(["man", "-l", str(tmp_path / "man/lehttpd.1")], capture_output=True, text=True,
                              env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin", "MAN_KEEP_FORMATTING": ""})
    if rendered.returncode == 0:  # man-db present: the page is valid roff
        assert "--webroot-path" in rendered.stdout.replace("‐", "-") or "webroot" in rendered.stdout


def test_bash_completion_offers_every_command_and_the_flags_of_one(tmp_path):
    generate(tmp_path)
    script = tmp_path / "completions/lehttpd"

    def complete(*words, current=""):
        line = " ".join(words)
        program = (f"source '{script}'; COMP_WORDS=({line} '{current}'); COMP_CWORD={len(words)}; "
                   f"COMP_LINE='{line} {current}'; COMP_POINT=${{#COMP_LINE}}; _shtab_lehttpd; "
                   f"printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        return subprocess.run(["bash", "-c", program], capture_output=True, text=True).stdout.split()

    top = complete("lehttpd")
    for name in {path[0] for path in command_paths()}:
        assert name in top, name
    assert "--webroot-path" in complete("lehttpd", "issue", current="--")
    assert set(complete("lehttpd", "account")) >= {"show", "update", "deactivate"}
    assert (tmp_path / "completions/_lehttpd").read_text().startswith("#compdef lehttpd")
