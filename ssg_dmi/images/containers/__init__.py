"""Lossless metadata surgery, one small module per container format.

Every module exposes the same two functions:

``read(data: bytes) -> Metadata``
    The XMP packet and EXIF block the file carries, found by walking its container
    structure (no pixel decoding).

``write(data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes``
    The same file with every existing EXIF and XMP block removed and exactly one of each
    written in their place (``exif=None`` writes none). Pixels and colour data (ICC
    profiles, JPEG Adobe/JFIF segments, PNG colour chunks, animation) are kept byte for
    byte. Embedded previews and secondary images (JPEG MPF, trailers after EOI) and
    IPTC-IIM blocks and comments are removed unless ``keep_other`` is true, in which case
    IPTC-IIM and comments/text are kept (previews never are). ``write`` is idempotent:
    ``write(write(d, x, e), x, e) == write(d, x, e)``.

Malformed containers raise :class:`ssg_dmi.errors.ContainerError` with a one-line reason.
Slips that decoders pass over and that can be passed over without risk to the pixels are
tolerated the way browsers tolerate them (junk between JPEG segments, a bad CRC on a PNG
ancillary chunk, bytes between GIF blocks): see each module.
``exif`` is a TIFF-structured EXIF block (starting ``II*\\0`` or ``MM\\0*``) without the
JPEG ``Exif\\0\\0`` prefix; ``xmp`` is a complete UTF-8 XMP packet.
"""

from __future__ import annotations

from types import ModuleType

from ...formats import EXTENSIONS, Format
from . import bmff, gif, jpeg, png, riff, svg, tiff
from .metadata import Metadata

__all__ = ["EXTENSIONS", "Format", "Metadata", "read", "sniff", "write"]


def sniff(head: bytes) -> Format | None:
    """The format a file really is, from its first bytes (at least 64 of them)."""
    if head.startswith(b"\xff\xd8\xff"):
        return Format.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Format.PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Format.WEBP
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Format.GIF
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Format.TIFF
    if head[4:8] == b"ftyp" and any(
        brand in head[8:64] for brand in (b"avif", b"avis", b"mif1", b"heic", b"heix")
    ):
        return Format.AVIF
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<?xml", b"<svg", b"<!--", b"<!doctype svg")) and b"<svg" in head.lower():
        return Format.SVG
    return None


def module(fmt: Format) -> ModuleType:
    """The container module that handles ``fmt``."""

    return {
        Format.JPEG: jpeg,
        Format.PNG: png,
        Format.WEBP: riff,
        Format.GIF: gif,
        Format.TIFF: tiff,
        Format.AVIF: bmff,
        Format.SVG: svg,
    }[fmt]


def read(fmt: Format, data: bytes) -> Metadata:
    """The XMP and EXIF that ``data`` (a file of format ``fmt``) carries."""
    result: Metadata = module(fmt).read(data)
    return result


def write(fmt: Format, data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes:
    """``data`` with its XMP and EXIF replaced; see the module docstring."""
    result: bytes = module(fmt).write(data, xmp, exif, keep_other)
    return result
