"""Decoding and re-encoding pixels with Pillow: orientation applied, metadata left behind."""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO

from PIL import Image, ImageCms, ImageSequence

from ..errors import ImageError, describe
from . import webp_direct
from .containers import Format

PILLOW_FORMATS = {
    Format.JPEG: "JPEG",
    Format.PNG: "PNG",
    Format.WEBP: "WEBP",
    Format.GIF: "GIF",
    Format.TIFF: "TIFF",
    Format.AVIF: "AVIF",
}


# What Pillow's decoders raise on a damaged file besides OSError: SyntaxError (PNG/APNG chunk
# order, TIFF pixel layouts), TypeError (TIFF without dimensions), RuntimeError (libavif),
# and the plain Python errors of its pure-Python parsers reading past a short buffer.
DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    RuntimeError,
    struct.error,
    IndexError,
    KeyError,
    ZeroDivisionError,
    OverflowError,
)  # not MemoryError: that is the machine's limit, not the file's fault, said as such upstream

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


def open_image(data: bytes | IO[bytes], fmt: Format, max_pixels: int) -> Image.Image:
    """Open (not decode) an image, refusing decompression bombs before any pixel is read.
    ``data``: the file's bytes, or a file (read from its start)."""
    try:
        # Pillow's own bomb check runs inside open(); ours, with the size, runs just after.
        with pixel_limit(max_pixels * 2):
            fp = io.BytesIO(data) if isinstance(data, bytes) else data
            im = Image.open(fp, formats=[PILLOW_FORMATS[fmt]])
    except Image.DecompressionBombError:
        raise ImageError(_too_large("the image", max_pixels)) from None
    except DECODE_ERRORS as exc:
        raise ImageError(f"cannot be decoded as {fmt.value.upper()} ({describe(exc)})") from None
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
        if im.format == "TIFF":
            # Pillow's TIFF decoder warns (UserWarning) about each odd tag as it decodes;
            # silencing that takes the process-wide lock, so only TIFF, rare on the web,
            # decodes under it and every other format still decodes in parallel threads.
            with pixel_limit(max_pixels * 2):
                im.load()
        else:
            im.load()
    except Image.DecompressionBombError:
        raise ImageError(_too_large("a frame of the image", max_pixels)) from None
    except DECODE_ERRORS as exc:
        raise ImageError(f"cannot be decoded: truncated or corrupt ({describe(exc)})") from None


def count_frames(im: Image.Image, max_pixels: int) -> int:
    """How many frames (animation) or pages (TIFF) an opened image has.

    Pillow counts by seeking through every frame, parsing each frame's header: a damaged
    later page or frame raises there (TIFF "unknown pixel mode", a GIF frame drawn far
    outside its canvas), and that is the file's error, said as such. The image is left at
    its first frame.
    """
    frames = 1
    try:
        with pixel_limit(max_pixels * 2):
            frames = int(getattr(im, "n_frames", 1))
            im.seek(0)
    except Image.DecompressionBombError:
        raise ImageError(_too_large("a frame of the image", max_pixels)) from None
    except DECODE_ERRORS as exc:
        raise ImageError(
            f"cannot be decoded: a later frame or page is damaged ({describe(exc)})"
        ) from None
    return frames


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
    data: bytes | IO[bytes], fmt: Format, max_pixels: int, draft: tuple[int, int] | None = None
) -> Image.Image:
    """Decode an image and turn it upright per its EXIF orientation.

    ``draft`` (in upright pixels, the largest size the caller will resize to) lets libjpeg
    decode at the smallest 1/2, 1/4 or 1/8 scale that is still at least that large, which is
    far cheaper than a full decode. With a draft, a still WebP is decoded by libwebp straight
    into the image (:mod:`.webp_direct`): Pillow's very pixels, for a fifth less CPU. The
    full size is what ``max_pixels`` is checked against.
    """
    im = open_image(data, fmt, max_pixels)
    direct = None
    if draft and fmt is Format.JPEG:
        sideways = exif_orientation(im) in (5, 6, 7, 8)
        im.draft("RGB" if im.mode == "RGB" else None, draft[::-1] if sideways else draft)
    elif draft and fmt is Format.WEBP:
        direct = _webp_direct(im, data)
    if direct is None:
        load(im, max_pixels)
    else:
        im = direct
    orientation = exif_orientation(im)
    if orientation == 1:
        return im
    # A plain transpose, not ImageOps.exif_transpose: that one also rewrites the EXIF it
    # found, and a damaged block made it raise (TypeError from write_string) on pixels that
    # decode fine. Our EXIF is written afresh later; the stale copy in info is dropped.
    upright = im.transpose(UPRIGHT[orientation])
    upright.info.pop("exif", None)
    return upright


def _webp_direct(im: Image.Image, data: bytes | IO[bytes]) -> Image.Image | None:
    """An opened (not decoded) still WebP decoded by libwebp itself, at its full size, with
    the mode and ``info`` Pillow's decode gives; None where libwebp refuses (then Pillow
    decodes it). Not smaller: libwebp can decode at any smaller size, but every size tried
    moved some variant's SSIMULACRA2 by over 0.5 points (see bench/README.md)."""
    if getattr(im, "n_frames", 1) != 1 or im.mode not in ("RGB", "RGBA"):
        return None
    if not isinstance(data, bytes):
        try:
            data.seek(0)
            data = data.read()
        except (OSError, ValueError):
            return None
    decoded = webp_direct.decode(data, im.size, im.mode)
    if decoded is None:
        return None
    # As Pillow's WebP decode leaves them: the file's ICC, EXIF, XMP, loop and background
    # read at open, and the (still) frame's timing.
    decoded.info = {**im.info, "timestamp": 0, "duration": 0}
    return decoded


# EXIF orientation -> the transpose that turns stored pixels upright (as ImageOps does).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation Pillow sees in an opened image (1 when absent or unreadable).

    A damaged EXIF block is no reason to refuse the pixels: browsers then show the image
    as stored, and so do we. For a PNG not yet decoded, Pillow's ``getexif`` decodes every
    pixel first, in case an ``eXIf`` or text chunk follows them: a second full decode for a
    build, which decodes the file again to use it (0.14 s of CPU for a 5120 × 2880 PNG).
    Where no such chunk follows the image data (found by walking the chunk headers), the
    pixels cannot change the answer and are left alone; otherwise Pillow decodes as before,
    and a damaged stream surfaces again, as an ImageError, in :func:`load`.
    """
    try:
        with pixel_limit(1 << 62):
            if im.format == "PNG" and getattr(im, "tile", None) and not _png_late_meta(im):
                exif = Image.Image.getexif(im)  # PngImageFile.getexif, without the decode
            else:
                exif = im.getexif()
            value = exif.get(0x0112, 1)
    except DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# PNG chunks that Pillow reads into ``info`` when it meets them after the image data (on
# decode) and that can carry an orientation: EXIF, or EXIF/XMP in a text chunk.
_PNG_META = {b"eXIf", b"tEXt", b"zTXt", b"iTXt"}


def _png_late_meta(im: Image.Image) -> bool:
    """Whether an opened, undecoded PNG may hold metadata after its first image data chunk
    (True when its chunk headers cannot be followed to IEND: then Pillow decides)."""
    fp = getattr(im, "fp", None)
    if fp is None:
        return True
    try:
        here = fp.tell()
        try:
            fp.seek(8)
            pixels_seen = False
            while True:
                head = fp.read(8)
                if len(head) < 8:
                    return True
                length, kind = struct.unpack(">I4s", head)
                if kind == b"IEND":
                    return False
                if kind in (b"IDAT", b"fdAT", b"fcTL"):
                    pixels_seen = True
                elif pixels_seen and kind in _PNG_META:
                    return True
                fp.seek(length + 4, io.SEEK_CUR)  # the data and its CRC
        finally:
            fp.seek(here)
    except (OSError, ValueError, struct.error):
        return True


# The largest side each format's encoder writes (GIF's fields are 16-bit; the others are
# measured, see variants.LIMITS). Pillow can open a larger image than this (a GIF frame drawn
# past 65535), but not write it back.
MAX_SIDE = {Format.GIF: 65535, Format.WEBP: 16383, Format.JPEG: 65500, Format.AVIF: 32768}


def encode_like(
    im: Image.Image,
    fmt: Format,
    source: bytes,
    quality: Mapping[str, int],
    *,
    animated: bool = False,
    fast: bool = False,
) -> bytes:
    """Encode an upright image in the source's own format, without EXIF/XMP; ICC kept.

    ``animated`` (GIF, WebP, APNG) writes every frame of ``im`` with its own duration and
    the loop count, so an animation stays one. ``fast`` is for pixels that must change
    anyway (a watermark), measured on the dev corpus's marked originals (CPU of the encode
    alone, bytes against the same settings' default):

    - PNG: zlib's run-length strategy (``Z_RLE``) after Pillow's per-row filters, not
      Pillow's exhaustive ``optimize`` (154.5 s for 19 PNGs) nor level 6 (17.7 s, 69.8 MB):
      5.0 s, 70.6 MB, against 66.3 MB of sources (0.93-1.15× each); of that 5.0 s,
      3.2 s is Pillow's filtering and copying, which even a stored (level 0) stream costs.
    - lossy WebP: libwebp ``method`` 2 instead of Pillow's 4: 4.5 s instead of 11.7 s for
      14 4096² originals, 10.1 MB instead of 9.8, PSNR against the marked pixels 41.78 dB
      instead of 41.81.
    - JPEG: as without ``fast`` (optimised, progressive: 1.4 s for 22 originals; dropping
      progressive would save 0.8 s for 3 % more bytes and lose progressive rendering).
    """
    if im.mode == "P" and im.palette is None:
        # Pillow opens a palette PNG without its PLTE chunk, then fails writing it (an
        # UnboundLocalError inside its PNG writer); libpng and browsers refuse it outright.
        raise ImageError(
            "cannot be decoded: a palette image without its palette (PLTE chunk missing)"
        )
    side = MAX_SIDE.get(fmt)
    if side is not None and max(im.size) > side:
        raise ImageError(
            f"cannot be re-encoded as {fmt.value.upper()}: {im.size[0]}×{im.size[1]} is over "
            f"the format's limit of {side} pixels a side"
        )
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
        if fast:
            options.update(compress_level=6, compress_type=zlib.Z_RLE)
        else:
            options.update(optimize=True)
        if "transparency" in im.info:
            options["transparency"] = im.info["transparency"]
    elif fmt is Format.WEBP:
        if is_lossless_webp(source):
            options.update(lossless=True, exact=True)
        else:
            options.update(quality=quality["webp"], method=2 if fast else 4)
    elif fmt is Format.AVIF:
        options.update(quality=quality["avif"])
    elif fmt is Format.TIFF:
        options.update(compression="tiff_adobe_deflate")
    if animated and fmt in (Format.GIF, Format.WEBP, Format.PNG):
        options.update(save_all=True, duration=frame_durations(im))
        if "loop" in im.info:  # without one, a GIF plays once: no loop count is written
            options["loop"] = im.info["loop"]
    try:
        im.save(out, PILLOW_FORMATS[fmt], **options)
    except DECODE_ERRORS as exc:
        raise ImageError(f"cannot be re-encoded as {fmt.value.upper()} ({describe(exc)})") from None
    return out.getvalue()


def frame_durations(im: Image.Image) -> list[int]:
    """Each frame's display time in ms (100 where a file says none or 0, as browsers do
    for such frames); the image is left at its first frame."""
    durations = []
    try:
        # Frame by frame as Pillow's writers take them (ImageSequence), which ends where the
        # frames do: an APNG may announce more frames than it holds.
        for frame in ImageSequence.Iterator(im):
            frame.load()  # WebP sets a frame's duration only once it is decoded
            durations.append(int(frame.info.get("duration", 0) or 0) or 100)
        im.seek(0)
    except DECODE_ERRORS as exc:
        raise ImageError(f"cannot be decoded: a frame is damaged ({describe(exc)})") from None
    return durations


def frame_count(data: bytes, fmt: Format, max_pixels: int) -> int:
    """How many frames (animation) or pages (TIFF) the image has."""
    return count_frames(open_image(data, fmt, max_pixels), max_pixels)
