"""Which files a hook command line makes root run: each command's program, and the script an interpreter reads.

`systemctl reload apache2 && /srv/deploy/after.sh` runs two programs; `sh /srv/deploy/after.sh` and
`python3 /srv/app/reload.py` run what another user may have written, through a program root trusts. lehttpd
judges every one of these files before the shell starts (see trust.check_hook_program). It reads the command
the way the shell splits it (quotes, `;`, `&&`, `||`, `|`, `&`, sub-shells, `VAR=value` prefixes, wrappers such
as `exec`, `env`, `nohup`, `timeout 30`, and `sh -c '...'`, read again). What a program decides to read later,
a program named by a variable or `$(...)`, and a relative path after a `cd` cannot be known without running the
shell: those stay the hook author's business, as the README says.
"""
from __future__ import annotations

import re
import shlex

_PUNCTUATION = frozenset("();<>|&")  # shlex returns a run of these as one word: ";(", "&&", "2>&1" as 2, ">&", 1
_RESERVED = {"{", "}", "!", "if", "then", "elif", "else", "while", "until", "do"}  # words after which a new command starts
_WRAPPERS = {"exec", "command", "builtin", "nohup", "env", "nice", "ionice", "setsid", "timeout", "stdbuf",
             "chrt", "time"}
_WRAPPER_ARGUMENT = re.compile(r"^(?:-.*|[A-Za-z_][A-Za-z0-9_]*=.*|[0-9.]+[smhd]?)$")
_SHELLS = re.compile(r"^(?:ba|da|k|z|mk|c|tc)?sh$")
_INTERPRETERS = re.compile(r"^(?:python[0-9.]*|perl[0-9.]*|php[0-9.]*|ruby[0-9.]*|node|nodejs|lua[0-9.]*)$")
_INLINE_CODE = {"-c", "-e", "-E", "-r"}  # python/sh -c, perl/ruby/node -e, perl -E, php -r: no script file
_MAX_DEPTH = 3  # sh -c "sh -c '...'": read again at most this deep


def programs_run_by(command: str, depth: int = 0) -> list[tuple[str, str]]:
    """(word, role) for each file the command line runs: role "program" (found as a path or on PATH by the
    caller) or "script" (a path an interpreter reads). Unbalanced quotes: nothing (the shell refuses the line)."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return []
    found: list[tuple[str, str]] = []
    for simple in _simple_commands(words):
        found.extend(_run_by_simple(simple, depth))
    return found


def _simple_commands(words: list[str]) -> list[list[str]]:
    commands, current = [], []
    for word in words:
        if word in _RESERVED or (_is_operator(word) and not _is_redirection(word)):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(word)
    if current:
        commands.append(current)
    return commands


def _run_by_simple(words: list[str], depth: int) -> list[tuple[str, str]]:
    words = _without_redirections(words)
    index = 0
    while index < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[index]):
        index += 1  # FOO=1 cmd: the assignment is the shell's, the program follows
    while index < len(words) and words[index] in _WRAPPERS:
        found = [(words[index], "program")]
        index += 1
        while index < len(words) and _WRAPPER_ARGUMENT.match(words[index]):
            index += 1
        if index >= len(words):
            return found
        return found + _run_by_simple(words[index:], depth)
    if index >= len(words):
        return []
    program, rest = words[index], words[index + 1:]
    found = [(program, "program")]
    name = program.rsplit("/", 1)[-1]
    if _SHELLS.match(name) or _INTERPRETERS.match(name):
        found.extend(_interpreted(rest, shell=bool(_SHELLS.match(name)), depth=depth))
    return found


def _interpreted(arguments: list[str], shell: bool, depth: int) -> list[tuple[str, str]]:
    """The script an interpreter runs: its first argument that is not an option; inline code is read again
    when a shell runs it (`sh -c '...'`), and judged no further otherwise."""
    for position, word in enumerate(arguments):
        if word in _INLINE_CODE or (shell and word.startswith("-") and "c" in word[1:] and not word.startswith("--")):
            if shell and position + 1 < len(arguments) and depth < _MAX_DEPTH:
                return programs_run_by(arguments[position + 1], depth + 1)
            return []
        if word == "-m" or word == "--":
            return []  # python -m MODULE: found on sys.path, not a file named here
        if not word.startswith("-"):
            return [(word, "script")]
    return []


def _without_redirections(words: list[str]) -> list[str]:
    kept, skip = [], False
    for position, word in enumerate(words):
        if skip:
            skip = False
        elif _is_redirection(word):
            skip = True  # the operator and its target file: written or read, never run
        elif word.isdigit() and position + 1 < len(words) and _is_redirection(words[position + 1]):
            continue  # the 2 of 2>/dev/null
        else:
            kept.append(word)
    return kept


def _is_operator(word: str) -> bool:
    return bool(word) and set(word) <= _PUNCTUATION


def _is_redirection(word: str) -> bool:
    return _is_operator(word) and ("<" in word or ">" in word)
