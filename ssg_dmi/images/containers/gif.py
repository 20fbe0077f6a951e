"""GIF: XMP lives in an Application Extension ``XMP DataXMP`` before the first frame.

The file is walked block by block (header, logical screen descriptor, colour tables,
extensions and image descriptors with their data sub-blocks); frames, graphic control,
loop and ICC extensions are copied byte for byte. GIF has no EXIF block.

Bytes between blocks that start no block (an unknown block type) are passed through
unchanged, up to the next byte that starts one: Pillow skips them the same way and shows
every frame, browsers stop there and show the frames before them (Chromium and Firefox
treat them as the end of the file); kept in place, both show the output as they showed
the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import ContainerError
from .metadata import Metadata

XMP_ID = b"XMP DataXMP"
# Adobe's "magic trailer": 0x01, 0xFF down to 0x00. A decoder that skips the packet as if
# it were sub-blocks (reading packet bytes as lengths) always lands on the final 0x00
# terminator that follows it, wherever in the packet it started counting.
MAGIC_TRAILER = bytes([1, *range(255, -1, -1)])
# Loop-count extensions: the XMP block goes after one of these so that decoders which only
# look for the loop extension right after the colour table still find it.
LOOP_IDS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")
# ImageMagick's IPTC-IIM and Photoshop resource blocks: IPTC, kept only with keep_other.
IPTC_IDS = (b"MGKIPTC0000", b"MGK8BIM0000")
# A C2PA manifest store (identifier C2PA_GIF, any auth code), dropped as other metadata is
# (see png.C2PA_CHUNK).
C2PA_ID = b"C2PA_GIF"

_INTRODUCER_EXTENSION = 0x21
_INTRODUCER_IMAGE = 0x2C
_TRAILER = 0x3B
_INTRODUCER = re.compile(rb"[\x21\x2c\x3b]")  # what starts a block: "!", "," or ";"
_LABEL_APPLICATION = 0xFF
_LABEL_COMMENT = 0xFE


@dataclass(frozen=True)
class _Block:
    """One top-level block: its raw bytes and what it is."""

    raw: bytes
    kind: str  # "ext", "image" or "junk" (bytes that start no block, kept verbatim)
    label: int = 0  # extension label
    app_id: bytes = b""  # identifier + auth code of an Application Extension
    payload_start: int = 0  # offset in ``raw`` of the first data byte after the app id


class _Reader:
    """Bounds-checked cursor: every short read is a truncated file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise ContainerError(f"GIF is truncated inside the {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def sub_blocks(self, what: str) -> None:
        """Skip data sub-blocks up to and including the 0x00 terminator."""
        while True:
            size = self.take(1, what)[0]
            if size == 0:
                return
            self.take(size, what)


def _color_table_size(flags: int) -> int:
    return 3 * (2 << (flags & 0x07)) if flags & 0x80 else 0


def _parse(data: bytes) -> tuple[bytes, list[_Block]]:
    """The header (signature, screen descriptor, global colour table) and the blocks.

    Anything after the trailer is ignored: it is not part of the image.
    """
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise ContainerError("not a GIF file (no GIF87a/GIF89a signature)")
    r = _Reader(data)
    screen = r.take(13, "logical screen descriptor")
    r.take(_color_table_size(screen[10]), "global colour table")
    head = data[: r.pos]
    blocks: list[_Block] = []
    while True:
        start = r.pos
        introducer = r.take(1, "block list (no trailer)")[0]
        if introducer == _TRAILER:
            return head, blocks
        if introducer == _INTRODUCER_EXTENSION:
            label = r.take(1, "extension label")[0]
            app_id = b""
            payload_start = 0
            if label == _LABEL_APPLICATION and r.pos < len(data) and data[r.pos] == 11:
                app_id = r.take(12, "application extension identifier")[1:]
                payload_start = r.pos - start
                if app_id == XMP_ID:
                    _skip_xmp_payload(r)
                else:
                    r.sub_blocks("application extension")
            else:
                r.sub_blocks("extension")
            blocks.append(_Block(data[start : r.pos], "ext", label, app_id, payload_start))
        elif introducer == _INTRODUCER_IMAGE:
            descriptor = r.take(9, "image descriptor")
            r.take(_color_table_size(descriptor[8]), "local colour table")
            r.take(1, "LZW minimum code size")
            r.sub_blocks("image data")
            blocks.append(_Block(data[start : r.pos], "image"))
        else:
            # Resynchronise as Pillow does: skip to the next byte that starts a block.
            found = _INTRODUCER.search(data, r.pos)
            r.pos = found.start() if found else len(data)  # then "truncated (no trailer)"
            blocks.append(_Block(data[start : r.pos], "junk"))


def _skip_xmp_payload(r: _Reader) -> None:
    """Skip an XMP packet and its magic trailer exactly as a decoder would.

    Decoders (browsers, Pillow, exiftool) read the packet as ordinary sub-blocks, each
    packet byte taken as a length; the magic trailer guarantees they end on the 0x00 after
    it. Walking the same way keeps our idea of where the block ends identical to theirs,
    even for a packet written with a damaged trailer.
    """
    r.sub_blocks("XMP application extension")


def _xmp_packet(block: _Block) -> bytes:
    """The packet of an ``XMP DataXMP`` block, without the magic trailer."""
    payload = block.raw[block.payload_start : -1]  # drop the 0x00 terminator
    if payload.endswith(MAGIC_TRAILER):
        return payload[: -len(MAGIC_TRAILER)]
    # Some writers store the packet as ordinary length-prefixed sub-blocks instead.
    chunks = []
    pos = 0
    while pos < len(payload):
        chunks.append(payload[pos + 1 : pos + 1 + payload[pos]])
        pos += 1 + payload[pos]
    packet = b"".join(chunks)
    for end in (rb"<\?xpacket end=[^>]*>", rb"</x:xmpmeta>", rb"</rdf:RDF>"):
        found = re.search(end, packet)
        if found and packet.lstrip().startswith(b"<"):
            return packet[: found.end()]
    raise ContainerError("GIF XMP application extension holds no XMP packet")


def read(data: bytes) -> Metadata:
    """The XMP packet of the first ``XMP DataXMP`` extension; GIF carries no EXIF."""
    _, blocks = _parse(data)
    for block in blocks:
        if block.app_id == XMP_ID:
            return Metadata(xmp=_xmp_packet(block))
    return Metadata()


def _dropped(block: _Block, keep_other: bool) -> bool:
    if block.kind != "ext":
        return False
    if block.app_id == XMP_ID:
        return True
    if keep_other:
        return False
    return (
        block.label == _LABEL_COMMENT
        or block.app_id in IPTC_IDS
        or block.app_id.startswith(C2PA_ID)
    )


def write(data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes:
    """``data`` with one XMP extension before the first frame; ``exif`` is ignored."""
    del exif  # GIF has no EXIF container; readers would not look for one
    if b"\x00" in xmp:
        # A NUL would end the decoder's sub-block walk inside the packet and make it read
        # the rest of the packet as blocks: the image would be corrupt.
        raise ContainerError("XMP packet contains a NUL byte and cannot be stored in a GIF")
    head, blocks = _parse(data)
    kept = [b for b in blocks if not _dropped(b, keep_other)]
    # Right after the colour table, or after a loop extension that is the first block.
    at = 1 if kept and kept[0].app_id in LOOP_IDS else 0
    xmp_block = b"\x21\xff\x0b" + XMP_ID + xmp + MAGIC_TRAILER + b"\x00"
    # Extensions are a GIF89a feature; a GIF87a header would make strict readers skip them.
    head = b"GIF89a" + head[6:]
    parts = [head, *(b.raw for b in kept[:at]), xmp_block, *(b.raw for b in kept[at:]), b";"]
    return b"".join(parts)
