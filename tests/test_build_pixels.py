"""``ssg-dmi build``: what the pixels of each output look like: orientation, ICC profiles,
CMYK and 16-bit sources, and `originals = optimize`. Read back with Pillow and exiftool.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat

from ssg_dmi.images import pixels
from ssg_dmi.images.containers import Format

from .builds import (
    build,
)
from .images import (
    encode,
    gray16,
    jpeg,
    pattern,
    photo,
    srgb_icc,
)
from .readers import PLUS, decoded, dmi_of, exiftool, needs_exiftool, views
from .test_tagging import INVERSE, _quadrants

# --- orientation --------------------------------------------------------------------------


@needs_exiftool
@pytest.mark.parametrize("orientation", range(1, 9))
def test_variants_upright_and_original_keeps_orientation(tmp_path: Path, orientation: int) -> None:
    upright = pattern((400, 240))
    stored = upright
    for op in INVERSE[orientation]:
        stored = stored.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    site = tmp_path / "site"
    site.mkdir()
    (site / "turned.jpg").write_bytes(jpeg(stored, exif=exif))
    report = build(site, widths=[100, 200], formats=["webp", "jpeg"], originals="tag")
    entry = report.images["turned.jpg"]
    assert (entry["original"]["width"], entry["original"]["height"]) == (400, 240)
    assert {(v["width"], v["height"]) for v in entry["variants"]} == {(100, 60), (200, 120)}
    assert len(entry["variants"]) == 4
    paths = [site / v["path"] for v in entry["variants"]]
    for path in paths:
        im = decoded(path)
        assert im.width > im.height, path.name
        for got, want in zip(_quadrants(im), _quadrants(upright), strict=True):
            assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 40, path.name
    seen = views(site / "turned.jpg", *paths)
    if orientation == 1:
        assert seen[str(site / "turned.jpg")].get("IFD0:Orientation", 1) == 1
    else:
        assert seen[str(site / "turned.jpg")]["IFD0:Orientation"] == orientation
    for path in paths:
        assert seen[str(path)].get("IFD0:Orientation", 1) == 1, path.name


# --- ICC ----------------------------------------------------------------------------------


@pytest.mark.parametrize("srgb", [False, True])
def test_icc_profile_carried_or_converted(tmp_path: Path, srgb: bool) -> None:
    site = tmp_path / "site"
    site.mkdir()
    icc = srgb_icc()
    (site / "c.jpg").write_bytes(jpeg(photo((300, 200)), icc_profile=icc))
    (site / "c.png").write_bytes(encode(photo((300, 200)), "PNG", icc_profile=icc))
    report = build(site, widths=[100, 200], formats=["webp", "jpeg"], srgb=srgb)
    count = 0
    for rel in ("c.jpg", "c.png"):
        assert decoded(site / rel).info.get("icc_profile") == icc  # originals keep theirs
        for v in report.images[rel]["variants"]:
            got = decoded(site / v["path"]).info.get("icc_profile")
            assert got == (None if srgb else icc), v["path"]
            count += 1
    assert count >= 6


# --- CMYK and 16-bit ----------------------------------------------------------------------


def test_cmyk_jpeg_and_16_bit_png_become_8_bit_rgb(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "cmyk.jpg").write_bytes(jpeg(pattern((300, 200)).convert("CMYK")))
    (site / "flat16.png").write_bytes(encode(Image.new("I;16", (300, 100), 40000), "PNG"))
    ramp = [0, 10000, 20000, 30000, 40000, 50000, 65535]
    (site / "ramp16.png").write_bytes(encode(gray16(ramp, (350, 50)), "PNG"))
    with Image.open(site / "flat16.png") as im:
        assert im.mode == "I;16"
    report = build(site, widths=[70, 140], formats=["webp", "jpeg"])
    assert report.errors == {}
    for rel in ("cmyk.jpg", "flat16.png", "ramp16.png"):
        assert len(report.images[rel]["variants"]) == 4, rel
    for v in report.images["cmyk.jpg"]["variants"]:
        im = decoded(site / v["path"])
        assert im.mode == "RGB"
        for got, want in zip(_quadrants(im), _quadrants(pattern((300, 200))), strict=True):
            assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 40
    for v in report.images["flat16.png"]["variants"]:
        im = decoded(site / v["path"])
        assert im.mode in ("L", "RGB")
        low, high = im.convert("L").getextrema()
        assert 152 <= low <= high <= 159, (v["path"], low, high)  # 40000 / 257 ≈ 155.6
    for v in report.images["ramp16.png"]["variants"]:
        im = decoded(site / v["path"]).convert("L")
        assert im.mode == "L"
        levels = [im.getpixel((int((n + 0.5) * im.width / 7), im.height // 2)) for n in range(7)]
        expected = [round(r / 257) for r in ramp]
        assert all(abs(a - b) <= 6 for a, b in zip(levels, expected, strict=True)), levels


# --- originals = optimize -----------------------------------------------------------------


@needs_exiftool
def test_optimize_reencodes_only_heavy_jpegs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    picture = photo((600, 400))
    heavy, light = jpeg(picture, quality=95), jpeg(picture, quality=75)
    png = encode(picture, "PNG")
    (site / "heavy.jpg").write_bytes(heavy)
    (site / "light.jpg").write_bytes(light)
    (site / "lossless.png").write_bytes(png)
    report = build(site, widths=[200], formats=["webp"], originals="optimize")
    assert report.summary["reencoded"] == 1
    h = report.images["heavy.jpg"]["original"]
    assert h["reencoded"] is True
    assert h["bytes"] == (site / "heavy.jpg").stat().st_size < len(heavy) * 0.9
    after = decoded(site / "heavy.jpg")
    assert after.size == (600, 400)
    # Close to the source: no more loss than Pillow's own q82 encode of it, and small.
    loss = ImageStat.Stat(ImageChops.difference(after.convert("RGB"), decoded(heavy))).mean
    own = decoded(jpeg(decoded(heavy), quality=82))
    floor = ImageStat.Stat(ImageChops.difference(own, decoded(heavy))).mean
    assert all(a <= b * 1.1 + 0.5 for a, b in zip(loss, floor, strict=True)), (loss, floor)
    assert sum(loss[:2]) / 2 < 5, loss  # the smooth channels barely move
    assert report.images["light.jpg"]["original"]["reencoded"] is False
    assert decoded(site / "light.jpg").tobytes() == decoded(light).tobytes()
    assert report.images["lossless.png"]["original"]["reencoded"] is False
    assert decoded(site / "lossless.png").tobytes() == decoded(png).tobytes()
    for view in exiftool(*(site / r for r in ("heavy.jpg", "light.jpg", "lossless.png"))):
        assert dmi_of(view) == PLUS + "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"


# --- PNG orientation without a second decode ------------------------------------------------


def _png_with_late_exif(im: Image.Image, orientation: int) -> bytes:
    """A PNG whose eXIf chunk comes after its image data (Pillow writes it before)."""
    data = encode(im, "png")
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + body))
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + chunk + data[iend:]


def test_png_orientation_is_read_without_decoding_the_pixels() -> None:
    plain = pixels.open_image(encode(pattern((64, 48)), "png"), Format.PNG, 10**6)
    assert pixels.exif_orientation(plain) == 1
    assert isinstance(plain, ImageFile.ImageFile)
    assert plain.tile, "the pixels were decoded just to find there is no orientation"
    exif = Image.Exif()
    exif[0x0112] = 6
    early = pixels.open_image(encode(pattern((64, 48)), "png", exif=exif), Format.PNG, 10**6)
    assert pixels.exif_orientation(early) == 6
    assert isinstance(early, ImageFile.ImageFile) and early.tile


def test_png_orientation_after_the_pixels_is_still_found() -> None:
    data = _png_with_late_exif(pattern((64, 48)), 6)
    assert data.index(b"eXIf") > data.index(b"IDAT")
    assert pixels.exif_orientation(pixels.open_image(data, Format.PNG, 10**6)) == 6
    upright = pixels.decode_upright(data, Format.PNG, 10**6)
    assert upright.size == (48, 64)
    assert upright.tobytes() == pattern((64, 48)).transpose(Image.Transpose.ROTATE_270).tobytes()
