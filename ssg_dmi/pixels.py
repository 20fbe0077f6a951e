"""Decoding and re-encoding pixels with Pillow: orientation applied, metadata left behind."""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from PIL import Image, ImageCms, ImageOps

from .containers import Format
from .errors import ImageError

PILLOW_FORMATS = {
    Format.JPEG: "JPEG",
    Format.PNG: "PNG",
    Format.WEBP: "WEBP",
    Format.GIF: "GIF",
    Format.TIFF: "TIFF",
    Format.AVIF: "AVIF",
}


# Pillow's pixel limit and Python's warning filters are process-wide: one lock keeps
# concurrent threads from restoring each other's values. Only header parsing and EXIF reads
# run under it; pixel decoding does not.
_PILLOW_GLOBALS = threading.RLock()


@contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Let Pillow open images up to ``max_pixels``; our own check refuses anything larger."""
    # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; ssg-dmi applies its
    # own limit with a clearer message, so Pillow's is set just out of the way.
    # Pillow's UserWarnings (corrupt EXIF, skipped tags) are silenced too: the file is
    # either tagged or reported by ImageError, never both warned about and processed.
    with _PILLOW_GLOBALS:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def open_image(data: bytes, fmt: Format, max_pixels: int) -> Image.Image:
    """Open (not decode) an image, refusing decompression bombs before any pixel is read."""
    try:
        # Pillow's own bomb check runs inside open(); ours, with the size, runs just after.
        with pixel_limit(max_pixels * 2):
            im = Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[fmt]])
    except Image.DecompressionBombError:
        raise ImageError(_too_large("the image", max_pixels)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot be decoded as {fmt.value.upper()} ({exc})") from None
    width, height = im.size
    if width * height > max_pixels:
        raise ImageError(_too_large(f"{width}×{height} = {width * height:,} pixels", max_pixels))
    return im


def _too_large(what: str, max_pixels: int) -> str:
    return (
        f"{what} is over the limit of {max_pixels:,} pixels (possible decompression bomb); "
        "raise `max_pixels` if the image is genuine"
    )


def load(im: Image.Image, max_pixels: int) -> None:
    """Decode all pixels, turning Pillow's many failure types into one clear ImageError."""
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot be decoded: truncated or corrupt ({exc})") from None


def to_srgb(im: Image.Image, icc: bytes | None, mode: str) -> Image.Image:
    """``im`` converted to sRGB in ``mode`` through its ICC profile ``icc`` when there is one
    (a plain conversion otherwise); the result carries no profile."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            out = ImageCms.profileToProfile(im, source, srgb, outputMode=mode)
            if out is not None:
                out.info.pop("icc_profile", None)
                return out
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    out = im.convert(mode)
    out.info.pop("icc_profile", None)
    return out


def is_lossless_webp(data: bytes) -> bool:
    """Whether a still WebP is VP8L-coded (re-encoding it lossy would lose information)."""
    return b"VP8L" in data[12:64] and b"VP8 " not in data[12:64]


def decode_upright(
    data: bytes, fmt: Format, max_pixels: int, draft: tuple[int, int] | None = None
) -> Image.Image:
    """Decode an image and turn it upright per its EXIF orientation.

    ``draft`` (JPEG only) lets libjpeg decode at the smallest 1/2, 1/4 or 1/8 scale that is
    still at least that large (in upright pixels), which is far cheaper than a full decode.
    """
    im = open_image(data, fmt, max_pixels)
    if draft and fmt is Format.JPEG:
        sideways = exif_orientation(im) in (5, 6, 7, 8)
        im.draft("RGB" if im.mode == "RGB" else None, draft[::-1] if sideways else draft)
    load(im, max_pixels)
    if exif_orientation(im) == 1:
        return im  # exif_transpose would return a full copy for nothing
    with pixel_limit(max_pixels * 2):
        upright = ImageOps.exif_transpose(im)
    if upright is None:  # only with in_place=True
        upright = im
    upright.info.setdefault("icc_profile", im.info.get("icc_profile"))
    if not upright.info["icc_profile"]:
        upright.info.pop("icc_profile")
    return upright


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation Pillow sees in an opened image (1 when absent)."""
    with pixel_limit(1 << 62):
        value = im.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def encode_like(im: Image.Image, fmt: Format, source: bytes, quality: Mapping[str, int]) -> bytes:
    """Encode an upright image in the source's own format, without EXIF/XMP; ICC kept."""
    icc = im.info.get("icc_profile")
    if fmt is Format.JPEG and im.mode == "CMYK":
        im = to_srgb(im, icc, "RGB")
        icc = im.info.get("icc_profile")
    out = io.BytesIO()
    options: dict[str, object] = {}
    if icc:
        options["icc_profile"] = icc
    if fmt is Format.JPEG:
        if im.mode not in ("L", "RGB", "CMYK"):
            im = im.convert("RGB")
        options.update(quality=quality["jpeg"], optimize=True, progressive=True)
    elif fmt is Format.PNG:
        options.update(optimize=True)
        if "transparency" in im.info:
            options["transparency"] = im.info["transparency"]
    elif fmt is Format.WEBP:
        if is_lossless_webp(source):
            options.update(lossless=True, exact=True)
        else:
            options.update(quality=quality["webp"])
    elif fmt is Format.AVIF:
        options.update(quality=quality["avif"])
    elif fmt is Format.TIFF:
        options.update(compression="tiff_adobe_deflate")
    try:
        im.save(out, PILLOW_FORMATS[fmt], **options)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot be re-encoded as {fmt.value.upper()} ({exc})") from None
    return out.getvalue()


def frame_count(data: bytes, fmt: Format, max_pixels: int) -> int:
    """How many frames (animation) or pages (TIFF) the image has."""
    im = open_image(data, fmt, max_pixels)
    return int(getattr(im, "n_frames", 1))
