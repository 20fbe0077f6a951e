"""JPEG, PNG and WebP metadata surgery, checked with exiftool, pyexiv2 and Pillow."""

from __future__ import annotations

import contextlib
import io
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image, PngImagePlugin

from ssg_dmi.errors import ContainerError
from ssg_dmi.images.containers import Metadata, jpeg, png, riff

from .container_bytes import ICC, jpeg_segment, mutated, png_chunk
from .images import busy_picture, encode
from .readers import (
    PLUS,
    SAMPLE_RIGHTS,
    SAMPLE_XMP,
    exiftool,
    needs_exiftool,
    pixels,
    pyexiv2_exif,
    pyexiv2_xmp,
)

OLD_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
    b' xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="OldTool"/></rdf:RDF></x:xmpmeta>'
)


def _exif(*, gps: bool) -> Image.Exif:
    exif = Image.Exif()
    exif[0x8298] = "(c) Ana"
    exif[0x013B] = "Ana Artist"
    if gps:
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    return exif


# Pillow's tobytes() returns the JPEG form, with the Exif\0\0 prefix.
NEW_EXIF = _exif(gps=False).tobytes().removeprefix(b"Exif\x00\x00")
# Sources get an Exif object: Pillow's JPEG writer copies bytes verbatim and needs the prefix.
GPS_EXIF = _exif(gps=True)


# An IPTC-IIM caption (2:120) inside a Photoshop image resource block.
APP13 = jpeg_segment(
    0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x09\x1c\x02x\x00\x04Kept\x00"
)
COM = jpeg_segment(0xFE, b"a comment")
EXTENDED_XMP = jpeg_segment(
    0xE1,
    b"http://ns.adobe.com/xmp/extension/\x00"
    + b"0123456789ABCDEF0123456789ABCDEF"
    + len(OLD_XMP).to_bytes(4, "big")
    + bytes(4)
    + OLD_XMP,
)


def jpeg_source(mode: str = "RGB", **options: object) -> bytes:
    """An MPO (MPF APP2, secondary image with its own GPS after EOI) with GPS EXIF, XMP and
    ICC, plus IPTC, a comment and ExtendedXMP added by hand."""
    data = encode(
        busy_picture(mode),
        "MPO",
        save_all=True,
        append_images=[busy_picture(mode)],
        exif=GPS_EXIF,
        xmp=OLD_XMP,
        icc_profile=ICC,
        **options,
    )
    # After JFIF (if any) as real writers do; the MPF offsets count from the MPF header, so
    # inserting before it keeps them valid.
    at = 4 + int.from_bytes(data[4:6], "big") if data[2:4] == b"\xff\xe0" else 2
    return data[:at] + APP13 + COM + EXTENDED_XMP + data[at:]


def png_source() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", OLD_XMP.decode())
    info.add_text("Comment", "kept only with keep_other")
    info.add_text("Raw profile type exif", "\nexif\n  4\n00000000\n", zip=True)
    data = encode(busy_picture(), "PNG", exif=GPS_EXIF, icc_profile=ICC, pnginfo=info)
    # Pillow writes no tIME, so add one after IHDR by hand (IHDR chunk is 25 bytes).
    t_ime = png_chunk(b"tIME", b"\x07\xe8\x01\x02\x03\x04\x05")
    return data[:33] + t_ime + data[33:]


def webp_source() -> bytes:
    return encode(
        busy_picture(), "WEBP", exif=GPS_EXIF, xmp=OLD_XMP, icc_profile=ICC, lossless=True
    )


def webp_animated() -> bytes:
    frames = [Image.new("RGB", (32, 24), colour) for colour in ("red", "green", "blue")]
    return encode(
        frames[0],
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=100,
        exif=GPS_EXIF,
        xmp=OLD_XMP,
        icc_profile=ICC,
    )


@dataclass(frozen=True)
class Case:
    name: str
    module: ModuleType
    suffix: str
    make: Callable[[], bytes]


CASES = [
    Case("jpeg", jpeg, ".jpg", jpeg_source),
    Case(
        "jpeg-progressive-rst",
        jpeg,
        ".jpg",
        lambda: jpeg_source(progressive=True, restart_marker_blocks=1),
    ),
    Case("jpeg-cmyk-adobe", jpeg, ".jpg", lambda: jpeg_source("CMYK")),
    Case("png", png, ".png", png_source),
    Case("webp", riff, ".webp", webp_source),
    Case("webp-animated", riff, ".webp", webp_animated),
]
IDS = [case.name for case in CASES]


@pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO file")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_write_round_trips_keeps_pixels_and_icc_and_is_idempotent(case: Case) -> None:
    source = case.make()
    out = case.module.write(source, SAMPLE_XMP, NEW_EXIF, False)
    assert case.module.read(out) == Metadata(SAMPLE_XMP, NEW_EXIF)
    assert case.module.write(out, SAMPLE_XMP, NEW_EXIF, False) == out
    kept = case.module.write(source, SAMPLE_XMP, NEW_EXIF, True)
    assert case.module.write(kept, SAMPLE_XMP, NEW_EXIF, True) == kept
    assert case.module.read(case.module.write(source, SAMPLE_XMP, None, True)) == Metadata(
        SAMPLE_XMP, None
    )
    expected = pixels(source)
    if case.module is jpeg:
        # The MPF secondary image is dropped on purpose; only the primary image stays. (Pillow
        # reads its own CMYK MPO as a plain JPEG, so count MPF segments, not frames.)
        assert source.count(b"MPF\x00") == 1 and b"MPF\x00" not in out
        expected = expected[:1]
    assert pixels(out) == expected
    with Image.open(io.BytesIO(out)) as image:
        assert image.info["icc_profile"] == ICC
    assert out.count(b"<x:xmpmeta") == 1
    assert b"OldTool" not in out


@needs_exiftool
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_independent_readers_see_new_tags_and_no_gps(case: Case, tmp_path: Path) -> None:
    path = tmp_path / f"out{case.suffix}"
    source = tmp_path / f"in{case.suffix}"
    source.write_bytes(case.make())
    path.write_bytes(case.module.write(source.read_bytes(), SAMPLE_XMP, NEW_EXIF, False))
    before, tags = exiftool(source, path)
    assert any(key.startswith("GPS") for key in before)  # the source really had GPS
    assert tags["XMP-plus:DataMining"] == PLUS + "DMI-PROHIBITED"
    assert tags["XMP-dc:Rights"] == SAMPLE_RIGHTS
    assert tags["IFD0:Copyright"] == "(c) Ana"
    assert tags["IFD0:Artist"] == "Ana Artist"
    assert "XMP-xmp:CreatorTool" not in tags
    assert not any("GPS" in key for key in tags)
    assert "Warning" not in tags
    (gps,) = exiftool(path, args=("-gps:all",))
    assert set(gps) == {"SourceFile"}
    data = path.read_bytes()
    assert pyexiv2_xmp(data)["Xmp.plus.DataMining"] == PLUS + "DMI-PROHIBITED"
    assert pyexiv2_exif(data)["Exif.Image.Copyright"] == "(c) Ana"


@pytest.mark.parametrize("keep_other", [False, True])
def test_jpeg_keep_other_controls_iptc_and_comments_never_trailers(keep_other: bool) -> None:
    out = jpeg.write(jpeg_source(), SAMPLE_XMP, NEW_EXIF, keep_other)
    assert (APP13 in out) is keep_other
    assert (COM in out) is keep_other
    assert out.count(b"\xff\xd8") == 1 and out.endswith(b"\xff\xd9")
    assert b"MPF\x00" not in out and b"xmp/extension" not in out
    assert b"ICC_PROFILE\x00" in out
    # JFIF stays first; the new EXIF then the XMP come right after it.
    assert out[2:4] == b"\xff\xe0" and out[6:11] == b"JFIF\x00"
    app0_end = 4 + int.from_bytes(out[4:6], "big")
    assert out[app0_end + 4 : app0_end + 10] == b"Exif\x00\x00"


@pytest.mark.parametrize("keep_other", [False, True])
def test_png_keep_other_controls_text_and_time_never_raw_profiles(keep_other: bool) -> None:
    out = png.write(png_source(), SAMPLE_XMP, NEW_EXIF, keep_other)
    assert (b"tEXtComment" in out) is keep_other
    assert (b"tIME" in out) is keep_other
    assert b"Raw profile type" not in out
    # The new chunks sit right before IDAT, eXIf first.
    assert out.index(b"eXIf") < out.index(b"iTXtXML:com.adobe.xmp") < out.index(b"IDAT")
    assert out.count(b"eXIf") == 1


def test_png_reads_compressed_xmp_and_refuses_bombs() -> None:
    base = encode(busy_picture(), "PNG")
    ztxt = png_chunk(b"zTXt", b"XML:com.adobe.xmp\x00\x00" + zlib.compress(SAMPLE_XMP))
    assert png.read(base[:33] + ztxt + base[33:]).xmp == SAMPLE_XMP
    itxt = b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(SAMPLE_XMP)
    assert png.read(base[:33] + png_chunk(b"iTXt", itxt) + base[33:]).xmp == SAMPLE_XMP
    corrupt = png_chunk(b"zTXt", b"XML:com.adobe.xmp\x00\x00not zlib")
    with pytest.raises(ContainerError, match="corrupt"):
        png.read(base[:33] + corrupt + base[33:])
    truncated = png_chunk(b"zTXt", b"XML:com.adobe.xmp\x00\x00" + zlib.compress(SAMPLE_XMP)[:-9])
    with pytest.raises(ContainerError, match="truncated"):
        png.read(base[:33] + truncated + base[33:])
    bomb = zlib.compress(b" " * (17 * 1024 * 1024), 9)
    with pytest.raises(ContainerError, match="inflates"):
        png.read(base[:33] + png_chunk(b"zTXt", b"XML:com.adobe.xmp\x00\x00" + bomb) + base[33:])


def test_png_apng_metadata_goes_before_first_fctl() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    source = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], default_image=False)
    out = png.write(source, SAMPLE_XMP, None, False)
    assert out.index(b"iTXt") < out.index(b"fcTL") < out.index(b"IDAT")
    with Image.open(io.BytesIO(out)) as image:
        assert getattr(image, "n_frames", 1) == 2


def _vp8x(data: bytes) -> tuple[int, int, int]:
    assert data[12:16] == b"VP8X"
    flags = data[20]
    return (
        flags,
        int.from_bytes(data[24:27], "little") + 1,
        int.from_bytes(data[27:30], "little") + 1,
    )


def _fourccs(data: bytes) -> list[bytes]:
    pos, found = 12, []
    while pos < len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        found.append(data[pos : pos + 4])
        pos += 8 + size + size % 2
    return found


SIMPLE_WEBP = [
    pytest.param(Image.new("RGB", (33, 17), "red"), {"quality": 80}, b"VP8 ", 0x0C, id="vp8"),
    pytest.param(busy_picture("RGBA"), {"lossless": True}, b"VP8L", 0x1C, id="vp8l-alpha"),
]


@pytest.mark.parametrize(("image", "options", "bitstream", "flags"), SIMPLE_WEBP)
def test_webp_simple_files_get_a_vp8x(
    image: Image.Image, options: dict[str, object], bitstream: bytes, flags: int
) -> None:
    source = encode(image, "WEBP", **options)
    assert _fourccs(source) == [bitstream]
    out = riff.write(source, SAMPLE_XMP, NEW_EXIF, False)
    assert _fourccs(out) == [b"VP8X", bitstream, b"EXIF", b"XMP "]
    assert _vp8x(out) == (flags, *image.size)
    assert int.from_bytes(out[4:8], "little") == len(out) - 8
    assert pixels(out) == pixels(source)
    without_exif = riff.write(out, SAMPLE_XMP, None, False)
    assert _vp8x(without_exif)[0] == flags & ~0x08
    assert _fourccs(without_exif) == [b"VP8X", bitstream, b"XMP "]


@needs_exiftool
@pytest.mark.parametrize(("image", "options", "bitstream", "flags"), SIMPLE_WEBP)
def test_webp_simple_files_are_read_by_exiftool(
    image: Image.Image, options: dict[str, object], bitstream: bytes, flags: int, tmp_path: Path
) -> None:
    path = tmp_path / "out.webp"
    path.write_bytes(riff.write(encode(image, "WEBP", **options), SAMPLE_XMP, NEW_EXIF, False))
    (tags,) = exiftool(path)
    assert tags["XMP-plus:DataMining"] == PLUS + "DMI-PROHIBITED"
    assert tags["IFD0:Artist"] == "Ana Artist"
    assert (tags["RIFF:ImageWidth"], tags["RIFF:ImageHeight"]) == image.size
    assert tags["RIFF:WebP_Flags"] == flags
    assert "Warning" not in tags


@needs_exiftool
def test_webp_animation_survives(tmp_path: Path) -> None:
    out = riff.write(webp_animated(), SAMPLE_XMP, NEW_EXIF, False)
    assert _fourccs(out) == [b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ANMF", b"ANMF", b"EXIF", b"XMP "]
    assert _vp8x(out)[0] == 0x2E
    with Image.open(io.BytesIO(out)) as image:
        assert getattr(image, "is_animated", False) and getattr(image, "n_frames", 1) == 3
    path = tmp_path / "anim.webp"
    path.write_bytes(out)
    (tags,) = exiftool(path)
    assert tags["XMP-plus:DataMining"] == PLUS + "DMI-PROHIBITED"
    assert tags["IFD0:Copyright"] == "(c) Ana"


def test_webp_metadata_moves_after_image_data_and_unknown_chunks_last() -> None:
    source = encode(busy_picture(), "WEBP", lossless=True, exif=GPS_EXIF)
    body = source[12:]
    vp8x, rest = body[:18], body[18:]
    # Put EXIF first and an unknown odd-sized chunk in the middle.
    unknown = b"ZZZZ\x03\x00\x00\x00abc\x00"
    image_end = rest.index(b"EXIF")
    shuffled = vp8x + rest[image_end:] + unknown + rest[:image_end]
    source = b"RIFF" + (len(shuffled) + 4).to_bytes(4, "little") + b"WEBP" + shuffled
    out = riff.write(source, SAMPLE_XMP, None, False)
    assert _fourccs(out) == [b"VP8X", b"VP8L", b"XMP ", b"ZZZZ"]
    assert unknown in out


def test_exif_prefix_in_webp_and_png_is_stripped_on_read() -> None:
    webp = riff.write(encode(busy_picture(), "WEBP"), SAMPLE_XMP, b"Exif\x00\x00" + NEW_EXIF, False)
    assert riff.read(webp).exif == NEW_EXIF
    pngdata = png.write(
        encode(busy_picture(), "PNG"), SAMPLE_XMP, b"Exif\x00\x00" + NEW_EXIF, False
    )
    assert png.read(pngdata).exif == NEW_EXIF


def test_jpeg_size_limits_name_the_fix() -> None:
    source = encode(busy_picture(), "JPEG")
    big_xmp = SAMPLE_XMP + b" " * (65502 - len(SAMPLE_XMP))
    assert jpeg.read(jpeg.write(source, big_xmp, None, False)).xmp == big_xmp
    with pytest.raises(ContainerError, match="at most 65502"):
        jpeg.write(source, big_xmp + b" ", None, False)
    big_exif = NEW_EXIF + b"\x00" * (65527 - len(NEW_EXIF))
    assert jpeg.read(jpeg.write(source, SAMPLE_XMP, big_exif, False)).exif == big_exif
    with pytest.raises(ContainerError, match="at most 65527.*thumbnail"):
        jpeg.write(source, SAMPLE_XMP, big_exif + b"\x00", False)


def _bad_inputs() -> list[tuple[str, ModuleType, bytes]]:
    rng = random.Random(1)
    sources = {
        # Not the MPO: cutting its secondary image leaves a valid primary JPEG.
        "jpeg": (jpeg, encode(busy_picture(), "JPEG", exif=GPS_EXIF, icc_profile=ICC)),
        "png": (png, png_source()),
        "webp": (riff, webp_source()),
    }
    cases: list[tuple[str, ModuleType, bytes]] = []
    for name, (module, data) in sources.items():
        cases += [(f"{name}-empty", module, b""), (f"{name}-zeros", module, bytes(64))]
        cases.append((f"{name}-random", module, rng.randbytes(200)))
        for cut in (1, 3, 11, 20, 40, len(data) // 2, len(data) - 1):
            cases.append((f"{name}-cut{cut}", module, data[:cut]))
    good_jpeg = encode(busy_picture(), "JPEG")
    cases += [
        ("jpeg-length-past-end", jpeg, good_jpeg[:2] + b"\xff\xe1\xff\xf0Exif\x00\x00"),
        ("jpeg-length-too-small", jpeg, good_jpeg[:2] + b"\xff\xe1\x00\x01" + good_jpeg[2:]),
        ("jpeg-no-marker", jpeg, good_jpeg[:2] + b"\x00" + good_jpeg[2:]),
        ("jpeg-only-soi", jpeg, b"\xff\xd8"),
        ("jpeg-fill-bytes-only", jpeg, b"\xff\xd8" + b"\xff" * 100),
        ("jpeg-scan-without-eoi", jpeg, good_jpeg[:-2]),
        # (0xFF00 where a marker belongs is junk that libjpeg and Pillow skip: it is
        # tolerated now, see tests/test_containers_lenient.py)
    ]
    good_png = encode(busy_picture(), "PNG")
    past = good_png[:33] + b"\x7f\x00\x00\x00tEXt" + good_png[41:]
    bad_crc = good_png[:29] + bytes([good_png[29] ^ 1]) + good_png[30:]
    cases += [
        ("png-length-past-end", png, past),
        ("png-bad-crc", png, bad_crc),
        ("png-bad-type", png, good_png[:37] + b"1234" + good_png[41:]),
        ("png-no-iend", png, good_png[:-12]),
        ("png-no-ihdr", png, good_png[:8] + good_png[33:]),
    ]
    good_webp = encode(busy_picture(), "WEBP", lossless=True)
    cases += [
        ("webp-riff-size-past-end", riff, good_webp[:4] + b"\xff\xff\x00\x00" + good_webp[8:]),
        ("webp-chunk-past-end", riff, good_webp[:16] + b"\xff\xff\x00\x00" + good_webp[20:]),
        ("webp-no-chunks", riff, b"RIFF\x04\x00\x00\x00WEBP"),
        ("webp-half-chunk-header", riff, b"RIFF\x08\x00\x00\x00WEBPVP8L"),
        ("webp-no-image", riff, b"RIFF\x10\x00\x00\x00WEBPZZZZ\x02\x00\x00\x00ab"),
        ("webp-bad-vp8l", riff, b"RIFF\x12\x00\x00\x00WEBPVP8L\x05\x00\x00\x00\x00abcd\x00"),
        ("webp-bad-vp8", riff, b"RIFF\x12\x00\x00\x00WEBPVP8 \x05\x00\x00\x00\x00abcd\x00"),
        ("webp-short-vp8x", riff, b"RIFF\x0e\x00\x00\x00WEBPVP8X\x02\x00\x00\x00\x00\x00"),
    ]
    return cases


BAD = _bad_inputs()


@pytest.mark.parametrize(("name", "module", "data"), BAD, ids=[case[0] for case in BAD])
def test_malformed_input_raises_container_error(name: str, module: ModuleType, data: bytes) -> None:
    with pytest.raises(ContainerError):
        module.write(data, SAMPLE_XMP, NEW_EXIF, False)
    if "vp8" not in name and "no-image" not in name:  # read() does not need the bitstream
        with pytest.raises(ContainerError):
            module.read(data)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[4]], ids=lambda case: case.name)
def test_random_corruption_never_escapes_as_another_exception(case: Case) -> None:
    rng = random.Random(case.name)
    source = case.make()
    for _ in range(300):
        data = mutated(rng, source, 4)
        with contextlib.suppress(ContainerError):
            case.module.read(data)
        with contextlib.suppress(ContainerError):
            case.module.write(data, SAMPLE_XMP, None, False)
