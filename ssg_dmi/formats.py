"""The image formats ssg-dmi handles and the file extensions that name them.

A base module: the site walker, the image engine and the audit all need to know what an
image file is called, without depending on each other.
"""

from __future__ import annotations

import enum
import os


class Format(enum.StrEnum):
    """Image container formats ssg-dmi handles."""

    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    GIF = "gif"
    TIFF = "tiff"
    AVIF = "avif"
    SVG = "svg"


EXTENSIONS: dict[str, Format] = {
    ".jpg": Format.JPEG,
    ".jpeg": Format.JPEG,
    ".jpe": Format.JPEG,
    ".png": Format.PNG,
    ".webp": Format.WEBP,
    ".gif": Format.GIF,
    ".tif": Format.TIFF,
    ".tiff": Format.TIFF,
    ".avif": Format.AVIF,
    ".svg": Format.SVG,
}


class VariantFormat(enum.StrEnum):
    """The formats responsive variants are encoded in (a subset of :class:`Format`)."""

    AVIF = "avif"
    WEBP = "webp"
    JPEG = "jpeg"
    PNG = "png"


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the image extensions ssg-dmi handles."""
    return os.path.splitext(name)[1].lower() in EXTENSIONS
