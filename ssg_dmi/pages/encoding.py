"""A page's bytes as text, in the encoding a browser would read them in, and back.

Browsers decide by byte order mark, then by the ``<meta charset>`` (or ``http-equiv``
Content-Type) in the first 1024 bytes, then fall back to a default (UTF-8 here: the
generators ssg-dmi runs after all write UTF-8). A rewritten page must go back out in the
same encoding, every byte outside the changed tags as it was; a page that cannot promise
that is left alone, and the caller says why.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from .tokens import iter_tags

__all__ = ["PageText", "declared_charset", "decode_page"]


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_CHARSET = re.compile(r"""charset[\t\n\f\r ]*=[\t\n\f\r ]*["']?([^\t\n\f\r ;"']+)""", re.I)
# WHATWG Encoding labels whose Python codec of the same name decodes differently: browsers
# read "iso-8859-1" and "ascii" as windows-1252, "shift_jis" as Microsoft's cp932, and a
# <meta> that says UTF-16 as UTF-8 (a page whose bytes were UTF-16 would need a BOM).
_WHATWG = {
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "latin1": "cp1252",
    "l1": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "gb2312": "gbk",
    "big5": "big5hkscs",
    "utf-16": "utf-8",
    "utf-16le": "utf-8",
    "utf-16be": "utf-8",
    "x-user-defined": "",
}


@dataclass(frozen=True)
class PageText:
    """A page's text and how to turn an edited copy back into bytes in its own encoding."""

    text: str
    encoding: str  # a Python codec name
    bom: bytes = b""

    def encode(self, text: str) -> bytes:
        """``text`` in the page's own encoding, its byte order mark first.

        Raises UnicodeEncodeError when ``text`` holds a character the encoding lacks."""
        return self.bom + text.encode(self.encoding, "surrogateescape")


def declared_charset(head: bytes) -> str | None:
    """The charset label a ``<meta charset>`` or ``<meta http-equiv=content-type>`` in
    ``head`` (the first 1024 bytes, as the HTML prescan reads them) declares, if any."""
    text = head[:1024].decode("latin-1")
    for tag in iter_tags(text, frozenset({"meta"})):
        if tag.closing:
            continue
        charset = tag.get("charset")
        if charset is not None and charset.strip():
            return charset.strip().lower()
        if (tag.get("http-equiv") or "").strip().lower() == "content-type":
            m = _CHARSET.search(tag.get("content") or "")
            if m:
                return m.group(1).lower()
    return None


def decode_page(data: bytes) -> PageText | str:
    """A page's text, decoded as a browser would: by byte order mark, then by the charset
    its ``<meta>`` declares, then as UTF-8; or, when it cannot be decoded, why not.

    UTF-8 keeps invalid bytes as lone surrogates (``surrogateescape``) so they go back out
    unchanged. A page in any other encoding is decoded only when its bytes are valid in it
    and encoding the text again gives the same bytes, so every byte outside an edit is kept.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            body = data[len(bom) :]
            errors = "surrogateescape" if codec == "utf-8" else "strict"
            try:
                return PageText(body.decode(codec, errors), codec, bom)
            except UnicodeDecodeError as exc:
                return f"not valid {codec.upper()} after its byte order mark ({exc.reason})"
    if b"\x00" in data[:1024]:
        # No HTML text holds NUL; UTF-16 without a byte order mark does, on every ASCII
        # character. Read as UTF-8 it has no <head>: our metas would land at byte 0.
        return "NUL bytes near its start (UTF-16 without a byte order mark?)"
    label = declared_charset(data)
    codec = "utf-8" if label is None else _WHATWG.get(label, label)
    unknown = f'its <meta> declares charset "{label}", which ssg-dmi cannot decode'
    try:
        name = codecs.lookup(codec).name if codec else ""
    except LookupError:
        return unknown
    if name == "utf-8":
        return PageText(data.decode("utf-8", "surrogateescape"), "utf-8")
    # Browsers' windows-1252 gives the five bytes Python's cp1252 leaves undefined (0x81,
    # 0x8D, 0x8F, 0x90, 0x9D) a character each: they are valid, kept as they are.
    errors = "surrogateescape" if name == "cp1252" else "strict"
    try:
        text = data.decode(name, errors) if name else ""
    except UnicodeDecodeError as exc:
        return f"not valid {label} as its <meta> declares (byte {exc.start}: {exc.reason})"
    except LookupError:  # a bytes-to-bytes codec such as "base64"
        return unknown
    if not name:
        return unknown
    page = PageText(text, name)
    if page.encode(text) != data:
        return f"{label} text that would not encode back to the same bytes"
    return page
