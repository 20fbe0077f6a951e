"""The checks of one image file, on its own bytes: nothing here trusts the build's report.
The DataMining value and the private fields come from the file's own XMP and EXIF
(:func:`ssg_dmi.images.facts.inspect_bytes`), the width from the image header."""

from __future__ import annotations

import io

from PIL import Image

from ..images import containers
from ..images.containers import Format
from ..images.facts import inspect_bytes
from ..images.pixels import exif_orientation, pixel_limit
from ..images.provenance import MIME
from ..images.provenance_read import problems, read_if_signed
from ..policy import DMI
from ..settings.signing import C2paSettings
from ..walk import variant_source
from .findings import Finding

MISSING_MANIFEST = "no C2PA manifest; `[c2pa]` is set, so the build signs it: build again"


def expects_manifest(rel: str, signing: C2paSettings | None) -> bool:
    """Whether the build signs the image at site path ``rel`` (raster or not: SVG is never
    signed, which :func:`check_image` knows from the bytes): originals whenever ``[c2pa]``
    is set, variants too with ``apply_to = "all"``."""
    if signing is None:
        return False
    return signing.apply_to == "all" or variant_source(rel) is None


def check_image(data: bytes, path: str, want: DMI, *, signed: bool = False) -> list[Finding]:
    """The file's own DataMining value and private fields; with ``signed`` (see
    :func:`expects_manifest`), a raster file must carry a C2PA manifest."""
    found = inspect_bytes(data, path)
    if found.error:
        return [Finding("image-unreadable", path, f"cannot read its metadata: {found.error}")]
    out = []
    if found.dmi is None:
        message = f"no plus:DataMining in its XMP; its policy requires {want.key}"
        out.append(Finding("image-untagged", path, message))
    elif found.dmi != want.key:
        message = f"plus:DataMining is {found.dmi}; its policy requires {want.key}"
        out.append(Finding("image-wrong-dmi", path, message))
    if found.private:
        message = f"still carries private metadata: {', '.join(found.private)}"
        out.append(Finding("image-private-metadata", path, message))
    return out + _c2pa_findings(data, path, Format(found.format or "svg"), want, signed)


def _c2pa_findings(data: bytes, path: str, fmt: Format, want: DMI, signed: bool) -> list[Finding]:
    """A C2PA manifest that disagrees with the policy or no longer matches the bytes, or
    none where the build signs."""
    try:
        facts = read_if_signed(data, fmt)
    except ImportError:
        message = "may hold a C2PA manifest; pip install 'ssg-dmi[c2pa]' to check it"
        return [Finding("image-c2pa-wrong", path, message, "warning")]
    if facts is None:
        if signed and fmt in MIME:
            return [Finding("image-c2pa-missing", path, MISSING_MANIFEST)]
        return []
    return [Finding("image-c2pa-wrong", path, message) for message in problems(facts, want)]


def pixel_width(source: bytes | str) -> int | None:
    """The displayed pixel width (EXIF orientation applied) from the image header alone;
    None for SVG or anything Pillow cannot open."""
    try:
        if isinstance(source, bytes):
            if containers.sniff(source[:64]) is Format.SVG:
                return None
            opened = Image.open(io.BytesIO(source))
        else:
            opened = Image.open(source)
        with pixel_limit(1 << 62), opened as im:
            w, h = im.size
            return int(h if exif_orientation(im) > 4 else w)
    except Exception:  # noqa: BLE001 - any reader error just means "no width to compare"
        return None
