"""``ssg-dmi build``: variants, tags on every output, the cache, crashes, safety and the CLI.

Every check reads the outputs back independently: Pillow for pixels and sizes, exiftool for
tags. Images are made on the spot and kept small so the whole module stays fast.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from ssg_dmi.build.pipeline import Report, plan_jobs, run
from ssg_dmi.cli import main
from ssg_dmi.images.variants import Encoded, drop_useless
from ssg_dmi.settings import Settings, load_settings

from .images import SECRET, SERIAL, camera_file, encode, pattern, srgb_icc
from .readers import PLUS, exiftool, needs_exiftool
from .test_cli import png_claiming
from .test_tagging import INVERSE, _quadrants

# Our own reading of `<name>-<w>w.<10 hex>.<ext>`, independent of process.VARIANT_NAME.
NAME = re.compile(
    r"^(?P<source>.+)-(?P<width>\d+)w\.(?P<hash>[0-9a-f]{10})\.(?P<ext>webp|jpg|png|avif)$"
)
EXT = {"webp": "webp", "jpeg": "jpg", "png": "png", "avif": "avif"}
TMP = re.compile(r"^\.ssg-dmi-.*\.tmp$")


# --- helpers -------------------------------------------------------------------------------


def photo(size: tuple[int, int]) -> Image.Image:
    """A photo-like RGB picture: smooth gradients plus grain, so sizes behave like photos."""
    grad = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40)
    return Image.merge("RGB", (grad, radial, noise))


def jpeg(im: Image.Image, quality: int = 90, **options: Any) -> bytes:
    return encode(im, "JPEG", quality=quality, **options)


def settings(**values: Any) -> Settings:
    """Settings from keys as in ssg-dmi.toml; one worker unless told otherwise."""
    values.setdefault("jobs", 1)
    return load_settings(values, "test")


def build(site: Path, cache: Path | None = None, **values: Any) -> Report:
    """One serial in-process build of ``site``."""
    return run(site, settings(**values), cache_dir=cache, progress=False)


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (links not followed), by relative path."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def stamps(root: Path, skip: Iterable[Path] = ()) -> dict[str, tuple[bytes | str, int]]:
    """Bytes (or link target) and mtime of everything under ``root`` but ``skip``."""
    skipped = {p.resolve() for p in skip}
    out: dict[str, tuple[bytes | str, int]] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if (Path(folder) / d).resolve() not in skipped]
        for name in [*names, *dirs]:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if path.is_symlink():
                out[rel] = (os.readlink(path), st.st_mtime_ns)
            elif path.is_file():
                out[rel] = (path.read_bytes(), st.st_mtime_ns)
            else:
                out[rel] = ("<dir>", 0)
    return out


def variants_of(site: Path, rel: str) -> list[Path]:
    source = site / rel
    return sorted(
        p
        for p in source.parent.iterdir()
        if (m := NAME.match(p.name)) and m["source"] == source.name
    )


def decoded(path: Path | bytes) -> Image.Image:
    im = Image.open(io.BytesIO(path) if isinstance(path, bytes) else path)
    im.load()
    return im


def dmi_of(view: dict[str, Any]) -> str | None:
    value = view.get("XMP-plus:DataMining")
    return value if isinstance(value, str) else None


def views(*paths: Path) -> dict[str, dict[str, Any]]:
    return {str(Path(d["SourceFile"])): d for d in exiftool(*paths)}


def copy_site(pristine: Path, to: Path) -> Path:
    shutil.copytree(pristine, to, symlinks=True)
    return to


def cache_files(cache: Path) -> set[str]:
    return {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def gray16(values: list[int], size: tuple[int, int]) -> Image.Image:
    """A 16-bit greyscale image whose columns take ``values`` left to right."""
    w, h = size
    row = b"".join(struct.pack("<H", values[x * len(values) // w]) for x in range(w))
    return Image.frombytes("I;16", size, row * h)


# --- 1. variants ---------------------------------------------------------------------------


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


# --- 2. every output tagged ----------------------------------------------------------------


@needs_exiftool
def test_every_output_tagged_per_path_rules_and_no_gps(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "gallery" / "deep").mkdir(parents=True)
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")):
        (site / f"a.{ext}").write_bytes(camera_file(fmt))
        (site / "gallery" / "deep" / f"b.{ext}").write_bytes(camera_file(fmt))
    assert "GPS" in str(exiftool(site / "a.jpg"))  # the sources do carry a position
    report = build(
        site,
        widths=[24, 32, 64],
        formats=["avif", "webp", "jpeg", "png"],
        dmi="DMI-PROHIBITED",
        rules=[{"path": "gallery/**", "dmi": "DMI-ALLOWED"}],
    )
    assert report.errors == {}
    outputs = [p for p in site.rglob("*") if p.is_file()]
    formats = {v["format"] for e in report.images.values() for v in e["variants"]}
    assert formats == {"avif", "webp", "jpeg", "png"}
    assert len(outputs) == len(report.images) + report.summary["variants"]
    seen = views(*outputs)
    assert len(seen) == len(outputs)
    for name, view in seen.items():
        want = "DMI-ALLOWED" if "/gallery/" in name else "DMI-PROHIBITED"
        assert dmi_of(view) == PLUS + want, name
        assert not [k for k in view if "GPS" in k], name
        assert SECRET not in str(view) and SERIAL not in str(view), name


# --- 3. orientation ------------------------------------------------------------------------


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


# --- 4. alpha ------------------------------------------------------------------------------


def half_transparent(size: tuple[int, int] = (300, 200)) -> Image.Image:
    im = photo(size).convert("RGBA")
    alpha = Image.new("L", size, 255)
    alpha.paste(0, (0, 0, size[0] // 2, size[1]))
    im.putalpha(alpha)
    return im


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


# --- 5. animation --------------------------------------------------------------------------

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


# --- 6. ICC --------------------------------------------------------------------------------


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


# --- 7. CMYK and 16-bit --------------------------------------------------------------------


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


# --- 8. SVG --------------------------------------------------------------------------------


@needs_exiftool
def test_svg_is_tagged_without_raster_variants(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "drawing.svg").write_bytes(camera_file("SVG"))
    report = build(site, widths=[16, 32], formats=["webp", "png"], dmi="DMI-PROHIBITED")
    assert report.images["drawing.svg"]["variants"] == []
    assert report.images["drawing.svg"]["original"]["format"] == "svg"
    assert sorted(p.name for p in site.iterdir()) == ["drawing.svg"]
    assert dmi_of(exiftool(site / "drawing.svg")[0]) == PLUS + "DMI-PROHIBITED"
    assert b'<rect width="64" height="48" fill="red"/>' in (site / "drawing.svg").read_bytes()


# --- 9. dedupe, and the process pool ---------------------------------------------------------


def test_same_bytes_at_two_paths_is_one_job_placed_twice(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for folder in ("a", "b", "gallery"):
        (site / folder).mkdir(parents=True)
    data = jpeg(photo((300, 200)))
    for rel in ("a/p.jpg", "b/p.jpg", "gallery/p.jpg"):
        (site / rel).write_bytes(data)
    config = settings(
        widths=[100, 200], formats=["webp"], rules=[{"path": "gallery/*", "dmi": "DMI-ALLOWED"}]
    )
    jobs, errors = plan_jobs(site, config, None)
    assert errors == {}
    assert sorted(j.relpaths for j in jobs) == [("a/p.jpg", "b/p.jpg"), ("gallery/p.jpg",)]
    report = run(site, config, progress=False)
    assert report.summary["sources"] == 2 and report.summary["images"] == 3
    a, b = report.images["a/p.jpg"], report.images["b/p.jpg"]
    assert [Path(v["path"]).name for v in a["variants"]] == [
        Path(v["path"]).name for v in b["variants"]
    ]
    assert len(a["variants"]) == 2
    for rel in ("a/p.jpg", "b/p.jpg", "gallery/p.jpg"):
        made = variants_of(site, rel)
        assert len(made) == 2, rel
        assert sorted(str(p.relative_to(site)) for p in made) == sorted(
            v["path"] for v in report.images[rel]["variants"]
        )
    assert (site / "a/p.jpg").read_bytes() == (site / "b/p.jpg").read_bytes()
    assert (site / "a/p.jpg").read_bytes() != (site / "gallery/p.jpg").read_bytes()


def test_default_process_pool_gives_the_same_bytes_as_one_worker(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    for n in range(4):
        (pristine / f"p{n}.jpg").write_bytes(jpeg(photo((240 + 20 * n, 160))))
    (pristine / "clear.png").write_bytes(encode(half_transparent((200, 100)), "PNG"))
    values = {"widths": [64, 128], "formats": ["webp", "jpeg"]}
    pooled = copy_site(pristine, tmp_path / "pooled")
    # executor=None: run() makes its own process pool (jobs = 2 even on a one-core machine).
    config = load_settings({**values, "jobs": 2})
    report = run(pooled, config, cache_dir=tmp_path / "cache", progress=False)
    serial = copy_site(pristine, tmp_path / "serial")
    expected = build(serial, None, **values)
    assert report.images == expected.images and report.errors == {}
    assert tree(pooled) == tree(serial)
    assert report.summary["sources"] == 5


# --- 10. cache -----------------------------------------------------------------------------

CACHED = {"widths": [100, 200], "formats": ["webp", "jpeg"], "quality": {"webp": 80}}


@pytest.fixture
def pristine(tmp_path: Path) -> Path:
    """A small built site: a heavy JPEG (re-encoded), a light one, a PNG, a duplicate."""
    site = tmp_path / "pristine"
    (site / "sub").mkdir(parents=True)
    (site / "heavy.jpg").write_bytes(jpeg(photo((400, 300)), quality=95))
    (site / "light.jpg").write_bytes(jpeg(photo((300, 200)), quality=70))
    (site / "sub" / "light-copy.jpg").write_bytes((site / "light.jpg").read_bytes())
    (site / "flat.png").write_bytes(encode(pattern((240, 120)), "PNG"))
    (site / "lies.png").write_bytes(jpeg(photo((120, 80))))  # a note on the first build
    return site


def test_cache_second_build_of_a_fresh_copy_hits_and_gives_identical_bytes(
    tmp_path: Path, pristine: Path
) -> None:
    cache = tmp_path / "cache"
    first = build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    assert first.summary["cache_hits"] == 0 and first.summary["reencoded"] >= 1
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert second.summary["sources"] == 4
    assert second.summary["cache_hits"] == second.summary["sources"]
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    assert {r: e["variants"] for r, e in second.images.items()} == {
        r: e["variants"] for r, e in first.images.items()
    }


def test_cached_build_keeps_reencoded_flags_but_counts_none(tmp_path: Path, pristine: Path) -> None:
    cache = tmp_path / "cache"
    first = build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert first.images["heavy.jpg"]["original"]["reencoded"] is True
    assert second.images["heavy.jpg"]["original"]["reencoded"] is True
    # The summary counts this run's work: a warm rebuild re-encoded nothing itself.
    assert first.summary["reencoded"] > 0 and second.summary["reencoded"] == 0


def test_cached_build_keeps_the_notes(tmp_path: Path, pristine: Path) -> None:
    cache = tmp_path / "cache"
    first = build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    assert "named .png but the content is JPEG" in first.notes["lies.png"][0]
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert second.notes == first.notes


def _variant_bytes(site: Path) -> dict[str, bytes]:
    return {r: d for r, d in tree(site).items() if NAME.match(Path(r).name)}


@needs_exiftool
@pytest.mark.parametrize(
    "change",
    [
        {"quality": {"webp": 60}},
        {"widths": [100, 150]},
        {"dmi": "DMI-ALLOWED"},
    ],
    ids=["quality", "widths", "dmi"],
)
def test_cache_misses_when_a_setting_changes(
    tmp_path: Path, pristine: Path, change: dict[str, Any]
) -> None:
    cache = tmp_path / "cache"
    first = build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    changed = {**CACHED, **change}
    second = build(copy_site(pristine, tmp_path / "two"), cache, **changed)
    assert second.summary["cache_hits"] == 0 and second.summary["sources"] == 4
    before, after = _variant_bytes(tmp_path / "one"), _variant_bytes(tmp_path / "two")
    if "quality" in change:
        webp = [r for r in after if r.endswith(".webp")]
        assert webp and not set(webp) & set(before)
        assert {d for r, d in after.items() if r.endswith(".webp")}.isdisjoint(before.values())
        # JPEG quality is unchanged: the same bytes (under new names: any setting renames)
        jpegs = sorted(d for r, d in after.items() if r.endswith(".jpg"))
        assert jpegs and jpegs == sorted(d for r, d in before.items() if r.endswith(".jpg"))
        assert not {r for r in after if r.endswith(".jpg")} & set(before)
    if "widths" in change:
        widths = {v["width"] for e in second.images.values() for v in e["variants"]}
        assert 150 in widths and 200 not in widths
        assert first.summary["variants"] > 0
    if "dmi" in change:
        seen = views(*(tmp_path / "two" / r for r in after))
        assert {dmi_of(v) for v in seen.values()} == {PLUS + "DMI-ALLOWED"}
        assert set(after).isdisjoint(before)  # new tags: new bytes, new names
    third = build(copy_site(pristine, tmp_path / "three"), cache, **changed)
    assert third.summary["cache_hits"] == 4  # the changed settings are cached in turn


def test_rebuilding_the_processed_site_writes_nothing(tmp_path: Path, pristine: Path) -> None:
    cache = tmp_path / "cache"
    site = copy_site(pristine, tmp_path / "site")
    first = build(site, cache, **CACHED)
    assert first.summary["files_written"] > 0
    before = stamps(site)
    time.sleep(0.01)
    again = build(site, cache, **CACHED)
    assert again.summary["files_written"] == 0
    assert again.summary["cache_hits"] == again.summary["sources"] == 4
    assert stamps(site) == before
    assert {r: e["variants"] for r, e in again.images.items()} == {
        r: e["variants"] for r, e in first.images.items()
    }


def test_narrower_widths_remove_the_old_variants(tmp_path: Path, pristine: Path) -> None:
    site = copy_site(pristine, tmp_path / "site")
    build(site, tmp_path / "cache", **CACHED)
    assert any("-200w." in r for r in tree(site))
    report = build(site, tmp_path / "cache", **{**CACHED, "widths": [100]})
    names = [r for r in tree(site) if NAME.match(Path(r).name)]
    assert names and not [r for r in names if "-200w." in r]
    assert sorted(names) == sorted(v["path"] for e in report.images.values() for v in e["variants"])


def test_no_cache_writes_nothing_to_any_cache_folder(
    tmp_path: Path, pristine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    site = copy_site(pristine, tmp_path / "site")
    report = build(site, None, **CACHED)
    assert report.summary["images"] == 5
    code, _, _ = cli(
        capsys,
        "build",
        str(copy_site(pristine, tmp_path / "site2")),
        "--no-cache",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--jobs",
        "1",
    )
    assert code == 0
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / ".cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pristine", "site", "site2"]


def test_cli_cache_prune_removes_entries_and_blobs_no_longer_used(
    tmp_path: Path, pristine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    # The same site folder built twice (prune keeps what each site's last build used)
    smaller = copy_site(pristine, tmp_path / "smaller")
    build(smaller, cache, **CACHED)
    shutil.rmtree(smaller)
    copy_site(pristine, smaller)
    (smaller / "heavy.jpg").unlink()
    (smaller / "flat.png").unlink()
    fewer = copy_site(smaller, tmp_path / "fewer-pristine")
    second = build(smaller, cache, **CACHED)
    assert second.summary["cache_hits"] == second.summary["sources"] == 2
    before = cache_files(cache)
    code, out, _ = cli(capsys, "cache", "prune", "--cache-dir", str(cache))
    assert code == 0 and "pruned" in out
    after = cache_files(cache)
    assert after < before
    blobs = {Path(p).name for p in after if p.startswith("v1/objects/")}
    assert blobs == {hashlib.sha256(d).hexdigest() for d in tree(smaller).values()}
    entries = [p for p in after if p.startswith("v1/entries/")]
    # one per source the last build used, plus each one's alias: the key under which a
    # later build over this processed output finds the same entry
    assert len(entries) == 4
    removed = before - after
    assert [p for p in removed if p.startswith("v1/objects/")]
    assert [p for p in removed if p.startswith("v1/entries/")]
    again = build(copy_site(fewer, tmp_path / "again"), cache, **CACHED)
    assert again.summary["cache_hits"] == 2
    assert tree(tmp_path / "again") == tree(smaller)
    code, out, _ = cli(capsys, "cache", "clear", "--cache-dir", str(cache))
    assert code == 0 and cache_files(cache) == set()


def test_prune_keeps_what_a_rebuild_of_the_processed_site_needs(
    tmp_path: Path, pristine: Path
) -> None:
    from ssg_dmi.build.cache import Cache

    cache = tmp_path / "cache"
    site = copy_site(pristine, tmp_path / "site")
    build(site, cache, **CACHED)
    before = tree(site)
    Cache(cache).prune()
    again = build(site, cache, **CACHED)
    assert again.summary["cache_hits"] == again.summary["sources"]
    assert again.summary["files_written"] == 0
    assert tree(site) == before


def test_a_corrupt_cache_blob_is_a_miss_not_an_error(tmp_path: Path, pristine: Path) -> None:
    cache = tmp_path / "cache"
    build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    for blob in (cache / "v1" / "objects").glob("*/*"):
        blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    report = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert report.errors == {}
    assert tree(tmp_path / "two") == tree(tmp_path / "one")


# --- 11. killed builds ---------------------------------------------------------------------

KILL_AT = """
import os, signal, sys
limit, calls, real = int(sys.argv[1]), 0, os.replace
def replace(src, dst):
    global calls
    calls += 1
    if calls == limit:  # the temp file is complete, the rename never happens
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
from ssg_dmi.cli import main
sys.exit(main(sys.argv[2:]))
"""
KILL_ARGS = ("--widths", "64,128", "--formats", "webp,jpeg")


def kill_site(root: Path, count: int, size: tuple[int, int]) -> Path:
    root.mkdir()
    (root / "sub").mkdir()
    for n in range(count):
        folder = root / "sub" if n % 3 == 0 else root
        (folder / f"p{n:02}.jpg").write_bytes(jpeg(photo(size), quality=90 if n % 2 else 70))
    (root / "clear.png").write_bytes(encode(half_transparent((160, 100)), "PNG"))
    return root


def assert_no_partial_files(site: Path, cache: Path) -> list[str]:
    """Every image in the site decodes; every blob matches its name; entries parse.
    Returns the leftover temp files (complete files that were never renamed)."""
    leftovers = []
    for rel, data in tree(site).items():
        if TMP.match(Path(rel).name):
            leftovers.append(rel)
            continue
        decoded(data)  # raises on a truncated file
    if cache.exists():
        for rel, data in tree(cache).items():
            name = Path(rel).name
            if TMP.match(name):
                leftovers.append(f"cache/{rel}")
            elif rel.startswith("v1/objects/"):
                assert hashlib.sha256(data).hexdigest() == name, rel
            else:
                json.loads(data)
    return leftovers


def without_temp(files: dict[str, bytes]) -> dict[str, bytes]:
    return {r: d for r, d in files.items() if not TMP.match(Path(r).name)}


def test_build_killed_at_any_write_recovers_to_a_clean_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pristine = kill_site(tmp_path / "pristine", 8, (200, 150))
    clean = copy_site(pristine, tmp_path / "clean")
    calls = []
    real = os.replace

    def counting(src: Any, dst: Any) -> None:
        calls.append(dst)
        real(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", counting)
        expected_report = build(
            clean, tmp_path / "clean-cache", widths=[64, 128], formats=["webp", "jpeg"]
        )
    expected = tree(clean)
    total = len(calls)
    assert total > 40 and expected_report.summary["images"] == 9
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for point in sorted({1, total // 3, total // 2, total - 3, total}):
        site = copy_site(pristine, tmp_path / f"site-{point}")
        cache = tmp_path / f"cache-{point}"
        args = ["build", str(site), "--cache-dir", str(cache), "--jobs", "1", *KILL_ARGS]
        done = subprocess.run(
            [sys.executable, "-c", KILL_AT, str(point), *args, "--no-progress"],
            capture_output=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert done.returncode == -signal.SIGKILL, (point, done.stderr)
        leftovers = assert_no_partial_files(site, cache)
        assert len(leftovers) == 1, (point, leftovers)  # the one write that was cut
        report = build(site, cache, widths=[64, 128], formats=["webp", "jpeg"])
        assert report.errors == {} and report.summary["images"] == 9, point
        assert without_temp(tree(site)) == expected, point
        assert {r: e["variants"] for r, e in report.images.items()} == {
            r: e["variants"] for r, e in expected_report.images.items()
        }
        assert main(["cache", "prune", "--cache-dir", str(cache)]) == 0
        assert not [p for p in cache.rglob("*") if TMP.match(p.name)], point


def test_build_killed_by_sigkill_mid_way_then_rerun(tmp_path: Path) -> None:
    pristine = kill_site(tmp_path / "pristine", 20, (640, 480))
    clean = copy_site(pristine, tmp_path / "clean")
    build(clean, tmp_path / "clean-cache", widths=[64, 128], formats=["webp", "jpeg"])
    expected = tree(clean)
    site = copy_site(pristine, tmp_path / "site")
    cache = tmp_path / "cache"
    args = ["build", str(site), "--cache-dir", str(cache), "--jobs", "2", *KILL_ARGS]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssg_dmi.cli", *args, "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not any(NAME.match(p.name) for p in site.rglob("*")):
            assert proc.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)
        assert proc.poll() is None, "the build ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    partial = without_temp(tree(site))
    assert partial != expected  # killed mid-way: some work done, not all
    assert_no_partial_files(site, cache)
    report = build(site, cache, widths=[64, 128], formats=["webp", "jpeg"])
    assert report.errors == {} and report.summary["images"] == 21
    assert report.summary["cache_hits"] >= 1
    assert without_temp(tree(site)) == expected


# --- 12. safety ----------------------------------------------------------------------------


def test_links_out_hidden_folders_and_the_rest_of_the_disk_are_left_alone(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(camera_file("JPEG"))
    (outside / "notes.txt").write_text("keep me")
    site = tmp_path / "site"
    (site / ".git").mkdir(parents=True)
    (site / ".git" / "x.jpg").write_bytes(camera_file("JPEG"))
    (site / ".well-known").mkdir()
    (site / ".well-known" / "logo.png").write_bytes(camera_file("PNG"))
    (site / "real.jpg").write_bytes(camera_file("JPEG"))
    (site / "link.jpg").symlink_to(outside / "secret.jpg")
    (site / "linked-folder").symlink_to(outside, target_is_directory=True)
    (site / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    cache = tmp_path / "cache"
    before = stamps(tmp_path, skip=[site, cache])
    hidden = stamps(site / ".git"), stamps(site / ".well-known")
    time.sleep(0.01)
    report = build(site, cache, widths=[16, 32], formats=["webp"])
    assert sorted(report.images) == ["real.jpg"]
    assert report.errors == {}
    assert stamps(tmp_path, skip=[site, cache]) == before
    assert (stamps(site / ".git"), stamps(site / ".well-known")) == hidden
    assert os.readlink(site / "link.jpg") == str(outside / "secret.jpg")
    assert os.readlink(site / "dangling.jpg") == str(tmp_path / "nowhere.jpg")
    made = sorted(p.name for p in site.iterdir() if NAME.match(p.name))
    assert made and all(n.startswith("real.jpg-") for n in made)


@needs_exiftool
def test_a_file_only_named_like_a_variant_is_still_tagged(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "hero-1200w.0123456789.jpg").write_bytes(camera_file("JPEG"))
    report = build(site, widths=[32], formats=["webp"])
    assert "hero-1200w.0123456789.jpg" in report.images or report.errors
    view = exiftool(site / "hero-1200w.0123456789.jpg")[0]
    assert dmi_of(view) and not [k for k in view if "GPS" in k]


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for folder in ("blog/2024", "docs"):
        (site / folder).mkdir(parents=True)
    data = jpeg(photo((100, 80)))
    for rel in ("blog/a.jpg", "blog/2024/b.jpg", "blog/2024/skip-c.jpg", "docs/d.jpg"):
        (site / rel).write_bytes(data)
    (site / "e.png").write_bytes(encode(photo((100, 80)), "PNG"))
    (site / "docs" / "f.png").write_bytes(encode(photo((90, 80)), "PNG"))
    before = stamps(site)
    report = build(
        site, widths=[32], formats=["webp"], include=["blog/**", "*.png"], exclude=["**/skip-*"]
    )
    chosen = ["blog/2024/b.jpg", "blog/a.jpg", "docs/f.png", "e.png"]
    assert sorted(report.images) == chosen
    for rel, (data_before, mtime) in before.items():
        if rel not in chosen and data_before != "<dir>":
            assert (site / rel).read_bytes() == data_before, rel
            assert (site / rel).stat().st_mtime_ns == mtime, rel
            assert variants_of(site, rel) == [], rel
    for rel in chosen:
        assert len(variants_of(site, rel)) == 1, rel


@needs_exiftool
def test_bad_images_reported_left_alone_and_the_rest_processed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    pristine = tmp_path / "pristine"
    (pristine / "deep").mkdir(parents=True)
    full = jpeg(photo((600, 400)))
    bad = {
        "bomb.png": png_claiming(5000, 5000),  # Pillow's own check refuses it
        "deep/bomb2.png": png_claiming(1200, 1000),  # only ssg-dmi's limit refuses it
        "truncated.jpg": full[: len(full) * 2 // 3],
        "empty.jpg": b"",
    }
    for rel, data in bad.items():
        (pristine / rel).write_bytes(data)
    (pristine / "ok.jpg").write_bytes(full)
    (pristine / "deep" / "ok.png").write_bytes(encode(photo((200, 100)), "PNG"))
    site = copy_site(pristine, tmp_path / "site")
    before = stamps(site)
    time.sleep(0.01)
    report = build(site, tmp_path / "cache", widths=[64], formats=["webp"], max_pixels=1_000_000)
    assert sorted(report.errors) == sorted(bad)
    assert "over the limit of 1,000,000 pixels" in report.errors["bomb.png"]
    assert "1200×1000" in report.errors["deep/bomb2.png"]
    assert "over the limit" in report.errors["deep/bomb2.png"]
    assert re.search(r"truncat|EOI|end of the file", report.errors["truncated.jpg"])
    assert "empty file" in report.errors["empty.jpg"]
    assert report.summary["errors"] == 4 and report.untagged == 4
    for rel in bad:
        assert stamps(site)[rel] == before[rel], rel
        assert variants_of(site, rel) == [], rel
    assert sorted(report.images) == ["deep/ok.png", "ok.jpg"]
    for rel in report.images:
        assert dmi_of(exiftool(site / rel)[0]), rel
        assert len(variants_of(site, rel)) == 1
    config = tmp_path / "ssg-dmi.toml"
    config.write_text("max_pixels = 1000000\nwidths = [64]\n")
    common = ["--config", str(config), "--jobs", "1", "--cache-dir", str(tmp_path / "c")]
    code, out, err = cli(capsys, "build", str(copy_site(pristine, tmp_path / "s1")), *common)
    assert code == 0
    assert "2 images tagged" in out and "4 untagged" in out
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 4 and all(line.endswith("left unchanged and untagged") for line in lines)
    assert "Traceback" not in err
    site2 = copy_site(pristine, tmp_path / "s2")
    code, _, err = cli(capsys, "build", str(site2), *common, "--strict")
    assert code == 1 and "Traceback" not in err
    config.write_text("max_pixels = 1000000\nwidths = [64]\nstrict = true\n")
    code, _, _ = cli(capsys, "build", str(copy_site(pristine, tmp_path / "s3")), *common)
    assert code == 1
    good = copy_site(pristine, tmp_path / "good")
    for rel in bad:
        (good / rel).unlink()
    code, _, _ = cli(capsys, "build", str(good), *common, "--strict")
    assert code == 0


def test_pixel_limit_leaves_pillow_and_warnings_as_found_across_threads() -> None:
    from ssg_dmi.images.pixels import pixel_limit

    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:  # a worker opening one image...
        with pixel_limit(1000):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second() -> None:  # ...while another worker opens the next one
        a_in.wait(5)
        with pixel_limit(1000):
            b_in.set()
            a_out.wait(5)

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    after = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    Image.MAX_IMAGE_PIXELS, warnings.filters[:] = limit, filters
    assert after == (limit, filters)


def test_thread_pool_executor_gives_the_same_outputs(tmp_path: Path, pristine: Path) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    filters = list(warnings.filters)
    try:
        site = copy_site(pristine, tmp_path / "threads")
        with ThreadPoolExecutor(2) as pool:
            report = run(site, settings(**CACHED), executor=pool, progress=False)
    finally:  # a threaded build must not leave these changed (they are process-wide)
        Image.MAX_IMAGE_PIXELS = limit
        warnings.filters[:] = filters
    serial = copy_site(pristine, tmp_path / "serial")
    assert report.images == build(serial, None, **CACHED).images
    assert tree(site) == tree(serial)


# --- 13. CLI -------------------------------------------------------------------------------


def test_cli_build_writes_the_json_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    source = jpeg(photo((1000, 500)), quality=95)
    (site / "img" / "a.jpg").write_bytes(source)
    (site / "b.png").write_bytes(encode(photo((700, 300)), "PNG"))
    (site / "c.svg").write_bytes(camera_file("SVG"))
    report_path = tmp_path / "out" / "report.json"
    cache = tmp_path / "cache-dir"
    code, out, err = cli(
        capsys,
        "build",
        str(site),
        "--widths",
        "480,960",
        "--formats",
        "webp",
        "--quality",
        "70",
        "--originals",
        "tag",
        "--jobs",
        "1",
        "--cache-dir",
        str(cache),
        "--report",
        str(report_path),
    )
    assert code == 0, err
    assert "ssg-dmi: 3 images tagged (0 re-encoded), 0 untagged" in out
    data = json.loads(report_path.read_text(encoding="utf-8"))
    assert set(data) == {"images", "errors", "notes", "summary"}
    assert sorted(data["images"]) == ["b.png", "c.svg", "img/a.jpg"]
    assert data["errors"] == {}
    assert data["summary"]["images"] == 3 and data["summary"]["variants"] == 4
    assert data["summary"]["files_written"] > 0 and data["summary"]["cache_hits"] == 0
    for rel, entry in data["images"].items():
        original = entry["original"]
        assert original["path"] == rel and original["reencoded"] is False
        assert original["bytes"] == (site / rel).stat().st_size
        for variant in entry["variants"]:
            assert set(variant) == {"path", "width", "height", "format", "bytes"}
            path = site / variant["path"]
            assert variant["bytes"] == path.stat().st_size
            im = decoded(path)
            assert variant["format"] == "webp" == im.format.lower()
            assert im.size == (variant["width"], variant["height"])
    a = data["images"]["img/a.jpg"]
    assert (a["original"]["width"], a["original"]["height"]) == (1000, 500)
    assert sorted(v["width"] for v in a["variants"]) == [480, 960]
    assert sorted(v["width"] for v in data["images"]["b.png"]["variants"]) == [480, 700]
    # --originals tag: the heavy JPEG keeps its pixels; --quality 70 reaches the encoder.
    assert decoded(site / "img/a.jpg").tobytes() == decoded(source).tobytes()
    q70 = [(site / v["path"]).read_bytes() for v in a["variants"] if v["width"] == 480][0]
    site80 = tmp_path / "site80"
    (site80 / "img").mkdir(parents=True)
    (site80 / "img" / "a.jpg").write_bytes(source)
    q80 = build(site80, widths=[480, 960], formats=["webp"], originals="tag", quality=80)
    q80_path = [v["path"] for v in q80.images["img/a.jpg"]["variants"] if v["width"] == 480][0]
    q80_bytes = (site80 / q80_path).read_bytes()
    assert len(q70) < len(q80_bytes)
    assert len(list((cache / "v1" / "builds").glob("*.json"))) == 1
    assert not (tmp_path / ".cache").exists()


def test_cli_report_with_a_non_utf8_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    with open(os.fsencode(site) + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(jpeg(photo((100, 80))))
    report_path = tmp_path / "report.json"
    code, _, err = cli(
        capsys,
        "build",
        str(site),
        "--jobs",
        "1",
        "--widths",
        "32",
        "--cache-dir",
        str(tmp_path / "c"),
        "--report",
        str(report_path),
    )
    assert code == 0 and "Traceback" not in err
    assert len(json.loads(report_path.read_bytes())["images"]) == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--formats", "gif"], ["`formats`", "'gif'"]),
        (["--formats", "webp,tiff"], ["`formats`", "'tiff'"]),
        (["--widths", "abc"], ["`widths`", "'abc'"]),
        (["--widths", "480,x"], ["`widths`", "'x'"]),
        (["--widths", "8"], ["`widths`", "8"]),
        (["--jobs", "0"], ["`jobs`", "0"]),
        (["--quality", "101"], ["`quality`", "101"]),
        (["--originals", "shrink"], ["--originals", "'shrink'"]),
        (["--quality", "high"], ["--quality", "'high'"]),
    ],
)
def test_cli_bad_flags_exit_2_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    args: list[str],
    words: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.jpg").write_bytes(jpeg(pattern()))
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(["build", str(site), "--cache-dir", str(tmp_path / "c"), *args]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1, err
    assert all(word in errors[0] for word in words), errors[0]
    assert "Traceback" not in err
    assert (site / "a.jpg").read_bytes() == jpeg(pattern())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing written


def test_cli_missing_site_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "build", str(tmp_path / "no-site"), "--jobs", "1")
    assert code == 2
    assert err.strip().splitlines() == [
        f"ssg-dmi: error: {tmp_path / 'no-site'}: no such site folder; "
        "give the generator's output folder"
    ]
    assert out == "" and sorted(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="no such site folder"):
        run(tmp_path / "no-site", settings())


# --- 14. originals = optimize ----------------------------------------------------------------


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
