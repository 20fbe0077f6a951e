"""Files that browsers show and Pillow decodes, but that bend their format's rules.

Issue 8 item 6: the lossless rewriters used to refuse these (``ContainerError``), so the
image went out untagged. Each malformed file is built here from a valid one made with
Pillow; the output must decode to the same pixels, carry exactly our packet, be
idempotent, and be read by exiftool.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from ssg_dmi.errors import ContainerError
from ssg_dmi.images import containers
from ssg_dmi.images.containers import Format
from ssg_dmi.images.tagging import tag_bytes
from ssg_dmi.policy import DMI, ImagePolicy
from ssg_dmi.settings import QUALITY_DEFAULTS

from .container_bytes import jpeg_segment, png_chunk
from .images import SECRET, camera_file, encode, pattern
from .readers import PLUS, SAMPLE_XMP, exiftool, needs_exiftool


def _before(data: bytes, marker: bytes, insert: bytes) -> bytes:
    """``data`` with ``insert`` placed right before the first ``marker``."""
    at = data.index(marker)
    return data[:at] + insert + data[at:]


def _before_chunk(data: bytes, kind: bytes, insert: bytes) -> bytes:
    """A PNG with ``insert`` placed right before its first ``kind`` chunk."""
    return _before(data, data[data.index(kind) - 4 : data.index(kind) + 4], insert)


def _frames(data: bytes) -> list[bytes]:
    """Every frame Pillow decodes, as RGBA bytes; fails on any decoding error or warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Image.open(io.BytesIO(data)) as im:
            frames = []
            for index in range(getattr(im, "n_frames", 1)):
                im.seek(index)
                frames.append(im.convert("RGBA").tobytes())
            return frames


# ----------------------------------------------------------------------------- sources

JPEG = camera_file("JPEG")  # GPS, serial, old XMP, ICC
CMYK_JPEG = encode(pattern(mode="CMYK"), "JPEG", quality=90)  # libjpeg writes an Adobe APP14
PNG = camera_file("PNG")
PLAIN_PNG = encode(pattern(), "PNG")  # no metadata at all
APNG = encode(pattern(), "PNG", save_all=True, append_images=[pattern().rotate(180)])
GIF = camera_file("GIF")
DQT = b"\xff\xdb"


def _adobe_cut_short() -> bytes:
    """An APP14 whose length counts 7 of the 12 bytes written: the rest trails as junk."""
    at = CMYK_JPEG.index(b"\xff\xee")
    length = int.from_bytes(CMYK_JPEG[at + 2 : at + 4], "big")
    assert CMYK_JPEG[at + 4 : at + 9] == b"Adobe" and length == 14
    return CMYK_JPEG[: at + 2] + (9).to_bytes(2, "big") + CMYK_JPEG[at + 4 :]


def _app12_with_ff00() -> bytes:
    """A Ducky APP12 into which a writer put 0xFF00 without updating the length."""
    segment = jpeg_segment(0xEC, b"Ducky\x00\x01\x00\x04\x00\x00\x00\x50\x00\x00")
    broken = segment[:9] + b"\xff\x00" + segment[9:]
    return _before(JPEG, DQT, broken)


def _gif_frame_starts(data: bytes) -> list[int]:
    """Where each frame of a Pillow-made GIF starts: at its graphic control extension."""
    starts, pos = [], 0
    while (pos := data.find(b"\x00\x21\xf9\x04", pos)) >= 0:
        starts.append(pos + 1)  # after the 0x00 that ends the block before it
        pos += 1
    return starts


def _gif_junk_between_frames() -> bytes:
    second = _gif_frame_starts(GIF)[1]
    return GIF[:second] + b"\x00junk" + GIF[second:]


BAD_TEXT = png_chunk(b"tEXt", b"Comment\x00hi", 1234)
BAD_PRIVATE = png_chunk(b"prVt", b"\x01\x02", 99)


@dataclass(frozen=True)
class Case:
    name: str
    fmt: Format
    data: bytes
    kept: bytes = b""  # bytes the output must still hold (GIF passes junk through)
    dropped: bytes = b""  # bytes the output must not hold (a PNG chunk with a bad CRC)


CASES = [
    Case("jpeg-junk-between-segments", Format.JPEG, _before(JPEG, DQT, b"\x00\x00junk")),
    Case("jpeg-ff00-between-segments", Format.JPEG, _before(JPEG, DQT, b"\xff\x00")),
    Case("jpeg-ff00-after-soi", Format.JPEG, JPEG[:2] + b"\xff\x00" + JPEG[2:]),
    Case("jpeg-junk-and-fill-before-sos", Format.JPEG, _before(JPEG, b"\xff\xda", b"zz\xff\xff")),
    Case("jpeg-ff00-in-app-segment", Format.JPEG, _app12_with_ff00()),
    Case("jpeg-truncated-app14", Format.JPEG, _adobe_cut_short()),
    Case("gif-unknown-block-before-trailer", Format.GIF, GIF[:-1] + b"\x99;", kept=b"\x99;"),
    Case(
        "gif-unknown-block-between-frames",
        Format.GIF,
        _gif_junk_between_frames(),
        kept=b"\x00junk",
    ),
    Case(
        "png-text-bad-crc-after-idat",
        Format.PNG,
        _before_chunk(PNG, b"IEND", BAD_TEXT),
        dropped=BAD_TEXT,
    ),
    Case(
        "png-private-chunk-bad-crc",
        Format.PNG,
        _before_chunk(PNG, b"IEND", BAD_PRIVATE),
        dropped=BAD_PRIVATE,
    ),
]


def test_sources_are_what_the_cases_need() -> None:
    assert b"\xff\xee\x00\x0eAdobe" in CMYK_JPEG
    assert len(_gif_frame_starts(GIF)) == 2
    # Each malformed file differs from its source (the surgery above found its place).
    assert all(case.data not in (JPEG, CMYK_JPEG, PNG, GIF) for case in CASES)


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    result: Case = request.param
    return result


def test_pillow_decodes_every_malformed_file_whole(case: Case) -> None:
    # The premise: these are displayable images, not corrupt ones.
    assert _frames(case.data)


@pytest.mark.parametrize("keep_other", [False, True])
def test_tagged_losslessly_with_pixels_and_one_packet(case: Case, keep_other: bool) -> None:
    out = containers.write(case.fmt, case.data, SAMPLE_XMP, None, keep_other)
    assert _frames(out) == _frames(case.data)
    assert containers.read(case.fmt, out).xmp == SAMPLE_XMP
    assert out.count(b"<x:xmpmeta") == 1
    assert (SECRET.encode() in out) is (keep_other and case.fmt is Format.GIF)  # a comment
    assert containers.write(case.fmt, out, SAMPLE_XMP, None, keep_other) == out
    assert case.kept in out
    if case.dropped:
        assert case.dropped not in out


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.fmt is Format.JPEG], ids=lambda case: case.name
)
def test_jpeg_output_drops_the_junk_and_keeps_the_scan(case: Case) -> None:
    out = containers.write(case.fmt, case.data, SAMPLE_XMP, None, False)
    # 0xFFDA cannot occur inside entropy-coded data, so the last one starts the scan.
    scan = case.data[case.data.rindex(b"\xff\xda") :]
    assert out.endswith(scan)
    for junk in (b"junk", b"zz", b"\xff\x00\xff"):
        assert junk not in out[: -len(scan)]
    # Independent check that the output is well-formed: every segment is where its
    # predecessor's length says (libjpeg would print no "extraneous bytes" warning).
    pos = 2
    while True:
        assert out[pos] == 0xFF, f"junk at byte {pos}"
        while out[pos + 1] == 0xFF:  # fill bytes before a marker are allowed
            pos += 1
        if out[pos + 1] == 0xDA:
            break
        pos += 2 + int.from_bytes(out[pos + 2 : pos + 4], "big")


@pytest.mark.parametrize(
    "bad",
    [
        BAD_TEXT,
        # Gamma 1.0: with a good CRC Chromium 156 draws grey 128 as 188; with this bad CRC
        # it draws 128, as without the chunk. Browsers drop it, so the output does too.
        png_chunk(b"gAMA", (100000).to_bytes(4, "big"), 7),
        # An orientation browsers never applied must not start applying in the output.
        png_chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03" + bytes(8), 7),
    ],
    ids=["tEXt", "gAMA", "eXIf"],
)
def test_png_bad_crc_before_idat_dropped_then_pillow_reads_it(bad: bytes) -> None:
    # Browsers show this file; Pillow refuses it (it checks CRCs up to IDAT). Once the
    # damaged chunk is dropped, Pillow reads the output too.
    data = _before_chunk(PLAIN_PNG, b"IDAT", bad)
    with pytest.raises((OSError, SyntaxError)):
        _frames(data)
    assert containers.read(Format.PNG, data) == containers.Metadata()
    for keep_other in (False, True):
        out = containers.write(Format.PNG, data, SAMPLE_XMP, None, keep_other)
        assert bad not in out and bad[4:8] not in out
        assert _frames(out) == _frames(PLAIN_PNG)
        assert containers.read(Format.PNG, out).xmp == SAMPLE_XMP


def test_png_old_xmp_with_bad_crc_is_ignored_and_dropped() -> None:
    old = b"<x:xmpmeta>OldTool</x:xmpmeta>"
    body = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + old
    data = _before_chunk(PLAIN_PNG, b"IDAT", png_chunk(b"iTXt", body, 7))
    assert containers.read(Format.PNG, data).xmp is None
    out = containers.write(Format.PNG, data, SAMPLE_XMP, None, True)
    assert out.count(b"XML:com.adobe.xmp") == 1 and b"OldTool" not in out
    assert containers.read(Format.PNG, out).xmp == SAMPLE_XMP


def test_png_damaged_compressed_xmp_with_bad_crc_reads_as_none() -> None:
    body = b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + b"not zlib at all"  # compressed
    data = _before_chunk(PLAIN_PNG, b"IDAT", png_chunk(b"iTXt", body, 7))
    assert containers.read(Format.PNG, data).xmp is None
    # With a good CRC the same chunk is a corrupt file, as before.
    with pytest.raises(ContainerError, match="corrupt"):
        containers.read(Format.PNG, _before_chunk(PLAIN_PNG, b"IDAT", png_chunk(b"iTXt", body)))


# ------------------------------------------------------------ through the tagging step


@pytest.mark.parametrize("lossless", [True, False])
def test_tag_bytes_tags_each_file(case: Case, lossless: bool) -> None:
    name = "x." + {"jpeg": "jpg"}.get(case.fmt.value, case.fmt.value)
    result = tag_bytes(
        case.data,
        ImagePolicy(dmi=DMI.PROHIBITED),
        name=name,
        lossless=lossless,
        max_pixels=10**8,
        quality=QUALITY_DEFAULTS,
    )
    packet = containers.read(case.fmt, result.data).xmp
    assert packet is not None and (PLUS + "DMI-PROHIBITED").encode() in packet
    assert SECRET.encode() not in result.data and b"GPS" not in result.data
    if lossless or case.fmt is Format.GIF:
        assert not result.reencoded
        assert _frames(result.data) == _frames(case.data)


@needs_exiftool
def test_exiftool_reads_the_data_mining_tag(tmp_path: Path) -> None:
    paths = []
    for case in CASES:
        path = tmp_path / f"{case.name}.{case.fmt.value}"
        path.write_bytes(containers.write(case.fmt, case.data, SAMPLE_XMP, None, False))
        paths.append(path)
    views = exiftool(*paths, args=("-G1", "-XMP-plus:all"))
    assert [view.get("XMP-plus:DataMining") for view in views] == [PLUS + "DMI-PROHIBITED"] * len(
        CASES
    )


# ------------------------------------------------ tolerated before, and still refused


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        # 0xFF00 inside an APP segment whose length counts it: segment data, never a marker.
        (Format.JPEG, _before(JPEG, DQT, jpeg_segment(0xEC, b"Ducky\x00\xff\x00\x01"))),
        # An Adobe APP14 shorter than 12 bytes, its length saying so.
        (Format.JPEG, _before(JPEG, DQT, jpeg_segment(0xEE, b"Adobe\x00\x64"))),
        # An extension with an unknown label and valid sub-blocks is passed through.
        (Format.GIF, GIF[:-1] + b"\x21\x99\x03abc\x02de\x00;"),
        # Bytes after the RIFF chunk are not part of the WebP (dropped).
        (Format.WEBP, encode(pattern(), "WEBP") + b"junk"),
    ],
    ids=["jpeg-ff00-counted", "jpeg-short-app14", "gif-unknown-extension", "webp-trailing"],
)
def test_already_tolerated(fmt: Format, data: bytes) -> None:
    out = containers.write(fmt, data, SAMPLE_XMP, None, True)
    assert _frames(out) == _frames(data)
    assert containers.read(fmt, out).xmp == SAMPLE_XMP
    assert containers.write(fmt, out, SAMPLE_XMP, None, True) == out


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("fmt", "data", "reason"),
    [
        # A bad CRC on a critical chunk means damaged pixels or header: still refused
        # (a re-encode, which Pillow can do, makes a file every browser shows).
        (Format.PNG, _flip(PNG, PNG.index(b"IDAT") + 4 + 100), "IDAT chunk .* bad CRC"),
        (Format.PNG, _flip(PNG, 29), "IHDR chunk .* bad CRC"),
        # APNG chunks are ancillary, but dropping a damaged frame would change the animation.
        (Format.PNG, _flip(APNG, APNG.index(b"fdAT") + 8), "fdAT chunk .* bad CRC"),
        # A RIFF size that disagrees with the file: Chromium 156 and Pillow show nothing.
        (
            Format.WEBP,
            encode(pattern(), "WEBP")[:4]
            + (10**6).to_bytes(4, "little")
            + encode(pattern(), "WEBP")[8:],
            "truncated",
        ),
        # Junk right after SOI: no reader (nor format detection) takes it for a JPEG.
        (Format.JPEG, JPEG[:2] + b"\x00" + JPEG[2:], "no marker follows its SOI"),
        # A second SOI reached by skipping junk: libjpeg refuses it as well.
        (Format.JPEG, _before(JPEG, DQT, b"\x00\xff\xd8"), "second SOI"),
        # Junk running to the end of the file: the file is truncated.
        (Format.GIF, GIF[:-1] + b"\x99\x00", "truncated"),
    ],
    ids=[
        "png-idat-crc",
        "png-ihdr-crc",
        "apng-fdat-crc",
        "webp-riff-size",
        "jpeg-junk-after-soi",
        "jpeg-second-soi",
        "gif-junk-to-end",
    ],
)
def test_still_refused(fmt: Format, data: bytes, reason: str) -> None:
    with pytest.raises(ContainerError, match=reason):
        containers.write(fmt, data, SAMPLE_XMP, None, False)
