"""GIF, SVG and TIFF metadata surgery, checked with exiftool, pyexiv2 and Pillow."""

from __future__ import annotations

import contextlib
import io
import random
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
import pytest
from PIL import GifImagePlugin, Image, ImageCms, TiffImagePlugin

from ssg_dmi.errors import ContainerError
from ssg_dmi.images.containers import Metadata, gif, svg, tiff
from tests.readers import (
    SAMPLE_RIGHTS,
    SAMPLE_XMP,
    exiftool,
    needs_exiftool,
    pyexiv2_exif,
    pyexiv2_xmp,
)

PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"
OTHER_XMP = SAMPLE_XMP.replace(b"DMI-PROHIBITED", b"DMI-ALLOWED")


def tagged(tmp_path: Path, name: str, data: bytes) -> dict[str, Any]:
    """exiftool's reading of ``data`` saved as ``name``."""
    path = tmp_path / name
    path.write_bytes(data)
    return exiftool(path)[0]


def assert_opt_out(tags: dict[str, Any]) -> None:
    assert tags["XMP-plus:DataMining"] == PROHIBITED
    assert tags["XMP-dc:Rights"] == SAMPLE_RIGHTS


# ----------------------------------------------------------------------------- GIF


def make_gif(comment: bytes = b"made by a camera app", version: bytes = b"GIF89a") -> bytes:
    frames = [Image.new("P", (12, 8), i) for i in range(3)]
    for i, frame in enumerate(frames):
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] * 64)
        frame.putpixel((i, i), 3)
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        loop=0,
        duration=[100, 200, 300],
        comment=comment,
    )
    data = buffer.getvalue()
    return version + data[6:]


def gif_frames(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as im:
        assert isinstance(im, GifImagePlugin.GifImageFile)
        frames = []
        for index in range(im.n_frames):
            im.seek(index)
            frames.append(
                im.convert("RGBA").tobytes() + struct.pack("<I", im.info.get("duration", 0))
            )
        return frames


def gif_blocks(data: bytes) -> list[bytes]:
    """The introducer + label (or app id) of each block, via the module's own walker."""
    _, blocks = gif._parse(data)
    return [b.raw[:2] + b.app_id for b in blocks]


def test_gif_write_keeps_animation_and_drops_comment() -> None:
    source = make_gif()
    out = gif.write(source, SAMPLE_XMP, None, keep_other=False)
    assert gif_frames(out) == gif_frames(source)
    with Image.open(io.BytesIO(out)) as im:
        assert isinstance(im, GifImagePlugin.GifImageFile)
        assert im.n_frames == 3
        assert im.info["loop"] == 0
        assert "comment" not in im.info
    # Right after the loop extension, before the first graphic control extension.
    assert gif_blocks(out)[:3] == [b"!\xffNETSCAPE2.0", b"!\xffXMP DataXMP", b"!\xf9"]
    assert out.count(b"XMP DataXMP") == 1
    # Every other block (loop, graphic control, frames) is the source's, byte for byte.
    kept = [b.raw for b in gif._parse(out)[1] if b.app_id != gif.XMP_ID]
    assert kept == [b.raw for b in gif._parse(source)[1] if b.raw[:2] != b"!\xfe"]
    # The only bytes added are the block itself; the removed comment is gone.
    overhead = 3 + len(gif.XMP_ID) + len(SAMPLE_XMP) + len(gif.MAGIC_TRAILER) + 1
    comment_block = 2 + 1 + len(b"made by a camera app") + 1
    assert len(out) - len(source) == overhead - comment_block


def test_gif_keep_other_keeps_comment() -> None:
    out = gif.write(make_gif(), SAMPLE_XMP, None, keep_other=True)
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["comment"] == b"made by a camera app"


def test_gif_read_round_trip_and_idempotence() -> None:
    source = make_gif()
    assert gif.read(source) == Metadata()
    once = gif.write(source, SAMPLE_XMP, b"II*\x00ignored", keep_other=False)
    assert gif.read(once).xmp == SAMPLE_XMP
    assert gif.read(once).exif is None
    assert gif.write(once, SAMPLE_XMP, None, keep_other=False) == once
    replaced = gif.write(once, OTHER_XMP, None, keep_other=False)
    assert gif.read(replaced).xmp == OTHER_XMP
    assert replaced.count(b"XMP DataXMP") == 1
    assert len(replaced) == len(once) + len(OTHER_XMP) - len(SAMPLE_XMP)


def test_gif87a_becomes_gif89a() -> None:
    out = gif.write(make_gif(version=b"GIF87a"), SAMPLE_XMP, None, keep_other=False)
    assert out.startswith(b"GIF89a")
    assert gif_frames(out) == gif_frames(make_gif())


def test_gif_without_loop_or_frames() -> None:
    still = io.BytesIO()
    Image.new("L", (3, 3), 7).save(still, "GIF")
    out = gif.write(still.getvalue(), SAMPLE_XMP, None, keep_other=False)
    assert gif_blocks(out)[0] == b"!\xffXMP DataXMP"
    assert gif_frames(out) == gif_frames(still.getvalue())
    empty = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
    assert gif.read(gif.write(empty, SAMPLE_XMP, None, False)).xmp == SAMPLE_XMP


def test_gif_rejects_packet_with_nul() -> None:
    with pytest.raises(ContainerError, match="NUL"):
        gif.write(make_gif(), SAMPLE_XMP + b"\x00", None, keep_other=False)


def test_gif_reads_packet_stored_as_plain_sub_blocks() -> None:
    # Some writers chunk the packet into length-prefixed sub-blocks instead of using
    # Adobe's raw packet + magic trailer; such a packet must still be found and replaced.
    head, blocks = gif._parse(make_gif())
    chunks = [SAMPLE_XMP[i : i + 255] for i in range(0, len(SAMPLE_XMP), 255)]
    xmp_block = b"!\xff\x0bXMP DataXMP" + b"".join(bytes([len(c)]) + c for c in chunks) + b"\0"
    data = head + blocks[0].raw + xmp_block + b"".join(b.raw for b in blocks[1:]) + b";"
    assert gif.read(data).xmp == SAMPLE_XMP
    assert gif_frames(data) == gif_frames(make_gif())
    expected = gif.write(make_gif(), SAMPLE_XMP, None, False)
    assert gif.write(data, SAMPLE_XMP, None, False) == expected


@needs_exiftool
def test_gif_exiftool_reads_it(tmp_path: Path) -> None:
    tags = tagged(tmp_path, "a.gif", gif.write(make_gif(), SAMPLE_XMP, None, keep_other=False))
    assert_opt_out(tags)
    assert tags["GIF:FrameCount"] == 3
    assert tags["GIF:AnimationIterations"] == 0
    assert "File:Comment" not in tags


@needs_exiftool
def test_gif_replaces_exiftool_written_xmp(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "e.gif"
    path.write_bytes(make_gif())
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-XMP-dc:Creator=Someone", str(path)],
        check=True,
    )
    assert b"XMP DataXMP" in path.read_bytes()
    out = gif.write(path.read_bytes(), SAMPLE_XMP, None, keep_other=False)
    assert out.count(b"XMP DataXMP") == 1
    tags = tagged(tmp_path, "f.gif", out)
    assert_opt_out(tags)
    assert "XMP-dc:Creator" not in tags
    assert gif_frames(out) == gif_frames(make_gif())


def test_gif_pyexiv2_cannot_read_it() -> None:
    # exiv2 has no GIF XMP support: it opens the file and reports nothing.
    assert pyexiv2_xmp(gif.write(make_gif(), SAMPLE_XMP, None, keep_other=False)) == {}


def bad_gifs() -> list[bytes]:
    good = make_gif()
    cases = [good[:n] for n in range(len(good))]  # every truncation, trailer included
    cases += [b"", b"\x00" * 64, random.Random(1).randbytes(300), b"GIF89a" + b"\xff" * 20]
    # An unknown block type is passed through now (browsers show it): test_containers_lenient
    return cases


def test_gif_bad_input_raises_container_error() -> None:
    for data in bad_gifs():
        with pytest.raises(ContainerError):
            gif.write(data, SAMPLE_XMP, None, keep_other=False)
        with pytest.raises(ContainerError):
            gif.read(data)


def test_gif_mutations_raise_only_container_error() -> None:
    good = make_gif()
    rng = random.Random(7)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(ContainerError):
            gif.write(bytes(data), SAMPLE_XMP, None, keep_other=False)


# ----------------------------------------------------------------------------- SVG

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
        data = bytearray(INKSCAPE)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.choice(b"<>/\"'=&![]?- ax\x00\xff")
        try:
            out = svg.write(bytes(data), SAMPLE_XMP, None, keep_other=False)
        except ContainerError:
            continue
        DET.fromstring(out)  # svg.write does not re-parse its result: prove it is XML
        assert svg.read(out).xmp == SAMPLE_XMP


# ----------------------------------------------------------------------------- TIFF

SOURCE_TAGS = {
    0x010E: "holiday",  # ImageDescription
    0x010F: "Canon",  # Make
    0x0110: "EOS 5D",  # Model
    0x0131: "Camera firmware 1.0",  # Software
    0x0132: "2024:05:01 10:00:00",  # DateTime
    0x013C: "ana-laptop",  # HostComputer
    0x8298: "Old Copyright",
}


def source_exif() -> bytes:
    exif = Image.Exif()
    for tag, value in SOURCE_TAGS.items():
        exif[tag] = value
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    exif[0x8769] = {0xA431: "SERIAL-123456", 0x9003: "2024:05:01 10:00:00"}
    return exif.tobytes()


def caller_exif(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x8298] = "© Ana".encode()  # UTF-8 in an ASCII tag, as exiftool writes it
    exif[0x013B] = "Ana"
    if orientation is not None:
        exif[0x0112] = orientation
    return exif.tobytes()[6:]


def make_tiff(mode: str = "RGB", compression: str = "raw", **params: Any) -> bytes:
    size = (40, 30)
    if mode == "I;16":
        im = Image.frombytes("I;16", size, bytes(range(256)) * 10)
    else:
        im = Image.linear_gradient("L").resize(size).convert(mode)
        im.putpixel((1, 2), 0 if mode == "1" else 200)
    buffer = io.BytesIO()
    im.save(buffer, "TIFF", compression=compression, **params)
    return buffer.getvalue()


def pixels(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    with Image.open(io.BytesIO(data)) as im:
        pages = []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            pages.append((im.mode, im.size, im.tobytes()))
        return pages


@pytest.mark.parametrize(
    ("mode", "compression"),
    [
        ("RGB", "raw"),
        ("RGB", "tiff_lzw"),
        ("RGBA", "tiff_adobe_deflate"),
        ("I;16", "raw"),
        ("I;16", "tiff_lzw"),
        ("CMYK", "raw"),
        ("CMYK", "tiff_adobe_deflate"),
        ("L", "packbits"),
        ("1", "group4"),
        ("P", "tiff_lzw"),
        ("F", "tiff_adobe_deflate"),
    ],
)
def test_tiff_pixels_are_identical(mode: str, compression: str) -> None:
    source = make_tiff(mode, compression, dpi=(300, 300))
    out = tiff.write(source, SAMPLE_XMP, caller_exif(), keep_other=False)
    assert pixels(out) == pixels(source)
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["compression"] == compression
        assert im.info["dpi"] == (300, 300)
    assert tiff.write(out, SAMPLE_XMP, caller_exif(), keep_other=False) == out


def test_tiff_drops_private_tags() -> None:
    source = make_tiff(exif=source_exif())
    with Image.open(io.BytesIO(source)) as im:  # the fixture really has them
        assert isinstance(im, TiffImagePlugin.TiffImageFile)
        assert 0x8825 in im.tag_v2 and 0x8769 in im.tag_v2
    out = tiff.write(source, SAMPLE_XMP, caller_exif(), keep_other=False)
    exif = pyexiv2_exif(out)
    assert not [key for key in exif if key.startswith(("Exif.GPSInfo", "Exif.Photo"))]
    for key in ("Make", "Model", "Software", "DateTime", "HostComputer", "ImageDescription"):
        assert f"Exif.Image.{key}" not in exif
    assert exif["Exif.Image.Copyright"] == "© Ana"
    assert exif["Exif.Image.Artist"] == "Ana"
    xmp = pyexiv2_xmp(out)
    assert xmp["Xmp.plus.DataMining"] == PROHIBITED
    assert xmp["Xmp.dc.rights"] == {'lang="x-default"': SAMPLE_RIGHTS}
    assert pixels(out) == pixels(source)


def test_tiff_keep_other_keeps_descriptions_not_gps() -> None:
    source = make_tiff(exif=source_exif())
    out = tiff.write(source, SAMPLE_XMP, None, keep_other=True)
    exif = pyexiv2_exif(out)
    assert exif["Exif.Image.Make"] == "Canon"
    assert exif["Exif.Image.Model"] == "EOS 5D"
    assert exif["Exif.Image.Software"] == "Camera firmware 1.0"
    assert exif["Exif.Image.ImageDescription"] == "holiday"
    assert "Exif.Image.HostComputer" not in exif
    assert "Exif.Image.Copyright" not in exif  # exif=None: no caller tags
    assert not [key for key in exif if key.startswith(("Exif.GPSInfo", "Exif.Photo"))]


@needs_exiftool
def test_tiff_exiftool_reads_it(tmp_path: Path) -> None:
    source = make_tiff(exif=source_exif())
    tags = tagged(tmp_path, "a.tif", tiff.write(source, SAMPLE_XMP, caller_exif(), False))
    assert_opt_out(tags)
    assert tags["IFD0:Copyright"] == "© Ana"
    assert not [key for key in tags if key.startswith(("GPS:", "ExifIFD:", "Composite:GPS"))]
    assert "IFD0:Make" not in tags


@needs_exiftool
def test_tiff_orientation_is_kept_or_set(tmp_path: Path) -> None:
    # Pillow 13 rotates TIFF pages while decoding them; the rewrite must not bake that in.
    source = make_tiff(tiffinfo={0x0112: 6})
    out = tiff.write(source, SAMPLE_XMP, None, keep_other=False)
    assert tagged(tmp_path, "a.tif", out)["IFD0:Orientation"] == 6
    assert pixels(out) == pixels(source)
    assert tiff.write(out, SAMPLE_XMP, None, keep_other=False) == out
    turned = tiff.write(make_tiff(), SAMPLE_XMP, caller_exif(orientation=6), False)
    assert tagged(tmp_path, "b.tif", turned)["IFD0:Orientation"] == 6
    with Image.open(io.BytesIO(make_tiff())) as im:
        expected = im.transpose(Image.Transpose.ROTATE_270).tobytes()
    assert pixels(turned)[0][2] == expected


def test_tiff_multi_page() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    first = Image.linear_gradient("L").resize((64, 48)).convert("RGB")
    pages = [Image.new("L", (20, 10), 77), Image.new("CMYK", (8, 8), (1, 2, 3, 4))]
    # (Without icc_profile=None Pillow would copy page 1's profile onto this page.)
    pages[0].encoderinfo = {"compression": "tiff_lzw", "tiffinfo": {317: 2}, "icc_profile": None}
    buffer = io.BytesIO()
    first.save(
        buffer,
        "TIFF",
        save_all=True,
        append_images=pages,
        compression="tiff_adobe_deflate",
        icc_profile=icc,
    )
    source = buffer.getvalue()
    out = tiff.write(source, SAMPLE_XMP, caller_exif(), keep_other=False)
    assert pixels(out) == pixels(source)
    with Image.open(io.BytesIO(out)) as im:
        assert isinstance(im, TiffImagePlugin.TiffImageFile)
        seen = []
        for index in range(3):
            im.seek(index)
            # (info["icc_profile"] is stale on a page without one: Pillow keeps page 1's.)
            seen.append((im.info["compression"], 34675 in im.tag_v2, 700 in im.tag_v2))
    assert seen == [
        ("tiff_adobe_deflate", True, True),
        ("tiff_lzw", False, False),
        ("tiff_adobe_deflate", True, False),
    ]
    assert tiff.write(out, SAMPLE_XMP, caller_exif(), keep_other=False) == out


def test_tiff_read_round_trip() -> None:
    source = make_tiff(exif=source_exif())
    found = tiff.read(source)
    assert found.xmp is None and found.exif is not None
    before = Image.Exif()
    before.load(found.exif)
    assert before[0x010F] == "Canon" and before.get_ifd(0x8825)[1] == "N"
    assert 256 not in before  # layout tags are not EXIF
    out = tiff.write(source, SAMPLE_XMP, caller_exif(orientation=3), keep_other=False)
    found = tiff.read(out)
    assert found.xmp == SAMPLE_XMP
    assert found.exif is not None and found.exif[:4] in (b"II*\x00", b"MM\x00*")
    after = Image.Exif()
    after.load(found.exif)
    assert after[0x8298].encode("latin-1").decode() == "© Ana"
    assert after[0x0112] == 3
    assert 0x8825 not in after and 0x010F not in after


def test_tiff_lossy_compression_is_refused() -> None:
    with pytest.raises(ContainerError, match="'jpeg' compression is not supported"):
        tiff.write(make_tiff(compression="jpeg"), SAMPLE_XMP, None, keep_other=False)


def test_tiff_respects_max_image_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ContainerError, match="too large|more than"):
        tiff.write(make_tiff(), SAMPLE_XMP, None, keep_other=False)


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the damage it skips
def test_tiff_bad_input_raises_container_error() -> None:
    good = make_tiff(compression="tiff_lzw")
    circular = bytearray(make_tiff())
    # Point IFD0's next-IFD offset back at IFD0.
    ifd0 = struct.unpack_from("<I", circular, 4)[0]
    count = struct.unpack_from("<H", circular, ifd0)[0]
    struct.pack_into("<I", circular, ifd0 + 2 + 12 * count, ifd0)
    cases = [good[:n] for n in (0, 4, 8, 20, len(good) // 2, len(good) - 40)]
    cases += [b"\x00" * 64, random.Random(2).randbytes(500), b"II*\x00\xff\xff\xff\x7f"]
    for data in cases:
        with pytest.raises(ContainerError):
            tiff.write(data, SAMPLE_XMP, None, keep_other=False)
    for data in cases[:3]:
        with pytest.raises(ContainerError):
            tiff.read(data)
    assert pixels(tiff.write(bytes(circular), SAMPLE_XMP, None, False)) == pixels(make_tiff())
    for exif in (
        b"garbage",
        b"MM\x00*",
        b"MM\x00*\x00\x00\x10\x00",
        b"II*\x00\x08\x00\x00\x00\xff",
    ):
        with pytest.raises(ContainerError, match="EXIF"):
            tiff.write(good, SAMPLE_XMP, exif, keep_other=False)


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the damage it skips
def test_tiff_mutations_raise_only_container_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # mutated sizes: keep it fast
    good = make_tiff(exif=source_exif())
    rng = random.Random(5)
    for _ in range(100):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(min(len(data), 400))] = rng.randrange(256)
        try:
            tiff.write(bytes(data), SAMPLE_XMP, None, keep_other=False)
            tiff.read(bytes(data))
        except ContainerError:
            pass


def handmade_tiff(bits: tuple[int, ...], photometric: int, size: tuple[int, int] = (3, 2)) -> bytes:
    """An uncompressed one-strip TIFF with sample depths Pillow cannot write itself."""
    width, height = size
    row = (width * sum(bits) + 7) // 8
    pixel_data = bytes((i * 37) % 256 for i in range(row * height))
    count = 10
    bits_at = 8 + 2 + 12 * count + 4
    data_at = bits_at + 2 * len(bits)

    def entry(tag: int, kind: int, n: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, kind, n, value)

    entries = [
        entry(256, 4, 1, width),
        entry(257, 4, 1, height),
        entry(258, 3, len(bits), bits_at if len(bits) > 2 else bits[0]),
        entry(259, 3, 1, 1),
        entry(262, 3, 1, photometric),
        entry(273, 4, 1, data_at),
        entry(277, 3, 1, len(bits)),
        entry(278, 4, 1, height),
        entry(279, 4, 1, len(pixel_data)),
        entry(284, 3, 1, 1),
    ]
    ifd = struct.pack("<H", count) + b"".join(entries) + b"\0\0\0\0"
    depths = struct.pack(f"<{len(bits)}H", *bits)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + depths + pixel_data


def test_tiff_refuses_depth_pillow_would_reduce() -> None:
    source = handmade_tiff((16, 16, 16), photometric=2)
    assert pixels(source)[0][0] == "RGB"  # Pillow decodes 48-bit RGB to 24-bit
    with pytest.raises(ContainerError, match="16/16/16-bit samples"):
        tiff.write(source, SAMPLE_XMP, None, keep_other=False)


def test_tiff_shallower_depth_is_widened_losslessly() -> None:
    source = handmade_tiff((2,), photometric=1)  # 2-bit grey: written back as 8-bit
    out = tiff.write(source, SAMPLE_XMP, None, keep_other=False)
    assert pixels(out) == pixels(source)
