"""PNG (and APNG): replace the eXIf chunk and the XMP iTXt chunk by walking the chunks.

Chunks are copied byte for byte, CRC included; only the inserted chunks are built here.
An ancillary chunk with a bad CRC is tolerated and dropped, as browsers do (libpng's
default; in Chromium 156 a bad-CRC gAMA changes nothing on screen), so the output shows
as the source did and is well-formed. A bad CRC on a critical chunk or an APNG
animation chunk (damaged pixels, header or frame layout) is still refused.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ...errors import ContainerError
from .metadata import Metadata

SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
# A C2PA manifest store: its hard binding breaks with any rewrite, and it may name people and
# devices; metadata of the "other" kind (a signed build adds its own, naming the source).
C2PA_CHUNK = b"caBX"
# Animation chunks are ancillary, but dropping a damaged one would change the frames.
MUST_BE_INTACT = (b"acTL", b"fcTL", b"fdAT")
# Inflating an attacker's zTXt must not exhaust memory: real XMP packets are far smaller.
MAX_INFLATED = 16 * 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    type: bytes
    raw: bytes  # length, type, data and CRC exactly as in the file
    data: bytes
    crc_ok: bool = True  # False only for an ancillary chunk that readers will skip


def chunks(data: bytes) -> list[Chunk]:
    """The chunks from IHDR to IEND inclusive; bytes after IEND are a trailer and ignored."""
    if not data.startswith(SIGNATURE):
        raise ContainerError("not a PNG file: the 8-byte PNG signature is missing")
    chunks: list[Chunk] = []
    pos = len(SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise ContainerError("PNG file is truncated: it ends before the IEND chunk")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if not kind.isalpha():  # bytes.isalpha() accepts ASCII letters only
            raise ContainerError(f"PNG chunk at byte {pos} has an invalid type {kind!r}")
        if length > 0x7FFFFFFF or end > len(data):
            raise ContainerError(f"PNG {kind.decode()} chunk at byte {pos} runs past the file end")
        body = data[pos + 8 : end - 4]
        crc_ok = zlib.crc32(kind + body) == int.from_bytes(data[end - 4 : end], "big")
        # Bit 5 of the first type byte (lower case) marks an ancillary chunk: one a decoder
        # may skip. A bad CRC in a critical chunk means a damaged header or image data.
        if not crc_ok and (not kind[0] & 0x20 or kind in MUST_BE_INTACT):
            raise ContainerError(f"PNG {kind.decode()} chunk at byte {pos} has a bad CRC")
        if not chunks and kind != b"IHDR":
            raise ContainerError("PNG file does not start with an IHDR chunk")
        chunks.append(Chunk(kind, data[pos:end], body, crc_ok))
        pos = end
        if kind == b"IEND":
            return chunks


def _keyword(chunk: Chunk) -> bytes:
    return chunk.data.split(b"\x00", 1)[0]


def _keep(chunk: Chunk, keep_other: bool) -> bool:
    if chunk.type == b"eXIf":
        return False
    if chunk.type in TEXT_CHUNKS:
        keyword = _keyword(chunk)
        # ImageMagick stores hex dumps of EXIF/XMP/IPTC as "Raw profile type exif" etc.
        if keyword == XMP_KEYWORD or keyword.startswith(b"Raw profile type"):
            return False
        return keep_other
    if chunk.type in (b"tIME", C2PA_CHUNK):
        return keep_other
    return True


def _inflate(compressed: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, MAX_INFLATED + 1)
    except zlib.error as exc:
        raise ContainerError(f"PNG compressed XMP chunk is corrupt: {exc}") from None
    if len(text) > MAX_INFLATED:
        raise ContainerError(f"PNG compressed XMP chunk inflates past {MAX_INFLATED} bytes")
    if not inflater.eof:
        raise ContainerError("PNG compressed XMP chunk is truncated")
    return text


def _xmp_text(chunk: Chunk) -> bytes:
    rest = chunk.data[len(XMP_KEYWORD) + 1 :]
    if chunk.type == b"tEXt":
        return rest
    if chunk.type == b"zTXt":
        if not rest:
            raise ContainerError("PNG zTXt chunk has no compression method")
        return _inflate(rest[1:])
    # iTXt: compression flag, method, language\0, translated keyword\0, text.
    parts = rest[2:].split(b"\x00", 2)
    if len(rest) < 2 or len(parts) != 3:
        raise ContainerError("PNG iTXt chunk is malformed")
    return _inflate(parts[2]) if rest[0] else parts[2]


def chunk(kind: bytes, body: bytes) -> bytes:
    """A chunk's bytes: length, type, ``body`` and CRC."""
    crc = zlib.crc32(body, zlib.crc32(kind))
    return b"".join((len(body).to_bytes(4, "big"), kind, body, crc.to_bytes(4, "big")))


def read(data: bytes) -> Metadata:
    """The first XMP packet and the eXIf block in ``data``."""
    xmp: bytes | None = None
    exif: bytes | None = None
    for chunk in chunks(data):
        if not chunk.crc_ok:
            continue  # browsers skip it: its orientation or rights never reached anyone
        if exif is None and chunk.type == b"eXIf":
            # Some writers copy JPEG's prefix into eXIf although the spec forbids it.
            exif = chunk.data.removeprefix(b"Exif\x00\x00")
        elif xmp is None and chunk.type in TEXT_CHUNKS and _keyword(chunk) == XMP_KEYWORD:
            xmp = _xmp_text(chunk)
    return Metadata(xmp=xmp, exif=exif)


def write(data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes:
    """``data`` with its EXIF/XMP replaced by ``exif``/``xmp``; see :mod:`.containers`."""
    kept = [c for c in chunks(data) if c.crc_ok and _keep(c, keep_other)]
    # eXIf must precede IDAT, and readers that stream (browsers, exiv2) only look for XMP
    # before the image data; in an APNG the first fcTL may come before IDAT.
    split = next((i for i, c in enumerate(kept) if c.type in (b"IDAT", b"fcTL")), None)
    if split is None:
        raise ContainerError("PNG file has no IDAT chunk")
    new = [chunk(b"eXIf", exif)] if exif is not None else []
    # Uncompressed, with empty language and translated keyword, as the XMP spec asks.
    new.append(chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp))
    return b"".join(
        [SIGNATURE, *(c.raw for c in kept[:split]), *new, *(c.raw for c in kept[split:])]
    )
