"""What an image says about data mining, rights and privacy, read back from the file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import ExifTags

from ..errors import ImageError
from . import containers, exif
from .tagging import detect
from .xmp import dmi_key, parse_packet

_EXIF_PRIVATE_NAMES = {
    0x013C: "HostComputer",
    0x927C: "MakerNote",
    0xA420: "ImageUniqueID",
    0xA430: "CameraOwnerName",
    0xA431: "BodySerialNumber",
    0xA435: "LensSerialNumber",
    0xC62F: "CameraSerialNumber",
}


@dataclass
class Inspection:
    """One file's findings."""

    path: str
    format: str | None = None
    dmi: str | None = None
    other_constraints: str | None = None
    rights: dict[str, Any] = field(default_factory=dict)
    private: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)


def private_exif(raw: bytes | None) -> list[str]:
    """Names of the privacy-relevant EXIF fields a block still carries."""
    found = []
    block = exif.load(raw)
    if block.get_ifd(exif.GPS_IFD):
        found.append("EXIF GPS")
    for ifd in (dict(block), block.get_ifd(exif.EXIF_IFD)):
        found += [f"EXIF {name}" for tag, name in _EXIF_PRIVATE_NAMES.items() if tag in ifd]
    if block.get_ifd(ExifTags.IFD.IFD1):
        found.append("EXIF thumbnail")
    return sorted(set(found))


def inspect_bytes(data: bytes, path: str) -> Inspection:
    """Read the DMI value, rights fields and remaining private fields of one file."""
    result = Inspection(path=path)
    try:
        fmt, _ = detect(data, path)
        result.format = fmt.value
        meta = containers.read(fmt, data)
        if meta.xmp:
            found = parse_packet(meta.xmp)
            result.dmi = dmi_key(found.dmi)
            result.other_constraints = found.other_constraints
            rights = asdict(found.rights)
            rights["creators"] = "; ".join(found.rights.creators)
            result.rights = {k: v for k, v in rights.items() if v}
            result.private += [f"XMP {name}" for name in found.private]
        result.private += private_exif(meta.exif)
    except ImageError as exc:
        result.error = str(exc)
    return result
