"""The EXIF block ssg-dmi writes: rights mirrored for EXIF-only readers, privacy removed."""

from __future__ import annotations

import logging
import warnings

from PIL import Image

from ..policy import MetadataMode, Rights

log = logging.getLogger("ssg_dmi.images.exif")

ORIENTATION, ARTIST, COPYRIGHT = 0x0112, 0x013B, 0x8298
EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
# Tags that identify a person or a device, wherever they sit.
PRIVATE_TAGS = {
    0x013C,  # HostComputer
    0x927C,  # MakerNote (vendor blobs with serials, sometimes location)
    0xA420,  # ImageUniqueID
    0xA430,  # CameraOwnerName
    0xA431,  # BodySerialNumber
    0xA435,  # LensSerialNumber
    0xC62F,  # CameraSerialNumber (DNG)
    GPS_IFD,
}


def load(raw: bytes | None) -> Image.Exif:
    """Parse an EXIF block (with or without the ``Exif\\0\\0`` prefix); empty when broken."""
    exif = Image.Exif()
    if raw:
        try:
            with warnings.catch_warnings():  # Pillow warns about each broken tag; we drop them
                warnings.simplefilter("ignore")
                exif.load(raw if raw.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + raw)
        except Exception as exc:  # noqa: BLE001 - broken offsets come in every flavour
            log.debug("unreadable EXIF dropped: %s", exc)
            return Image.Exif()
    return exif


def orientation(raw: bytes | None) -> int:
    """The EXIF orientation (1-8) of a block, 1 when absent or invalid."""
    value = load(raw).get(ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def source_rights(raw: bytes | None) -> Rights:
    """The Artist and Copyright an EXIF block carries."""
    exif = load(raw)

    def text(tag: int) -> str | None:
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        return value.strip("\x00 ") or None if isinstance(value, str) else None

    artist = text(ARTIST)
    creators = tuple(a.strip() for a in artist.split(";") if a.strip()) if artist else ()
    return Rights(copyright=text(COPYRIGHT), creators=creators)


def _utf8(text: str) -> bytes:
    # EXIF ASCII fields carry UTF-8 in practice (exiftool and exiv2 read them so); Pillow
    # would turn a str into "?" for every non-ASCII character.
    return text.encode("utf-8")


def build(
    raw: bytes | None, rights: Rights, mode: MetadataMode, keep_orientation: int
) -> bytes | None:
    """The EXIF block to embed, without the ``Exif\\0\\0`` prefix, or None when empty.

    In ``keep`` mode the source's tags survive but for the private ones; otherwise only
    Orientation (when ``keep_orientation`` is not 1: pixels not rotated), Artist and
    Copyright are written. The thumbnail IFD is never written.
    """
    exif = Image.Exif()
    if mode is MetadataMode.KEEP:
        source = load(raw)
        for tag, value in source.items():
            if tag not in PRIVATE_TAGS and tag not in (EXIF_IFD, INTEROP_IFD):
                exif[tag] = value
        sub = {k: v for k, v in source.get_ifd(EXIF_IFD).items() if k not in PRIVATE_TAGS}
        sub.pop(INTEROP_IFD, None)
        if sub:
            exif[EXIF_IFD] = sub
    exif.pop(ORIENTATION, None)
    if keep_orientation != 1:
        exif[ORIENTATION] = keep_orientation
    if rights.creators:
        exif[ARTIST] = _utf8("; ".join(rights.creators))
    if rights.copyright:
        exif[COPYRIGHT] = _utf8(rights.copyright)
    if not len(exif):
        return None
    data = exif.tobytes()
    return data[6:] if data.startswith(b"Exif\x00\x00") else data
