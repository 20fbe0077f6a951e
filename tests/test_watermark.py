"""Visible watermarks (issue 11): the mark measured in the pixels of every output — where
`position` puts it, at `scale` and `opacity`, the same relative size on every variant,
tiles over the whole image — the settings and their one-line errors, rules, the cache key
and the build's summary."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from ssg_dmi.build.job import ALREADY_MARKED, WATERMARKED, Options, render
from ssg_dmi.build.pipeline import marked_options
from ssg_dmi.errors import ConfigError
from ssg_dmi.formats import VariantFormat
from ssg_dmi.images import pixels, variants, watermark
from ssg_dmi.images.containers import Format
from ssg_dmi.policy import ImagePolicy
from ssg_dmi.settings import QUALITY_DEFAULTS, Originals, load_settings
from ssg_dmi.settings.watermark import Watermark

from .builds import build
from .images import encode, photo

BACKGROUND = (0, 0, 0)
SIZE = (2000, 1250)


def options(mark: Watermark | None, **changes: Any) -> Options:
    base = Options(
        widths=(480, 960, 1600),
        formats=(VariantFormat.WEBP,),
        quality=dict(QUALITY_DEFAULTS),
        originals=Originals.OPTIMIZE,
        max_pixels=10**8,
        srgb=False,
    )
    return dataclasses.replace(marked_options(base, mark), **changes)


def source(size: tuple[int, int] = SIZE, fmt: str = "PNG") -> bytes:
    return encode(Image.new("RGB", size, BACKGROUND), fmt)


def outputs(data: bytes, mark: Watermark | None, **changes: Any) -> list[Image.Image]:
    """The decoded outputs of one render: the original first, then the variants."""
    pairs, _, _ = render(data, "photo.png", ImagePolicy(), options(mark, **changes))
    return [Image.open(io.BytesIO(d)).convert("RGB") for _, d in pairs]


def ink(im: Image.Image, threshold: int = 40) -> tuple[int, int, int, int] | None:
    """The box of the pixels the mark changed on the black background."""
    return im.convert("L").point(lambda v: 255 if v > threshold else 0).getbbox()


def relative(box: tuple[int, int, int, int], im: Image.Image) -> tuple[float, ...]:
    w, h = im.size
    return (box[0] / w, box[1] / h, box[2] / w, box[3] / h)


TEXT = Watermark(text="© 2026 Ana Example", shadow=False, opacity=1.0, offset=0.05)


@pytest.mark.parametrize(
    ("position", "column", "row"),
    [
        ("top-left", 0, 0),
        ("top", 1, 0),
        ("top-right", 2, 0),
        ("left", 0, 1),
        ("center", 1, 1),
        ("right", 2, 1),
        ("bottom-left", 0, 2),
        ("bottom", 1, 2),
        ("bottom-right", 2, 2),
    ],
)
def test_the_mark_is_where_position_says_on_every_output(
    position: str, column: int, row: int
) -> None:
    outs = outputs(source(), dataclasses.replace(TEXT, position=position))
    assert [o.width for o in outs] == [2000, 1600, 960, 480]
    for im in outs:
        box = ink(im)
        assert box is not None, f"{im.width} px output is not marked"
        cx = (box[0] + box[2]) / 2 / im.width
        cy = (box[1] + box[3]) / 2 / im.height
        assert int(cx * 3) == column and int(cy * 3) == row, (position, im.width, box)
        margin = 0.05 * min(im.size)
        if column == 0:
            assert abs(box[0] - margin) < 0.02 * im.width
        if column == 2:
            assert abs(im.width - box[2] - margin) < 0.02 * im.width
        if row == 2:
            assert im.height - box[3] >= margin * 0.8


def test_the_mark_is_scale_wide_and_the_same_size_on_480_and_1600_px() -> None:
    outs = outputs(source(), dataclasses.replace(TEXT, scale=0.3))
    boxes = [relative(ink(im) or (0, 0, 0, 0), im) for im in outs]
    for box in boxes:
        assert box[2] - box[0] == pytest.approx(0.3, abs=0.015)
    big, small = boxes[1], boxes[3]  # 1600 px and 480 px
    for a, b in zip(big, small, strict=True):
        assert a == pytest.approx(b, abs=0.01)


def test_opacity_blends_the_mark_with_the_photo() -> None:
    full = outputs(source(), TEXT)[0]
    half = outputs(source(), dataclasses.replace(TEXT, opacity=0.5))[0]
    peak_full = full.convert("L").getextrema()[1]
    peak_half = half.convert("L").getextrema()[1]
    assert peak_full >= 240
    assert peak_half == pytest.approx(128, abs=12)


def test_a_tiled_mark_covers_the_whole_image() -> None:
    mark = dataclasses.replace(TEXT, tile=True, scale=0.2, angle=30)
    for im in outputs(source(), mark):
        w, h = im.size
        for i in range(4):
            for j in range(4):
                cell = im.crop((i * w // 4, j * h // 4, (i + 1) * w // 4, (j + 1) * h // 4))
                assert ink(cell) is not None, (im.width, i, j)


def test_a_logo_keeps_its_colour_and_alpha(tmp_path: Path) -> None:
    logo = Image.new("RGBA", (200, 100), (255, 0, 0, 255))
    logo.paste((0, 0, 0, 0), (0, 0, 100, 100))  # its left half transparent
    path = tmp_path / "mark.png"
    logo.save(path)
    mark = Watermark(logo=str(path), scale=0.25, opacity=1.0, position="center")
    im = outputs(source(), mark)[0]
    box = ink(im)
    assert box is not None
    assert (box[2] - box[0]) / im.width == pytest.approx(0.125, abs=0.01)  # the opaque half
    red = im.getpixel(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2))
    assert isinstance(red, tuple) and red[0] > 200 and red[1] < 50


def test_narrow_images_are_not_marked() -> None:
    data = source((300, 200))
    assert ink(outputs(data, TEXT)[0]) is None
    assert ink(outputs(source((400, 200)), TEXT)[0]) is not None


def test_apply_to_variants_keeps_the_original_untouched() -> None:
    data = source(fmt="PNG")
    pairs, tags, reencoded = render(
        data, "p.png", ImagePolicy(), options(dataclasses.replace(TEXT, apply_to="variants"))
    )
    original = Image.open(io.BytesIO(pairs[0][1])).convert("RGB")
    assert ink(original) is None and not reencoded
    assert all(ink(Image.open(io.BytesIO(d)).convert("RGB")) for _, d in pairs[1:])
    pairs, tags, reencoded = render(data, "p.png", ImagePolicy(), options(TEXT))
    assert reencoded and WATERMARKED in tags.notes


def test_apply_to_variants_keeps_a_reencoded_original_unmarked() -> None:
    # A q95 JPEG is re-encoded by `originals = "optimize"`: from the unmarked pixels, even
    # though the mark is drawn on the same decode (in place only when no re-encode follows).
    data = encode(Image.new("RGB", SIZE, BACKGROUND), "JPEG", quality=95)
    mark = dataclasses.replace(TEXT, apply_to="variants")
    pairs, _, reencoded = render(data, "p.jpg", ImagePolicy(), options(mark))
    assert reencoded and len(pairs[0][1]) < len(data)
    assert ink(Image.open(io.BytesIO(pairs[0][1])).convert("RGB")) is None
    assert all(ink(Image.open(io.BytesIO(d)).convert("RGB")) for _, d in pairs[1:])


def test_apply_draws_on_a_copy_unless_told_not_to() -> None:
    im = Image.new("RGB", SIZE, BACKGROUND)
    marked = watermark.apply(im, TEXT, watermark.Assets())
    assert marked is not im and ink(im) is None and ink(marked) is not None
    same = watermark.apply(im, TEXT, watermark.Assets(), copy=False)
    assert same is im and ink(im) == ink(marked)
    grey = Image.new("L", SIZE, 0)  # converted: a new image whatever `copy` says
    assert watermark.apply(grey, TEXT, watermark.Assets(), copy=False) is not grey
    assert ink(grey) is None


def _zlib_level(png: bytes) -> int:
    """FLEVEL of a PNG's zlib stream (0: fastest/run-length or Huffman-only, 2: default)."""
    start = png.index(b"IDAT") + 4
    (header,) = struct.unpack(">H", png[start : start + 2])
    return header >> 6 & 3


@pytest.mark.parametrize("tile", [False, True])
def test_a_marked_png_original_is_lossless_and_written_fast(tile: bool) -> None:
    # The marked original's pixels are the marked still's, exactly. One mark: the source's
    # stream is kept outside it (tests/test_png_splice.py), zlib header and all. Tiles
    # change every row: zlib's run-length strategy (FLEVEL 0) writes them 3.5x faster than
    # level 6 on the dev corpus's PNGs.
    still = photo((1200, 800))
    data = encode(still, "PNG")
    mark = dataclasses.replace(TEXT, tile=tile)
    pairs, tags, reencoded = render(data, "p.png", ImagePolicy(), options(mark))
    assert reencoded and WATERMARKED in tags.notes
    expected = watermark.apply(still, mark, watermark.Assets())
    original = Image.open(io.BytesIO(pairs[0][1]))
    assert original.tobytes() == expected.tobytes()
    assert _zlib_level(data) == 2 and _zlib_level(pairs[0][1]) == (0 if tile else 2)
    assert len(pairs[0][1]) < 1.2 * len(data)


def test_a_marked_lossy_webp_original_is_written_at_method_2() -> None:
    still = photo((1200, 800))
    data = encode(still, "WEBP", quality=90)
    quality = dict(QUALITY_DEFAULTS)
    fast = pixels.encode_like(still, Format.WEBP, data, quality, fast=True)
    assert fast == encode(still, "WEBP", quality=quality["webp"], method=2)
    assert fast != pixels.encode_like(still, Format.WEBP, data, quality)  # method 4
    # In a build: the original is the marked pixels, lossy, close to them where the mark is.
    unmarked = variants.normalise(Image.open(io.BytesIO(data)), srgb=False)
    marked = watermark.apply(unmarked, TEXT, watermark.Assets())
    box = ink(watermark.apply(Image.new("RGB", still.size, BACKGROUND), TEXT, watermark.Assets()))
    assert box is not None
    pairs, _, _ = render(data, "p.webp", ImagePolicy(), options(TEXT))
    assert not pixels.is_lossless_webp(pairs[0][1])
    original = Image.open(io.BytesIO(pairs[0][1])).convert("L").crop(box)
    brightness = ImageStat.Stat(original).mean[0]  # the grain averages out over the box
    assert abs(brightness - ImageStat.Stat(marked.convert("L").crop(box)).mean[0]) < 2
    assert brightness - ImageStat.Stat(unmarked.convert("L").crop(box)).mean[0] > 5


def test_svg_is_not_marked_and_says_so() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="600"/>'
    pairs, tags, _ = render(svg, "a.svg", ImagePolicy(), options(TEXT))
    assert watermark.NOT_MARKED_SVG in tags.notes and pairs[0][1].startswith(b"<svg")


def test_the_cache_key_holds_every_setting_and_the_files_bytes(tmp_path: Path) -> None:
    keys = {repr(options(None).key_parts())}
    for change in (
        {"text": "other"},
        {"position": "top"},
        {"scale": 0.3},
        {"opacity": 0.4},
        {"tile": True},
        {"angle": 10.0},
        {"min_width": 10},
        {"apply_to": "variants"},
        {"color": (0, 0, 0)},
        {"shadow": True},
        {"offset": 0.1},
    ):
        keys.add(repr(options(dataclasses.replace(TEXT, **change)).key_parts()))
    keys.add(repr(options(TEXT).key_parts()))
    assert len(keys) == 13
    logo = tmp_path / "l.png"
    Image.new("RGBA", (10, 10), (1, 2, 3, 255)).save(logo)
    first = options(Watermark(logo=str(logo))).key_parts()
    Image.new("RGBA", (10, 10), (9, 2, 3, 255)).save(logo)
    os.utime(logo, ns=(0, 1))  # what an edit between two builds does to its stat
    assert options(Watermark(logo=str(logo))).key_parts() != first  # same path, new bytes


def test_settings_rules_styles_and_none(tmp_path: Path) -> None:
    s = load_settings(
        {
            "watermark": {"text": "site", "position": "top-left"},
            "watermark_styles": {"proof": {"text": "PROOF", "tile": True}},
            "rules": [
                {"path": "blog/**", "watermark": "none"},
                {"path": "shop/**", "watermark": "proof"},
                {"path": "gallery/**", "watermark": {"opacity": 0.9}},
            ],
        }
    )
    assert s.watermark_for("a.jpg") == Watermark(text="site", position="top-left")
    assert s.watermark_for("blog/x.jpg") is None
    assert s.watermark_for("shop/x.jpg") == Watermark(text="PROOF", tile=True)
    assert s.watermark_for("gallery/x.jpg") == Watermark(
        text="site", position="top-left", opacity=0.9
    )
    # a page's or an image's own value (front matter, data-watermark) goes last
    assert s.watermark_for("a.jpg", {"watermark": "none"}) is None
    assert s.watermark_for("a.jpg", {"watermark": "proof"}) == Watermark(text="PROOF", tile=True)
    assert load_settings({}).watermark_for("a.jpg") is None


def test_a_rule_marks_only_its_folder_in_a_build(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "gallery").mkdir(parents=True)
    (site / "gallery" / "a.png").write_bytes(source((1000, 600)))
    (site / "b.png").write_bytes(source((1000, 600)))
    report = build(
        site,
        widths=[480],
        rules=[{"path": "gallery/**", "watermark": {"text": "© A", "opacity": 1.0}}],
    )
    assert ink(Image.open(site / "gallery" / "a.png").convert("RGB")) is not None
    assert ink(Image.open(site / "b.png").convert("RGB")) is None
    assert report.summary.reencoded == 1
    assert WATERMARKED in report.notes["gallery/a.png"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"logo": "missing.png"}, "`watermark.logo`: 'missing.png' is no file"),
        ({"text": "x", "font": "nope.ttf"}, "`watermark.font`: 'nope.ttf' is no file"),
        ({"text": "x", "logo": "y"}, "set `text` or `logo`, not both"),
        ({"text": "x", "position": "middle"}, "watermark.position"),
        ({"text": "x", "opacity": 2}, "`watermark.opacity`: 2 is outside 0–1"),
        ({"text": "x", "colour": "#fff"}, "colour"),
        ({"text": "x", "color": "white"}, 'expected a colour like "#ffffff"'),
    ],
)
def test_bad_settings_are_one_line_errors(
    raw: dict[str, Any], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_settings({"watermark": raw})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    from ssg_dmi.settings import load_config_file

    (tmp_path / "conf").mkdir()
    Image.new("RGBA", (8, 8)).save(tmp_path / "conf" / "mark.png")
    toml = tmp_path / "conf" / "ssg-dmi.toml"
    toml.write_text('[watermark]\nlogo = "mark.png"\n', encoding="utf-8")
    mark = load_config_file(toml).watermark_for("a.jpg")
    assert mark is not None and mark.logo == str((tmp_path / "conf" / "mark.png").resolve())
    toml.write_text('[[rules]]\npath = "x/*"\nwatermark = "nosuch"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="names no style"):
        load_config_file(toml)


def test_bad_font_and_logo_files_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttf"
    bad.write_bytes(b"not a font")
    with pytest.raises(ConfigError, match="is not a TrueType/OpenType font"):
        options(Watermark(text="x", font=str(bad)))
    bad_logo = tmp_path / "bad.png"
    bad_logo.write_bytes(b"not an image")
    with pytest.raises(ConfigError, match="is not an image Pillow reads"):
        options(Watermark(logo=str(bad_logo)))


def test_originals_tag_with_apply_to_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match='set `apply_to = "variants"`'):
        load_settings({"originals": "tag", "watermark": {"text": "x"}})
    s = load_settings({"originals": "tag", "watermark": {"text": "x", "apply_to": "variants"}})
    assert s.watermark_for("a.jpg") is not None
    with pytest.raises(ConfigError, match="originals"):
        load_settings({"watermark": {"text": "x"}}).with_overrides(originals="tag")


def test_a_second_build_over_its_own_output_does_not_mark_twice() -> None:
    mark = dataclasses.replace(TEXT, opacity=0.5)
    pairs, _, _ = render(source(), "p.png", ImagePolicy(), options(mark))
    once = Image.open(io.BytesIO(pairs[0][1])).convert("L").getextrema()[1]
    again, tags, _ = render(pairs[0][1], "p.png", ImagePolicy(), options(mark))
    twice = Image.open(io.BytesIO(again[0][1])).convert("L").getextrema()[1]
    assert once == pytest.approx(128, abs=12) and twice == once
    assert ALREADY_MARKED in tags.notes


def test_animations_are_not_marked_and_say_so() -> None:
    frames = [Image.new("RGB", (600, 400), c) for c in ((0, 0, 0), (0, 0, 40))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    _, tags, _ = render(buf.getvalue(), "a.gif", ImagePolicy(), options(TEXT))
    assert watermark.NOT_MARKED_ANIMATED in tags.notes


def marked(path: Path) -> bool:
    return ink(Image.open(path).convert("RGB")) is not None


def test_data_watermark_and_page_meta_override_per_image(tmp_path: Path) -> None:
    from ssg_dmi.build.site import run_site

    site = tmp_path / "site"
    site.mkdir()
    for name in ("a", "b", "c", "d", "e"):
        (site / f"{name}.png").write_bytes(source((1000, 600)))
    (site / "index.html").write_text(
        '<html><head></head><body><img src="a.png"><img src="b.png" data-watermark="none">'
        '<img src="c.png" data-watermark="proof"><img src="d.png" data-watermark="none">'
        "</body></html>"
    )
    (site / "other.html").write_text(
        '<html><head><meta name="ssg-dmi-watermark" content="none"></head><body>'
        '<img src="e.png"><img src="d.png" data-watermark="proof"></body></html>'
    )
    settings = load_settings(
        {
            "widths": [480],
            "watermark": {"text": "© A", "opacity": 1.0, "position": "top-left"},
            "watermark_styles": {"proof": {"text": "PROOF", "tile": True, "opacity": 1.0}},
        }
    )
    report = run_site(site, settings, progress=False)
    assert marked(site / "a.png")
    assert not marked(site / "b.png")  # data-watermark="none"
    assert not marked(site / "e.png")  # the page's <meta name="ssg-dmi-watermark">
    for name in ("c", "d"):  # the named style: tiled over the whole image
        box = ink(Image.open(site / f"{name}.png").convert("RGB"))
        assert box is not None and box[2] - box[0] > 900 and box[3] - box[1] > 500
    corner = ink(Image.open(site / "a.png").convert("RGB"))
    assert corner is not None and corner[2] < 500  # the site's mark, top-left only
    # two pages disagree about d.png: a mark wins over "none", and the build says so
    assert "d.png: pages disagree on its watermark; 'proof' used" in report.notes


def test_an_unknown_style_in_data_watermark_is_a_config_error(tmp_path: Path) -> None:
    from ssg_dmi.build.site import run_site

    site = tmp_path / "site"
    site.mkdir()
    (site / "a.png").write_bytes(source((1000, 600)))
    (site / "index.html").write_text('<html><body><img src="a.png" data-watermark="nosuch">')
    settings = load_settings({"widths": [480], "watermark": {"text": "x"}})
    with pytest.raises(ConfigError, match="names no style"):
        run_site(site, settings, progress=False)


def test_mkdocs_front_matter_watermark_none(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    from .test_plugins import mkdocs_build

    docs = tmp_path / "docs"
    (docs / "img").mkdir(parents=True)
    for name in ("a", "b"):
        (docs / "img" / f"{name}.png").write_bytes(source((1000, 600)))
    (docs / "img" / "c.png").write_bytes(source((1000, 600)))
    (docs / "index.md").write_text("# Home\n\n![A](img/a.png)\n")
    (docs / "plain.md").write_text("---\nwatermark: none\n---\n# Plain\n\n![B](img/b.png)\n")
    (docs / "proof.md").write_text("---\nwatermark: proof\n---\n# Proof\n\n![C](img/c.png)\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: T\nplugins:\n  - ssg-dmi:\n      jobs: 1\n      widths: [480]\n"
        "      cache: false\n"
        f"      watermark: {json.dumps(SITE_MARK)}\n"
        f"      watermark_styles: {json.dumps(STYLES)}\n"
    )
    site = tmp_path / "site"
    mkdocs_build(tmp_path / "mkdocs.yml", site)
    assert marked(site / "img" / "a.png")
    assert not marked(site / "img" / "b.png")
    assert tiled(site / "img" / "c.png")
    assert_a_plain_build_keeps_them(
        site,
        {"plain/index.html": "none", "proof/index.html": "proof"},
        *(site / "img" / f"{name}.png" for name in "abc"),
    )
    assert not marked(site / "img" / "b.png") and tiled(site / "img" / "c.png")


SITE_MARK = {"text": "© A", "opacity": 1.0, "position": "top-left"}
STYLES = {"proof": {"text": "PROOF", "tile": True, "opacity": 1.0}}


def tiled(path: Path) -> bool:
    box = ink(Image.open(path).convert("RGB"))
    return box is not None and box[2] - box[0] > 900 and box[3] - box[1] > 500


def assert_a_plain_build_keeps_them(site: Path, pages: dict[str, str], *images: Path) -> None:
    """The pages carry their front-matter value, and a plain `ssg-dmi build` over the output
    with the same settings (no adapter, no front matter) changes none of ``images``."""
    from ssg_dmi.build.site import run_site

    for page, value in pages.items():
        text = (site / page).read_text(encoding="utf-8")
        assert f'<meta name="ssg-dmi-watermark" content="{value}">' in text, page
        assert text.count("ssg-dmi-watermark") == 1, page
    before = {p: p.read_bytes() for p in images}
    settings = load_settings(
        {"widths": [480], "cache": False, "watermark": SITE_MARK, "watermark_styles": STYLES}
    )
    run_site(site, settings, progress=False)
    assert {p: p.read_bytes() for p in images} == before


def test_pelican_watermark_metadata(tmp_path: Path) -> None:
    pytest.importorskip("pelican")
    from pelican import Pelican
    from pelican.settings import read_settings

    content = tmp_path / "content"
    (content / "images").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (content / "images" / f"{name}.png").write_bytes(source((1000, 600)))
    (content / "a.md").write_text("Title: A\nDate: 2026-01-01\n\n![A]({static}/images/a.png)\n")
    (content / "b.md").write_text(
        "Title: B\nDate: 2026-01-02\nWatermark: none\n\n![B]({static}/images/b.png)\n"
    )
    (content / "c.md").write_text(
        "Title: C\nDate: 2026-01-03\nWatermark: proof\n\n![C]({static}/images/c.png)\n"
    )
    output = tmp_path / "output"
    settings = read_settings(
        override={
            "PATH": str(content),
            "OUTPUT_PATH": str(output),
            "STATIC_PATHS": ["images"],
            "PLUGINS": ["ssg_dmi.pelican"],
            "SSG_DMI": {
                "jobs": 1,
                "cache": False,
                "widths": [480],
                "watermark": SITE_MARK,
                "watermark_styles": STYLES,
            },
            "RELATIVE_URLS": True,
            "CACHE_CONTENT": False,
        }
    )
    Pelican(settings).run()
    assert marked(output / "images" / "a.png")
    assert not marked(output / "images" / "b.png")
    assert tiled(output / "images" / "c.png")
    assert_a_plain_build_keeps_them(
        output,
        {"b.html": "none", "c.html": "proof"},
        *(output / "images" / f"{name}.png" for name in "abc"),
    )
    assert not marked(output / "images" / "b.png") and tiled(output / "images" / "c.png")
