"""The ``originals = "optimize"`` rule: re-encode an original only where that pays.

Measured on the dev corpus with plain Pillow: full-size JPEG q80 re-encodes cut 26.8 →
14.9 MB for 2.3 s CPU; WebP cut 32.4 → 9.7 MB but for 18.2 s CPU; PNG re-encodes came out
*larger* (66 → 71 MB) for 27 s CPU. Hence, per source:

- JPEG: re-encode when its own quality (estimated from its quantisation tables) is more
  than 5 above the target quality; a JPEG already at or near the target is left alone
  (a second lossy pass would only add generation loss).
- lossy WebP: re-encode when it spends more than 1.5 bits per pixel (a q80 photo is
  typically 0.3-1 bpp), so only heavy files pay WebP's slow encoder.
- PNG, lossless WebP, GIF, AVIF, TIFF, SVG: never (no gain, or lossless formats whose
  re-encode cannot beat the source without changing pixels).
- An image whose EXIF orientation is not 1 is re-encoded only under the rules above; a
  lossless rewrite keeps its Orientation tag, which browsers honour.

After a re-encode the result is kept only if it is at least 10 % smaller than the
losslessly tagged original; otherwise the lossless one wins.
"""

from __future__ import annotations

from collections.abc import Mapping

from PIL import Image

from .containers import Format
from .pixels import is_lossless_webp

# The IJG standard luminance quantisation table (quality 50), in natural order.
_STD_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
MIN_SAVING = 0.10
WEBP_HEAVY_BPP = 1.5
JPEG_MARGIN = 5


def jpeg_quality(im: Image.Image) -> int | None:
    """The IJG quality a JPEG's luminance table corresponds to (None when unknown)."""
    tables = getattr(im, "quantization", None)
    if not tables or 0 not in tables:
        return None
    scale = 100 * float(sum(tables[0])) / sum(_STD_LUMA)
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return int(max(1, min(100, round(quality))))


def worth_reencoding(fmt: Format, im: Image.Image, data: bytes, quality: Mapping[str, int]) -> bool:
    """Whether re-encoding this original is expected to pay (see the module docstring)."""
    if fmt is Format.JPEG:
        source_quality = jpeg_quality(im)
        return source_quality is not None and source_quality > quality["jpeg"] + JPEG_MARGIN
    if fmt is Format.WEBP and not is_lossless_webp(data):
        width, height = im.size
        return len(data) * 8 / max(1, width * height) > WEBP_HEAVY_BPP
    return False


def pays(reencoded: int, lossless: int) -> bool:
    """Whether a re-encoded original is enough smaller than the lossless one to keep."""
    return reencoded <= lossless * (1 - MIN_SAVING)
