"""The XMP packet builder and the safe reader of source packets."""

from __future__ import annotations

import pytest

from ssg_dmi.errors import ImageError
from ssg_dmi.images.xmp import build_packet, effective_rights, parse_packet
from ssg_dmi.policy import DMI, ImagePolicy, MetadataMode, Rights, RightsExpression

NASTY = "Ana <b>&amp; \"Bé\" 'Ç' — 東京"
FULL = Rights(
    copyright=f"© 2026 {NASTY}",
    creators=(NASTY, "Bo"),
    credit="Credit & Co",
    web_statement="https://example.org/licence?a=1&b=2",
    licensor_url="https://example.org/buy",
)


def test_packet_is_compact_deterministic_and_unpadded() -> None:
    policy = ImagePolicy(dmi=DMI.PROHIBITED, rights=FULL)
    packet = build_packet(policy)
    assert packet == build_packet(policy)
    assert packet.startswith(b'<?xpacket begin="\xef\xbb\xbf"')
    assert packet.endswith(b'<?xpacket end="w"?>')
    assert b"  " not in packet and b"\n" not in packet
    typical = ImagePolicy(rights=Rights("© Ana", ("Ana",), "Ana Photo", "https://a.org/l"))
    assert len(build_packet(typical)) <= 1024


@pytest.mark.parametrize("member", list(DMI))
def test_round_trip_every_value_and_escaping(member: DMI) -> None:
    policy = ImagePolicy(dmi=member, rights=FULL)
    found = parse_packet(build_packet(policy))
    assert found.dmi == member.uri
    assert found.rights == FULL


def test_constraint_and_expressions() -> None:
    policy = ImagePolicy(
        dmi=DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR,
        other_constraints="Ask <first>",
        embedded_rights_expression=RightsExpression('{"permission": []}'),
        linked_rights_expression=RightsExpression("https://example.org/odrl.json"),
    )
    text = build_packet(policy).decode()
    assert '<plus:OtherConstraints><rdf:Alt><rdf:li xml:lang="x-default">Ask &lt;first&gt;' in text
    assert '<Iptc4xmpExt:EncRightsExpr>{"permission": []}</Iptc4xmpExt:EncRightsExpr>' in text
    assert "<Iptc4xmpExt:LinkedRightsExpr>https://example.org/odrl.json<" in text
    assert "<Iptc4xmpExt:RightsExprLangId>http://www.w3.org/ns/odrl/2/<" in text


def test_reads_attribute_form_and_keeps_other_properties() -> None:
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/"'
        b' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
        b' xmlns:exif="http://ns.adobe.com/exif/1.0/"'
        b' xmlns:aux="http://ns.adobe.com/exif/1.0/aux/"'
        b' plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-ALLOWED"'
        b' photoshop:Credit="Agency" photoshop:City="Lyon" exif:GPSLatitude="45,45.0N"'
        b' aux:SerialNumber="123"/></rdf:RDF></x:xmpmeta>'
    )
    found = parse_packet(packet)
    assert found.dmi.endswith("DMI-ALLOWED")
    assert found.rights.credit == "Agency"
    assert sorted(found.private) == ["aux:SerialNumber", "exif:GPSLatitude"]
    assert [p.tag for p in found.other] == ["{http://ns.adobe.com/photoshop/1.0/}City"]
    kept = build_packet(ImagePolicy(metadata=MetadataMode.KEEP), kept=found.other).decode()
    assert ">Lyon<" in kept and "GPS" not in kept and "123" not in kept


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"<rdf:RDF><unclosed></rdf:RDF>", "not well-formed"),
        (b"no xml here", "no x:xmpmeta"),
        (
            b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>',
            "not well-formed|entities",
        ),
        (b"<x:xmpmeta" + b" " * (1 << 20) + b"/>", "larger than"),
    ],
)
def test_hostile_packets_are_refused(packet: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        parse_packet(packet)


def test_effective_rights_per_mode() -> None:
    source = Rights(copyright="© Source", creators=("Src",), credit="Src credit")
    config = Rights(copyright="© Config")
    strip = ImagePolicy(rights=config, metadata=MetadataMode.STRIP)
    assert effective_rights(strip, source) == config
    merged = effective_rights(ImagePolicy(rights=config), source)
    assert merged == Rights(copyright="© Config", creators=("Src",), credit="Src credit")
