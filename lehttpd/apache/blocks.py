"""A small exact reader for the listing: the <VirtualHost> blocks Apache itself located (`-S` gives file and line).

`lehttpd apache vhosts` shows a handful of directives written directly in each block (ServerName, ServerAlias,
DocumentRoot, SSLEngine, the certificate lines). Feeding 1,000 files through Augeas' httpd lens to get them costs
about 0.3 s; this reader gets the same values from the bytes in a few milliseconds. It only understands the plain
subset of the syntax (directives with bare or quoted arguments, comments, nested sections, continuation lines) and
answers None for anything else (a brace word list, a quote glued to another argument, a <Perl> section, a tag that
does not start the listed line...); the caller then reads that file through Augeas (tree.py) as before. The nodes it
returns have the shape tree.py gives (arguments as written, quotes included), so vhosts.vhost_from_block builds the
VirtualHost the same way for both, and a test checks they agree on every corpus vhost.

Reading only, never for planning: edits are planned on Augeas spans.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from lehttpd.apache.tree import Node

# A directive: its name (the lens' `word`), then arguments as the lens' `bare` (a run of non-blanks that does not
# start with a quote or a brace and does not end with a backslash) or double/single-quoted (backslash escapes kept
# as written); anything else on a directive line (a brace word list, a quote glued to the next argument, an
# unterminated quote) makes the block "not plain".
# A continuation (backslash-newline) is whitespace between arguments, as in the lens; a quoted argument may not span
# one (the lens would keep the newline in its value), so the joined line keeps a "\n" there, which quotes refuse.
_NAME = re.compile(r"[ \t]*([A-Za-z][A-Za-z0-9._-]*)(?=[ \t\n]|\Z)")
_ARG = re.compile(r"""[ \t\n]+("(?:[^"\\\r\n]|\\[^\r\n])*"|'(?:[^'\\\r\n]|\\[^\r\n])*'"""
                  r"""|[^ \t\r\n"'{][^ \t\r\n]*[^ \t\r\n\\]|[^ \t\r\n"'{\\])(?=[ \t\n]|\Z)""")
_OPEN = re.compile(r"[ \t]*<([A-Za-z][A-Za-z0-9._-]*)([ \t][^>]*)?>[ \t]*$")
_CLOSE = re.compile(r"[ \t]*</([A-Za-z][A-Za-z0-9._-]*)[ \t]*>[ \t]*$")
_SPLIT = re.compile(r"[^\n]*\n|[^\n]+")


def read_bytes(path: Path) -> bytes:
    """A file's bytes with plain os.read (half the cost of Path.read_bytes on a thousand small files); raises
    OSError as Path.read_bytes does."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        data = os.read(fd, 1 << 16)
        if len(data) < 1 << 16:
            return data
        chunks = [data]
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class FileLines:
    """One file's bytes, decoded once, with the offset where each line starts (for byte spans and line numbers)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        text = data.decode("utf-8", errors="surrogateescape")
        self.lines = _SPLIT.findall(text)
        self.starts = [0] * (len(self.lines) + 1)
        offset, ascii_ = 0, text.isascii()  # a character is a byte only in ASCII text
        for index, line in enumerate(self.lines):
            self.starts[index] = offset
            offset += len(line) if ascii_ else len(line.encode("utf-8", errors="surrogateescape"))
        self.starts[len(self.lines)] = offset


def _args(rest: str) -> tuple[str, ...] | None:
    """The arguments after a directive's name, as the lens stores them; None when not plain."""
    args, position = [], 0
    while position < len(rest):
        match = _ARG.match(rest, position)
        if match is None:
            return None if rest[position:].strip(" \t\n") else tuple(args)
        args.append(match.group(1))
        position = match.end()
    return tuple(args)


def _logical(lines: list[str], index: int) -> tuple[str, int, bool] | None:
    """The logical line starting at `index` (continuation lines joined: the backslash goes, the newline stays),
    the index after it, and whether lines were joined."""
    line = lines[index].rstrip("\r\n")
    index += 1
    joined = False
    while line.endswith("\\"):
        if index >= len(lines):
            return None
        line = line[:-1] + "\n" + lines[index].rstrip("\r\n")
        index += 1
        joined = True
    return line, index, joined


def read_block(lines: FileLines, line: int, only: frozenset[str] | None = None) -> Node | None:
    """The <VirtualHost> section whose tag starts line `line` (1-based), with its direct directives as children;
    None when the block is not written in the plain subset this reader knows (read it through Augeas then).
    `only` (lower-case names): the directives wanted; the other lines are read for the block's shape only."""
    if not 1 <= line <= len(lines.lines):
        return None
    text = lines.lines
    first = _logical(text, line - 1)
    if first is None:
        return None
    opening = _OPEN.match(first[0])
    if opening is None or opening.group(1).lower() != "virtualhost" or first[2] or "\\" in first[0]:
        return None
    vhost_args = _args(opening.group(2) or "")
    if vhost_args is None:
        return None
    children: list[Node] = []
    depth, index, count = 0, first[1], len(text)
    while index < count:
        start = index
        content = text[index].rstrip("\r\n")
        index += 1
        if content.endswith("\\"):
            logical = _logical(text, start)
            if logical is None:
                return None
            content, index, _joined = logical
        stripped = content.lstrip(" \t\n")
        if not stripped or stripped[0] == "#":
            continue
        if stripped[0] == "<":
            if stripped[1:2] == "/":
                if _CLOSE.match(content) is None:
                    return None
                if depth == 0:
                    return Node(name=opening.group(1), args=vhost_args, start=lines.starts[line - 1],
                                end=lines.starts[index], line=line, is_block=True, children=tuple(children))
                depth -= 1
                continue
            section = _OPEN.match(content)
            if section is None or section.group(1).lower() == "perl":
                return None
            depth += 1
            continue
        if depth:
            continue  # inside a nested section: not a direct directive of the vhost
        name = _NAME.match(content)
        if name is None:
            return None
        if only is not None and name.group(1).lower() not in only:
            continue
        args = _args(content[name.end():])
        if args is None:
            return None
        children.append(Node(name=name.group(1), args=args, start=lines.starts[start], end=lines.starts[index],
                             line=start + 1, is_block=False))
    return None  # no closing tag
