"""SVG metadata surgery (an RDF <metadata> element), checked with exiftool and defusedxml."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
import pytest

from ssg_dmi.errors import ContainerError
from ssg_dmi.images.containers import svg

from .container_bytes import mutated
from .readers import (
    PROHIBITED,
    SAMPLE_XMP,
    assert_opt_out,
    needs_exiftool,
    tagged,
)

INKSCAPE = """\ufeff<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!-- Created with Inkscape (http://www.inkscape.org/) -->
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"
  "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg
   width="210mm" height="297mm" viewBox="0 0 210 297" version="1.1" id="svg5"
   xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
   xmlns="http://www.w3.org/2000/svg"
   xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
   xmlns:cc="http://creativecommons.org/ns#"
   xmlns:dc="http://purl.org/dc/elements/1.1/">
  <title id="t">Ünïcode ≥ title</title>
  <metadata id="plain"><app:info xmlns:app="urn:app">kept</app:info></metadata>
  <metadata
     id="metadata1">
    <rdf:RDF>
      <cc:Work
         rdf:about="">
        <dc:format>image/svg+xml</dc:format>
        <dc:creator><cc:Agent><dc:title>Old Author</dc:title></cc:Agent></dc:creator>
      </cc:Work>
    </rdf:RDF>
  </metadata>
  <g inkscape:label="Layer 1" id="layer1">
    <!-- a comment with <metadata> in it -->
    <rect x="1" y="2" width="3" height="4" data-x="a>b"/>
    <text><![CDATA[<metadata><rdf:RDF/></metadata>]]></text>
  </g>
</svg>
""".encode()

SELF_CLOSING = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4" />'
PREFIXED = b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg"><svg:rect width="1"/></svg:svg>'
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE svg [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&lol3;</text></svg>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>"""


def outside_metadata(data: bytes) -> Any:
    """The element tree without RDF metadata, whitespace-insensitive, as nested tuples."""

    def holds_rdf(element: ET.Element) -> bool:
        return element.tag.endswith("metadata") and any(
            e.tag in (svg.RDF, svg.XMPMETA) for e in element.iter()
        )

    def shape(element: ET.Element) -> Any:
        children = [shape(c) for c in element if not holds_rdf(c)]
        return (element.tag, element.attrib, (element.text or "").strip(), children)

    return shape(DET.fromstring(data))


def test_svg_inkscape_metadata_is_replaced() -> None:
    out = svg.write(INKSCAPE, SAMPLE_XMP, None, keep_other=False)
    assert outside_metadata(out) == outside_metadata(INKSCAPE)
    assert b"cc:Work" not in out
    assert b'<metadata id="plain">' in out  # metadata without RDF is not ours to remove
    assert out.startswith(INKSCAPE[: INKSCAPE.index(b"<svg")])  # prolog untouched
    root_end = INKSCAPE.index(b'dc/elements/1.1/">') + len(b'dc/elements/1.1/">')
    block = b'<metadata id="ssg-dmi">' + SAMPLE_XMP + b"</metadata>"
    assert out[: root_end + len(block)] == INKSCAPE[:root_end] + block
    assert svg.write(out, SAMPLE_XMP, None, keep_other=False) == out
    assert svg.read(out).xmp == SAMPLE_XMP
    assert svg.read(out).exif is None


def test_svg_read_inkscape_packet_is_standalone_xml() -> None:
    packet = svg.read(INKSCAPE).xmp
    assert packet is not None and packet.startswith(b"<rdf:RDF xmlns:cc=")
    work = DET.fromstring(packet).find("{http://creativecommons.org/ns#}Work")
    assert work is not None
    assert svg.read(SELF_CLOSING).xmp is None


def test_svg_self_closing_and_prefixed_roots() -> None:
    out = svg.write(SELF_CLOSING, SAMPLE_XMP, None, keep_other=False)
    assert out == (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
        b'<metadata id="ssg-dmi">' + SAMPLE_XMP + b"</metadata></svg>"
    )
    assert svg.write(out, SAMPLE_XMP, None, False) == out
    out = svg.write(PREFIXED, SAMPLE_XMP, None, keep_other=False)
    root_end = PREFIXED.index(b">") + 1
    assert out.startswith(PREFIXED[:root_end] + b'<svg:metadata id="ssg-dmi">')
    tree = DET.fromstring(out)
    assert tree[0].tag == "{http://www.w3.org/2000/svg}metadata"
    assert svg.read(out).xmp == SAMPLE_XMP


def test_svg_ascii_declaration_is_relabelled_utf8() -> None:
    source = b'<?xml version="1.0" encoding="us-ascii"?><svg xmlns="http://www.w3.org/2000/svg"/>'
    out = svg.write(source, SAMPLE_XMP, None, keep_other=False)
    assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert svg.read(out).xmp == SAMPLE_XMP


@needs_exiftool
def test_svg_exiftool_reads_it(tmp_path: Path) -> None:
    tags = tagged(tmp_path, "a.svg", svg.write(INKSCAPE, SAMPLE_XMP, None, keep_other=False))
    assert_opt_out(tags)  # exiftool reports the RDF under the usual XMP groups
    assert not [key for key in tags if key.startswith("XMP-cc:")]
    tags = tagged(tmp_path, "b.svg", svg.write(SELF_CLOSING, SAMPLE_XMP, None, False))
    assert_opt_out(tags)
    assert tags["SVG:MetadataID"] == "ssg-dmi"  # exiftool also shows our element's id


SHORT_DECLARED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4"/></svg>\n'
)


@needs_exiftool
def test_svg_padding_keeps_exiftool_from_misreading_small_svgs(tmp_path: Path) -> None:
    out = svg.write(SHORT_DECLARED, SAMPLE_XMP, None, keep_other=False)
    assert out.index(b"<x:xmpmeta") == svg.EXIFTOOL_SNIFF_BYTES
    assert_opt_out(tagged(tmp_path, "a.svg", out))
    assert svg.read(out).xmp == SAMPLE_XMP
    assert svg.write(out, SAMPLE_XMP, None, keep_other=False) == out
    # Why: with <x:xmpmeta in its first 256 bytes, exiftool takes the file for an XMP
    # sidecar and names each tag after its SVG path.
    unpadded = re.sub(rb'(<metadata id="ssg-dmi">) +', rb"\1", out)
    tags = tagged(tmp_path, "b.svg", unpadded)
    assert "XMP-plus:DataMining" not in tags
    assert tags["XMP-plus:SvgMetadataDataMining"] == PROHIBITED


BAD_SVGS = {
    "billion laughs": (BILLION_LAUGHS, "declares entities"),
    "external entity": (EXTERNAL_ENTITY, "declares entities"),
    "broken": (b'<svg xmlns="http://www.w3.org/2000/svg"><g></svg>', "not well-formed"),
    "undefined entity": (b'<svg xmlns="http://www.w3.org/2000/svg">&x;</svg>', "not well"),
    "not svg": (b'<html xmlns="http://www.w3.org/1999/xhtml"/>', "not <svg>"),
    "latin-1": (b'<?xml version="1.0" encoding="ISO-8859-1"?><svg/>', "encoding"),
    "utf-16": ('<svg xmlns="http://www.w3.org/2000/svg"/>'.encode("utf-16"), "UTF-16"),
    "svgz": (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip"),
    "empty": (b"", "not well-formed"),
    "zeros": (b"\x00" * 64, "not well-formed"),
    "bad utf-8": (b'<svg xmlns="http://www.w3.org/2000/svg"><title>\xff</title></svg>', "not"),
    "truncated": (INKSCAPE[:-10], "not well-formed"),
}


@pytest.mark.parametrize("name", BAD_SVGS)
def test_svg_bad_input_raises_container_error(name: str) -> None:
    data, reason = BAD_SVGS[name]
    with pytest.raises(ContainerError, match=reason):
        svg.write(data, SAMPLE_XMP, None, keep_other=False)
    with pytest.raises(ContainerError, match=reason):
        svg.read(data)


def test_svg_rejects_packet_that_would_break_out() -> None:
    for packet in (
        b"</metadata><script>alert(1)</script><metadata>",
        b'<?xml version="1.0"?><a/>',
        b"<!DOCTYPE a><a/>",
        b"<a>unbound <b:c/></a>",
    ):
        with pytest.raises(ContainerError):
            svg.write(SELF_CLOSING, packet, None, keep_other=False)


def test_svg_mutations_raise_only_container_error() -> None:
    rng = random.Random(3)
    for _ in range(300):
        data = mutated(rng, INKSCAPE, 3, values=b"<>/\"'=&![]?- ax\x00\xff")
        try:
            out = svg.write(data, SAMPLE_XMP, None, keep_other=False)
        except ContainerError:
            continue
        DET.fromstring(out)  # svg.write does not re-parse its result: prove it is XML
        assert svg.read(out).xmp == SAMPLE_XMP
