"""Independent readers used by the tests: exiftool, pyexiv2 and Pillow, never our own parser."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ssg_dmi.policy import DMI

PLUS = "http://ns.useplus.org/ldf/vocab/"
PROHIBITED = PLUS + "DMI-PROHIBITED"

# A compact packet as ssg_dmi.images.xmp builds it: used by the container tests, which must not
# depend on the packet builder.
SAMPLE_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
    "<plus:DataMining>http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED</plus:DataMining>"
    '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">© Ana &lt;&amp;&gt; "Ç"</rdf:li>'
    "</rdf:Alt></dc:rights>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
).encode()
SAMPLE_RIGHTS = '© Ana <&> "Ç"'

needs_exiftool = pytest.mark.skipif(
    shutil.which("exiftool") is None, reason="exiftool not installed (libimage-exiftool-perl)"
)


def exiftool(*paths: Path, args: tuple[str, ...] = ("-G1", "-a")) -> list[dict[str, Any]]:
    """exiftool's JSON view of ``paths``, one dict per file."""
    out = subprocess.run(
        ["exiftool", "-j", "-n", *args, *map(str, paths)],
        capture_output=True,
        check=False,
        text=True,
    ).stdout
    result: list[dict[str, Any]] = json.loads(out)
    return result


def views(*paths: Path) -> dict[str, dict[str, Any]]:
    """exiftool's view of each of ``paths``, by the path as given."""
    return {str(Path(d["SourceFile"])): d for d in exiftool(*paths)}


def tagged(tmp_path: Path, name: str, data: bytes) -> dict[str, Any]:
    """exiftool's reading of ``data`` saved as ``name``."""
    path = tmp_path / name
    path.write_bytes(data)
    return exiftool(path)[0]


def dmi_of(view: dict[str, Any]) -> str | None:
    """The XMP-plus:DataMining value in one exiftool view, if it is there."""
    value = view.get("XMP-plus:DataMining")
    return value if isinstance(value, str) else None


def decoded(path: Path | bytes) -> Image.Image:
    """Pillow's decoding of a file or of bytes, fully loaded."""
    im = Image.open(io.BytesIO(path) if isinstance(path, bytes) else path)
    im.load()
    return im


def pixels(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    """Mode, size and pixels of every frame or page Pillow decodes from ``data``."""
    with Image.open(io.BytesIO(data)) as im:
        pages = []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            pages.append((im.mode, im.size, im.tobytes()))
        return pages


def assert_opt_out(tags: dict[str, Any]) -> None:
    """exiftool's view ``tags`` holds SAMPLE_XMP's data-mining value and rights."""
    assert tags["XMP-plus:DataMining"] == PROHIBITED
    assert tags["XMP-dc:Rights"] == SAMPLE_RIGHTS


def pyexiv2_xmp(data: bytes) -> dict[str, Any]:
    """pyexiv2's (exiv2's) reading of the XMP in ``data``."""
    import pyexiv2

    with pyexiv2.ImageData(data) as img:
        result: dict[str, Any] = img.read_xmp()
    return result


def pyexiv2_exif(data: bytes) -> dict[str, Any]:
    """pyexiv2's reading of the EXIF in ``data``."""
    import pyexiv2

    with pyexiv2.ImageData(data) as img:
        result: dict[str, Any] = img.read_exif()
    return result


AIPREF_LABELS = ("train-ai", "ai-use", "search")  # draft-ietf-aipref-vocab-08, all of them


def content_usage(value: str) -> dict[str, str]:
    """An aipref ``Content-Usage`` value read by an RFC 9651 Structured Fields parser
    (``http-sf``) as a Dictionary, checked against draft-ietf-aipref-vocab-08: only its three
    labels, each a bare token ``y`` or ``n`` (anything else a reader ignores as unknown)."""
    import http_sf

    parsed = http_sf.parse(value.encode("ascii"), tltype="dictionary")
    out: dict[str, str] = {}
    for label, (item, params) in parsed.items():
        assert label in AIPREF_LABELS, f"{label!r} is not a vocab-08 label: {value!r}"
        assert isinstance(item, http_sf.Token) and str(item) in ("y", "n"), (label, item)
        assert not params, (label, params)
        out[label] = str(item)
    return out


def settings_for_every_value(dmi: DMI, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Raw settings for ``dmi`` with what its SEE… values require, and ``rules`` plus a
    path with a space: the widest snippet a server must accept."""
    extra = {
        DMI.PROHIBITED_SEECONSTRAINT: {"other_constraints": "Ask first"},
        DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR: {"embedded_rights_expression": "{}"},
        DMI.PROHIBITED_SEELINKEDRIGHTSEXPR: {"linked_rights_expression": "https://e.org/r"},
    }.get(dmi, {})
    return {
        "dmi": dmi.key,
        **extra,
        "rules": [*rules, {"path": "a b/**", "dmi": "DMI-PROHIBITED"}],
    }
