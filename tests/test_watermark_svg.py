"""SVG watermark logos (issue 11): rasterised by resvg at the size the mark is drawn, the
mark measured in the output pixels; hostile SVGs (billion laughs in entities or in <use>,
external entities and links, huge patterns and viewBoxes) are one-line errors or drawn
bounded, checked in a child process with a memory limit and a timeout, so a failure is a
failed test and not a crashed or hung run."""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from ssg_dmi.build.job import render
from ssg_dmi.errors import ConfigError
from ssg_dmi.images import svg_logo
from ssg_dmi.policy import ImagePolicy
from ssg_dmi.settings.watermark import Watermark

from .test_watermark import ink, options, source

pytest.importorskip("resvg_py")

SVG = "http://www.w3.org/2000/svg"
# 200 × 100, its right half an opaque red square, its left half transparent.
HALF_RED = (
    f'<svg xmlns="{SVG}" viewBox="0 0 200 100" width="20" height="10">'
    '<rect x="100" width="100" height="100" fill="#ff0000"/></svg>'
)


def logo_file(tmp_path: Path, text: str, name: str = "mark.svg") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_svg_logo_lands_where_position_says_at_the_drawn_size(tmp_path: Path) -> None:
    path = logo_file(tmp_path, HALF_RED)
    mark = Watermark(logo=str(path), scale=0.25, opacity=1.0, position="center")
    pairs, _, _ = render(source(), "photo.png", ImagePolicy(), options(mark))
    outs = [Image.open(io.BytesIO(d)).convert("RGB") for _, d in pairs]
    assert [o.width for o in outs] == [2000, 1600, 960, 480]
    original = outs[0]
    # drawn 500 × 250 px (0.25 × 2000) at the centre: the red half is 250 × 250
    assert ink(original) == (1000, 500, 1250, 750)
    red = original.getpixel((1125, 625))
    assert isinstance(red, tuple) and red[0] > 250 and red[1] < 5
    # rasterised at 500 px, not drawn small and scaled up: the edge is one hard step
    row = [original.getpixel((x, 625)) for x in (998, 999, 1000, 1001)]
    assert [p[0] for p in row if isinstance(p, tuple)] == [0, 0, 255, 255]
    for im in outs[1:]:  # every variant: the same place, in proportion
        box = ink(im)
        assert box is not None
        w, h = im.size
        assert box[0] / w == pytest.approx(0.5, abs=0.01)
        assert (box[2] - box[0]) / w == pytest.approx(0.125, abs=0.01)
        assert (box[3] - box[1]) / h == pytest.approx(0.2, abs=0.01)


def test_the_svg_is_drawn_at_the_marks_width(tmp_path: Path) -> None:
    logo = svg_logo.check(HALF_RED.encode())
    for width in (37, 500, 1600):
        im = svg_logo.render(logo, width)
        assert im.size == (width, round(width / 2)) and im.mode == "RGBA"
        assert im.getchannel("A").getbbox() == (round(width / 2), 0, width, round(width / 2))


def test_the_cache_key_holds_the_svg_logos_bytes(tmp_path: Path) -> None:
    path = logo_file(tmp_path, HALF_RED)
    first = options(Watermark(logo=str(path))).key_parts()
    path.write_text(HALF_RED.replace("#ff0000", "#00ff00"), encoding="utf-8")
    os.utime(path, ns=(0, 1))
    assert options(Watermark(logo=str(path))).key_parts() != first


def test_without_the_extra_an_svg_logo_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "resvg_py", None)  # what an absent package does
    with pytest.raises(ConfigError) as err:
        options(Watermark(logo=str(logo_file(tmp_path, HALF_RED))))
    message = str(err.value)
    assert "mark.svg is an SVG" in message and "pip install 'ssg-dmi[svg]'" in message
    assert "\n" not in message


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lollollollollollollollollollol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + f']><svg xmlns="{SVG}" viewBox="0 0 10 10"><text>&j;</text></svg>'
)
USE_LAUGHS = (
    f'<svg xmlns="{SVG}" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">'
    '<defs><rect id="g0" width="1" height="1"/>'
    + "".join(
        f'<g id="g{i}">' + f'<use xlink:href="#g{i - 1}"/>' * 10 + "</g>" for i in range(1, 10)
    )
    + '</defs><use href="#g9"/></svg>'
)
HOSTILE = {
    "billion laughs": (LAUGHS, "has a DTD or entity declarations"),
    "external entity": (
        '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f'<svg xmlns="{SVG}" viewBox="0 0 10 10"><text>&x;</text></svg>',
        "has a DTD or entity declarations",
    ),
    "file image": (
        f'<svg xmlns="{SVG}" viewBox="0 0 10 10"><image href="LEAK" width="9" height="9"/></svg>',
        "has an <image>",
    ),
    "external use": (
        f'<svg xmlns="{SVG}" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">'
        '<use xlink:href="https://example.invalid/a.svg#x"/></svg>',
        "links to 'https://example.invalid/a.svg#x'; only #id links are allowed",
    ),
    "external paint": (
        f'<svg xmlns="{SVG}" viewBox="0 0 10 10"><rect width="9" height="9" '
        'style="fill: url(other.svg#g)"/></svg>',
        "refers to url(other.svg#g)",
    ),
    "style import": (
        f'<svg xmlns="{SVG}" viewBox="0 0 10 10"><style>@import "x.css";</style></svg>',
        "has a style sheet @import",
    ),
    "use laughs": (USE_LAUGHS, "expands to more than 20000 elements"),
    "huge pattern": (  # resvg allocates the tile at its own size: 10^16 px aborts it
        f'<svg xmlns="{SVG}" viewBox="0 0 100 100"><defs><pattern id="p" width="1e8" '
        'height="1e8" patternUnits="userSpaceOnUse"><rect width="9" height="9"/></pattern>'
        '</defs><rect width="100" height="100" fill="url(#p)"/></svg>',
        "has a <pattern>",
    ),
    "needle": (  # 1 × 100000: drawn 500 px wide, 50 million px tall
        f'<svg xmlns="{SVG}" viewBox="0 0 1 100000"><rect width="1" height="9"/></svg>',
        "more than 4 times taller than wide",
    ),
    "no size": (f'<svg xmlns="{SVG}"><rect width="9" height="9"/></svg>', "add a viewBox"),
    "not svg": ("<html><body/></html>", "its root element is not <svg>"),
    "broken": ("<svg", "is not well-formed XML"),
}

CHILD = textwrap.dedent(
    """
    import sys
    from ssg_dmi.errors import ConfigError
    from ssg_dmi.settings.watermark import Watermark
    from tests.test_watermark import options, source
    from ssg_dmi.build.job import render
    from ssg_dmi.policy import ImagePolicy
    try:
        opts = options(Watermark(logo=sys.argv[1], scale=0.25, opacity=1.0))
    except ConfigError as exc:
        print("ConfigError:", exc)
    else:
        pairs, _, _ = render(source(), "p.png", ImagePolicy(), opts)
        print("rendered", len(pairs))
    """
)


def in_child(path: Path) -> str:
    """Check (and when accepted, draw) the logo in a child process limited to 2 GiB of
    address space and 60 s: a guard that fails is a failed test, not a dead test run."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_svg_logos_are_one_line_errors(case: str, tmp_path: Path) -> None:
    text, reason = HOSTILE[case]
    (tmp_path / "LEAK").write_bytes(b"\x89PNG\r\n\x1a\n")  # a relative file an <image> could name
    path = logo_file(tmp_path, text)
    out = in_child(path)
    assert out.startswith("ConfigError: watermark.logo: ") and reason in out, out
    assert "\n" not in out


def test_a_huge_viewbox_is_drawn_at_the_marks_size(tmp_path: Path) -> None:
    text = (
        f'<svg xmlns="{SVG}" viewBox="0 0 1e25 1e25" width="1e25" height="1e25">'
        '<rect width="1e25" height="1e25" fill="#fff"/></svg>'
    )
    assert in_child(logo_file(tmp_path, text)) == "rendered 4"
    im = svg_logo.render(svg_logo.check(text.encode()), 300)
    assert im.size == (300, 300) and im.getchannel("A").getextrema() == (255, 255)


def test_internal_references_still_render(tmp_path: Path) -> None:
    text = (
        f'<svg xmlns="{SVG}" viewBox="0 0 100 100"><defs><linearGradient id="g">'
        '<stop offset="0" stop-color="#f00"/><stop offset="1" stop-color="#00f"/>'
        '</linearGradient><rect id="r" width="50" height="100"/></defs>'
        '<use href="#r" fill="url(#g)"/></svg>'
    )
    im = svg_logo.render(svg_logo.check(text.encode()), 100)
    assert im.getchannel("A").getbbox() == (0, 0, 50, 100)
    left, right = im.getpixel((2, 50)), im.getpixel((47, 50))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[0] > 200 and right[2] > left[2]  # the gradient, red to blue
