"""Tag one image: read what it carries, build our XMP and EXIF, write them in.

Two ways: *lossless* rewrites only the metadata (pixels untouched, EXIF Orientation kept so
browsers still turn the image upright); *re-encode* decodes, applies the orientation to the
pixels, and encodes again before the metadata is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from . import containers, exif, pixels
from .containers import EXTENSIONS, Format
from .errors import ImageError
from .policy import ImagePolicy, MetadataMode, Rights
from .xmp import SourceXmp, build_packet, effective_rights, parse_packet

log = logging.getLogger("ssg_dmi.tagging")
SNIFF_BYTES = 4096


@dataclass(frozen=True)
class Tagged:
    """The result of tagging one image."""

    data: bytes
    format: Format
    reencoded: bool
    notes: tuple[str, ...] = ()


def detect(data: bytes, name: str) -> tuple[Format, list[str]]:
    """The real format of ``data`` and a note when its file name says otherwise."""
    if not data:
        raise ImageError("empty file (0 bytes); replace it with a real image or remove it")
    fmt = containers.sniff(data[:SNIFF_BYTES])
    if fmt is None:
        raise ImageError(
            "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or SVG file (unknown content); "
            "remove it or exclude it"
        )
    notes = []
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    claimed = EXTENSIONS.get(suffix)
    if claimed is not None and claimed is not fmt:
        notes.append(
            f"named {suffix} but the content is {fmt.value.upper()}; tagged as {fmt.value}"
        )
    return fmt, notes


def iptc_rights(data: bytes, fmt: Format) -> Rights:
    """By-line, Copyright Notice and Credit from an IPTC-IIM block, read with pyexiv2."""
    if fmt not in (Format.JPEG, Format.TIFF, Format.PNG):
        return Rights()
    try:
        import pyexiv2

        pyexiv2.set_log_level(4)
        with pyexiv2.ImageData(data) as image:
            iptc = image.read_iptc()
    except Exception as exc:  # noqa: BLE001 - exiv2 reports every problem as RuntimeError-ish
        log.debug("pyexiv2 could not read IPTC: %s", exc)
        return Rights()

    def one(key: str) -> str | None:
        value = iptc.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        return value.strip() or None if isinstance(value, str) else None

    byline = iptc.get("Iptc.Application2.Byline") or []
    creators = tuple(byline if isinstance(byline, list) else [byline])
    return Rights(
        copyright=one("Iptc.Application2.Copyright"),
        creators=tuple(c.strip() for c in creators if isinstance(c, str) and c.strip()),
        credit=one("Iptc.Application2.Credit"),
    )


def _source_xmp(packet: bytes | None, notes: list[str]) -> SourceXmp:
    if not packet:
        return SourceXmp()
    try:
        return parse_packet(packet)
    except ImageError as exc:
        notes.append(f"its XMP was dropped: {exc}")
        return SourceXmp()


def tag_bytes(
    data: bytes,
    policy: ImagePolicy,
    *,
    name: str,
    lossless: bool,
    max_pixels: int,
    quality: Mapping[str, int],
) -> Tagged:
    """Tag one image's bytes; raises :class:`ImageError` with a one-line reason."""
    fmt, notes = detect(data, name)
    source = containers.read(fmt, data)
    found = _source_xmp(source.xmp, notes)
    source_rights = found.rights.merged_over(exif.source_rights(source.exif))
    if policy.metadata is not MetadataMode.STRIP:
        source_rights = source_rights.merged_over(iptc_rights(data, fmt))
    rights = effective_rights(policy, source_rights)
    kept = found.other if policy.metadata is MetadataMode.KEEP else None
    packet = build_packet(policy, rights, kept)
    keep_other = policy.metadata is MetadataMode.KEEP
    if fmt is not Format.SVG:
        frames = pixels.frame_count(data, fmt, max_pixels)
    orientation = exif.orientation(source.exif)
    upright_exif = exif.build(source.exif, rights, policy.metadata, 1)
    # Our exact packet means ssg-dmi wrote this file under the same policy.
    already_ours = source.xmp == packet and orientation == 1
    # GIF and SVG have no orientation and nothing a re-encode would improve; animations are
    # kept frame for frame; output we already wrote is not re-encoded (no generation loss).
    if lossless or fmt in (Format.GIF, Format.SVG) or frames > 1 or already_ours:
        block = exif.build(source.exif, rights, policy.metadata, orientation)
        out = containers.write(fmt, data, packet, block, keep_other)
        return Tagged(out, fmt, reencoded=False, notes=tuple(notes))
    encoded = pixels.reencode(data, fmt, quality, max_pixels)
    out = containers.write(fmt, encoded, packet, upright_exif, keep_other)
    return Tagged(out, fmt, reencoded=True, notes=tuple(notes))
