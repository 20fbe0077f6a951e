"""Tag one image: read what it carries, build our XMP and EXIF, write them in.

Two ways: *lossless* rewrites only the metadata (pixels untouched, EXIF Orientation kept so
browsers still turn the image upright); *re-encode* decodes, applies the orientation to the
pixels, and encodes again before the metadata is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ContainerError, ImageError, describe
from ..policy import ImagePolicy, MetadataMode, Rights
from . import containers, exif, pixels
from .containers import EXTENSIONS, Format
from .xmp import SourceXmp, build_packet, effective_rights, parse_packet

log = logging.getLogger("ssg_dmi.images.tagging")
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


@dataclass(frozen=True)
class TagPlan:
    """What to write into one image and everything derived from it, computed once."""

    format: Format
    packet: bytes
    rights: Rights
    policy: ImagePolicy
    source: containers.Metadata
    orientation: int
    notes: tuple[str, ...]

    def exif(self, orientation: int) -> bytes | None:
        """The EXIF block for pixels stored with ``orientation`` (1: already upright)."""
        return exif.build(self.source.exif, self.rights, self.policy.metadata, orientation)

    @property
    def already_ours(self) -> bool:
        """Whether ssg-dmi wrote this file under the same policy (re-encoding would only lose)."""
        return self.source.xmp == self.packet and self.orientation == 1

    def write(self, data: bytes, fmt: Format | None = None, *, upright: bool) -> bytes:
        """``data`` (of ``fmt``, default the source's) with our XMP and EXIF in it."""
        fmt = fmt or self.format
        block = self.exif(1 if upright else self.orientation)
        keep_other = self.policy.metadata is MetadataMode.KEEP and fmt is self.format
        return containers.write(fmt, data, self.packet, block, keep_other)


def plan(data: bytes, policy: ImagePolicy, name: str) -> TagPlan:
    """Read a source's metadata and build the tags it will carry."""
    fmt, notes = detect(data, name)
    source = containers.read(fmt, data)
    found = _source_xmp(source.xmp, notes)
    source_rights = found.rights.merged_over(exif.source_rights(source.exif))
    if policy.metadata is not MetadataMode.STRIP:
        source_rights = source_rights.merged_over(iptc_rights(data, fmt))
    rights = effective_rights(policy, source_rights)
    kept = found.other if policy.metadata is MetadataMode.KEEP else None
    return TagPlan(
        format=fmt,
        packet=build_packet(policy, rights, kept),
        rights=rights,
        policy=policy,
        source=source,
        orientation=exif.orientation(source.exif),
        notes=tuple(notes),
    )


def keeps_pixels(tags: TagPlan, frames: int) -> bool:
    """Whether a file is always tagged losslessly, whatever the mode asks.

    GIF and SVG have no orientation and nothing a re-encode would improve; animations are
    kept frame for frame; output we already wrote is not re-encoded (no generation loss).
    """
    return tags.format in (Format.GIF, Format.SVG) or frames > 1 or tags.already_ours


def reencoded_note(refused: ContainerError) -> str:
    """The note on a file tagged through :func:`reencode_to_tag`."""
    return f"its container was malformed ({describe(refused)}); re-encoded to tag it"


def reencode_to_tag(
    data: bytes,
    name: str,
    policy: ImagePolicy,
    max_pixels: int,
    quality: Mapping[str, int],
    tags: TagPlan | None,
    refused: ContainerError,
) -> tuple[bytes, TagPlan]:
    """A source whose container our parsers refused, decoded by Pillow, encoded again in
    its own format and tagged: (the tagged bytes, their plan).

    ``tags`` is the source's plan when only the rewrite refused (its rights are kept);
    otherwise the plan is made from the re-encoded file. Raises ImageError naming both
    reasons when Pillow cannot decode the file either; SVG and multi-page TIFF are never
    re-encoded (their text, their pages would change).
    """
    fmt = tags.format if tags is not None else detect(data, name)[0]
    if fmt is Format.SVG:
        raise refused
    try:
        im = pixels.open_image(data, fmt, max_pixels)
        frames = pixels.count_frames(im, max_pixels)
        if frames > 1 and fmt is Format.TIFF:
            raise ImageError("is a multi-page TIFF, which a re-encode would cut to one page")
        animated = frames > 1
        if animated:  # GIF, WebP and APNG stay animated, frames as stored
            pixels.load(im, max_pixels)
            upright = im
        else:
            upright = pixels.decode_upright(data, fmt, max_pixels)
        encoded = pixels.encode_like(upright, fmt, data, quality, animated=animated)
    except ImageError as exc:
        why = describe(refused)  # without Pillow's buffer address: reports stay stable
        raise ImageError(f"{why}; re-encoding it failed too: it {exc}") from None
    try:
        tags = tags or plan(encoded, policy, name)
        return tags.write(encoded, upright=not animated), tags
    except ContainerError as exc:
        why = describe(refused)
        raise ImageError(f"{why}; its re-encoding could not be tagged either ({exc})") from None


def tag_bytes(
    data: bytes,
    policy: ImagePolicy,
    *,
    name: str,
    lossless: bool,
    max_pixels: int,
    quality: Mapping[str, int],
) -> Tagged:
    """Tag one image's bytes; raises :class:`ImageError` with a one-line reason.

    Unless ``lossless``, a file whose container our parsers refuse is re-encoded to be
    tagged when Pillow decodes it (see :func:`reencode_to_tag`).
    """
    tags: TagPlan | None = None
    try:
        tags = plan(data, policy, name)
        fmt = tags.format
        frames = 1 if fmt is Format.SVG else pixels.frame_count(data, fmt, max_pixels)
        if lossless or keeps_pixels(tags, frames):
            return Tagged(tags.write(data, upright=False), fmt, False, tags.notes)
    except ContainerError as exc:
        if lossless:
            raise
        out, tags = reencode_to_tag(data, name, policy, max_pixels, quality, tags, exc)
        return Tagged(out, tags.format, True, (*tags.notes, reencoded_note(exc)))
    im = pixels.decode_upright(data, tags.format, max_pixels)
    encoded = pixels.encode_like(im, tags.format, data, quality)
    return Tagged(tags.write(encoded, upright=True), tags.format, True, tags.notes)
