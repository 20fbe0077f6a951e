"""TIFF metadata surgery (IFD rewrites that keep every page's pixels), checked with
exiftool, pyexiv2 and Pillow."""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageCms, TiffImagePlugin

from ssg_dmi.errors import ContainerError
from ssg_dmi.images.containers import tiff

from .container_bytes import mutated
from .images import encode
from .readers import (
    PROHIBITED,
    SAMPLE_RIGHTS,
    SAMPLE_XMP,
    assert_opt_out,
    needs_exiftool,
    pixels,
    pyexiv2_exif,
    pyexiv2_xmp,
    tagged,
)

SOURCE_TAGS = {
    0x010E: "holiday",  # ImageDescription
    0x010F: "Canon",  # Make
    0x0110: "EOS 5D",  # Model
    0x0131: "Camera firmware 1.0",  # Software
    0x0132: "2024:05:01 10:00:00",  # DateTime
    0x013C: "ana-laptop",  # HostComputer
    0x8298: "Old Copyright",
}


def source_exif() -> bytes:
    exif = Image.Exif()
    for tag, value in SOURCE_TAGS.items():
        exif[tag] = value
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    exif[0x8769] = {0xA431: "SERIAL-123456", 0x9003: "2024:05:01 10:00:00"}
    return exif.tobytes()


def caller_exif(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x8298] = "© Ana".encode()  # UTF-8 in an ASCII tag, as exiftool writes it
    exif[0x013B] = "Ana"
    if orientation is not None:
        exif[0x0112] = orientation
    return exif.tobytes()[6:]


def make_tiff(mode: str = "RGB", compression: str = "raw", **params: Any) -> bytes:
    size = (40, 30)
    if mode == "I;16":
        im = Image.frombytes("I;16", size, bytes(range(256)) * 10)
    else:
        im = Image.linear_gradient("L").resize(size).convert(mode)
        im.putpixel((1, 2), 0 if mode == "1" else 200)
    return encode(im, "TIFF", compression=compression, **params)


@pytest.mark.parametrize(
    ("mode", "compression"),
    [
        ("RGB", "raw"),
        ("RGB", "tiff_lzw"),
        ("RGBA", "tiff_adobe_deflate"),
        ("I;16", "raw"),
        ("I;16", "tiff_lzw"),
        ("CMYK", "raw"),
        ("CMYK", "tiff_adobe_deflate"),
        ("L", "packbits"),
        ("1", "group4"),
        ("P", "tiff_lzw"),
        ("F", "tiff_adobe_deflate"),
    ],
)
def test_tiff_pixels_are_identical(mode: str, compression: str) -> None:
    source = make_tiff(mode, compression, dpi=(300, 300))
    out = tiff.write(source, SAMPLE_XMP, caller_exif(), keep_other=False)
    assert pixels(out) == pixels(source)
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["compression"] == compression
        assert im.info["dpi"] == (300, 300)
    assert tiff.write(out, SAMPLE_XMP, caller_exif(), keep_other=False) == out


def test_tiff_drops_private_tags() -> None:
    source = make_tiff(exif=source_exif())
    with Image.open(io.BytesIO(source)) as im:  # the fixture really has them
        assert isinstance(im, TiffImagePlugin.TiffImageFile)
        assert 0x8825 in im.tag_v2 and 0x8769 in im.tag_v2
    out = tiff.write(source, SAMPLE_XMP, caller_exif(), keep_other=False)
    exif = pyexiv2_exif(out)
    assert not [key for key in exif if key.startswith(("Exif.GPSInfo", "Exif.Photo"))]
    for key in ("Make", "Model", "Software", "DateTime", "HostComputer", "ImageDescription"):
        assert f"Exif.Image.{key}" not in exif
    assert exif["Exif.Image.Copyright"] == "© Ana"
    assert exif["Exif.Image.Artist"] == "Ana"
    xmp = pyexiv2_xmp(out)
    assert xmp["Xmp.plus.DataMining"] == PROHIBITED
    assert xmp["Xmp.dc.rights"] == {'lang="x-default"': SAMPLE_RIGHTS}
    assert pixels(out) == pixels(source)


def test_tiff_keep_other_keeps_descriptions_not_gps() -> None:
    source = make_tiff(exif=source_exif())
    out = tiff.write(source, SAMPLE_XMP, None, keep_other=True)
    exif = pyexiv2_exif(out)
    assert exif["Exif.Image.Make"] == "Canon"
    assert exif["Exif.Image.Model"] == "EOS 5D"
    assert exif["Exif.Image.Software"] == "Camera firmware 1.0"
    assert exif["Exif.Image.ImageDescription"] == "holiday"
    assert "Exif.Image.HostComputer" not in exif
    assert "Exif.Image.Copyright" not in exif  # exif=None: no caller tags
    assert not [key for key in exif if key.startswith(("Exif.GPSInfo", "Exif.Photo"))]


@needs_exiftool
def test_tiff_exiftool_reads_it(tmp_path: Path) -> None:
    source = make_tiff(exif=source_exif())
    tags = tagged(tmp_path, "a.tif", tiff.write(source, SAMPLE_XMP, caller_exif(), False))
    assert_opt_out(tags)
    assert tags["IFD0:Copyright"] == "© Ana"
    assert not [key for key in tags if key.startswith(("GPS:", "ExifIFD:", "Composite:GPS"))]
    assert "IFD0:Make" not in tags


@needs_exiftool
def test_tiff_orientation_is_kept_or_set(tmp_path: Path) -> None:
    # Pillow 13 rotates TIFF pages while decoding them; the rewrite must not bake that in.
    source = make_tiff(tiffinfo={0x0112: 6})
    out = tiff.write(source, SAMPLE_XMP, None, keep_other=False)
    assert tagged(tmp_path, "a.tif", out)["IFD0:Orientation"] == 6
    assert pixels(out) == pixels(source)
    assert tiff.write(out, SAMPLE_XMP, None, keep_other=False) == out
    turned = tiff.write(make_tiff(), SAMPLE_XMP, caller_exif(orientation=6), False)
    assert tagged(tmp_path, "b.tif", turned)["IFD0:Orientation"] == 6
    with Image.open(io.BytesIO(make_tiff())) as im:
        expected = im.transpose(Image.Transpose.ROTATE_270).tobytes()
    assert pixels(turned)[0][2] == expected


def test_tiff_multi_page() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    first = Image.linear_gradient("L").resize((64, 48)).convert("RGB")
    pages = [Image.new("L", (20, 10), 77), Image.new("CMYK", (8, 8), (1, 2, 3, 4))]
    # (Without icc_profile=None Pillow would copy page 1's profile onto this page.)
    pages[0].encoderinfo = {"compression": "tiff_lzw", "tiffinfo": {317: 2}, "icc_profile": None}
    buffer = io.BytesIO()
    first.save(
        buffer,
        "TIFF",
        save_all=True,
        append_images=pages,
        compression="tiff_adobe_deflate",
        icc_profile=icc,
    )
    source = buffer.getvalue()
    out = tiff.write(source, SAMPLE_XMP, caller_exif(), keep_other=False)
    assert pixels(out) == pixels(source)
    with Image.open(io.BytesIO(out)) as im:
        assert isinstance(im, TiffImagePlugin.TiffImageFile)
        seen = []
        for index in range(3):
            im.seek(index)
            # (info["icc_profile"] is stale on a page without one: Pillow keeps page 1's.)
            seen.append((im.info["compression"], 34675 in im.tag_v2, 700 in im.tag_v2))
    assert seen == [
        ("tiff_adobe_deflate", True, True),
        ("tiff_lzw", False, False),
        ("tiff_adobe_deflate", True, False),
    ]
    assert tiff.write(out, SAMPLE_XMP, caller_exif(), keep_other=False) == out


def test_tiff_read_round_trip() -> None:
    source = make_tiff(exif=source_exif())
    found = tiff.read(source)
    assert found.xmp is None and found.exif is not None
    before = Image.Exif()
    before.load(found.exif)
    assert before[0x010F] == "Canon" and before.get_ifd(0x8825)[1] == "N"
    assert 256 not in before  # layout tags are not EXIF
    out = tiff.write(source, SAMPLE_XMP, caller_exif(orientation=3), keep_other=False)
    found = tiff.read(out)
    assert found.xmp == SAMPLE_XMP
    assert found.exif is not None and found.exif[:4] in (b"II*\x00", b"MM\x00*")
    after = Image.Exif()
    after.load(found.exif)
    assert after[0x8298].encode("latin-1").decode() == "© Ana"
    assert after[0x0112] == 3
    assert 0x8825 not in after and 0x010F not in after


def test_tiff_lossy_compression_is_refused() -> None:
    with pytest.raises(ContainerError, match="'jpeg' compression is not supported"):
        tiff.write(make_tiff(compression="jpeg"), SAMPLE_XMP, None, keep_other=False)


def test_tiff_respects_max_image_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ContainerError, match="too large|more than"):
        tiff.write(make_tiff(), SAMPLE_XMP, None, keep_other=False)


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the damage it skips
def test_tiff_bad_input_raises_container_error() -> None:
    good = make_tiff(compression="tiff_lzw")
    circular = bytearray(make_tiff())
    # Point IFD0's next-IFD offset back at IFD0.
    ifd0 = struct.unpack_from("<I", circular, 4)[0]
    count = struct.unpack_from("<H", circular, ifd0)[0]
    struct.pack_into("<I", circular, ifd0 + 2 + 12 * count, ifd0)
    cases = [good[:n] for n in (0, 4, 8, 20, len(good) // 2, len(good) - 40)]
    cases += [b"\x00" * 64, random.Random(2).randbytes(500), b"II*\x00\xff\xff\xff\x7f"]
    for data in cases:
        with pytest.raises(ContainerError):
            tiff.write(data, SAMPLE_XMP, None, keep_other=False)
    for data in cases[:3]:
        with pytest.raises(ContainerError):
            tiff.read(data)
    assert pixels(tiff.write(bytes(circular), SAMPLE_XMP, None, False)) == pixels(make_tiff())
    for exif in (
        b"garbage",
        b"MM\x00*",
        b"MM\x00*\x00\x00\x10\x00",
        b"II*\x00\x08\x00\x00\x00\xff",
    ):
        with pytest.raises(ContainerError, match="EXIF"):
            tiff.write(good, SAMPLE_XMP, exif, keep_other=False)


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the damage it skips
def test_tiff_mutations_raise_only_container_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # mutated sizes: keep it fast
    good = make_tiff(exif=source_exif())
    rng = random.Random(5)
    for _ in range(100):
        data = mutated(rng, good, 3, within=400)
        try:
            tiff.write(data, SAMPLE_XMP, None, keep_other=False)
            tiff.read(data)
        except ContainerError:
            pass


def handmade_tiff(bits: tuple[int, ...], photometric: int, size: tuple[int, int] = (3, 2)) -> bytes:
    """An uncompressed one-strip TIFF with sample depths Pillow cannot write itself."""
    width, height = size
    row = (width * sum(bits) + 7) // 8
    pixel_data = bytes((i * 37) % 256 for i in range(row * height))
    count = 10
    bits_at = 8 + 2 + 12 * count + 4
    data_at = bits_at + 2 * len(bits)

    def entry(tag: int, kind: int, n: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, kind, n, value)

    entries = [
        entry(256, 4, 1, width),
        entry(257, 4, 1, height),
        entry(258, 3, len(bits), bits_at if len(bits) > 2 else bits[0]),
        entry(259, 3, 1, 1),
        entry(262, 3, 1, photometric),
        entry(273, 4, 1, data_at),
        entry(277, 3, 1, len(bits)),
        entry(278, 4, 1, height),
        entry(279, 4, 1, len(pixel_data)),
        entry(284, 3, 1, 1),
    ]
    ifd = struct.pack("<H", count) + b"".join(entries) + b"\0\0\0\0"
    depths = struct.pack(f"<{len(bits)}H", *bits)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + depths + pixel_data


def test_tiff_refuses_depth_pillow_would_reduce() -> None:
    source = handmade_tiff((16, 16, 16), photometric=2)
    assert pixels(source)[0][0] == "RGB"  # Pillow decodes 48-bit RGB to 24-bit
    with pytest.raises(ContainerError, match="16/16/16-bit samples"):
        tiff.write(source, SAMPLE_XMP, None, keep_other=False)


def test_tiff_shallower_depth_is_widened_losslessly() -> None:
    source = handmade_tiff((2,), photometric=1)  # 2-bit grey: written back as 8-bit
    out = tiff.write(source, SAMPLE_XMP, None, keep_other=False)
    assert pixels(out) == pixels(source)
