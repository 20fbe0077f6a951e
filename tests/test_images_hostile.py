"""Hostile and unusual images (issue 8, item 1): each file that used to raise a raw exception
out of the pixel code either comes out tagged with its variants, or is refused with an
ImageError that says why; a variant a format cannot hold is skipped with a note; a file
whose container our parsers refuse but whose pixels decode is re-encoded to be tagged.

Every image is made here with Pillow (then damaged on purpose where that is the point);
the files under ``fuzz_crashers/`` are mutants the fuzzer found, kept as they were.
Outputs are read back with Pillow and exiftool, never with our own parser.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageSequence

from ssg_dmi.build.job import Options, render
from ssg_dmi.cli import main
from ssg_dmi.errors import ContainerError, ImageError
from ssg_dmi.images import containers, pixels, tagging, variants
from ssg_dmi.images.containers import Format
from ssg_dmi.policy import ImagePolicy
from ssg_dmi.settings import Settings

from .images import camera_file, encode, pattern
from .readers import PLUS, exiftool, needs_exiftool

CRASHERS = Path(__file__).parent / "fuzz_crashers"
QUALITY = dict(Settings().quality)


def options(
    widths: tuple[int, ...] = (480, 960, 1600), formats: tuple[str, ...] = ("webp",)
) -> Options:
    return Options(
        widths=widths,
        formats=formats,
        quality=QUALITY,
        originals="optimize",
        max_pixels=Settings().max_pixels,
        srgb=False,
    )


def outputs(
    data: bytes, name: str, opts: Options | None = None
) -> tuple[list[tuple[str, str, int, int, bytes]], tuple[str, ...]]:
    """(role, format, width, height, bytes) of every output of ``render``, and its notes."""
    pairs, tags, _ = render(data, name, ImagePolicy(), opts or options())
    return [(o.role, o.format, o.width, o.height, d) for o, d in pairs], tags.notes


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk) of each chunk of a PNG."""
    chunks, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        chunks.append((data[i + 4 : i + 8], data[i : i + 12 + n]))
        i += 12 + n
    return chunks


def without(data: bytes, drop: Callable[[bytes, int], bool]) -> bytes:
    """A PNG without the chunks ``drop(type, index)`` selects."""
    kept = [c for k, (t, c) in enumerate(png_chunks(data)) if not drop(t, k)]
    return data[:8] + b"".join(kept)


def tagged_by_exiftool(tmp: Path, files: dict[str, bytes]) -> dict[str, str | None]:
    """exiftool's DataMining value in each of ``files`` (written to ``tmp`` first)."""
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    found = exiftool(*(tmp / n for n in files), args=("-XMP-plus:DataMining",))
    return {Path(e["SourceFile"]).name: e.get("DataMining") for e in found}


# --- root causes, one per exception class of issue 8 item 1 --------------------------------


def be16_tiff() -> bytes:
    im = Image.new("I;16B", (64, 48))
    im.putdata([x * 1024 + 1023 if y < 24 else 32768 for y in range(48) for x in range(64)])
    return encode(im, "TIFF")


def test_16bit_big_endian_tiff_gets_variants_scaled_not_clipped() -> None:
    # Was: ValueError "image has wrong mode" from getextrema() on I;16B in normalise().
    data = be16_tiff()
    assert Image.open(io.BytesIO(data)).mode == "I;16B"
    made, _ = outputs(data, "deep.tif")
    assert [(r, f, w, h) for r, f, w, h, _ in made] == [
        ("original", "tiff", 64, 48),
        ("variant", "webp", 64, 48),
    ]
    variant = Image.open(io.BytesIO(made[1][4])).convert("L")
    # 32768 of 65535 is mid-grey; 65535 is white: scaled to 8 bits, not clipped at 255.
    assert abs(variant.getpixel((10, 40)) - 128) <= 4
    assert variant.getpixel((63, 5)) >= 250


def broken_apng() -> bytes:
    """An APNG with one frame's control chunk gone: 'frame sequence errors' in Pillow."""
    frames = [pattern((40, 30)), pattern((40, 30)).rotate(180), pattern((40, 30)).rotate(90)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50)
    fctl = [k for k, (t, _) in enumerate(png_chunks(data)) if t == b"fcTL"]
    return without(data, lambda t, k: k == fctl[1])


def test_apng_frame_sequence_error_is_an_image_error() -> None:
    # Was: SyntaxError from Pillow's fdAT handler, raised out of exif_orientation().
    data = broken_apng()
    im = Image.open(io.BytesIO(data))
    assert pixels.exif_orientation(im) == 1
    with pytest.raises(ImageError, match="frame sequence errors"):
        outputs(data, "anim.png")


def test_corrupt_exif_does_not_stop_the_pixels() -> None:
    # Was: TypeError from ImageOps.exif_transpose rewriting a damaged EXIF block; the pixels
    # decode fine, and the orientation it does state is applied.
    data = (CRASHERS / "s1-02896-camera-jpeg-exif-write-string.jpg").read_bytes()
    with pytest.raises(TypeError):
        from PIL import ImageOps

        ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    upright = pixels.decode_upright(data, Format.JPEG, 10**8)
    assert upright.size == (48, 64)  # orientation 6 applied to the 64 × 48 stored pixels
    assert "exif" not in upright.info


def avif_pointing_at_no_item() -> bytes:
    data = encode(pattern((64, 48)), "AVIF", quality=90)
    at = data.index(b"pitm") + 8
    return data[:at] + b"\x00\x07" + data[at + 2 :]  # the primary item is item 7: none


def avif_with_garbage_pixels() -> bytes:
    data = encode(pattern((64, 48)), "AVIF", quality=90)
    at = data.index(b"mdat") + 4
    (size,) = struct.unpack(">I", data[at - 8 : at - 4])
    return data[: at + 4] + b"\xff" * (size - 16) + data[at + size - 12 :]


def test_avif_decoder_runtime_errors_are_image_errors() -> None:
    # Was: RuntimeError from libavif, in open_image() and in load().
    with pytest.raises(ImageError, match="Missing or empty image item"):
        pixels.open_image(avif_pointing_at_no_item(), Format.AVIF, 10**8)
    im = pixels.open_image(avif_with_garbage_pixels(), Format.AVIF, 10**8)
    with pytest.raises(ImageError, match="color planes"):
        pixels.load(im, 10**8)


def tiff_ifds(data: bytes) -> list[int]:
    """Offsets of a little-endian TIFF's IFDs."""
    offsets, at = [], struct.unpack("<I", data[4:8])[0]
    while at:
        offsets.append(at)
        (count,) = struct.unpack("<H", data[at : at + 2])
        at = struct.unpack("<I", data[at + 2 + 12 * count : at + 6 + 12 * count])[0]
    return offsets


def multipage_tiff_with_bad_page() -> bytes:
    """Three pages; page 2 claims 24098 bits per sample ("unknown pixel mode")."""
    pages = [pattern((40, 30)).convert("L"), pattern((40, 30))]
    data = bytearray(encode(pattern((40, 30)), "TIFF", save_all=True, append_images=pages))
    ifd = tiff_ifds(bytes(data))[1]
    (count,) = struct.unpack("<H", data[ifd : ifd + 2])
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if struct.unpack("<H", data[entry : entry + 2])[0] == 258:  # BitsPerSample
            data[entry + 8 : entry + 10] = struct.pack("<H", 24098)
    return bytes(data)


def test_multipage_tiff_with_a_damaged_page_is_an_image_error() -> None:
    # Was: SyntaxError "unknown pixel mode" (TypeError "Missing dimensions" for others)
    # from n_frames, in render() and in pixels.frame_count().
    data = multipage_tiff_with_bad_page()
    with pytest.raises(ImageError, match="a later frame or page is damaged"):
        pixels.frame_count(data, Format.TIFF, 10**8)
    with pytest.raises(ImageError, match="unknown pixel mode"):
        outputs(data, "pages.tif")


def palette_trns_png() -> bytes:
    im = pattern((40, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return encode(im, "PNG", transparency=bytes([0, 128] + [255] * 6))


def test_palette_png_with_trns_is_tagged_and_keeps_its_transparency() -> None:
    data = palette_trns_png()
    made, _ = outputs(data, "icon.png", options(formats=("webp", "jpeg")))
    assert [(r, f) for r, f, *_ in made] == [("original", "png"), ("variant", "webp")]
    assert Image.open(io.BytesIO(made[1][4])).mode == "RGBA"  # alpha kept, never JPEG
    again = pixels.encode_like(
        pixels.decode_upright(data, Format.PNG, 10**8), Format.PNG, data, QUALITY
    )
    rgba = Image.open(io.BytesIO(data)).convert("RGBA")
    assert Image.open(io.BytesIO(again)).convert("RGBA").tobytes() == rgba.tobytes()
    assert sorted(set(rgba.getchannel("A").tobytes())) == [0, 128, 255]


def test_palette_png_without_its_palette_is_an_image_error() -> None:
    # Was: UnboundLocalError ('palette') from Pillow's PNG writer in encode_like().
    data = without(palette_trns_png(), lambda t, k: t == b"PLTE")
    im = pixels.decode_upright(data, Format.PNG, 10**8)
    assert im.mode == "P" and im.palette is None
    with pytest.raises(ImageError, match="PLTE chunk missing"):
        pixels.encode_like(im, Format.PNG, data, QUALITY)
    with pytest.raises(ImageError, match="PLTE chunk missing"):
        tagging.tag_bytes(
            data, ImagePolicy(), name="x.png", lossless=False, max_pixels=10**8, quality=QUALITY
        )


def gif_descriptors(data: bytes) -> list[int]:
    """Offsets of a GIF's image descriptors (0x2C), found by walking its blocks."""
    at, found = 13, []
    if data[10] & 0x80:
        at += 3 << ((data[10] & 7) + 1)
    while data[at] != 0x3B:
        if data[at] == 0x2C:
            found.append(at)
            flags = data[at + 9]
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        else:
            at += 2
        while data[at]:
            at += 1 + data[at]
        at += 1
    return found


def gif_with_frame_at(x: int, y: int, frame: int = 1) -> bytes:
    """A 40 × 30 two-frame GIF whose ``frame`` is drawn at (x, y)."""
    frames = [pattern((40, 30)).convert("P"), pattern((40, 30)).rotate(180).convert("P")]
    data = bytearray(
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0, duration=90)
    )
    at = gif_descriptors(bytes(data))[frame]
    data[at + 1 : at + 5] = struct.pack("<HH", x, y)
    return bytes(data)


def test_gif_frame_far_outside_its_canvas_is_an_image_error() -> None:
    # Was: Pillow's DecompressionBombError (not an OSError) out of the frame walk.
    with pytest.raises(ImageError, match="decompression"):
        outputs(gif_with_frame_at(60000, 60000), "bomb.gif")


def test_animated_gif_with_frames_too_tall_for_webp_keeps_its_tags() -> None:
    # Was: RuntimeError "ERROR adding frame. WebPEncodingError: 5" (bad dimension) from the
    # animated WebP encoder: the first frame drawn at y = 20000 makes a 40 × 20030 canvas.
    made, notes = outputs(gif_with_frame_at(0, 20000, frame=0), "tall.gif")
    assert [(r, f, w, h) for r, f, w, h, _ in made] == [("original", "gif", 40, 20030)]
    assert notes == (
        "no 40w WebP variant: 40×20030 is over WebP's limit of 16383 pixels a side; "
        "the original serves that width",
    )


def test_animated_gif_with_a_frame_partly_outside_gets_animated_variants() -> None:
    made, notes = outputs(gif_with_frame_at(10, 10), "anim.gif", options(widths=(24, 40)))
    assert notes == ()
    assert [(r, f, w, h) for r, f, w, h, _ in made] == [
        ("original", "gif", 40, 30),
        ("variant", "webp", 40, 30),
        ("variant", "webp", 24, 18),
    ]
    for *_, data in made[1:]:
        frames = list(ImageSequence.Iterator(Image.open(io.BytesIO(data))))
        assert len(frames) == 2


# --- limits of the encoders ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "fits", "too_big"),
    [
        ("webp", (16383, 16383), (1200, 16384)),
        ("jpeg", (16, 65500), (65501, 16)),
        ("avif", (16, 32768), (32769, 16)),
        ("avif", (16384, 16384), (16384, 16385)),
        ("png", (16, 100000), (16, 2**31)),
    ],
)
def test_format_limits(fmt: str, fits: tuple[int, int], too_big: tuple[int, int]) -> None:
    assert variants.over_limit(fmt, fits) is None
    assert "limit" in (variants.over_limit(fmt, too_big) or "")


def test_the_limits_are_the_encoders_own() -> None:
    """One pixel over the limit, the real encoder refuses (WebP, JPEG) or writes a file its
    own decoder refuses (AVIF); at the limit both work."""
    for fmt, side in (("WEBP", 16383), ("JPEG", 65500), ("AVIF", 32768)):
        at_limit = encode(Image.new("RGB", (8, side)), fmt)
        assert Image.open(io.BytesIO(at_limit)).size == (8, side)
        try:
            over = encode(Image.new("RGB", (8, side + 1)), fmt)
        except (OSError, ValueError):
            continue
        with pytest.raises(OSError):
            Image.open(io.BytesIO(over)).load()


def tall_screenshot() -> bytes:
    im = Image.new("RGB", (1200, 20000), (245, 245, 245))
    for top in range(0, 20000, 2000):
        im.paste((20, 90, 160), (100, top + 200, 1100, top + 800))
    return encode(im, "PNG", compress_level=1)


def test_tall_screenshot_gets_its_variants(tmp_path: Path) -> None:
    # Was: ValueError "Image size exceeds WebP limit of 16383 pixels" for the whole image.
    made, notes = outputs(tall_screenshot(), "page.png", options(formats=("webp", "avif")))
    got = [(r, f, w, h) for r, f, w, h, _ in made]
    assert got[0] == ("original", "png", 1200, 20000)
    assert ("variant", "webp", 960, 16000) in got and ("variant", "webp", 480, 8000) in got
    assert ("variant", "avif", 1200, 20000) in got  # AVIF holds 20000 (up to 32768)
    assert not [g for g in got if g[1] == "webp" and g[2] == 1200]
    assert notes == (
        "no 1200w WebP variant: 1200×20000 is over WebP's limit of 16383 pixels a side; "
        "the original serves that width",
    )
    for *_, w, h, data in made[1:]:
        assert Image.open(io.BytesIO(data)).size == (w, h)


# --- the re-encode fallback ----------------------------------------------------------------


def with_bad_idat_crc(data: bytes) -> bytes:
    """A PNG whose IDAT CRC is wrong: our container parser refuses it (a critical chunk),
    Pillow decodes it whole."""
    out = bytearray(data)
    at = data.index(b"IDAT") - 4
    (n,) = struct.unpack(">I", data[at : at + 4])
    crc = at + 8 + n
    out[crc : crc + 4] = struct.pack(">I", zlib.crc32(b"not it"))
    return bytes(out)


@needs_exiftool
def test_png_our_parser_refuses_is_reencoded_and_tagged(tmp_path: Path) -> None:
    data = with_bad_idat_crc(palette_trns_png())
    with pytest.raises(ContainerError):
        containers.read(Format.PNG, data)
    made, notes = outputs(data, "logo.png")
    assert len(notes) == 1
    assert notes[0].startswith("its container was malformed (PNG IDAT chunk")
    assert notes[0].endswith("); re-encoded to tag it")
    original = made[0][4]
    # Same pixels (PNG is lossless), transparency kept, and tagged.
    before = Image.open(io.BytesIO(data)).convert("RGBA")
    after = Image.open(io.BytesIO(original)).convert("RGBA")
    assert before.tobytes() == after.tobytes()
    seen = tagged_by_exiftool(tmp_path, {"logo.png": original, "v.webp": made[1][4]})
    assert seen["logo.png"] == f"{PLUS}DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"
    assert seen["v.webp"] == f"{PLUS}DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"


@needs_exiftool
def test_animation_stays_animated_when_reencoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever our GIF parser still refuses: the re-encoded GIF keeps every frame, its
    timing and its loop, and is tagged."""
    frames = [pattern((40, 30)).convert("P"), pattern((40, 30)).rotate(180).convert("P")]
    data = encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], loop=3, duration=[70, 140]
    )
    real_read = containers.read

    def refuse_source(fmt: Format, blob: bytes) -> containers.Metadata:
        if blob == data:
            raise ContainerError("GIF block of an unknown kind at byte 800")
        return real_read(fmt, blob)

    monkeypatch.setattr(containers, "read", refuse_source)
    made, notes = outputs(data, "anim.gif")
    assert notes == (
        "its container was malformed (GIF block of an unknown kind at byte 800); "
        "re-encoded to tag it",
    )
    out = Image.open(io.BytesIO(made[0][4]))
    assert out.n_frames == 2 and out.info["loop"] == 3
    durations = []
    for frame in ImageSequence.Iterator(out):
        durations.append(frame.info["duration"])
    assert durations == [70, 140]
    assert [(r, f) for r, f, *_ in made] == [("original", "gif"), ("variant", "webp")]
    seen = tagged_by_exiftool(tmp_path, {"anim.gif": made[0][4]})
    assert seen["anim.gif"] == f"{PLUS}DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"


def test_when_only_the_rewrite_refuses_the_source_rights_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = camera_file("JPEG", orientation=6)  # carries "Source Author" in its XMP
    real_write = containers.write

    def refuse_source(fmt: Format, blob: bytes, *args: object) -> bytes:
        if blob == data:
            raise ContainerError("JPEG segment 0xffe1 at byte 2 has a bad length (3)")
        return real_write(fmt, blob, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(containers, "write", refuse_source)
    made, notes = outputs(data, "photo.jpg")
    assert "re-encoded to tag it" in notes[0]
    original = made[0][4]
    assert Image.open(io.BytesIO(original)).size == (48, 64)  # turned upright
    packet = containers.read(Format.JPEG, original).xmp or b""
    assert b"Source Author" in packet and b"DataMining" in packet
    assert Image.open(io.BytesIO(original)).getexif().get(0x0112, 1) == 1


def test_refused_and_undecodable_names_both_reasons() -> None:
    data = with_bad_idat_crc(palette_trns_png())
    data = data[: data.index(b"IDAT") + 10]  # and cut inside the pixels
    with pytest.raises(ImageError) as caught:
        outputs(data, "cut.png")
    message = str(caught.value)
    assert message.startswith("PNG ")
    assert "; re-encoding it failed too: it cannot be decoded" in message
    assert "0x" not in message  # no memory address of Pillow's buffer: reports stay stable


def test_svg_is_never_reencoded() -> None:
    with pytest.raises(ContainerError):
        outputs(b'<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>', "x.svg")


# --- the crashers the fuzzer found, and the fine files through a real build --------------


@pytest.mark.parametrize("path", sorted(CRASHERS.iterdir()), ids=lambda p: p.name)
def test_fuzz_crasher_is_tagged_or_refused_in_words(path: Path) -> None:
    """Each crashed the pixel code once; a ``must-tag`` one decodes in Pillow and was
    refused instead of re-encoded (an APNG announcing more frames than it holds)."""
    if "must-tag" in path.name:
        made, notes = outputs(path.read_bytes(), path.name)
        assert made[0][0] == "original" and "re-encoded to tag it" in notes[0]
        return
    try:
        made, _ = outputs(
            path.read_bytes(), path.name, options((24, 48, 480), ("webp", "avif", "jpeg"))
        )
    except ImageError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert made[0][0] == "original"


@needs_exiftool
def test_fine_but_unusual_images_come_out_tagged_with_variants(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    frames = [pattern((40, 30)).convert("P"), pattern((40, 30)).rotate(180).convert("P")]
    files = {
        "deep.tif": be16_tiff(),
        "icon.png": palette_trns_png(),
        "page.png": tall_screenshot(),
        "anim.gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0),
    }
    for name, data in files.items():
        (site / "img" / name).write_bytes(data)
    report = tmp_path / "report.json"
    code = main(["build", str(site), "--no-cache", "--jobs", "1", "--report", str(report)])
    assert code == 0
    facts = json.loads(report.read_text())
    assert facts["errors"] == {}
    for name in files:
        assert facts["images"][f"img/{name}"]["variants"], name
    assert facts["notes"]["img/page.png"] == [  # the default widths up to 944 fit
        "no 1200w WebP variant: 1200×20000 is over WebP's limit of 16383 pixels a side; "
        "the original serves that width",
        "no 1120w WebP variant: 1120×18667 is over WebP's limit of 16383 pixels a side",
    ]
    written = sorted(p for p in (site / "img").iterdir())
    assert len(written) > len(files)
    for entry in exiftool(*written, args=("-XMP-plus:DataMining",)):
        assert entry.get("DataMining") == f"{PLUS}DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING", entry


def test_tag_command_reencodes_only_when_not_asked_for_lossless() -> None:
    data = with_bad_idat_crc(palette_trns_png())
    kwargs = {"name": "logo.png", "max_pixels": 10**8, "quality": QUALITY}
    with pytest.raises(ContainerError):
        tagging.tag_bytes(data, ImagePolicy(), lossless=True, **kwargs)  # type: ignore[arg-type]
    result = tagging.tag_bytes(data, ImagePolicy(), lossless=False, **kwargs)  # type: ignore[arg-type]
    assert result.reencoded and result.format is Format.PNG
    assert result.notes[-1].endswith("); re-encoded to tag it")
    assert b"DataMining" in (containers.read(Format.PNG, result.data).xmp or b"")
