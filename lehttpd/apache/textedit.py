"""Byte-level helpers on a parsed file (pure): a directive's whole lines and indentation, the indentation of a
block's children, an insertion before a closing tag, and a :80 vhost's body without its redirects."""
from __future__ import annotations

from lehttpd.apache import render
from lehttpd.apache.changes import Changes
from lehttpd.apache.discover import host_of_server_name
from lehttpd.apache.tree import Node, ParsedFile

REDIRECT_DIRECTIVES = ("redirect", "redirectmatch", "redirectpermanent", "redirecttemp")


def child_indent(data: bytes, node: Node) -> str:
    for child in node.children:
        line_start = data.rfind(b"\n", 0, _name_offset(data, child)) + 1
        prefix = data[line_start:_name_offset(data, child)]
        if prefix.strip() == b"":
            return prefix.decode()
    return "    "


def _name_offset(data: bytes, node: Node) -> int:
    position = data.find(node.name.encode(), node.start, node.end) if not node.is_block else \
        data.find(b"<", node.start, node.end)
    return position if position >= 0 else node.start


def line_span(data: bytes, node: Node) -> tuple[int, int, str]:
    """The whole line(s) of a directive, and its indentation."""
    name_at = _name_offset(data, node)
    start = data.rfind(b"\n", 0, name_at) + 1
    end = node.end if data[node.end - 1:node.end] == b"\n" else node.end
    return start, end, data[start:name_at].decode(errors="replace")


def insert_before_close(parsed: ParsedFile, node: Node, text: str, changes: Changes, reason: str) -> None:
    close = parsed.data.rindex(b"</", node.start, node.end)
    at = parsed.data.rfind(b"\n", node.start, close) + 1 or close
    changes.splice(parsed.path, parsed.data, at, at, text, reason)


def site_body(data: bytes, node: Node, names=()) -> str:
    """The :80 block's inside, comments and layout kept, without its redirects to itself (they would loop on :443;
    one to another host is kept), a ServerName written with a scheme or port reduced to its name."""
    open_end = data.index(b"\n", data.index(b"<", node.start)) + 1
    close = data.rindex(b"</", node.start, node.end)
    close = data.rfind(b"\n", node.start, close) + 1 or close
    edits: list[tuple[int, int, bytes]] = []
    children = list(node.children)
    own = {n.lower() for n in names}
    for index, child in enumerate(children):
        if _redirects_to_itself(child, own):
            start = child.start
            back = index - 1
            while child.name.lower() == "rewriterule" and back >= 0 and \
                    children[back].name.lower() == "rewritecond":
                start = children[back].start
                back -= 1
            edits.append((start, child.end, b""))
        elif child.name.lower() == "servername" and child.values and ":" in child.values[0]:
            start, end, indent = line_span(data, child)
            plain = host_of_server_name(child.values[0])
            edits.append((start, end, f"{indent}ServerName {plain}\n".encode()))
    begin = data.find(render.REDIRECT_BEGIN.encode(), open_end, close)
    if begin >= 0:
        end = data.find(render.REDIRECT_END.encode(), begin, close)
        end = data.find(b"\n", end) + 1 if end >= 0 else begin
        edits.append((data.rfind(b"\n", 0, begin) + 1, end, b""))
    pieces, cursor = [], open_end
    for start, end, text in sorted(edits):
        start = max(start, cursor)
        pieces.append(data[cursor:start] + text)
        cursor = max(cursor, end)
    pieces.append(data[cursor:close])
    return b"".join(pieces).decode("utf-8", errors="surrogateescape")


def _redirects_to_itself(node: Node, names: set[str]) -> bool:
    """A Redirect*/RedirectMatch or an R= RewriteRule whose target is this site (a variable host, or one of its
    names): copied to the SSL vhost it would loop or downgrade."""
    name = node.name.lower()
    if name in REDIRECT_DIRECTIVES:
        targets = [v for v in node.values if "://" in v]
    elif _is_redirect_rule(node):
        targets = [node.values[1]]
    else:
        return False
    if not targets:
        return name in REDIRECT_DIRECTIVES and not names  # no URL: as before, left out
    host = targets[-1].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].lower() if "://" in targets[-1] else ""
    return not host or host.startswith("%{") or host in names or not names


def _is_redirect_rule(node: Node) -> bool:
    if node.name.lower() != "rewriterule" or len(node.values) < 2:
        return False
    flags = node.values[2].lower() if len(node.values) > 2 else ""
    return "://" in node.values[1] and ("r=" in flags or "[r" in flags or ",r" in flags or "redirect" in flags)
