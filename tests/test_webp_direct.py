"""A still WebP decoded by libwebp itself through ctypes (issue 13). With a draft the build
gets Pillow's very pixels without Pillow's slower decode path, orientation, info and errors
as before, and every refusal falls back to Pillow. The binding's smaller-size decode (which
the build does not use: it cost the variants' SSIMULACRA2 more than the budget) is close to
Pillow's decode resized with Lanczos, and weights colour by alpha where it is used."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFilter, ImageStat, WebPImagePlugin

from ssg_dmi.errors import ImageError
from ssg_dmi.images import pixels, webp_direct
from ssg_dmi.images.containers import Format

from .builds import build
from .images import OLD_XMP, camera_exif, encode, photo, srgb_icc
from .readers import PROHIBITED, decoded, dmi_of, exiftool, needs_exiftool

needs_libwebp = pytest.mark.skipif(
    webp_direct.library() is None, reason="no libwebp for ctypes (Pillow without WebP?)"
)


def picture(size: tuple[int, int]) -> Image.Image:
    """A photo-like picture whose grain is a few pixels wide, as in a camera's photo (the
    per-pixel noise of ``photo`` alone makes any two filters differ by several levels)."""
    return photo(size).filter(ImageFilter.GaussianBlur(1.5))


def reference(data: bytes, size: tuple[int, int]) -> Image.Image:
    """Pillow's full decode of ``data`` resized to ``size`` with Lanczos."""
    return decoded(data).resize(size, Image.Resampling.LANCZOS)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    assert (a.mode, a.size) == (b.mode, b.size)
    return max(ImageStat.Stat(ImageChops.difference(a, b)).mean)


def stripes(size: tuple[int, int]) -> Image.Image:
    """Green with alpha from a gradient, and stripes of fully transparent magenta: a resize
    that does not weight colour by alpha bleeds magenta into the green's edges."""
    im = Image.new("RGB", size, (0, 200, 0))
    alpha = Image.linear_gradient("L").resize(size)
    for x in range(0, size[0], 40):
        im.paste((255, 0, 255), (x, 0, x + 20, size[1]))
        alpha.paste(0, (x, 0, x + 20, size[1]))
    rgba = im.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


@needs_libwebp
@pytest.mark.parametrize(
    ("options", "size", "out", "within"),
    [
        ({"quality": 90}, (1001, 667), (333, 222), 2.0),  # odd sizes, lossy
        ({"quality": 80}, (640, 480), (479, 359), 2.0),  # barely smaller
        ({"lossless": True}, (517, 389), (203, 153), 1.0),
    ],
)
def test_scaled_rgb_close_to_pillow_and_lanczos(
    options: dict[str, object], size: tuple[int, int], out: tuple[int, int], within: float
) -> None:
    data = encode(picture(size), "WEBP", **options)
    scaled = webp_direct.decode(data, out, "RGB")
    assert scaled is not None
    assert (scaled.mode, scaled.size) == ("RGB", out)
    # libwebp's rescaler averages areas where Lanczos sharpens a little, and skips a lossy
    # image's deblocking filter: close, not equal (a mean difference of 0.6 to 1.5 levels
    # here). Rows in the wrong order would be over 100 levels off.
    want = reference(data, out)
    assert mean_difference(scaled, want) < within
    assert mean_difference(scaled, want.transpose(Image.Transpose.FLIP_TOP_BOTTOM)) > 50


@needs_libwebp
def test_lossless_alpha_is_weighted_by_alpha_as_pillow_does() -> None:
    data = encode(stripes((640, 480)), "WEBP", lossless=True, exact=True)
    assert decoded(data).getpixel((5, 5)) == (255, 0, 255, 0)  # the magenta is stored
    scaled = webp_direct.decode(data, (201, 151), "RGBA")
    assert scaled is not None and scaled.mode == "RGBA"
    want = reference(data, (201, 151))  # Pillow premultiplies to resize RGBA
    got_rgba, want_rgba = scaled.convert("RGBa"), want.convert("RGBa")
    red, green, blue, alpha = ImageChops.difference(got_rgba, want_rgba).split()
    # No magenta leaks into what shows: red and blue stay 0 once weighted by alpha.
    assert ImageStat.Stat(red).extrema[0][1] <= 1 and ImageStat.Stat(blue).extrema[0][1] <= 1
    assert mean_difference(got_rgba, want_rgba) < 3.0


@needs_libwebp
def test_lossy_alpha_is_not_rescaled() -> None:
    # libwebp rescales a lossy image's colour and alpha apart: magenta would leak (by up to
    # 47 levels on this picture), so a smaller size is refused; the full size is exact.
    data = encode(stripes((640, 480)), "WEBP", quality=90)
    want = decoded(data)
    assert want.mode == "RGBA"
    assert webp_direct.decode(data, (201, 151), "RGBA") is None
    upright = pixels.decode_upright(data, Format.WEBP, 10**8, draft=(120, 90))
    assert (upright.mode, upright.size) == ("RGBA", (640, 480))
    assert upright.tobytes() == want.tobytes()


@needs_libwebp
@pytest.mark.parametrize(
    ("im", "options"),
    [
        (picture((333, 221)), {"quality": 80}),
        (picture((333, 221)), {"lossless": True}),
        (stripes((641, 481)), {"quality": 90}),  # lossy with alpha: no rescale, no leak
        (stripes((641, 481)), {"lossless": True, "exact": True}),
    ],
)
def test_at_full_size_the_pixels_are_pillows(im: Image.Image, options: dict[str, object]) -> None:
    data = encode(im, "WEBP", **options)
    want = decoded(data)
    got = webp_direct.decode(data, want.size, want.mode)
    assert got is not None
    assert (got.mode, got.size) == (want.mode, want.size)
    assert got.tobytes() == want.tobytes()


def counted(calls: list[object]) -> object:
    """A stand-in for WebPImageFile.load that counts its calls and then does the load."""
    load = WebPImagePlugin.WebPImageFile.load

    def wrapper(self: WebPImagePlugin.WebPImageFile) -> object:
        calls.append(self)
        return load(self)

    return wrapper


@needs_libwebp
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_rotated_webp_with_a_draft(monkeypatch: pytest.MonkeyPatch, orientation: int) -> None:
    stored = (900, 600)
    data = encode(
        picture(stored),
        "WEBP",
        quality=90,
        exif=camera_exif(orientation),
        icc_profile=srgb_icc(),
        xmp=OLD_XMP,
    )
    upright_size = stored if orientation in (1, 3) else stored[::-1]
    draft = (upright_size[0] // 5, upright_size[1] // 5)  # 180 × 120 or 120 × 180
    before = decoded(data)
    full = pixels.decode_upright(data, Format.WEBP, 10**8)  # no draft: Pillow's decode
    assert full.size == upright_size
    calls: list[object] = []
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", counted(calls))
    im = pixels.decode_upright(data, Format.WEBP, 10**8, draft=draft)
    assert calls == []  # libwebp decoded it
    assert (im.mode, im.size) == ("RGB", upright_size)
    assert im.tobytes() == full.tobytes()  # turned upright the same way
    assert im.info.get("icc_profile") == srgb_icc()  # kept for the colour conversion
    assert im.info.get("xmp") == before.info["xmp"]
    assert ("exif" in im.info) == ("exif" in full.info) == (orientation == 1)


@needs_libwebp
def test_pillows_decode_skipped_for_a_webp_with_a_draft(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(picture((2400, 1600)), "WEBP", quality=80)
    want = decoded(data).tobytes()

    def refuse(self: Image.Image) -> None:
        raise AssertionError("Pillow's full-size decode was called")

    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", refuse)
    for draft in ((480, 320), (1600, 1067)):
        im = pixels.decode_upright(data, Format.WEBP, 10**8, draft=draft)
        assert im.size == (2400, 1600)  # full size: a smaller one costs the variants quality
        assert im.tobytes() == want  # Pillow's very pixels
        assert im.info["timestamp"] == 0 and im.info["duration"] == 0  # as Pillow's decode
    # Without a draft (an original to re-encode) Pillow decodes, as before.
    with pytest.raises(AssertionError, match="full-size decode"):
        pixels.decode_upright(data, Format.WEBP, 10**8)


def test_max_pixels_checks_the_full_size() -> None:
    data = encode(photo((2400, 1600)), "WEBP", quality=80)
    with pytest.raises(ImageError, match="2400×1600 = 3,840,000 pixels is over the limit"):
        pixels.decode_upright(data, Format.WEBP, 1_000_000, draft=(480, 320))


def failure(data: bytes, draft: tuple[int, int] | None) -> str:
    with pytest.raises(ImageError) as caught:
        pixels.decode_upright(data, Format.WEBP, 10**8, draft=draft)
    return str(caught.value)


@needs_libwebp
@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_truncated_webp_fails_as_before(monkeypatch: pytest.MonkeyPatch, cut: float) -> None:
    whole = encode(photo((1200, 800)), "WEBP", quality=80)
    data = whole[: int(len(whole) * cut)]
    assert webp_direct.decode(data, (300, 200), "RGB") is None
    assert webp_direct.decode(data, (1200, 800), "RGB") is None
    with_hook = failure(data, (300, 200))
    monkeypatch.setattr(webp_direct, "library", lambda: None)
    assert with_hook == failure(data, (300, 200)) == failure(data, None)


@needs_libwebp
def test_animated_webp_refused() -> None:
    frames = [photo((400, 300)), photo((400, 300)).rotate(180)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert webp_direct.decode(data, (100, 75), "RGB") is None
    assert webp_direct.decode(data, (100, 75), "RGBA") is None


def test_no_library_falls_back_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(photo((800, 600)), "WEBP", quality=80)
    monkeypatch.setattr(webp_direct, "library", lambda: None)
    assert webp_direct.decode(data, (200, 150), "RGB") is None
    im = pixels.decode_upright(data, Format.WEBP, 10**8, draft=(200, 150))
    assert im.size == (800, 600)
    assert im.tobytes() == decoded(data).tobytes()


@needs_libwebp
def test_another_abi_major_is_refused_by_libwebp(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(photo((800, 600)), "WEBP", quality=80)
    assert webp_direct.decode(data, (200, 150), "RGB") is not None
    monkeypatch.setattr(webp_direct, "ABI_VERSION", 0x0309)  # libwebp checks the major
    assert webp_direct.decode(data, (200, 150), "RGB") is None


@needs_libwebp
def test_the_library_is_the_one_pillow_uses() -> None:
    from PIL import features

    lib = webp_direct.library()
    assert lib is not None
    version = lib.WebPGetDecoderVersion()
    wanted = features.version("webp")
    assert wanted is not None
    assert f"{version >> 16}.{(version >> 8) & 0xFF}.{version & 0xFF}" == wanted


@needs_libwebp
@pytest.mark.parametrize(
    ("size", "out", "mode"),
    [
        ((300, 200), (301, 200), "RGB"),  # wider
        ((300, 200), (300, 201), "RGB"),  # taller
        ((300, 200), (0, 100), "RGB"),
        ((300, 200), (100, -1), "RGB"),
        ((300, 200), (100, 50), "L"),
        ((300, 200), (100, 50), "RGBA"),  # an opaque lossy image as RGBA: fine
    ],
)
def test_odd_requests(size: tuple[int, int], out: tuple[int, int], mode: str) -> None:
    data = encode(photo(size), "WEBP", quality=80)
    got = webp_direct.decode(data, out, mode)
    if mode == "RGBA":
        assert got is not None and ImageStat.Stat(got).extrema[3] == (255, 255)
    else:
        assert got is None
    assert webp_direct.decode(b"RIFF\0\0\0\0WEBPVP8 ", (10, 10), "RGB") is None
    assert webp_direct.decode(b"", (10, 10), "RGB") is None


@needs_exiftool
def test_build_variants_of_a_webp_source_right_sized_and_tagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = encode(picture((3000, 2000)), "WEBP", quality=85)

    def build_site(name: str) -> tuple[Path, list[dict[str, object]]]:
        site = tmp_path / name
        (site / "img").mkdir(parents=True)
        (site / "img" / "big.webp").write_bytes(source)
        report = build(
            site,
            widths=[480, 960, 1600],
            formats=["webp", "jpeg"],
            originals="tag",
            dmi="DMI-PROHIBITED",
        )
        assert report.errors == {}
        return site, report.images["img/big.webp"]["variants"]

    site, variants = build_site("site")
    assert {(v["width"], v["format"]) for v in variants} == {
        (w, f) for w in (480, 960, 1600) for f in ("webp", "jpeg")
    }
    full = decoded(source)
    for variant in variants:
        im = decoded(site / str(variant["path"]))
        assert im.size == (variant["width"], variant["height"])
        assert abs(im.height - im.width * 2000 / 3000) <= 1
        want = full.resize(im.size, Image.Resampling.LANCZOS)
        # Encoded at quality 80, the grain is smoothed; the picture is the same (upside
        # down it would be over 100 levels off).
        assert mean_difference(im.convert("RGB").reduce(4), want.reduce(4)) < 4.0
    views = exiftool(*(site / str(v["path"]) for v in variants))
    assert all(dmi_of(view) == PROHIBITED for view in views)
    # Decoded by Pillow instead (no libwebp for ctypes), every variant is the same file.
    monkeypatch.setattr(webp_direct, "library", lambda: None)
    before, same = build_site("pillow")
    assert [v["path"] for v in same] == [v["path"] for v in variants]
    for variant in variants:
        path = str(variant["path"])
        assert (before / path).read_bytes() == (site / path).read_bytes(), path


def test_io_source_decodes_as_bytes_do() -> None:
    data = encode(photo((1200, 800)), "WEBP", quality=80)
    from_bytes = pixels.decode_upright(data, Format.WEBP, 10**8, draft=(300, 200))
    from_file = pixels.decode_upright(io.BytesIO(data), Format.WEBP, 10**8, draft=(300, 200))
    assert from_bytes.tobytes() == from_file.tobytes()
