"""Independent readers used by the tests: exiftool and pyexiv2, never our own parser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

PLUS = "http://ns.useplus.org/ldf/vocab/"

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
