"""A watermarked PNG original without re-encoding the rows the mark left alone.

A mark changes a band of rows. Writing the whole PNG again costs Pillow's filtering of every
row and a new deflate of all of it: 5.1 s of the 7.4 s that ``apply_to = "all"`` added to a
cold build of the dev corpus, most of it on its 19 PNGs of up to 5120 × 2880. A PNG's pixels
are one zlib stream of filtered rows; a row's filtered bytes depend only on itself and the
row above; the stream is a chain of deflate blocks whose back-references reach at most
32 KiB. So the rows above the band and those more than 32 KiB below it can keep their
compressed bits:

1. Inflate the stored stream with zlib's ``Z_BLOCK`` flush, which stops at every block
   boundary and reports its bit position: the method of zlib's own ``examples/zran.c`` and
   ``gzjoin.c``. Python's :mod:`zlib` does not expose it, so this calls the same libz
   through :mod:`ctypes`; ``inflateInit2_`` checks the library's version and the size of
   the stream record, so a mismatch is a refusal, never a crash.
2. Keep the compressed bits up to the last boundary above the band, deflate the bytes from
   there to the first boundary at least 32 KiB below the band (the band's rows filtered by
   Pillow, with the row above as context), and keep the rest of the stream from there.
3. Join the pieces at bit level. Deflate blocks need not start on a byte: an empty stored
   block brings the kept head to a byte boundary, and empty fixed-Huffman blocks (10 bits
   each) bring the new blocks to the bit phase the kept tail had, so the tail is copied
   byte for byte; the Adler-32 is updated for the changed bytes only.

Measured on the dev corpus (19 PNGs, text mark at the bottom right, scale 0.3): see the
README ("Watermarks"). Used only where it is exact: 8-bit RGB or RGBA, not interlaced, not
animated, one run of IDAT chunks, the image upright as
stored and the marked pixels equal to the stored ones outside the band (the caller
decides that). Anything else, or any zlib complaint, returns None and the caller
re-encodes the whole image as before.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import functools
import io
import itertools
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, cast

from PIL import Image

from ..errors import ContainerError
from .containers import png as png_file

# Colour type -> Pillow mode at 8 bits. Greyscale is left out: the build turns it to RGB
# before marking, so its stored rows could never be kept.
_MODES = {2: "RGB", 6: "RGBA"}
_WINDOW = 32768
_Z_OK, _Z_STREAM_END, _Z_BLOCK = 0, 1, 5
_IDAT_PIECE = 1 << 20
_STORED = 65535  # the most a stored deflate block holds
_MAX_CHUNK = 2**31 - 1  # PNG's limit on a chunk's length
_MOD = 65521


class _ZStream(ctypes.Structure):
    """zlib's ``z_stream`` (zlib.h); its size is checked by ``inflateInit2_``."""

    _fields_ = [
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint),
        ("total_in", ctypes.c_ulong),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint),
        ("total_out", ctypes.c_ulong),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", ctypes.c_ulong),
        ("reserved", ctypes.c_ulong),
    ]


@functools.cache
def _libz() -> ctypes.CDLL | None:
    """The system's zlib (the one Python's zlib module uses), or None."""
    for name in ("libz.so.1", ctypes.util.find_library("z")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.zlibVersion.restype = ctypes.c_char_p
            lib.inflateInit2_.argtypes = [
                ctypes.POINTER(_ZStream),
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
            ]
            lib.inflate.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int]
            lib.inflateEnd.argtypes = [ctypes.POINTER(_ZStream)]
            return lib
        except (OSError, AttributeError):
            continue
    return None


class _Stream:
    """A stored zlib stream, inflated once: its bytes, block starts and end."""

    def __init__(self, raw: bytearray, starts: list[tuple[int, int]], end: int, adler: int):
        self.raw = raw
        self.starts = starts  # (bit position in the stream, offset in the inflated bytes)
        self.end = end  # bit position just after the last block
        self.adler = adler  # of the inflated bytes, checked by zlib against the trailer

    def bytes(self, start: int, stop: int) -> bytes:
        return bytes(memoryview(self.raw)[start:stop])


def _inflate(z: bytes, size: int) -> _Stream | None:
    """Inflate ``z`` (a zlib stream of exactly ``size`` bytes) noting block boundaries."""
    lib = _libz()
    if lib is None:
        return None
    source = ctypes.c_char_p(z)  # read only, and ``z`` outlives the call
    # One spare byte: more data than the header says is an error. (A bytearray measured a
    # little faster than ctypes' own buffer or an anonymous mmap, populated or not.)
    raw = bytearray(size + 1)
    target = (ctypes.c_char * (size + 1)).from_buffer(raw)
    strm = _ZStream()
    strm.next_in = ctypes.cast(source, ctypes.c_void_p)
    strm.avail_in = len(z)
    strm.next_out = ctypes.addressof(target)
    strm.avail_out = size + 1
    if lib.inflateInit2_(ctypes.byref(strm), 15, lib.zlibVersion(), ctypes.sizeof(strm)) != _Z_OK:
        return None
    starts: list[tuple[int, int]] = []
    end = -1
    try:
        while True:
            ret = lib.inflate(ctypes.byref(strm), _Z_BLOCK)
            if ret == _Z_STREAM_END:
                break
            flags = strm.data_type
            if ret != _Z_OK or not flags & 128 or flags & 63 > 7:
                return None  # damaged, truncated, or not at a boundary after all
            bit = strm.total_in * 8 - (flags & 7)
            if flags & 64:  # the end of the last block; the trailer follows
                end = bit
            else:
                starts.append((bit, strm.total_out))
        if strm.total_out != size or end < 0 or not starts:
            return None
        return _Stream(raw, starts, end, strm.adler)
    finally:
        lib.inflateEnd(ctypes.byref(strm))
        del target  # a bytearray cannot be resized while a ctypes view holds it


def _filtered_band(
    marked: Image.Image, mode: str, top: int, bottom: int, row_bytes: int
) -> bytes | None:
    """Rows ``top`` to ``bottom`` (excluded) of ``marked`` as PNG-filtered bytes, filtered
    by Pillow with the real row above as context."""
    context = 1 if top > 0 else 0
    part = marked.crop((0, top - context, marked.width, bottom))
    if part.mode != mode:
        part = part.convert(mode)
    out = io.BytesIO()
    part.save(out, "PNG", compress_level=0)
    try:
        rows = zlib.decompress(_idat_stream(png_file.chunks(out.getvalue())))
    except (ContainerError, zlib.error):
        return None
    if len(rows) != (bottom - top + context) * row_bytes:
        return None
    return rows[context * row_bytes :]


def _adler_update(adler: int, total: int, start: int, old: bytes, new: bytes) -> int:
    """The Adler-32 of ``total`` bytes once ``old`` at ``start`` is replaced by ``new``
    (same length): A and B are linear in each byte, so only the change is summed."""
    a, b = adler & 0xFFFF, adler >> 16
    old_sum, new_sum = zlib.adler32(old), zlib.adler32(new)
    da = (new_sum & 0xFFFF) - (old_sum & 0xFFFF)
    db = (new_sum >> 16) - (old_sum >> 16) + (total - start - len(old)) * da
    return (((b + db) % _MOD) << 16) | ((a + da) % _MOD)


def _pick(
    starts: Sequence[tuple[int, int]], first: int, last_needed: int
) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """The cut (the last block start at or above ``first``) and the resume point (the
    first block start at or after ``last_needed`` on an even bit, which empty 10-bit blocks
    can reach from a byte boundary; None: recompress to the end)."""
    cut = [s for s in starts if s[1] <= first][-1]
    later = [s for s in starts if s[1] >= last_needed]
    even = [s for s in later[:16] if s[0] % 2 == 0]
    return cut, (even[0] if even else None)


@dataclass
class Prepared:
    """A PNG parsed and its pixel stream inflated once, block starts noted."""

    source: bytes
    width: int
    height: int
    colour: int
    idat: tuple[int, int]  # where the run of IDAT chunks starts and ends in ``source``
    z: bytes  # the zlib stream they hold
    stream: _Stream

    @property
    def row_bytes(self) -> int:
        return 1 + self.width * len(_MODES[self.colour])

    def decodable(self) -> IO[bytes]:
        """The same PNG with its rows in stored (uncompressed) deflate blocks, as a file
        for Pillow to decode instead of the source: the pixels are then inflated once,
        here, not twice (0.7 s of CPU for the dev corpus's 19 PNGs). A view, not a copy:
        the rows stay where :func:`_inflate` put them."""
        raw, size = memoryview(self.stream.raw), self.height * self.row_bytes
        data: list[bytes | memoryview] = [b"\x78\x01"]
        for at in range(0, size, _STORED):
            piece = raw[at : min(size, at + _STORED)]
            final = at + _STORED >= size
            data.append(struct.pack("<BHH", final, len(piece), 0xFFFF ^ len(piece)))
            data.append(piece)
        data.append(struct.pack(">I", self.stream.adler))
        crc = zlib.crc32(b"IDAT")
        for part in data:
            crc = zlib.crc32(part, crc)
        start, stop = self.idat
        length = sum(len(part) for part in data)
        head = self.source[:start] + struct.pack(">I", length) + b"IDAT"
        tail = struct.pack(">I", crc) + self.source[stop:]
        return cast(IO[bytes], _Joined([head, *data, tail]))


class _Joined(io.RawIOBase):
    """A read-only file of byte pieces laid end to end, never joined in memory."""

    def __init__(self, pieces: list[bytes | memoryview]):
        self._pieces = pieces
        self._starts = list(itertools.accumulate((len(p) for p in pieces), initial=0))
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = (
            self._starts[-1]
            if size is None or size < 0
            else min(self._starts[-1], self._pos + size)
        )
        out = []
        at = self._pos
        index = bisect.bisect_right(self._starts, at) - 1
        while at < end:
            piece, first = self._pieces[index], self._starts[index]
            take = min(end, first + len(piece))
            out.append(piece[at - first : take - first])
            at, index = take, index + 1
        self._pos = max(self._pos, end)
        return (
            out[0].tobytes() if len(out) == 1 and isinstance(out[0], memoryview) else b"".join(out)
        )

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def prepare(source: bytes) -> Prepared | None:
    """``source`` parsed and inflated, or None where :func:`splice` could not be exact:
    a file the PNG container reader refuses, not 8-bit RGB or RGBA, interlaced, animated,
    IDAT chunks not in one run, a stream zlib refuses or of the wrong length."""
    try:
        chunks = png_file.chunks(source)  # IHDR first, every critical chunk's CRC right
    except ContainerError:
        return None
    if len(chunks[0].data) != 13:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0].data)
    kinds = [c.type for c in chunks]
    idat = [i for i, kind in enumerate(kinds) if kind == b"IDAT"]
    if (
        depth != 8
        or colour not in _MODES
        or interlace
        or not idat
        or idat != list(range(idat[0], idat[-1] + 1))
        or b"acTL" in kinds
        or not width
        or not height
    ):
        return None
    size = height * (1 + width * len(_MODES[colour]))
    if size > _MAX_CHUNK - size // _STORED * 5 - 16:
        return None  # its stored copy would not fit one chunk
    z = _idat_stream(chunks)
    stream = _inflate(z, size)
    if stream is None:
        return None
    starts = list(
        itertools.accumulate((len(c.raw) for c in chunks), initial=len(png_file.SIGNATURE))
    )
    span = (starts[idat[0]], starts[idat[-1] + 1])
    return Prepared(source, width, height, colour, span, z, stream)


def _idat_stream(chunks: list[png_file.Chunk]) -> bytes:
    """The zlib stream a PNG's IDAT chunks hold."""
    return b"".join(c.data for c in chunks if c.type == b"IDAT")


def splice(prepared: Prepared, marked: Image.Image, rows: tuple[int, int]) -> bytes | None:
    """The prepared PNG with the pixels of ``marked`` in ``rows`` (top, bottom excluded),
    every other row kept as stored; None where that cannot be exact or would not pay.

    The caller guarantees that ``marked`` equals the stored pixels outside ``rows``; an
    RGB ``marked`` stands for an RGBA source whose alpha is opaque everywhere.
    """
    p, z, stream = prepared, prepared.z, prepared.stream
    height, row_bytes = p.height, p.row_bytes
    if marked.size != (p.width, height) or marked.mode not in (
        _MODES[p.colour],
        "RGB" if p.colour == 6 else "",
    ):
        return None
    top, bottom = max(0, rows[0]), min(height, rows[1])
    if bottom <= top:
        return p.source
    # The row below the band is filtered again too: its filter may refer to the row above.
    last = min(height, bottom + 1)
    if (last - top) * 2 > height:
        return None  # most of the image changes: a plain re-encode costs about the same
    band_start, band_end = top * row_bytes, last * row_bytes
    (cut_bit, cut_out), resume = _pick(stream.starts, band_start, band_end + _WINDOW)
    band = _filtered_band(marked, _MODES[p.colour], top, last, row_bytes)
    if band is None:
        return None
    stop = resume[1] if resume is not None else height * row_bytes
    middle = stream.bytes(cut_out, band_start) + band + stream.bytes(band_end, stop)
    # Run-length matching: 0.13 s of CPU for the 35 MB in the dev corpus's bands, against
    # 0.82 s at zlib's default strategy, for 68.0 MB of PNGs instead of 67.4.
    if cut_out:
        window = stream.bytes(max(0, cut_out - _WINDOW), cut_out)
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_RLE, window)
    else:
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    packed = deflate.compress(middle)
    packed += deflate.flush(zlib.Z_SYNC_FLUSH if resume is not None else zlib.Z_FINISH)
    # The kept head up to the cut; an empty stored block (3 header bits, then zeros to the
    # byte, LEN 0, NLEN 0xFFFF) to reach a byte boundary whatever the cut's bit; the new
    # blocks, which end on a byte; empty fixed-code blocks (BFINAL 0, BTYPE 01, the 7-bit
    # end-of-block code: 10 bits) to reach the tail's own bit; the kept tail, as stored.
    out = bytearray(z[: cut_bit // 8])
    phase = cut_bit % 8
    if phase:
        out.append(z[cut_bit // 8] & ((1 << phase) - 1))
        if phase + 3 > 8:
            out.append(0)
        out += b"\x00\x00\xff\xff"
    out += packed
    if resume is not None:
        resume_bit = resume[0]
        pads = (resume_bit % 8) // 2
        bits = sum(0b010 << (10 * i) for i in range(pads))
        out += bits.to_bytes((10 * pads + 7) // 8, "little")
        first = resume_bit // 8
        if resume_bit % 8:  # the tail's first byte: its low bits are the padding's
            keep = (1 << (resume_bit % 8)) - 1
            out[-1] = (out[-1] & keep) | (z[first] & ~keep & 0xFF)
            first += 1
        out += z[first : (stream.end + 7) // 8]
    old = stream.bytes(band_start, band_end)
    adler = _adler_update(stream.adler, height * row_bytes, band_start, old, band)
    out += adler.to_bytes(4, "big")
    pieces = [
        png_file.chunk(b"IDAT", bytes(out[i : i + _IDAT_PIECE]))
        for i in range(0, len(out), _IDAT_PIECE)
    ]
    start, stop = p.idat
    return p.source[:start] + b"".join(pieces) + p.source[stop:]
