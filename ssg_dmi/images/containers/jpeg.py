"""JPEG: replace the EXIF and XMP APP1 segments by walking the marker segments.

Only segment framing is parsed; the compressed image data is copied byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ContainerError
from .metadata import Metadata

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
APP0, APP1, APP2, APP13, APP14, COM, SOS = 0xE0, 0xE1, 0xE2, 0xED, 0xEE, 0xFE, 0xDA

EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
# A segment's 16-bit length counts itself (2 bytes) and the header, leaving these for the body.
MAX_XMP = 65502
MAX_EXIF = 0xFFFF - 2 - len(EXIF_HEADER)


@dataclass(frozen=True)
class _Segment:
    marker: int
    raw: bytes  # every byte to copy: fill bytes, marker, length, payload and any scan data
    payload: bytes  # what follows the length field (empty for standalone markers)


def _scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data that starts at ``pos`` ends (the next real marker)."""
    while True:
        ff = data.find(b"\xff", pos)
        if ff < 0 or ff + 1 >= len(data):
            raise ContainerError(
                "JPEG is truncated: its scan data runs to the end of the file with no EOI marker"
            )
        following = data[ff + 1]
        # 0xFF00 is a stuffed data byte and RSTn markers sit inside the scan.
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos = ff + 2
            continue
        return ff


def _segments(data: bytes) -> list[_Segment]:
    """The segments between SOI and EOI; anything after EOI is a trailer and is ignored.

    Junk before a marker (stray bytes, ``0xFF00`` pairs) is skipped as libjpeg's
    ``next_marker`` does ("extraneous bytes before marker"): browsers show such files, and
    since the junk is left out of every segment's ``raw``, the output no longer has it.
    """
    if not data.startswith(SOI):
        raise ContainerError("not a JPEG file: it does not start with an SOI marker")
    if data[2:3] != b"\xff":
        # Format detection and Pillow both need FF D8 FF: without it, no reader sees a JPEG.
        raise ContainerError("not a JPEG file: no marker follows its SOI marker")
    segments: list[_Segment] = []
    pos = len(SOI)
    size = len(data)
    while True:
        start = data.find(b"\xff", pos)
        if start < 0:
            raise ContainerError("JPEG file is truncated: it ends before the EOI marker")
        pos = start
        # Any number of 0xFF fill bytes may precede a marker.
        while pos < size and data[pos] == 0xFF:
            pos += 1
        if pos >= size:
            raise ContainerError("JPEG file is truncated inside a marker")
        marker = data[pos]
        pos += 1
        if marker == 0x00:
            continue  # a stuffed byte outside any scan is junk too: libjpeg discards it
        if marker == 0xD9:
            return segments
        if marker == 0xD8:
            raise ContainerError(f"JPEG has a second SOI marker at byte {pos - 2}")
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            segments.append(_Segment(marker, data[start:pos], b""))
            continue
        if pos + 2 > size:
            raise ContainerError("JPEG file is truncated inside a segment length")
        length = int.from_bytes(data[pos : pos + 2], "big")
        end = pos + length
        if length < 2 or end > size:
            raise ContainerError(
                f"JPEG segment 0xff{marker:02x} at byte {start} has a bad length ({length})"
            )
        payload = data[pos + 2 : end]
        if marker == SOS:
            end = _scan_end(data, end)
        segments.append(_Segment(marker, data[start:end], payload))
        pos = end


def _keep(segment: _Segment, keep_other: bool) -> bool:
    marker, payload = segment.marker, segment.payload
    if marker == APP1 and payload.startswith((b"Exif\x00", XMP_HEADER, EXTENDED_XMP_HEADER)):
        return False
    if marker == APP2:
        if payload.startswith(b"ICC_PROFILE\x00"):
            return True
        # MPF points at secondary images (which carry their own GPS) and FPXR holds previews.
        if payload.startswith((b"MPF\x00", b"FPXR\x00")):
            return False
    if marker in (APP0, APP14):
        return True  # JFIF/JFXX density and the Adobe colour transform affect decoding
    # IPTC-IIM, comments and vendor APPn blocks (APP12 Ducky, APP3 Kodak Meta, ...) are
    # metadata of the "other" kind: none of them is needed to decode the pixels.
    if marker == COM or 0xE0 <= marker <= 0xEF:
        return keep_other
    return True


def _segment(marker: int, body: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body


def read(data: bytes) -> Metadata:
    """The first XMP packet and the first EXIF block (without ``Exif\\0\\0``) in ``data``."""
    xmp: bytes | None = None
    exif: bytes | None = None
    for segment in _segments(data):
        if segment.marker != APP1:
            continue
        if xmp is None and segment.payload.startswith(XMP_HEADER):
            xmp = segment.payload[len(XMP_HEADER) :]
        elif exif is None and segment.payload.startswith(b"Exif\x00"):
            # A few writers put Exif\0\xff; the TIFF header always starts after 6 bytes.
            exif = segment.payload[len(EXIF_HEADER) :]
    return Metadata(xmp=xmp, exif=exif)


def write(data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes:
    """``data`` with its EXIF/XMP replaced by ``exif``/``xmp``; see :mod:`.containers`."""
    if len(xmp) > MAX_XMP:
        raise ContainerError(
            f"XMP packet is {len(xmp)} bytes but a JPEG APP1 segment holds at most {MAX_XMP}: "
            "write fewer or shorter XMP properties"
        )
    if exif is not None and len(exif) > MAX_EXIF:
        raise ContainerError(
            f"EXIF block is {len(exif)} bytes but a JPEG APP1 segment holds at most {MAX_EXIF}: "
            "drop the EXIF thumbnail or maker notes"
        )
    kept = [s for s in _segments(data) if _keep(s, keep_other)]
    # Readers expect JFIF's APP0 to come first, so the new segments go right after it.
    split = 0
    while split < len(kept) and kept[split].marker == APP0:
        split += 1
    new = [_segment(APP1, EXIF_HEADER + exif)] if exif is not None else []
    new.append(_segment(APP1, XMP_HEADER + xmp))
    return b"".join(
        [SOI, *(s.raw for s in kept[:split]), *new, *(s.raw for s in kept[split:]), EOI]
    )
