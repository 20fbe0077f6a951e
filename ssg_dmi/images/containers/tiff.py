"""TIFF: XMP is tag 700 (XMLPacket) and the EXIF block *is* the first IFD.

TIFF keeps pixels and metadata in the same IFDs, so there is no block to swap out: every
page is decoded and re-encoded with Pillow, losslessly, with only the tags we choose.
Pages are built from ``Image.copy()``, which carries no tags of the source; that is what
guarantees that GPS, the Exif IFD (serial numbers, maker notes), IPTC and Photoshop blocks
cannot leak through Pillow's habit of copying the source's tags into the output.
"""

from __future__ import annotations

import functools
import io
import struct
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from PIL import Image, TiffImagePlugin

from ...errors import ContainerError, describe
from .metadata import Metadata

P = ParamSpec("P")
R = TypeVar("R")

# Compressions Pillow/libtiff can write that give back exactly the decoded pixels.
LOSSLESS = frozenset(
    {
        "raw",
        "packbits",
        "tiff_lzw",
        "tiff_adobe_deflate",
        "tiff_deflate",
        "tiff_ccitt",
        "group3",
        "group4",
        "lzma",
        "zstd",
    }
)
BITS_TAG = 258
XMP_TAG = 700
IPTC_TAG = 33723
ICC_TAG = 34675
# IFD0 tags taken from the caller's EXIF block: descriptive text and Orientation (which
# decides how the image is shown). Layout tags from a foreign EXIF (a JPEG's resolution,
# YCbCr positioning) must not override this file's own.
EXIF_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x8298)
# Source tags kept with keep_other: ImageDescription, Make, Model, Software, DateTime.
OTHER_TAGS = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132)
# Tags that describe the page rather than its provenance: its role (reduced-resolution
# page), its number in a document, its resolution and how it is shown (Orientation, which
# the caller's EXIF may override).
PAGE_TAGS = (254, 297, 282, 283, 296, 0x0112)
PREDICTOR_TAG = 317
PREDICTED = ("tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "zstd", "lzma")
ORIENTATION_TAG = 0x0112
EXIF_IFD_TAG, GPS_IFD_TAG, INTEROP_TAG = 0x8769, 0x8825, 0xA005
# Pillow 13 applies Orientation while decoding a TIFF page; these transposes undo that so
# the stored pixel layout, and the Orientation that describes it, stay the source's.
UNDO_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
# Tags that are not EXIF: pixel layout and other blocks. read() leaves them out of the
# EXIF block it returns, since their offsets and sizes mean nothing outside this file.
LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317}
    | {320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 512, 513, 514, 515, 517}
    | {518, 519, 520, 521, 529, 530, 531, 532, XMP_TAG, IPTC_TAG, 34377, ICC_TAG, 37724}
)


def _open(data: bytes) -> TiffImagePlugin.TiffImageFile:
    if data[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        raise ContainerError("not a TIFF file (no II*/MM* signature)")
    try:
        # Image.open enforces Image.MAX_IMAGE_PIXELS on the first page.
        im = Image.open(io.BytesIO(data), formats=["TIFF"])
    except Image.DecompressionBombError as exc:
        raise ContainerError(f"TIFF is too large to rewrite safely: {describe(exc)}") from exc
    except Exception as exc:  # Pillow raises many types for damaged files
        raise ContainerError(f"TIFF could not be parsed: {describe(exc)}") from exc
    if not isinstance(im, TiffImagePlugin.TiffImageFile):
        raise ContainerError("TIFF could not be parsed as TIFF")
    return im


def _quiet(func: Callable[P, R]) -> Callable[P, R]:
    """Pillow warns about damaged tags ("Corrupt EXIF data") on stderr; what matters of them
    comes back as our own note or error, once."""

    @functools.wraps(func)
    def quiet(*args: P.args, **kwargs: P.kwargs) -> R:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return func(*args, **kwargs)

    return quiet


@_quiet
def read(data: bytes) -> Metadata:
    """Tag 700 and the first IFD's metadata tags as an EXIF block (no pixel decoding)."""
    with _open(data) as im:
        try:
            xmp = im.info.get("xmp")
            block = _exif_block(im.getexif())
        except Exception as exc:
            raise ContainerError(f"TIFF metadata could not be read: {describe(exc)}") from exc
    if isinstance(xmp, tuple):  # tag stored with a numeric type: bytes after all
        xmp = bytes(xmp)
    return Metadata(xmp=xmp if isinstance(xmp, bytes) and xmp else None, exif=block)


def _exif_block(exif: Image.Exif) -> bytes | None:
    """IFD0 without layout tags, with its Exif and GPS sub-IFDs, as a TIFF-structured block."""
    for tag in LAYOUT_TAGS & set(exif):
        del exif[tag]
    for tag in (EXIF_IFD_TAG, GPS_IFD_TAG):
        if tag not in exif:
            continue
        try:
            sub = exif.get_ifd(tag)
        except Exception:  # a dangling pointer loses that sub-IFD, not the whole block
            sub = {}
        # The Interop pointer is an offset into the source file; it would dangle here.
        # (Strings stay str: Pillow writes sub-IFDs without their tag group, so bytes
        # would lose their ASCII type.)
        exif[tag] = {k: v for k, v in sub.items() if k != INTEROP_TAG}
    for tag, value in list(exif.items()):
        if tag not in (EXIF_IFD_TAG, GPS_IFD_TAG):
            exif[tag] = _raw_text(value)
    if not len(exif):
        return None
    block = exif.tobytes()
    return block[6:] if block.startswith(b"Exif\x00\x00") else block


def _caller_tags(exif: bytes | None) -> dict[int, Any]:
    """The IFD0 tags of the caller's EXIF block that we write (see EXIF_TAGS)."""
    if exif is None:
        return {}
    # Pillow's EXIF loader shrugs off a bad header or IFD offset and yields no tags.
    byte_order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(exif[:4])
    if byte_order is None or len(exif) < 8:
        raise ContainerError("EXIF block given for the TIFF has no TIFF header")
    if struct.unpack(byte_order + "I", exif[4:8])[0] + 2 > len(exif):
        raise ContainerError("EXIF block given for the TIFF points past its end")
    parsed = Image.Exif()
    try:
        parsed.load(exif)
        return {tag: _raw_text(parsed[tag]) for tag in EXIF_TAGS if tag in parsed}
    except Exception as exc:
        raise ContainerError(
            f"EXIF block given for the TIFF is malformed: {describe(exc)}"
        ) from exc


def _raw_text(value: Any) -> Any:
    # Pillow decodes ASCII tags as Latin-1 and would re-encode them as ASCII with "?" for
    # anything else: hand it the original bytes (often UTF-8, as exiftool writes) instead.
    return value.encode("latin-1") if isinstance(value, str) else value


def _page_params(
    page: TiffImagePlugin.TiffImageFile,
    xmp: bytes | None,
    caller: dict[int, Any],
    keep_other: bool,
) -> dict[str, Any]:
    """Everything Pillow needs to write ``page`` again, explicitly, with our tags."""
    compression = page.info.get("compression", "raw")
    if compression not in LOSSLESS:
        raise ContainerError(f"lossless rewrite of {compression!r} compression is not supported")
    tags = page.tag_v2
    _check_depth(page.mode, tags.get(BITS_TAG, (1,)))
    tiffinfo: dict[int, Any] = {tag: tags[tag] for tag in PAGE_TAGS if tag in tags}
    # The predictor keeps LZW/Deflate output as small as the source's.
    if compression in PREDICTED and tags.get(PREDICTOR_TAG, 1) != 1:
        tiffinfo[PREDICTOR_TAG] = tags[PREDICTOR_TAG]
    if keep_other:
        tiffinfo.update({tag: _raw_text(tags[tag]) for tag in OTHER_TAGS if tag in tags})
        # IPTC-IIM is kept when stored as bytes; some writers store it as LONGs, which
        # would need the source's byte order to turn back into a block: dropped then.
        if isinstance(tags.get(IPTC_TAG), bytes):
            tiffinfo[IPTC_TAG] = tags[IPTC_TAG]
    tiffinfo.update(caller)
    if xmp is not None:
        tiffinfo[XMP_TAG] = xmp
    # Every key is set on every page: Pillow fills keys a later page lacks from the first
    # page's parameters, which would copy page 1's ICC profile onto page 2.
    return {
        "compression": compression,
        # From the tag, not page.info: Pillow leaves a previous page's profile in info.
        "icc_profile": tags.get(ICC_TAG),
        "tiffinfo": tiffinfo,
    }


def _check_depth(mode: str, source: Any) -> None:
    """Refuse pages Pillow decodes to fewer bits than they have (48-bit RGB becomes 24-bit)."""
    written = TiffImagePlugin.SAVE_INFO.get(mode, (None,) * 5)[4]
    if written is None:
        raise ContainerError(f"TIFF pages of mode {mode!r} cannot be written back")
    source = source if isinstance(source, tuple) else (source,)
    if len(source) > len(written) or any(s > w for s, w in zip(source, written, strict=False)):
        raise ContainerError(
            f"TIFF has {'/'.join(map(str, source))}-bit samples that Pillow would reduce"
            f" to {'/'.join(map(str, written))} bits; left unchanged"
        )


@_quiet
def write(data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes:
    """Every page re-encoded losslessly; IFD0 gets tag 700 = ``xmp`` and ``exif``'s tags."""
    caller = _caller_tags(exif)
    limit = Image.MAX_IMAGE_PIXELS
    pages: list[tuple[Image.Image, dict[str, Any]]] = []
    total = 0
    with _open(data) as im:
        try:
            for index in range(getattr(im, "n_frames", 1)):
                im.seek(index)
                total += im.width * im.height
                # Pillow only checks the first page; all pages are held in memory at once.
                if limit is not None and total > 2 * limit:
                    raise ContainerError(f"TIFF pages hold more than {2 * limit} pixels")
                # Read before decoding: Pillow deletes the tag once it has applied it.
                orientation = im.tag_v2.get(ORIENTATION_TAG, 1)
                # One XMP packet and one set of EXIF tags, in IFD0 where readers look.
                if index == 0:
                    params = _page_params(im, xmp, caller, keep_other)
                else:
                    params = _page_params(im, None, {}, keep_other)
                page = im.copy()
                if orientation in UNDO_ORIENTATION:
                    page = page.transpose(UNDO_ORIENTATION[orientation])
                pages.append((page, params))
        except ContainerError:
            raise
        except Exception as exc:
            raise ContainerError(f"TIFF page could not be decoded: {describe(exc)}") from exc
    first, first_params = pages[0]
    for page, params in pages[1:]:
        page.encoderinfo = params
    out = io.BytesIO()
    try:
        first.save(
            out,
            "TIFF",
            save_all=True,
            append_images=[page for page, _ in pages[1:]],
            **first_params,
        )
    except Exception as exc:
        raise ContainerError(f"TIFF could not be re-encoded losslessly: {describe(exc)}") from exc
    return out.getvalue()
