"""``ssg-dmi build``: which variants are made, their names, sizes and formats; alpha and
animation choose the formats. Read back with Pillow; images made on the spot.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from ssg_dmi.build.pipeline import plan_jobs
from ssg_dmi.images.variants import Encoded, drop_useless

from .builds import (
    NAME,
    build,
    settings,
    variants_of,
)
from .images import (
    encode,
    half_transparent,
    jpeg,
    photo,
)
from .readers import decoded
from .test_tagging import _quadrants

EXT = {"webp": "webp", "jpeg": "jpg", "png": "png", "avif": "avif"}


# --- variants -----------------------------------------------------------------------------


def test_variants_beside_original_named_by_original_and_settings(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "wide.jpg").write_bytes(jpeg(photo((2000, 1000))))
    report = build(site, widths=[480, 960, 1600], formats=["webp", "jpeg"])
    assert report.errors == {}
    entry = report.images["img/wide.jpg"]
    assert (entry["original"]["width"], entry["original"]["height"]) == (2000, 1000)
    made = {(v["width"], v["format"]) for v in entry["variants"]}
    assert made == {(w, f) for w in (480, 960, 1600) for f in ("webp", "jpeg")}
    jobs, _ = plan_jobs(site, settings(widths=[480, 960, 1600], formats=["webp", "jpeg"]), None)
    fingerprint = jobs[0].fingerprint
    for variant in entry["variants"]:
        path = site / variant["path"]
        assert path.parent == site / "img"  # beside the original
        match = NAME.match(path.name)
        assert match, path.name
        assert match["source"] == "wide.jpg"
        assert int(match["width"]) == variant["width"]
        assert match["ext"] == EXT[variant["format"]]
        data = path.read_bytes()
        # Named by the tagged original and the settings that made it (see process.VARIANT_NAME)
        original = hashlib.sha256((site / "img" / "wide.jpg").read_bytes()).hexdigest()
        text = f"{original}\0{fingerprint}\0{variant['width']}\0{variant['format']}"
        assert match["hash"] == hashlib.sha256(text.encode()).hexdigest()[:10]
        assert variant["bytes"] == len(data)
        im = decoded(data)
        assert im.format == {"webp": "WEBP", "jpeg": "JPEG"}[variant["format"]]
        assert im.size == (variant["width"], variant["height"])
        assert abs(im.height - im.width * 1000 / 2000) <= 1
    on_disk = sorted(p.name for p in (site / "img").iterdir())
    assert on_disk == sorted(["wide.jpg", *(Path(v["path"]).name for v in entry["variants"])])


def test_never_upscales_and_the_original_serves_its_own_width(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "narrow.jpg").write_bytes(jpeg(photo((700, 350))))
    report = build(site, widths=[480, 960, 1600], formats=["webp", "jpeg"], originals="tag")
    variants = report.images["narrow.jpg"]["variants"]
    assert {(v["width"], v["format"]) for v in variants} == {
        (700, "webp"),
        (480, "webp"),
        (480, "jpeg"),  # no jpeg at 700: the original is that variant already
    }
    for v in variants:
        assert decoded(site / v["path"]).size == (v["width"], v["height"])
    assert sorted(int(NAME.match(p.name)["width"]) for p in variants_of(site, "narrow.jpg")) == [
        480,
        480,
        700,
    ]


def _enc(width: int, size: int, fmt: str = "webp") -> Encoded:
    return Encoded(b"x" * size, width, width // 2, fmt)


def test_drop_useless_skips_variants_not_smaller_than_the_next_larger() -> None:
    made = [
        _enc(480, 900),  # larger than the 960 webp: useless
        _enc(960, 800),
        _enc(1600, 1000),
        _enc(240, 800),  # equal to the last kept larger one (960): useless too
        _enc(120, 799),  # compared with the 960 (the 480 and 240 were dropped): kept
        _enc(1600, 5000, "jpeg"),
        _enc(960, 3000, "jpeg"),
        _enc(480, 2999, "jpeg"),  # each format on its own: kept
    ]
    kept = drop_useless(made, original_bytes=10**6, original_width=4000)
    assert [(v.format, v.width) for v in kept] == [
        ("webp", 1600),
        ("jpeg", 1600),
        ("webp", 960),
        ("jpeg", 960),
        ("jpeg", 480),
        ("webp", 120),
    ]


def test_drop_useless_at_the_original_width_compares_with_the_original_file() -> None:
    made = [_enc(700, 5000), _enc(480, 3000), _enc(700, 4000, "avif"), _enc(480, 100, "avif")]
    kept = drop_useless(made, original_bytes=4500, original_width=700)
    assert [(v.format, v.width) for v in kept] == [("avif", 700), ("webp", 480), ("avif", 480)]
    assert drop_useless([], 10, 10) == []


# --- alpha --------------------------------------------------------------------------------


def test_alpha_never_goes_to_jpeg_and_webp_keeps_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "clear.png").write_bytes(encode(half_transparent(), "PNG"))
    (site / "solid.png").write_bytes(encode(photo((300, 200)).convert("RGBA"), "PNG"))
    report = build(site, widths=[100, 200], formats=["webp", "jpeg"])
    clear = report.images["clear.png"]["variants"]
    assert {(v["width"], v["format"]) for v in clear} == {(100, "webp"), (200, "webp")}
    assert not [p for p in variants_of(site, "clear.png") if p.suffix != ".webp"]
    for v in clear:
        im = decoded(site / v["path"])
        assert im.mode == "RGBA"
        w, h = im.size
        assert im.getpixel((w // 4, h // 2))[3] == 0  # transparent stays transparent
        assert im.getpixel((3 * w // 4, h // 2))[3] == 255
    solid = report.images["solid.png"]["variants"]  # opaque alpha band: JPEG serves it
    assert {(v["width"], v["format"]) for v in solid} == {
        (w, f) for w in (100, 200) for f in ("webp", "jpeg")
    }
    for v in solid:
        assert decoded(site / v["path"]).mode == "RGB"


def test_alpha_with_jpeg_only_gets_png_variants(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "clear.png").write_bytes(encode(half_transparent(), "PNG"))
    (site / "solid.png").write_bytes(encode(photo((300, 200)).convert("RGBA"), "PNG"))
    report = build(site, widths=[100, 200], formats=["jpeg"])
    clear = report.images["clear.png"]["variants"]
    # 300 wide: both widths are below it, so both are made as PNG.
    assert {(v["width"], v["format"]) for v in clear} == {(100, "png"), (200, "png")}
    for v in clear:
        im = decoded(site / v["path"])
        assert im.format == "PNG" and im.mode == "RGBA"
        assert im.getpixel((im.width // 4, im.height // 2))[3] == 0
    solid = report.images["solid.png"]["variants"]
    assert {(v["width"], v["format"]) for v in solid} == {(100, "jpeg"), (200, "jpeg")}


# --- animation ----------------------------------------------------------------------------

DURATIONS = [100, 200, 300]


def animation(fmt: str) -> bytes:
    base = photo((200, 100))
    frames = [
        base,
        base.transpose(Image.Transpose.ROTATE_180),
        base.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    ]
    if fmt == "GIF":
        frames = [f.convert("P") for f in frames]
    return encode(
        frames[0],
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=DURATIONS,
        loop=0,
        **({"quality": 90} if fmt == "WEBP" else {}),
    )


def frame_durations(path: Path) -> list[int]:
    im = Image.open(path)
    out = []
    for n in range(im.n_frames):
        im.seek(n)
        im.load()
        out.append(im.info["duration"])
    return out


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_sources_get_animated_webp_variants(tmp_path: Path, fmt: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    name = "moving." + fmt.lower()
    source = animation(fmt)
    (site / name).write_bytes(source)
    report = build(site, widths=[50, 100, 400], formats=["webp", "jpeg"])
    assert report.errors == {}
    entry = report.images[name]
    assert entry["original"]["reencoded"] is False
    assert {(v["width"], v["format"]) for v in entry["variants"]} <= {
        (200, "webp"),
        (100, "webp"),
        (50, "webp"),
    }
    assert {50, 100} <= {v["width"] for v in entry["variants"]}
    with Image.open(site / name) as original:
        assert original.n_frames == 3
    for v in entry["variants"]:
        im = Image.open(site / v["path"])
        assert im.format == "WEBP" and im.n_frames == 3 and im.is_animated
        assert im.size == (v["width"], v["height"])
        assert im.info.get("loop") == 0
        first = _quadrants(im)
        im.seek(1)
        assert _quadrants(im) != first  # real, distinct frames


@pytest.mark.parametrize(
    "fmt",
    [
        "GIF",
        pytest.param("WEBP"),
    ],
)
def test_animated_variants_keep_frame_durations(tmp_path: Path, fmt: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    name = "moving." + fmt.lower()
    (site / name).write_bytes(animation(fmt))
    assert frame_durations(site / name) == DURATIONS
    report = build(site, widths=[50, 100], formats=["webp"])
    for v in report.images[name]["variants"]:
        assert frame_durations(site / v["path"]) == DURATIONS, v["path"]


def test_animated_webp_with_orientation_stays_animated(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    base = photo((200, 100))
    frames = [base, base.transpose(Image.Transpose.ROTATE_180)]
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], exif=exif)
    (site / "turned.webp").write_bytes(data)
    report = build(site, widths=[50], formats=["webp"])
    (variant,) = report.images["turned.webp"]["variants"]
    assert (variant["width"], variant["height"]) == (50, 100)
    assert Image.open(site / variant["path"]).n_frames == 2
