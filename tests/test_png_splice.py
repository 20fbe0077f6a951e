"""A watermarked PNG original keeps the compressed rows the mark did not touch (issue 11's
cost): the spliced stream is read back by zlib (the reference inflater, through Pillow and
directly) and by Chromium's own PNG decoder, pixel for pixel; what cannot be spliced
exactly is refused and re-encoded as before."""

from __future__ import annotations

import base64
import dataclasses
import io
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from ssg_dmi.build.job import WATERMARKED, render
from ssg_dmi.images import png_splice, watermark
from ssg_dmi.policy import ImagePolicy
from ssg_dmi.settings.watermark import Watermark

from .container_bytes import png_chunk
from .images import encode, photo
from .test_watermark import options

CHROMIUM = Path("/usr/bin/chromium")

# Sources as other tools write them: every zlib level and strategy, and Pillow's optimize.
SAVES: list[dict[str, Any]] = [
    {"compress_level": 1},
    {"compress_level": 9},
    {"compress_level": 6, "compress_type": zlib.Z_RLE},
    {"compress_level": 6, "compress_type": zlib.Z_FILTERED},
    {"optimize": True},
]


def grainy(size: tuple[int, int], mode: str) -> Image.Image:
    im = photo(size)
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(Image.linear_gradient("L").resize(size))
    return im


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk, every CRC checked."""
    out, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        out.append((kind, body))
        at += 12 + length
    return out


def idat(data: bytes) -> bytes:
    return b"".join(body for kind, body in chunks(data) if kind == b"IDAT")


def marked_band(im: Image.Image, top: int, bottom: int, seed: int) -> Image.Image:
    out = im.copy()
    left = random.Random(seed).randrange(im.width)
    fill = (255, 0, 0, 200) if im.mode == "RGBA" else (255, 0, 0)
    ImageDraw.Draw(out).rectangle((left, top, im.width - 1, bottom - 1), fill=fill)
    return out


@pytest.mark.parametrize("save", SAVES, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_spliced_pngs_decode_to_the_marked_pixels(save: dict[str, Any], mode: str) -> None:
    rng = random.Random(f"{mode}{save}")
    spliced = 0
    for trial in range(12):
        size = rng.choice([(400, 300), (640, 480), (97, 1500), (1500, 60), (300, 900)])
        im = grainy(size, mode)
        data = encode(im, "PNG", **save)
        prepared = png_splice.prepare(data)
        assert prepared is not None
        with Image.open(prepared.decodable()) as back:  # what the build decodes instead
            assert back.mode == mode and back.tobytes() == im.tobytes()
        top = rng.randrange(size[1])
        bottom = min(size[1], top + rng.randrange(1, max(2, size[1] // 5)))
        marked = marked_band(im, top, bottom, trial)
        out = png_splice.splice(prepared, marked, (top, bottom))
        assert out is not None
        spliced += out != data
        stream = idat(out)  # every chunk's CRC checked on the way
        assert zlib.decompress(stream)  # the whole stream, Adler-32 included
        with Image.open(io.BytesIO(out)) as back:
            assert back.mode == mode and back.tobytes() == marked.tobytes(), (size, top, bottom)
        # Everything but the IDAT run is the source's, byte for byte.
        assert [c for c in chunks(out) if c[0] != b"IDAT"] == [
            c for c in chunks(data) if c[0] != b"IDAT"
        ]
    assert spliced == 12


def test_rows_far_from_the_mark_keep_their_compressed_bytes() -> None:
    im = photo((1600, 1200))
    data = encode(im, "PNG", compress_level=9)
    prepared = png_splice.prepare(data)
    assert prepared is not None
    marked = marked_band(im, 1100, 1150, 0)
    out = png_splice.splice(prepared, marked, (1100, 1150))
    assert out is not None
    before, after = idat(data), idat(out)
    shared = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
    assert shared > 0.8 * len(before)  # the head, up to the block above the band
    assert abs(len(after) - len(before)) < 0.05 * len(before)


def test_an_opaque_rgba_source_takes_rgb_marked_pixels() -> None:
    # The build drops an opaque alpha band before marking; the stored rows stay RGBA.
    im = photo((500, 400))
    data = encode(im.convert("RGBA"), "PNG")
    prepared = png_splice.prepare(data)
    assert prepared is not None
    marked = marked_band(im, 300, 350, 1)
    out = png_splice.splice(prepared, marked, (300, 350))
    assert out is not None
    with Image.open(io.BytesIO(out)) as back:
        assert back.mode == "RGBA" and back.convert("RGB").tobytes() == marked.tobytes()
        assert back.getchannel("A").getextrema() == (255, 255)


def test_adler_update_matches_zlib() -> None:
    rng = random.Random(3)
    for _ in range(50):
        data = bytearray(rng.randbytes(rng.randrange(1, 5000)))
        start = rng.randrange(len(data))
        stop = rng.randrange(start, len(data) + 1)
        new = rng.randbytes(stop - start)
        old = bytes(data[start:stop])
        updated = png_splice._adler_update(zlib.adler32(data), len(data), start, old, new)
        data[start:stop] = new
        assert updated == zlib.adler32(data)


def _with_ihdr(data: bytes, **field: int) -> bytes:
    names = ("width", "height", "depth", "colour", "compression", "filter", "interlace")
    values = dict(zip(names, struct.unpack(">IIBBBBB", data[16:29]), strict=True))
    values.update(field)
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", *values.values()))
    return data[:8] + ihdr + data[33:]


def _truncated(data: bytes) -> bytes:
    stream = idat(data)
    cut = stream[: len(stream) // 2]
    kept = [c for c in chunks(data) if c[0] != b"IDAT"]
    body = b"".join(png_chunk(k, b) for k, b in kept[:-1])
    return data[:8] + body + png_chunk(b"IDAT", cut) + png_chunk(b"IEND", b"")


def _bad_adler(data: bytes) -> bytes:
    stream = bytearray(idat(data))
    stream[-1] ^= 1
    kept = [c for c in chunks(data) if c[0] != b"IDAT"]
    body = b"".join(png_chunk(k, b) for k, b in kept[:-1])
    return data[:8] + body + png_chunk(b"IDAT", bytes(stream)) + png_chunk(b"IEND", b"")


def _split_idat(data: bytes) -> bytes:
    stream = idat(data)
    kept = [c for c in chunks(data) if c[0] != b"IDAT"]
    half = len(stream) // 2
    body = b"".join(png_chunk(k, b) for k, b in kept[:-1])
    return (
        data[:8]
        + body
        + png_chunk(b"IDAT", stream[:half])
        + png_chunk(b"tEXt", b"k\x00v")
        + png_chunk(b"IDAT", stream[half:])
        + png_chunk(b"IEND", b"")
    )


SOURCE = encode(photo((300, 200)), "PNG")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_with_ihdr(SOURCE, interlace=1), id="interlaced"),
        pytest.param(encode(photo((300, 200)).convert("P"), "PNG"), id="palette"),
        pytest.param(encode(photo((300, 200)).convert("L"), "PNG"), id="grey"),
        pytest.param(encode(photo((300, 200)).convert("I;16"), "PNG"), id="16-bit"),
        pytest.param(_truncated(SOURCE), id="truncated-stream"),
        pytest.param(_bad_adler(SOURCE), id="bad-adler"),
        pytest.param(_split_idat(SOURCE), id="idat-not-one-run"),
        pytest.param(_with_ihdr(SOURCE, height=201), id="fewer-rows-than-header"),
        pytest.param(_with_ihdr(SOURCE, height=199), id="more-rows-than-header"),
        pytest.param(SOURCE[:-20], id="no-iend"),
        pytest.param(b"GIF89a" + SOURCE[6:], id="not-png"),
    ],
)
def test_what_cannot_be_spliced_exactly_is_refused(data: bytes) -> None:
    assert png_splice.prepare(data) is None


def test_a_band_over_half_the_rows_or_another_size_is_refused() -> None:
    im = photo((300, 200))
    prepared = png_splice.prepare(encode(im, "PNG"))
    assert prepared is not None
    assert png_splice.splice(prepared, im, (0, 150)) is None
    assert png_splice.splice(prepared, im.resize((299, 200)), (10, 20)) is None
    assert png_splice.splice(prepared, im.convert("RGBA"), (10, 20)) is None


MARK = Watermark(text="© 2026 Ana Example", shadow=True, opacity=0.7, scale=0.3)


@pytest.mark.parametrize("position", ["top-left", "center", "bottom-right"])
def test_a_build_splices_a_marked_png_original(position: str) -> None:
    still = photo((1600, 1000))
    data = encode(still, "PNG", compress_level=9)
    mark = dataclasses.replace(MARK, position=position)
    pairs, tags, reencoded = render(data, "p.png", ImagePolicy(), options(mark))
    assert reencoded and WATERMARKED in tags.notes
    expected = watermark.apply(still, mark, watermark.Assets())
    with Image.open(io.BytesIO(pairs[0][1])) as original:
        assert original.tobytes() == expected.tobytes()
    before, after = idat(data), idat(pairs[0][1])
    shared = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
    if position != "top-left":  # the rows above the mark are the source's bytes
        assert shared > 0.4 * len(before)
    assert len(after) < 1.05 * len(before)


def test_a_tiled_or_rotated_mark_is_re_encoded_whole() -> None:
    still = photo((1200, 800))
    data = encode(still, "PNG", compress_level=9)
    tiled = dataclasses.replace(MARK, tile=True)
    pairs, _, _ = render(data, "p.png", ImagePolicy(), options(tiled))
    expected = watermark.apply(still, tiled, watermark.Assets())
    with Image.open(io.BytesIO(pairs[0][1])) as original:
        assert original.tobytes() == expected.tobytes()
    assert idat(pairs[0][1])[:64] != idat(data)[:64]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_chromium_draws_spliced_pngs_pixel_for_pixel() -> None:
    """Chromium's PNG decoder (not Pillow's, and its own inflater) reads the spliced
    stream: its canvas holds exactly the marked pixels."""
    sync_api = pytest.importorskip("playwright.sync_api")
    cases = []
    rng = random.Random(7)
    for save in SAVES:
        im = photo((400, 300))
        data = encode(im, "PNG", **save)
        prepared = png_splice.prepare(data)
        assert prepared is not None
        top = rng.randrange(0, 200)
        marked = marked_band(im, top, top + 40, top)
        out = png_splice.splice(prepared, marked, (top, top + 40))
        assert out is not None and out != data
        cases.append((out, marked))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        for out, marked in cases:
            url = "data:image/png;base64," + base64.b64encode(out).decode()
            drawn = page.evaluate(
                """async (url) => {
                    const img = new Image(); img.src = url; await img.decode();
                    const c = document.createElement('canvas');
                    c.width = img.naturalWidth; c.height = img.naturalHeight;
                    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                    return Array.from(g.getImageData(0, 0, c.width, c.height).data);
                }""",
                url,
            )
            assert bytes(drawn) == marked.convert("RGBA").tobytes()
        browser.close()
