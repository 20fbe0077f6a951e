"""SVG: XMP lives in a ``<metadata>`` element holding ``rdf:RDF`` (or ``x:xmpmeta``).

SVG is untrusted XML. It is parsed with defusedxml (entity declarations and external
references are refused) and then edited as bytes: re-serializing would rename prefixes and
reflow the author's formatting. While parsing, the byte offset of every start and end tag is
taken from expat itself, so the edits land exactly where the parser saw the elements, with
no second, hand-written XML scanner to disagree with it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import defusedxml
import defusedxml.ElementTree as DET

from ...errors import ContainerError
from .metadata import Metadata

SVG = "{http://www.w3.org/2000/svg}svg"
METADATA = "{http://www.w3.org/2000/svg}metadata"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"
XMPMETA = "{adobe:ns:meta/}xmpmeta"
METADATA_ID = b"ssg-dmi"
EXIFTOOL_SNIFF_BYTES = 256
ENCODINGS = (b"utf-8", b"utf8", b"us-ascii", b"ascii")

_NAME = rb"[^\s/>=]+"
# A start tag; attribute values may hold ">" but never "<" or their own quote.
_ATTRIBUTE = rb"\s+" + _NAME + rb"\s*=\s*(?:\"[^\"]*\"|'[^']*')"
_START_TAG = re.compile(rb"<(" + _NAME + rb")(?:" + _ATTRIBUTE + rb")*\s*(/?)>")
_DECL = re.compile(rb"<\?xml\s[^>]*?\?>")
_DECL_ENCODING = re.compile(rb"(\sencoding\s*=\s*[\"'])([^\"']*)([\"'])")
_XMLNS = re.compile(rb"\sxmlns:([^\s=]+)\s*=\s*(\"[^\"]*\"|'[^']*')")
_PREFIX_USE = re.compile(rb"(?:</?|\s)([A-Za-z_][\w.-]*):[\w.-]+")
_XMPMETA_TAG = re.compile(rb"<x(?:mp)?:x[ma]pmeta")  # exiftool's own pattern
_XPACKET_BEGIN = re.compile(rb"<\?xpacket\s+begin")
_XPACKET_END = re.compile(rb"<\?xpacket\s+end\s*=[^>]*\?>")


@dataclass(frozen=True)
class _Element:
    """Where one element's bytes are."""

    name: bytes  # qualified name as written, e.g. b"svg" or b"svg:svg"
    start: int  # the "<" of its start tag
    tag_end: int  # just after its start tag
    end: int  # just after its end tag (== tag_end for an empty-element tag)


@dataclass
class _Document:
    """What the parser saw: each element's tag, parent and tag offsets, in document order."""

    data: bytes
    tags: list[str]  # "{namespace}local"
    parents: list[int]  # -1 for the root
    starts: list[int]  # byte offset of the start tag
    ends: list[int]  # byte offset of the end tag (of the start tag for <x/>)
    with_xmp: list[int]  # <metadata> elements that hold rdf:RDF or x:xmpmeta

    def element(self, index: int) -> _Element:
        data, start, end = self.data, self.starts[index], self.ends[index]
        tag = _START_TAG.match(data, start)
        if tag is None:
            raise ContainerError(f"SVG start tag at byte {start} could not be located")
        if tag.group(2):  # <x/>: expat reports its end at the same place as its start
            return _Element(tag.group(1), start, tag.end(), tag.end())
        close = data.find(b">", end)
        if not data.startswith(b"</", end) or close < 0:
            raise ContainerError(f"SVG end tag at byte {end} could not be located")
        return _Element(tag.group(1), start, tag.end(), close + 1)


class _NoTree:
    """Parser target that builds nothing: the handlers below record what is needed."""

    def close(self) -> None:
        return None


def _parse(data: bytes) -> _Document:
    """Parse ``data`` with defusedxml, noting where every element is."""
    if data[:2] == b"\x1f\x8b":
        raise ContainerError("SVG is gzip-compressed (.svgz), which is not supported")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ContainerError("SVG is UTF-16 encoded; only UTF-8 SVG is supported")
    encoding = _declared_encoding(data)
    if encoding is not None and encoding.lower() not in ENCODINGS:
        name = encoding.decode("ascii", "replace")
        raise ContainerError(f"SVG declares encoding {name!r}; only UTF-8 SVG is supported")
    doc = _Document(data, [], [], [], [], [])
    stack: list[int] = []
    open_metadata: list[int] = []
    with_xmp: set[int] = set()
    parser = DET.DefusedXMLParser(target=_NoTree())
    # defusedxml's guards are handlers on this expat parser; ours only add bookkeeping.
    expat: Any = parser.parser

    def start(name: str, attributes: list[str]) -> None:
        tag = "{" + name if "}" in name else name  # expat writes "namespace}local"
        index = len(doc.tags)
        doc.tags.append(tag)
        doc.parents.append(stack[-1] if stack else -1)
        doc.starts.append(expat.CurrentByteIndex)
        doc.ends.append(-1)
        stack.append(index)
        if tag in (METADATA, "metadata"):
            open_metadata.append(index)
        elif tag in (RDF, XMPMETA):
            with_xmp.update(open_metadata)

    def end(name: str) -> None:
        index = stack.pop()
        doc.ends[index] = expat.CurrentByteIndex
        if open_metadata and open_metadata[-1] == index:
            open_metadata.pop()

    expat.StartElementHandler, expat.EndElementHandler = start, end
    try:
        parser.feed(data)
        parser.close()
    except defusedxml.DefusedXmlException as exc:
        raise ContainerError(f"SVG declares entities and was left unchanged ({exc})") from exc
    except ET.ParseError as exc:
        raise ContainerError(f"SVG is not well-formed XML: {exc}") from exc
    if not doc.tags or doc.tags[0] not in (SVG, "svg"):
        raise ContainerError("SVG root element is not <svg>")
    doc.with_xmp = sorted(with_xmp)
    return doc


def _declared_encoding(data: bytes) -> bytes | None:
    declaration = _DECL.match(data, 3 if data.startswith(b"\xef\xbb\xbf") else 0)
    encoding = _DECL_ENCODING.search(declaration.group()) if declaration else None
    return encoding.group(2) if encoding else None


def read(data: bytes) -> Metadata:
    """The packet in the first ``<metadata>`` that holds RDF; SVG has no EXIF."""
    doc = _parse(data)
    return Metadata(xmp=_packet(doc, doc.with_xmp[0])) if doc.with_xmp else Metadata()


def _packet(doc: _Document, index: int) -> bytes:
    """The metadata's packet: from ``<?xpacket begin`` (or the XMP element) to its end."""
    metadata = doc.element(index)
    first = next(
        i
        for i in range(index + 1, len(doc.tags))
        if doc.tags[i] in (RDF, XMPMETA) and doc.starts[i] < metadata.end
    )
    xmp = doc.element(first)
    start, stop = xmp.start, xmp.end
    inner = doc.data[metadata.tag_end : metadata.end]
    begin = _XPACKET_BEGIN.search(inner)
    finish = _XPACKET_END.search(inner)
    if begin and finish and metadata.tag_end + begin.start() < start:
        start = metadata.tag_end + begin.start()
        stop = max(stop, metadata.tag_end + finish.end())
    return _declare_prefixes(doc, first, doc.data[start:stop], xmp.tag_end - start)


def _declare_prefixes(doc: _Document, first: int, packet: bytes, tag_end: int) -> bytes:
    """Copy into the packet the prefix declarations it inherits from the SVG around it.

    Inkscape declares ``rdf``, ``cc`` and ``dc`` on the root ``<svg>``; the packet alone
    would not be well-formed XML without them.
    """
    declared = {m.group(1) for m in _XMLNS.finditer(packet)}
    missing = {m.group(1) for m in _PREFIX_USE.finditer(packet)} - declared - {b"xml", b"xmlns"}
    inherited: dict[bytes, bytes] = {}
    parent = doc.parents[first]
    while parent >= 0 and missing:
        ancestor = doc.element(parent)
        for match in _XMLNS.finditer(doc.data, ancestor.start, ancestor.tag_end):
            if match.group(1) in missing:
                inherited[match.group(1)] = match.group(2)
                missing.discard(match.group(1))
        parent = doc.parents[parent]
    if not inherited:
        return packet
    extra = b"".join(b" xmlns:" + k + b"=" + v for k, v in sorted(inherited.items()))
    at = tag_end - (2 if packet[tag_end - 2 : tag_end] == b"/>" else 1)
    return packet[:at] + extra + packet[at:]


def write(data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes:
    """``data`` with RDF ``<metadata>`` elements replaced by one right after ``<svg>``."""
    del exif, keep_other  # SVG has no EXIF; other metadata elements are always kept
    _check_packet(xmp)
    data = _ascii_to_utf8(data, xmp)  # first, so that every offset below is final
    doc = _parse(data)
    root = doc.element(0)
    cuts: list[_Element] = []
    for index in doc.with_xmp:
        element = doc.element(index)
        if not (cuts and element.start < cuts[-1].end):  # not inside one already cut
            cuts.append(element)
    # The root's own prefix puts our element in the SVG namespace (<svg:svg> documents).
    prefix = root.name[: root.name.index(b":") + 1] if b":" in root.name else b""
    start_tag = b'<%smetadata id="%s">' % (prefix, METADATA_ID)
    opened = data[root.start : root.tag_end - 2].rstrip() + b">"  # for <svg …/>
    at = root.start + len(opened) if root.end == root.tag_end else root.tag_end
    padding = _sniff_padding(data, at + len(start_tag), xmp)
    block = b"%s%s%s</%smetadata>" % (start_tag, padding, xmp, prefix)
    if root.end == root.tag_end:  # <svg …/>: open it so it can have a child
        out = [data[: root.start], opened, block, b"</" + root.name + b">", data[root.end :]]
    else:
        out = [data[: root.tag_end], block]
        pos = root.tag_end
        for cut in cuts:
            out.append(data[pos : cut.start])
            pos = cut.end
        out.append(data[pos:])
    # No second parse of the result is needed: a packet that is a well-formed document
    # without declaration or doctype (_check_packet) is well-formed element content.
    return b"".join(out)


def _sniff_padding(data: bytes, at: int, xmp: bytes) -> bytes:
    """Whitespace that keeps ``<x:xmpmeta`` out of the first 256 bytes of the file.

    exiftool decides what a file is from its first 256 bytes: one that starts with
    ``<?xml`` and has ``<x:xmpmeta`` in them is read as an XMP sidecar, not as an SVG, and
    every tag is named after its SVG path (``XMP-plus:SvgMetadataDataMining`` instead of
    ``XMP-plus:DataMining``). Small SVGs with an XML declaration would all be misread.
    """
    found = _XMPMETA_TAG.search(xmp)
    if found is None or not data.removeprefix(b"\xef\xbb\xbf").startswith(b"<?xml"):
        return b""
    return b" " * max(0, EXIFTOOL_SNIFF_BYTES - (at + found.start()))


def _check_packet(xmp: bytes) -> None:
    """The packet must be well-formed XML on its own, so it cannot close our element."""
    try:
        DET.fromstring(xmp)
    except (defusedxml.DefusedXmlException, ET.ParseError) as exc:
        raise ContainerError(f"XMP packet is not well-formed XML: {exc}") from exc
    if xmp.lstrip().startswith(b"<?xml") or b"<!DOCTYPE" in xmp:
        raise ContainerError("XMP packet has an XML declaration or DOCTYPE; not for an SVG")


def _ascii_to_utf8(data: bytes, xmp: bytes) -> bytes:
    """Relabel a US-ASCII SVG as UTF-8 (a superset) if the packet is not plain ASCII."""
    encoding = _declared_encoding(data)
    if xmp.isascii() or encoding is None or encoding.lower() not in (b"us-ascii", b"ascii"):
        return data
    declaration = _DECL.match(data, 3 if data.startswith(b"\xef\xbb\xbf") else 0)
    assert declaration is not None  # _declared_encoding found an encoding in it
    relabelled = _DECL_ENCODING.sub(rb"\1UTF-8\3", declaration.group(), count=1)
    return data[: declaration.start()] + relabelled + data[declaration.end() :]
