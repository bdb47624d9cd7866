"""The Augeas adapter: the only module that speaks XPath.

Files are read by us (bytes) and handed to Augeas' `httpd` lens with `text_store`, with spans on: every node comes
back with its byte offsets in the file. Nothing is ever saved through Augeas; edits are planned as byte splices on
those spans (plan.py), so comments, ordering and formatting outside the changed lines are kept exactly.
A file the lens rejects becomes a ConfigParseError naming its real path and line; other files are unaffected.
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from pathlib import Path

from lehttpd.errors import ApacheConfigError, EnvironmentProblem

LENS = "Httpd.lns"
_SKIP_LABELS = ("arg", "#comment")


class ConfigParseError(ApacheConfigError):
    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: Augeas cannot parse this file: {reason}")
        self.path, self.line, self.reason = path, line, reason


@dataclass(frozen=True)
class Node:
    """A directive (`is_block` False) or a section such as <VirtualHost>, with byte offsets of its whole text."""

    name: str
    args: tuple[str, ...]
    start: int
    end: int
    line: int
    is_block: bool
    children: tuple["Node", ...] = ()

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(unquote(arg) for arg in self.args)

    def named(self, name: str) -> list["Node"]:
        """Direct children with that name (case-insensitive, as Apache reads directives)."""
        return [child for child in self.children if child.name.lower() == name.lower()]

    def walk(self):
        for child in self.children:
            yield child
            yield from child.walk()


@dataclass(frozen=True)
class ParsedFile:
    path: Path
    data: bytes = field(repr=False)
    nodes: tuple[Node, ...]

    def line_of(self, offset: int) -> int:
        return self.data.count(b"\n", 0, offset) + 1

    def walk(self):
        for node in self.nodes:
            yield node
            yield from node.walk()

    def block_at_line(self, name: str, line: int) -> Node | None:
        for node in self.walk():
            if node.is_block and node.name.lower() == name.lower() and node.line == line:
                return node
        return None


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _one_byte_each(error: UnicodeDecodeError):
    """A byte that is not UTF-8 (a Latin-1 comment) becomes one `?`: Augeas gets valid text, and its spans, which
    count the UTF-8 bytes it is given, stay the offsets of the file's own bytes."""
    return "?" * (error.end - error.start), error.end


_ONE_BYTE = "lehttpd-one-byte"
codecs.register_error(_ONE_BYTE, _one_byte_each)


MIN_AUGEAS = (1, 4, 0)  # text_store with spans, and an httpd lens that reads today's syntax
INSTALL_AUGEAS = ("apt-get install libaugeas0 augeas-lenses (dnf install augeas-libs on RHEL); or print the "
                  "blocks to add by hand with --emit")


def open_augeas():
    """An Augeas handle (httpd lens only, spans on), or one line saying what to install."""
    try:
        import augeas  # here, not at the top: the listing's plain reader (blocks.py) needs only Node

        flags = augeas.Augeas.NO_MODL_AUTOLOAD | augeas.Augeas.ENABLE_SPAN | augeas.Augeas.NO_LOAD
        handle = augeas.Augeas(flags=flags)
    except (ImportError, OSError, AttributeError) as error:
        raise EnvironmentProblem(f"Augeas is needed to edit Apache files and cannot be loaded ({error}): "
                                 f"{INSTALL_AUGEAS}") from None
    text = handle.get("/augeas/version") or "0"
    version = tuple(int(part) for part in (text.split(".") + ["0", "0"])[:3] if part.isdigit())
    if version < MIN_AUGEAS or not hasattr(handle, "text_store"):
        handle.close()
        raise EnvironmentProblem(f"Augeas {text} is too old (lehttpd needs {'.'.join(map(str, MIN_AUGEAS))}): "
                                 f"{INSTALL_AUGEAS}")
    return handle


class ConfigReader:
    """One Augeas handle, the httpd lens only (no autoload of the ~200 other lenses)."""

    def __init__(self) -> None:
        self._aug = open_augeas()
        self._count = 0

    def close(self) -> None:
        self._aug.close()

    def parse_bytes(self, path: Path, data: bytes, only: frozenset[str] | None = None) -> ParsedFile:
        """Parse one file. `only` (lower-case directive names) makes a shallow read for listings: other
        directives are skipped and sections other than VirtualHost/If* are not descended into. Such a
        ParsedFile is for reading only, never for planning edits."""
        if data.startswith(b"\xef\xbb\xbf"):
            raise ConfigParseError(path, 1, "UTF-8 byte-order mark at the start (Apache 2.4 refuses it too)")
        self._count += 1
        key = f"f{self._count}"
        text = data.decode("utf-8", errors=_ONE_BYTE)
        try:
            self._aug.set(f"/input/{key}", text)
            self._aug.text_store(LENS, f"/input/{key}", f"/text/{key}")
        except (ValueError, RuntimeError, UnicodeEncodeError):
            raise self._error(path, key) from None
        finally:
            self._aug.remove(f"/input/{key}")
        try:
            nodes = tuple(self._nodes(f"/text/{key}", data, only))
        finally:
            self._aug.remove(f"/text/{key}")
            self._aug.remove(f"/augeas/text/text/{key}")
        return ParsedFile(path=path, data=data, nodes=nodes)

    def parse(self, path: Path, only: frozenset[str] | None = None) -> ParsedFile:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise ApacheConfigError(f"{path}: cannot read: {error.strerror}") from None
        return self.parse_bytes(Path(path), data, only)

    def _error(self, path: Path, key: str) -> ConfigParseError:
        base = f"/augeas/text/text/{key}/error"
        line = self._aug.get(f"{base}/line") or "1"
        message = self._aug.get(f"{base}/message") or self._aug.get(base) or "parse failed"
        self._aug.remove(f"/augeas/text/text/{key}")
        return ConfigParseError(path, int(line), message)

    def _nodes(self, tree_path: str, data: bytes, only: frozenset[str] | None = None):
        for match in self._aug.match(f"{tree_path}/*"):
            label = match.rsplit("/", 1)[-1].split("[", 1)[0]
            if label in _SKIP_LABELS:
                continue
            if only is not None:
                if label == "directive":
                    name = self._aug.get(match) or ""
                    if name.lower() not in only:
                        continue
                elif label.lower() != "virtualhost" and not label.lower().startswith("if"):
                    continue
            span = self._aug.span(match)
            start, end = span[5], span[6]
            args = tuple(self._aug.get(arg) or "" for arg in self._aug.match(f"{match}/arg"))
            line = data.count(b"\n", 0, start) + 1
            if label == "directive":
                name = self._aug.get(match) or ""
                yield Node(name=name, args=args, start=start, end=end, line=line, is_block=False)
            else:
                # a section: its span starts at "<", the line is where the tag is written
                tag = data.rfind(b"<", 0, span[1] + 1) if span[1] else start
                line = data.count(b"\n", 0, max(tag, start)) + 1
                children = tuple(self._nodes(match, data, only))
                yield Node(name=label, args=args, start=start, end=end, line=line, is_block=True,
                           children=children)


def parse_files(paths, reader: ConfigReader | None = None, only: frozenset[str] | None = None
                ) -> tuple[dict[Path, ParsedFile], list[ConfigParseError]]:
    """Parse each file; the ones Augeas rejects are returned as errors and do not stop the others."""
    own = reader is None
    reader = reader or ConfigReader()
    parsed: dict[Path, ParsedFile] = {}
    errors: list[ConfigParseError] = []
    try:
        for path in paths:
            path = Path(path)
            if path in parsed:
                continue
            try:
                parsed[path] = reader.parse(path, only)
            except ConfigParseError as error:
                errors.append(error)
            except ApacheConfigError as error:
                errors.append(ConfigParseError(path, 1, error.message))
    finally:
        if own:
            reader.close()
    return parsed, errors


def real(path: Path) -> Path:
    return Path(os.path.realpath(path))
