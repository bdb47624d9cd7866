"""Bytes to text as a browser would decode them, refusing what is not a page (binary, too large)."""
from __future__ import annotations

import codecs
import os
import re
import stat

from lehttpd.errors import ScanError

MAX_PAGE_BYTES = 10 * 1024 * 1024
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:\-]+)""", re.I)
# WHATWG Encoding: these labels all mean windows-1252 to a browser; a UTF-16 label in a meta means UTF-8.
# UTF-7 is refused by every browser (HTML: "UTF-7 … must not be supported"): the page is read as windows-1252,
# so a URL spelled in UTF-7 (`+ACI-http:…`) is never seen, as a browser never sees it.
_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252", "utf-16-le": "utf-8",
            "utf-16-be": "utf-8", "utf-16": "utf-8", "utf-7": "cp1252"}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class BadInput(ScanError):
    """A page that cannot be read as text: reported and skipped, the scan goes on."""


def decode_page(data: bytes, declared: str | None = None) -> tuple[str, str, str | None]:
    """(text, encoding, note). The text round-trips to the same bytes with `encode_page` (for --fix)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, "surrogateescape"), encoding + "-bom", None
    if b"\x00" in data[:8192]:
        raise BadInput("binary content (NUL bytes), not a page")
    encoding = _codec(declared) or _codec(_prescan(data))
    if encoding is None or encoding == "utf-8":
        try:
            return data.decode("utf-8"), "utf-8", None
        except UnicodeDecodeError as error:
            if encoding is None:  # undeclared and not UTF-8: browsers fall back to windows-1252
                return data.decode("cp1252", "surrogateescape"), "cp1252", \
                    f"not UTF-8 (byte {error.start}) and no charset declared: read as windows-1252"
            return data.decode("utf-8", "surrogateescape"), "utf-8", \
                f"invalid UTF-8 at byte {error.start}: those bytes read as replacement characters"
    return data.decode(encoding, "surrogateescape"), encoding, None


def encode_page(text: str, encoding: str) -> bytes:
    for bom, name in _BOMS:
        if encoding == name + "-bom":
            return bom + text.encode(name, "surrogateescape")
    return text.encode(encoding, "surrogateescape")


def _prescan(data: bytes) -> str | None:
    start = data[:1024].lower().find(b"<meta")  # every match starts there: spare the regex the bytes before
    if start < 0:
        return None
    m = _META_CHARSET.search(data, start, 1024)
    return m.group(1).decode("ascii") if m else None


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        info = codecs.lookup(label.strip().lower())
        b"a".decode(info.name, "replace")  # rot13, base64, zlib…: codecs, but not text encodings
    except LookupError:
        return None
    return _ALIASES.get(info.name, info.name)


def read_page(path: str, max_bytes: int = MAX_PAGE_BYTES) -> bytes:
    """Read a file, refusing anything that is not a regular file or is too large to be a page."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput("not a regular file")
        if st.st_size > max_bytes:
            raise BadInput(f"{st.st_size // 1024 // 1024} MB, over the {max_bytes // 1024 // 1024} MB limit "
                           "(--max-page-size)")
        with open(path, "rb", buffering=0) as handle:
            # read(max_bytes + 1) would allocate max_bytes for every page: one read of the size stat gave,
            # then more only after a short read or if the file changed size meanwhile
            data = handle.read(st.st_size + 1)
            while len(data) != st.st_size and len(data) <= max_bytes:
                more = handle.read(max_bytes + 1 - len(data))
                if not more:
                    break
                data += more
    except OSError as error:
        raise BadInput(f"unreadable: {error.strerror or error}") from error
    if len(data) > max_bytes:
        raise BadInput(f"grew over the {max_bytes // 1024 // 1024} MB limit while being read")
    return data
