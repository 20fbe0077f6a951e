"""Visible watermarks: a text or logo mark drawn on an upright, normalised image.

Drawn once per source at the largest size it is processed at (after orientation, before
resizing), so every variant made from the marked pixels carries the same mark, in the same
proportion. Text is rendered by FreeType with the font's real metrics, anti-aliased; a logo
keeps its alpha. The mark's width is ``scale`` × the image's width, whatever that width is.
An SVG logo is rasterised at exactly that width (see :mod:`.svg_logo`, extra ``[svg]``).
"""

from __future__ import annotations

import functools
import io
import math
import os
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..errors import ConfigError
from ..settings.watermark import Watermark
from . import svg_logo

NOT_MARKED_SVG = "not watermarked: SVG images are never marked"
NOT_MARKED_ANIMATED = "not watermarked: animated images are not marked"
_REFERENCE = 200  # the font size measured once; the real size is scaled from it


@dataclass(frozen=True)
class Assets:
    """The bytes a mark is made from: logo and font files (None: not used / built in)."""

    logo: bytes | None = None
    font: bytes | None = None


def read_asset(path: str) -> bytes:
    """A logo's or font's bytes, read once per process while the file stays as it is
    (``mkdocs serve`` rebuilds in one process: an edited logo is read again)."""
    stat = os.stat(path)
    return _read(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def assets_of(mark: Watermark) -> Assets:
    """The files ``mark`` names, read (ConfigError naming the file when it cannot be)."""
    try:
        logo = read_asset(mark.logo) if mark.logo else None
        font = read_asset(mark.font) if mark.font else None
    except OSError as exc:
        raise ConfigError(f"watermark: cannot read {exc.filename} ({exc.strerror})") from None
    return Assets(logo, font)


def check_assets(mark: Watermark) -> Assets:
    """:func:`assets_of`, plus a check that the font loads and the logo decodes: a bad file
    is one ConfigError before any image is touched."""
    assets = assets_of(mark)
    if assets.font is not None:
        try:
            _font(assets.font, 12)
        except OSError:
            raise ConfigError(
                f"watermark.font: {mark.font} is not a TrueType/OpenType font"
            ) from None
    if assets.logo is not None and svg_logo.is_svg(assets.logo):
        _check_svg(mark.logo, assets.logo)
    elif assets.logo is not None:
        try:
            _logo(assets.logo)
        except (OSError, ValueError, Image.DecompressionBombError):
            raise ConfigError(
                f"watermark.logo: {mark.logo} is not an image Pillow reads (use a PNG or WebP "
                "with alpha, or an SVG)"
            ) from None
    return assets


def _check_svg(path: str, data: bytes) -> None:
    """An SVG logo is checked for safety and drawn once, small: a ConfigError now rather
    than in a worker."""
    if not svg_logo.available():
        raise ConfigError(
            f"watermark.logo: {path} is an SVG, which needs the optional renderer: "
            f"{svg_logo.EXTRA} (or use a PNG or WebP logo)"
        )
    try:
        svg_logo.render(svg_logo.checked(data), 16)
    except svg_logo.SvgLogoError as exc:
        raise ConfigError(f"watermark.logo: {path} is refused: {exc}") from None
    except ValueError as exc:  # resvg's own parse or render error
        reason = str(exc).splitlines()[0] if str(exc) else "no reason given"
        raise ConfigError(
            f"watermark.logo: {path} is not an SVG resvg renders ({reason})"
        ) from None


def _font(data: bytes | None, size: int) -> ImageFont.FreeTypeFont:
    if data is None:
        default = ImageFont.load_default(size)
        if not isinstance(default, ImageFont.FreeTypeFont):  # Pillow without FreeType
            raise ConfigError("watermark: Pillow has no FreeType support; set `font`")
        return default
    return ImageFont.truetype(io.BytesIO(data), size)


@functools.lru_cache(maxsize=4)
def _logo(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGBA")


@functools.lru_cache(maxsize=8)
def _svg_mark(data: bytes, width: int) -> Image.Image:
    """The SVG logo drawn ``width`` pixels wide (checked by :func:`check_assets` first)."""
    return svg_logo.render(svg_logo.checked(data), width)


def _text_mark(mark: Watermark, font_data: bytes | None, width: int) -> Image.Image:
    """The text, ``width`` pixels wide, white-on-transparent in ``mark.color``."""
    probe = _font(font_data, _REFERENCE)
    left, _, right, _ = probe.getbbox(mark.text)
    size = max(4, round(_REFERENCE * width / max(1, right - left)))
    font = _font(font_data, size)
    box = font.getbbox(mark.text)
    left, top = math.floor(box[0]), math.floor(box[1])
    right, bottom = math.ceil(box[2]), math.ceil(box[3])
    pad = max(1, size // 12) if mark.shadow else 0
    canvas = Image.new("RGBA", (right - left + 3 * pad, bottom - top + 3 * pad), (0, 0, 0, 0))
    origin = (pad - left, pad - top)
    if mark.shadow:  # a soft dark copy, offset: legible on light and dark photos
        shadow = Image.new("L", canvas.size, 0)
        ImageDraw.Draw(shadow).text((origin[0] + pad, origin[1] + pad), mark.text, 170, font)
        shadow = shadow.filter(ImageFilter.GaussianBlur(max(1.0, pad / 2)))
        canvas.putalpha(shadow)
    ImageDraw.Draw(canvas).text(origin, mark.text, (*mark.color, 255), font)
    return canvas


def make_mark(mark: Watermark, assets: Assets, image_width: int) -> Image.Image:
    """The RGBA mark for an image ``image_width`` pixels wide, opacity applied."""
    width = max(1, round(mark.scale * image_width))
    if assets.logo is not None and svg_logo.is_svg(assets.logo):
        out = _svg_mark(assets.logo, width).copy()
    elif assets.logo is not None:
        logo = _logo(assets.logo)
        height = max(1, round(logo.height * width / logo.width))
        out = logo.resize((width, height), Image.Resampling.LANCZOS)
    else:
        out = _text_mark(mark, assets.font, width)
    if mark.opacity < 1:
        alpha = out.getchannel("A").point(lambda a: round(a * mark.opacity))
        out.putalpha(alpha)
    return out


def _place(
    size: tuple[int, int], mark: tuple[int, int], position: str, margin: int
) -> tuple[int, int]:
    (w, h), (mw, mh) = size, mark
    x = {"left": margin, "center": (w - mw) // 2, "right": w - mw - margin}
    y = {"top": margin, "center": (h - mh) // 2, "bottom": h - mh - margin}
    vertical, _, horizontal = position.partition("-")
    if position in ("left", "right"):
        vertical, horizontal = "center", position
    elif position in ("top", "bottom"):
        vertical, horizontal = position, "center"
    elif position == "center":
        vertical = horizontal = "center"
    return x[horizontal], y[vertical]


def _blend(base: Image.Image, mark: Image.Image, x: int, y: int) -> None:
    """Composite ``mark`` onto ``base`` at (x, y), clipped to ``base``; in place."""
    left, top = max(0, x), max(0, y)
    right, bottom = min(base.width, x + mark.width), min(base.height, y + mark.height)
    if right <= left or bottom <= top:
        return
    part = mark.crop((left - x, top - y, right - x, bottom - y))
    if base.mode == "RGBA":
        base.alpha_composite(part, (left, top))
    else:
        base.paste(part.convert(base.mode), (left, top), part.getchannel("A"))


def apply(im: Image.Image, mark: Watermark, assets: Assets, *, copy: bool = True) -> Image.Image:
    """:func:`apply_rows` without the rows."""
    return apply_rows(im, mark, assets, copy=copy)[0]


def apply_rows(
    im: Image.Image, mark: Watermark, assets: Assets, *, copy: bool = True
) -> tuple[Image.Image, tuple[int, int]]:
    """A copy of ``im`` (upright; 8-bit RGB or RGBA, others converted) with the mark drawn,
    keeping ``im``'s info (ICC profile). The caller checks ``min_width`` against the
    source's own width (``im`` may be a reduced decode).

    ``copy=False`` draws on ``im`` itself when it is RGB or RGBA, for a caller that has no
    further use for the unmarked pixels: copying a 4096² photo costs more than drawing the
    mark (0.77 s against 0.15 s of CPU for the 55 images of the dev corpus).

    Also returns the rows the mark may have changed, ``(top, bottom)``, ``bottom``
    excluded; every row for tiles (the rest of a PNG original is kept as it was stored,
    see :mod:`.png_splice`).
    """
    if im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    elif copy:
        im = im.copy()
    stamp = make_mark(mark, assets, im.width)
    if not mark.tile:
        margin = round(mark.offset * min(im.size))
        x, y = _place(im.size, stamp.size, mark.position, margin)
        _blend(im, stamp, x, y)
        return im, (max(0, y), max(0, min(im.height, y + stamp.height)))
    stamp = stamp.rotate(mark.angle, Image.Resampling.BICUBIC, expand=True)
    # A staggered grid: each row shifted half a step, so the marks run diagonally.
    step_x = stamp.width + max(8, stamp.width // 3)
    step_y = stamp.height + max(8, round(stamp.height * 0.6))
    rows = math.ceil(im.height / step_y) + 2
    cols = math.ceil(im.width / step_x) + 2
    for row in range(-1, rows):
        shift = (row % 2) * step_x // 2
        for col in range(-1, cols):
            _blend(im, stamp, col * step_x + shift, row * step_y)
    return im, (0, im.height)
