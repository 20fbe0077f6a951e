"""WebP: replace the EXIF and XMP chunks of the RIFF container, building a VP8X if needed.

Image chunks are copied byte for byte; only VP8X and the metadata chunks are rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ContainerError
from .metadata import Metadata

ICC_FLAG, ALPHA_FLAG, EXIF_FLAG, XMP_FLAG, ANIMATION_FLAG = 0x20, 0x10, 0x08, 0x04, 0x02
IMAGE_CHUNKS = (b"ANMF", b"ALPH", b"VP8 ", b"VP8L")
VP8_START_CODE = b"\x9d\x01\x2a"


@dataclass(frozen=True)
class _Chunk:
    fourcc: bytes
    data: bytes

    def encode(self) -> bytes:
        pad = b"\x00" if len(self.data) % 2 else b""
        return self.fourcc + len(self.data).to_bytes(4, "little") + self.data + pad


def _chunks(data: bytes) -> list[_Chunk]:
    """The chunks inside the RIFF ``WEBP`` form; bytes past the RIFF size are ignored."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ContainerError("not a WebP file: the RIFF/WEBP header is missing")
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        raise ContainerError(f"WebP file is truncated: its RIFF header says {end} bytes")
    chunks: list[_Chunk] = []
    pos = 12
    while pos < end:
        if pos + 8 > end:
            raise ContainerError(f"WebP chunk header at byte {pos} runs past the RIFF end")
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + size > end:
            raise ContainerError(f"WebP {fourcc!r} chunk at byte {pos} runs past the RIFF end")
        chunks.append(_Chunk(fourcc, data[pos + 8 : pos + 8 + size]))
        # Odd chunks are padded to even; a missing pad byte on the last chunk is tolerated.
        pos += 8 + size + size % 2
    if not chunks:
        raise ContainerError("WebP file has no chunks")
    return chunks


def _bitstream_canvas(chunk: _Chunk) -> tuple[int, int, bool]:
    """Width, height and alpha bit of a simple-format VP8 or VP8L bitstream."""
    head = chunk.data
    if chunk.fourcc == b"VP8 ":
        # Frame tag (3 bytes, bit 0 clear on key frames), start code, then 14-bit sizes.
        if len(head) < 10 or head[0] & 1 or head[3:6] != VP8_START_CODE:
            raise ContainerError("WebP VP8 chunk does not start with a key frame header")
        width = int.from_bytes(head[6:8], "little") & 0x3FFF
        height = int.from_bytes(head[8:10], "little") & 0x3FFF
        if not width or not height:
            raise ContainerError("WebP VP8 key frame header gives a zero width or height")
        return width, height, False
    if len(head) < 5 or head[0] != 0x2F:
        raise ContainerError("WebP VP8L chunk does not start with the 0x2f signature")
    bits = int.from_bytes(head[1:5], "little")
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)


def _vp8x(chunks: list[_Chunk], has_exif: bool) -> _Chunk:
    """The VP8X chunk for the output, from the old one or from the bitstream header."""
    old = next((c for c in chunks if c.fourcc == b"VP8X"), None)
    if old is not None:
        if len(old.data) < 10:
            raise ContainerError("WebP VP8X chunk is shorter than 10 bytes")
        flags = old.data[0] & (ICC_FLAG | ALPHA_FLAG | ANIMATION_FLAG)
        width = int.from_bytes(old.data[4:7], "little") + 1
        height = int.from_bytes(old.data[7:10], "little") + 1
    else:
        image = next((c for c in chunks if c.fourcc in (b"VP8 ", b"VP8L")), None)
        if image is None:
            raise ContainerError("WebP file has neither a VP8X nor a VP8/VP8L chunk")
        width, height, alpha = _bitstream_canvas(image)
        flags = ALPHA_FLAG if alpha else 0
    fourccs = {c.fourcc for c in chunks}
    if b"ALPH" in fourccs:
        flags |= ALPHA_FLAG
    if b"ICCP" in fourccs:
        flags |= ICC_FLAG
    flags |= XMP_FLAG | (EXIF_FLAG if has_exif else 0)
    body = bytes((flags, 0, 0, 0)) + (width - 1).to_bytes(3, "little")
    return _Chunk(b"VP8X", body + (height - 1).to_bytes(3, "little"))


def read(data: bytes) -> Metadata:
    """The XMP and EXIF chunks of ``data`` (EXIF without a stray ``Exif\\0\\0`` prefix)."""
    xmp: bytes | None = None
    exif: bytes | None = None
    for chunk in _chunks(data):
        if xmp is None and chunk.fourcc == b"XMP ":
            xmp = chunk.data
        elif exif is None and chunk.fourcc == b"EXIF":
            # Older ImageMagick and some phones copy JPEG's prefix into the chunk.
            exif = chunk.data.removeprefix(b"Exif\x00\x00")
    return Metadata(xmp=xmp, exif=exif)


def write(data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes:
    """``data`` with its EXIF/XMP replaced by ``exif``/``xmp``; see :mod:`.containers`.

    WebP has no IPTC-IIM or comment chunk; ``keep_other`` only keeps a C2PA manifest store.
    """
    # A C2PA manifest store goes as other metadata does (see png.C2PA_CHUNK).
    dropped = (b"EXIF", b"XMP ") if keep_other else (b"EXIF", b"XMP ", b"C2PA")
    chunks = [c for c in _chunks(data) if c.fourcc not in dropped]
    if not any(c.fourcc in IMAGE_CHUNKS for c in chunks):
        raise ContainerError("WebP file has no image data (ANMF, VP8 or VP8L chunk)")
    # The WebP container spec fixes this order (metadata after the image data); strict
    # demuxers check it, and a fixed order is what makes the output idempotent.
    order = [
        [_vp8x(chunks, exif is not None)],
        [c for c in chunks if c.fourcc == b"ICCP"],
        [c for c in chunks if c.fourcc == b"ANIM"],
        [c for c in chunks if c.fourcc in IMAGE_CHUNKS],
        [_Chunk(b"EXIF", exif)] if exif is not None else [],
        [_Chunk(b"XMP ", xmp)],
        [c for c in chunks if c.fourcc not in (b"VP8X", b"ICCP", b"ANIM", *IMAGE_CHUNKS)],
    ]
    body = b"WEBP" + b"".join(chunk.encode() for group in order for chunk in group)
    if len(body) > 0xFFFFFFFF:
        raise ContainerError("WebP file would exceed the 4 GiB RIFF size limit")
    return b"RIFF" + len(body).to_bytes(4, "little") + body
