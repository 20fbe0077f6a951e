"""Responsive variants: decode once, resize down a chain, encode every width × format.

Pure functions on Pillow images and bytes; the pipeline decides where results go.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image, ImageSequence

from ..errors import ImageError, describe
from .pixels import DECODE_ERRORS, UPRIGHT, to_srgb

EXTENSION = {"webp": "webp", "jpeg": "jpg", "png": "png", "avif": "avif"}
PILLOW = {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG", "avif": "AVIF"}
NAMES = {"webp": "WebP", "jpeg": "JPEG", "png": "PNG", "avif": "AVIF"}


@dataclass(frozen=True)
class Limit:
    """The largest image a variant format can hold."""

    side: int  # pixels, each of width and height
    pixels: int | None = None  # width × height, where the format caps that too


# Measured with Pillow 13 and its bundled codecs. WebP stores 14-bit dimensions: the encoder
# refuses 16384. libjpeg-turbo refuses more than 65500 (JPEG_MAX_DIMENSION). libavif
# *writes* larger AVIF files, but its decoder (in browsers too) refuses more than 32768 a
# side or 16384 × 16384 pixels (AVIF_DEFAULT_IMAGE_DIMENSION_LIMIT / _SIZE_LIMIT), so such
# a variant would be one nobody can show. PNG's own limit (2^31 - 1) is never reached.
LIMITS = {
    "webp": Limit(16383),
    "jpeg": Limit(65500),
    "avif": Limit(32768, 16384 * 16384),
    "png": Limit(2**31 - 1),
}


def over_limit(fmt: str, size: tuple[int, int]) -> str | None:
    """Why a ``size`` image cannot be a ``fmt`` variant (None when it can)."""
    limit = LIMITS[fmt]
    width, height = size
    name = NAMES[fmt]
    if max(width, height) > limit.side:
        return f"{width}×{height} is over {name}'s limit of {limit.side} pixels a side"
    if limit.pixels is not None and width * height > limit.pixels:
        return f"{width}×{height} is over {name}'s limit of {limit.pixels:,} pixels"
    return None


def skipped_note(fmt: str, size: tuple[int, int], why: str, original_width: int) -> str:
    """The note for a variant that was not made (the page's srcset simply lacks it)."""
    served = "; the original serves that width" if size[0] == original_width else ""
    return f"no {size[0]}w {NAMES[fmt]} variant: {why}{served}"


@dataclass(frozen=True)
class Encoded:
    """One encoded variant, before its metadata is written."""

    data: bytes
    width: int
    height: int
    format: str


def plan_widths(width: int, wanted: Sequence[int]) -> list[int]:
    """The widths to make for a source ``width`` pixels wide, largest first.

    Never upscales: a wanted width past the source becomes one variant at the source width.
    """
    return sorted({min(w, width) for w in wanted}, reverse=True)


def height_for(width: int, size: tuple[int, int]) -> int:
    """The height that keeps ``size``'s aspect ratio at ``width`` (at least one pixel)."""
    return max(1, round(size[1] * width / size[0]))


def has_alpha(im: Image.Image) -> bool:
    """Whether an image has real transparency (an alpha band or a transparent palette index)."""
    return im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info


def normalise(im: Image.Image, srgb: bool) -> Image.Image:
    """An 8-bit RGB or RGBA image ready to encode, colour kept.

    CMYK goes to RGB through its ICC profile; 16/32-bit greys are scaled (not clipped) to
    8 bits; palettes are expanded; with ``srgb`` any ICC profile is converted to sRGB.
    A mode Pillow cannot convert (a TIFF in LAB, say) is the file's error.
    """
    try:
        return _normalise(im, srgb)
    except DECODE_ERRORS as exc:
        raise ImageError(
            f"cannot be converted from its {im.mode} pixels to RGB ({describe(exc)})"
        ) from None


def _normalise(im: Image.Image, srgb: bool) -> Image.Image:
    icc = im.info.get("icc_profile")
    if im.mode.startswith("I"):
        # Pillow's own I -> L conversion clips at 255; scale the range instead. 16-bit data
        # goes to 32-bit I first: Pillow has no extrema or point() for I;16B (big-endian
        # TIFF), "image has wrong mode".
        wide = im.mode.startswith("I;16")
        im = im.convert("I")
        extrema = im.getextrema()
        top = extrema[1] if isinstance(extrema, tuple) and isinstance(extrema[1], int) else 255
        peak = 65535 if wide else max(1, top)
        im = im.point(lambda v: v * (255 / peak)).convert("L")
    elif im.mode == "F":
        im = im.convert("L")
    if im.mode == "CMYK":
        im = to_srgb(im, icc, "RGB")
        icc = None
    elif im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if has_alpha(im) else "RGB")
    if im.mode == "RGBA" and im.getchannel("A").getextrema() == (255, 255):
        im = im.convert("RGB")  # an opaque alpha band: JPEG may serve it, smaller and faster
    if srgb and icc:
        im = to_srgb(im, icc, im.mode)
        icc = None
    if icc:
        im.info["icc_profile"] = icc
    else:
        im.info.pop("icc_profile", None)
    return im


def encode(im: Image.Image, fmt: str, quality: Mapping[str, int]) -> bytes:
    """Encode a still image as one variant format."""
    options: dict[str, object] = {}
    icc = im.info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    if fmt == "jpeg":
        if im.mode == "RGBA":
            raise ImageError("alpha cannot go to JPEG")  # callers pick PNG instead
        options.update(quality=quality["jpeg"], progressive=True, optimize=True)
    elif fmt == "webp":
        options.update(quality=quality["webp"], method=4)
    elif fmt == "avif":
        # speed 8: measured 1.9 s vs 9.3 s CPU (default speed) for 11 corpus images at
        # 960 px, for 5 % more bytes; still 25 % smaller than WebP q80.
        options.update(quality=quality["avif"], speed=8)
    elif fmt == "png":
        options.update(compress_level=6)  # level 9 took 5x the time for ~2 % fewer bytes
    buf = io.BytesIO()
    im.save(buf, PILLOW[fmt], **options)
    return buf.getvalue()


@dataclass
class Made:
    """The variants made, and a note for each one a format could not hold."""

    variants: list[Encoded]
    notes: list[str]


def still_variants(
    im: Image.Image,
    widths: Sequence[int],
    formats: Sequence[str],
    quality: Mapping[str, int],
    original: tuple[int, str] | None = None,
) -> Made:
    """Every width × format of an upright, normalised still image, largest width first.

    Each width is resized from the previous (larger) result, which is faster than resizing
    the source each time and looks the same. ``original`` (width,
    format) names the variant the original file already is; it is not encoded again.
    A width a format cannot hold (a 1200 × 20000 screenshot is too tall for WebP) is not
    made in that format, with a note; the other widths and formats are.
    """
    made = Made([], [])
    current = im
    original_width = original[0] if original else im.size[0]
    for width in widths:
        size = (width, height_for(width, im.size))
        wanted = []
        for fmt in formats:
            if (width, fmt) == original:
                continue
            why = over_limit(fmt, size)
            if why is None:
                wanted.append(fmt)
            else:
                made.notes.append(skipped_note(fmt, size, why, original_width))
        if not wanted:
            continue  # the next (smaller) width resizes from the last one made: same result
        if current.size != size:
            icc = current.info.get("icc_profile")
            # Bicubic, measured against Lanczos on 10 corpus images at 960 px WebP q80:
            # 3.6 % fewer bytes and 17 % less CPU for 0.67 SSIMULACRA2 points.
            current = current.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
            if icc:
                current.info["icc_profile"] = icc
        for fmt in wanted:
            try:
                data = encode(current, fmt, quality)
            except DECODE_ERRORS as exc:
                # An encoder refusing one variant costs that variant, not the image's tags.
                made.notes.append(
                    skipped_note(
                        fmt, size, f"the encoder refused it ({describe(exc)})", original_width
                    )
                )
                continue
            made.variants.append(Encoded(data, size[0], size[1], fmt))
    return made


# Longest frame time an animated WebP can hold (ms): its ANMF duration field is 24 bits.
MAX_DURATION = 0xFFFFFF


@dataclass
class Animation:
    """An animation's frames, upright, RGBA and all one size, ready to encode."""

    frames: list[Image.Image]
    durations: list[int]  # ms, one per frame
    loop: int
    source_width: int  # upright width of the source, before any scaling


def animation_frames(
    im: Image.Image, widths: Sequence[int], max_pixels: int, orientation: int = 1
) -> Animation:
    """Every frame of an animated GIF/WebP, upright, as RGBA at the largest of ``widths``
    (widths never exceed the source's), with its duration and the loop count.

    Frames are scaled as they are decoded, so memory holds the frames at the largest
    variant's size, never at the source's; together they may not exceed ``max_pixels``
    pixels (4 bytes each). A GIF frame may be drawn partly outside the canvas; Pillow then
    grows the image from that frame on, and frames of different sizes made libwebp's
    animation encoder fail ("ERROR adding frame"). Browsers clip such frames to the canvas;
    so do we. A frame that cannot be decoded is the file's error.
    """
    canvas = im.size
    turn = UPRIGHT.get(orientation)
    upright = canvas[::-1] if orientation in (5, 6, 7, 8) else canvas
    target = (widths[0], height_for(widths[0], upright))
    frames: list[Image.Image] = []
    durations: list[int] = []
    try:
        # Pillow checks each GIF frame's extent against its own bomb limit here (not under
        # pixels.pixel_limit: that lock is for header reads, not for decoding).
        for frame in ImageSequence.Iterator(im):
            if (len(frames) + 1) * target[0] * target[1] > max_pixels:
                raise ImageError(
                    f"its frames at {target[0]}×{target[1]} are over {max_pixels:,} pixels "
                    f"in all ({len(frames) + 1} frames and more); raise `max_pixels` if the "
                    "animation is genuine"
                )
            rgba = frame.convert("RGBA")  # loads the frame: WebP sets duration only then
            if rgba.size != canvas:
                rgba = rgba.crop((0, 0, *canvas))
            if turn is not None:
                rgba = rgba.transpose(turn)
            if rgba.size != target:
                rgba = rgba.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
            frames.append(rgba)
            duration = int(frame.info.get("duration", im.info.get("duration", 100)) or 100)
            durations.append(min(MAX_DURATION, max(1, duration)))
    except Image.DecompressionBombError:
        raise ImageError(
            f"a frame is drawn far outside its {canvas[0]}×{canvas[1]} canvas, over Pillow's "
            "decompression-bomb limit; re-save the animation with an image editor"
        ) from None
    except DECODE_ERRORS as exc:
        raise ImageError(
            f"cannot be decoded: frame {len(frames) + 1} is damaged ({describe(exc)})"
        ) from None
    loop = im.info.get("loop", 0)
    loop = loop if isinstance(loop, int) and 0 <= loop < 65536 else 0
    return Animation(frames, durations, loop, upright[0])


def animated_variants(
    animation: Animation, widths: Sequence[int], quality: Mapping[str, int]
) -> Made:
    """Animated WebP variants of an animation (see :func:`animation_frames`), timing and
    loop kept; each width resized from the previous one, as for stills."""
    made = Made([], [])
    frames = animation.frames
    for width in widths:
        size = (width, height_for(width, animation.frames[0].size))
        why = over_limit("webp", size)
        if why is not None:
            made.notes.append(skipped_note("webp", size, why, animation.source_width))
            continue
        frames = [
            f if f.size == size else f.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
            for f in frames
        ]
        buf = io.BytesIO()
        try:
            frames[0].save(
                buf,
                "WEBP",
                save_all=True,
                append_images=frames[1:],
                duration=animation.durations,
                loop=animation.loop,
                quality=quality["webp"],
                method=4,
            )
        except DECODE_ERRORS as exc:
            why = f"the encoder refused it ({describe(exc)})"
            made.notes.append(skipped_note("webp", size, why, animation.source_width))
            continue
        made.variants.append(Encoded(buf.getvalue(), size[0], size[1], "webp"))
    return made


def drop_useless(
    variants: list[Encoded], original_bytes: int, original_width: int
) -> list[Encoded]:
    """Skip each variant that is not smaller than the next larger one of its format (or, at
    the original's width, than the original file, which serves that width already)."""
    kept: list[Encoded] = []
    larger: dict[str, int] = {}
    for variant in sorted(variants, key=lambda v: -v.width):
        limit = larger.get(variant.format)
        if limit is None and variant.width == original_width:
            limit = original_bytes
        if limit is not None and len(variant.data) >= limit:
            continue
        larger[variant.format] = len(variant.data)
        kept.append(variant)
    return kept
