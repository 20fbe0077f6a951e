"""Build the XMP packet ssg-dmi embeds, and read the rights fields of an existing one.

Packets are built with ElementTree (every value escaped, non-ASCII kept as UTF-8) and carry
no padding, so the overhead is a few hundred bytes; the same policy always yields the same
bytes. Existing packets are untrusted input: they are parsed with defusedxml.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from ..errors import ImageError
from ..policy import DMI, ImagePolicy, MetadataMode, Rights, RightsExpression

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

PACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
PACKET_END = '<?xpacket end="w"?>'
MAX_PACKET = 1 << 20  # a rights packet is < 2 KB; anything past 1 MB is not worth parsing


def q(prefix: str, local: str) -> str:
    """ElementTree's ``{uri}local`` name for ``prefix:local``."""
    return f"{{{NS[prefix]}}}{local}"


RDF_DESC, RDF_LI, RDF_ABOUT = q("rdf", "Description"), q("rdf", "li"), q("rdf", "about")
RDF_RESOURCE = q("rdf", "parseType")

# Properties ssg-dmi owns: never copied from a source packet.
OURS = {
    q("plus", "DataMining"),
    q("plus", "OtherConstraints"),
    q("plus", "Licensor"),
    q("Iptc4xmpExt", "EmbdEncRightsExpr"),
    q("Iptc4xmpExt", "LinkedEncRightsExpr"),
    q("dc", "creator"),
    q("dc", "rights"),
    q("photoshop", "Credit"),
    q("xmpRights", "WebStatement"),
}
# Private fields dropped even in `keep` mode (location coordinates, serials, owner, thumbnails).
_EXIF_NS = ("http://ns.adobe.com/exif/1.0/", "http://cipa.jp/exif/1.0/")
_PRIVATE = {
    "{http://ns.adobe.com/exif/1.0/aux/}SerialNumber",
    "{http://ns.adobe.com/exif/1.0/aux/}LensSerialNumber",
    "{http://ns.adobe.com/exif/1.0/aux/}OwnerName",
    "{http://cipa.jp/exif/1.0/}BodySerialNumber",
    "{http://cipa.jp/exif/1.0/}LensSerialNumber",
    "{http://cipa.jp/exif/1.0/}CameraOwnerName",
    "{http://ns.adobe.com/xap/1.0/}Thumbnails",
    q("Iptc4xmpExt", "LocationCreated"),
    q("Iptc4xmpExt", "LocationShown"),
}


def is_private(tag: str) -> bool:
    """Whether an XMP property (``{uri}local``) is one ssg-dmi always removes."""
    uri, _, local = tag[1:].partition("}")
    return tag in _PRIVATE or (uri in _EXIF_NS and local.startswith("GPS"))


def _sub(parent: ET.Element, prefix: str, local: str, text: str | None = None) -> ET.Element:
    node = ET.SubElement(parent, q(prefix, local))
    if text is not None:
        node.text = text
    return node


def _lang_alt(parent: ET.Element, prefix: str, local: str, text: str) -> None:
    alt = ET.SubElement(_sub(parent, prefix, local), q("rdf", "Alt"))
    ET.SubElement(alt, RDF_LI, {XML_LANG: "x-default"}).text = text


def _struct_list(parent: ET.Element, prefix: str, local: str, kind: str) -> ET.Element:
    container = ET.SubElement(_sub(parent, prefix, local), q("rdf", kind))
    return ET.SubElement(container, RDF_LI, {RDF_RESOURCE: "Resource"})


def _expression(desc: ET.Element, local: str, value_name: str, expr: RightsExpression) -> None:
    item = _struct_list(desc, "Iptc4xmpExt", local, "Bag")
    _sub(item, "Iptc4xmpExt", value_name, expr.value)
    _sub(item, "Iptc4xmpExt", "RightsExprEncType", expr.encoding)
    _sub(item, "Iptc4xmpExt", "RightsExprLangId", expr.language)


def build_packet(
    policy: ImagePolicy, rights: Rights | None = None, kept: list[ET.Element] | None = None
) -> bytes:
    """The XMP packet for ``policy``.

    ``rights`` are the effective rights (policy's merged over the source's, per the metadata
    mode); ``kept`` are source properties carried over in ``keep`` mode.
    """
    rights = rights or policy.rights
    rdf = ET.Element(q("rdf", "RDF"))
    desc = ET.SubElement(rdf, RDF_DESC, {RDF_ABOUT: ""})
    _sub(desc, "plus", "DataMining", policy.dmi.uri)
    if policy.other_constraints:
        _lang_alt(desc, "plus", "OtherConstraints", policy.other_constraints)
    if policy.embedded_rights_expression:
        _expression(desc, "EmbdEncRightsExpr", "EncRightsExpr", policy.embedded_rights_expression)
    if policy.linked_rights_expression:
        _expression(
            desc, "LinkedEncRightsExpr", "LinkedRightsExpr", policy.linked_rights_expression
        )
    if rights.creators:
        seq = ET.SubElement(_sub(desc, "dc", "creator"), q("rdf", "Seq"))
        for name in rights.creators:
            ET.SubElement(seq, RDF_LI).text = name
    if rights.copyright:
        _lang_alt(desc, "dc", "rights", rights.copyright)
    if rights.credit:
        _sub(desc, "photoshop", "Credit", rights.credit)
    if rights.web_statement:
        _sub(desc, "xmpRights", "WebStatement", rights.web_statement)
    if rights.licensor_url:
        _sub(
            _struct_list(desc, "plus", "Licensor", "Seq"),
            "plus",
            "LicensorURL",
            rights.licensor_url,
        )
    for node in kept or ():
        desc.append(node)
    # ElementTree declares every namespace on the root it serialises; rooting it at rdf:RDF
    # keeps the declarations inside the RDF, where readers that lift rdf:RDF out of its
    # container (exiftool on SVG) still find them.
    body = ET.tostring(rdf, encoding="unicode", short_empty_elements=True)
    wrapped = f'<x:xmpmeta xmlns:x="{NS["x"]}">{body}</x:xmpmeta>'
    return (PACKET_BEGIN + wrapped + PACKET_END).encode("utf-8")


@dataclass
class SourceXmp:
    """What a source packet says: its DataMining value, rights, and the properties to keep."""

    dmi: str | None = None
    other_constraints: str | None = None
    rights: Rights = field(default_factory=Rights)
    other: list[ET.Element] = field(default_factory=list)
    private: list[str] = field(default_factory=list)


def _texts(node: ET.Element) -> list[str]:
    """The values of a simple property or of an rdf:Seq/Bag/Alt of simple values."""
    items = node.findall(f"./*/{RDF_LI}")
    if items:
        return [(i.text or "").strip() for i in items if (i.text or "").strip()]
    return [node.text.strip()] if node.text and node.text.strip() else []


def _default_lang(node: ET.Element) -> str | None:
    items = node.findall(f"./*/{RDF_LI}")
    for item in items:
        if item.get(XML_LANG) == "x-default" and item.text:
            return item.text.strip()
    values = _texts(node)
    return values[0] if values else None


def _properties(desc: ET.Element) -> list[ET.Element]:
    """Element-form and attribute-form properties of one rdf:Description, as elements."""
    props = list(desc)
    for name, value in desc.attrib.items():
        if name.startswith("{") and name != RDF_ABOUT and not name.startswith(f"{{{NS['rdf']}}}"):
            node = ET.Element(name)
            node.text = value
            props.append(node)
    return props


def parse_packet(packet: bytes) -> SourceXmp:
    """Read a source packet safely; :class:`ImageError` if it is not well-formed or hostile."""
    if len(packet) > MAX_PACKET:
        raise ImageError(f"XMP packet of {len(packet)} bytes is larger than {MAX_PACKET}")
    text = packet.decode("utf-8", errors="replace").replace("\x00", "")
    start = text.find("<x:xmpmeta")
    if start < 0:
        start = text.find("<rdf:RDF")
    end_tag = "</x:xmpmeta>" if text.startswith("<x:xmpmeta", start) else "</rdf:RDF>"
    end = text.rfind(end_tag)
    if start < 0 or end < 0:
        raise ImageError("XMP packet has no x:xmpmeta or rdf:RDF element")
    try:
        root = safe_fromstring(text[start : end + len(end_tag)])
    except DefusedXmlException as exc:
        raise ImageError(f"XMP packet declares entities or a DTD ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise ImageError(f"XMP packet is not well-formed XML ({exc})") from None
    found = SourceXmp()
    creators: list[str] = []
    values: dict[str, str | None] = {}
    for desc in root.iter(RDF_DESC):
        for prop in _properties(desc):
            tag = prop.tag
            if tag == q("plus", "DataMining"):
                found.dmi = (prop.text or "").strip()
            elif tag == q("plus", "OtherConstraints"):
                found.other_constraints = _default_lang(prop)
            elif tag == q("dc", "creator"):
                creators += _texts(prop)
            elif tag == q("dc", "rights"):
                values["copyright"] = _default_lang(prop)
            elif tag == q("photoshop", "Credit"):
                values["credit"] = (prop.text or "").strip() or None
            elif tag == q("xmpRights", "WebStatement"):
                values["web_statement"] = (prop.text or "").strip() or None
            elif tag == q("plus", "Licensor"):
                urls = [n.text.strip() for n in prop.iter(q("plus", "LicensorURL")) if n.text]
                values["licensor_url"] = urls[0] if urls else None
            elif is_private(tag):
                found.private.append(_prefixed(tag))
            elif tag not in OURS:
                found.other.append(prop)
    found.rights = Rights(creators=tuple(creators), **values)
    return found


def _prefixed(tag: str) -> str:
    uri, _, local = tag[1:].partition("}")
    extra = {"exif": _EXIF_NS[0], "exifEX": _EXIF_NS[1], "aux": _EXIF_NS[0] + "aux/"}
    extra["xmp"] = "http://ns.adobe.com/xap/1.0/"
    for prefix, known in {**NS, **extra}.items():
        if known == uri:
            return f"{prefix}:{local}"
    return local


def effective_rights(policy: ImagePolicy, source: Rights) -> Rights:
    """The rights to write: the policy's, completed from the source's unless mode is strip."""
    if policy.metadata is MetadataMode.STRIP:
        return policy.rights
    return policy.rights.merged_over(source)


def dmi_key(value: str | None) -> str | None:
    """The vocabulary key of a DataMining value as found in a file, or the raw value."""
    if value is None:
        return None
    try:
        return DMI.parse(value).key
    except ValueError:
        return value
