"""AVIF/HEIF (ISO-BMFF) metadata surgery, checked with exiftool, pyexiv2 and Pillow."""

from __future__ import annotations

import contextlib
import functools
import random
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from ssg_dmi.errors import ContainerError
from ssg_dmi.images.containers import Metadata, bmff

from .container_bytes import ICC, mutated
from .images import busy_picture, encode
from .readers import (
    PLUS,
    SAMPLE_RIGHTS,
    SAMPLE_XMP,
    decoded,
    exiftool,
    needs_exiftool,
    pyexiv2_exif,
    pyexiv2_xmp,
)

OLD_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="SECRET-OLD-XMP"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
GPS_DATUM = "SECRET-GPS-DATUM"
# GPSLatitude seconds 45.67 as Pillow packs it (big-endian rational 4567/100).
GPS_RATIONAL = struct.pack(">II", 4567, 100)
EXIF_VIEW = ("-G1", "-a", "-XMP:all", "-EXIF:all", "-GPS:all")


def _exif(*, gps: bool) -> bytes:
    exif = Image.Exif()
    exif[0x8298] = "(c) Ana" if not gps else "Old Owner"
    if gps:
        exif[0x8825] = {1: "N", 2: (12.0, 34.0, 45.67), 0x12: GPS_DATUM}
    # Pillow's tobytes() returns the JPEG form, with the Exif\0\0 prefix.
    return exif.tobytes().removeprefix(b"Exif\x00\x00")


NEW_EXIF = _exif(gps=False)
OLD_EXIF = _exif(gps=True)


@functools.cache
def _source(name: str) -> bytes:
    """Pillow's AVIF: "plain" has no metadata; the others carry GPS EXIF and an old XMP."""
    options: dict[str, object] = {} if name == "plain" else {"exif": OLD_EXIF, "xmp": OLD_XMP}
    if name == "icc":
        options["icc_profile"] = ICC
    picture = busy_picture("RGBA" if name == "rgba" else "RGB", (64, 48))
    return encode(picture, "AVIF", quality=60, **options)


SOURCES = ["plain", "dirty", "rgba", "icc"]


def _assert_clean(out: bytes) -> None:
    for secret in (b"SECRET-OLD-XMP", GPS_DATUM.encode(), GPS_RATIONAL, b"Old Owner"):
        assert secret not in out
    assert out.count(b"application/rdf+xml") == 1
    assert out.count(b"<x:xmpmeta") == 1


# --- a hand-built HEIF layout, to reach the iloc/iref/infe variants Pillow never writes ---


def _box(kind: bytes, body: bytes, *, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, len(body) + 16) + body
    return struct.pack(">I4s", len(body) + 8, kind) + body


def _full(kind: bytes, version: int, body: bytes, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", version << 24 | flags) + body)


def _children(data: bytes, pos: int, end: int) -> dict[bytes, bytes]:
    """Well-formed boxes (Pillow's own output) by type; enough to borrow its parts."""
    out = {}
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        out[kind] = data[pos : pos + size]
        pos += size
    return out


@dataclass(frozen=True)
class Layout:
    iloc_version: int = 1
    sizes: tuple[int, int, int, int] = (4, 4, 0, 0)  # offset, length, base offset, index
    first_id: int = 1
    idat: tuple[str, ...] = ("exif",)  # items stored in idat (construction method 1)
    split: bool = False  # the image item in two extents
    large_mdat: bool = False  # 64-bit largesize header
    zero_mdat: bool = False  # mdat size 0: "to the end of the file"
    meta_last: bool = False  # ftyp, mdat, meta
    long_names: bool = False  # big infe names on the metadata items, so meta shrinks
    iref_version: int = 0
    exif_props: bool = False  # an ipma entry for the Exif item, whose id write() reuses


def _build(layout: Layout) -> bytes:
    plain = _source("plain")
    top = _children(plain, 0, len(plain))
    parts = _children(top[b"meta"], 12, len(top[b"meta"]))
    av1 = top[b"mdat"][8:]  # Pillow's RGB file holds only the image item in its mdat
    iprp = _children(parts[b"iprp"], 8, len(parts[b"iprp"]))
    assoc = iprp[b"ipma"][18:]  # one entry: version 0, flags 0, count, id u16, then n, n bytes
    image, exif_id, xmp_id = (layout.first_id + i for i in range(3))
    wide = image > 0xFFFF
    idsize = 4 if wide else 2
    name = b"N" * 300 if layout.long_names else b""
    exif_payload = b"\0\0\0\x06Exif\0\0" + OLD_EXIF  # libavif's form: offset 6, then prefix
    blobs = {exif_id: exif_payload, xmp_id: OLD_XMP}
    idat_ids = [exif_id] * ("exif" in layout.idat) + [xmp_id] * ("xmp" in layout.idat)
    idat = b"".join(blobs[i] for i in idat_ids)
    junk = b"\x55" * 16  # so no item starts at the first payload byte
    mdat_ids = [i for i in blobs if i not in idat_ids]
    mdat_payload = junk + av1 + b"".join(blobs[i] for i in mdat_ids)
    off_size, len_size, base_size, index_size = layout.sizes
    version = layout.iloc_version

    def iloc(mdat_body: int) -> bytes:
        entries = []
        halves = [av1[: len(av1) // 2], av1[len(av1) // 2 :]] if layout.split else [av1]
        located = [(image, 0, mdat_body + len(junk), [len(h) for h in halves])]
        pos = mdat_body + len(junk) + len(av1)
        for item in mdat_ids:
            located.append((item, 0, pos, [len(blobs[item])]))
            pos += len(blobs[item])
        pos = 0
        for item in idat_ids:
            located.append((item, 1, pos, [len(blobs[item])]))
            pos += len(blobs[item])
        for item, method, start, lengths in located:
            base = start if base_size else 0
            entry = item.to_bytes(4 if version == 2 else 2, "big")
            entry += struct.pack(">H", method) if version else b""
            entry += b"\0\0" + base.to_bytes(base_size, "big") + struct.pack(">H", len(lengths))
            offset = start - base
            for length in lengths:
                entry += bytes(index_size) + offset.to_bytes(off_size, "big")
                entry += length.to_bytes(len_size, "big")
                offset += length
            entries.append(entry)
        head = bytes([off_size << 4 | len_size, base_size << 4 | (index_size if version else 0)])
        count = len(entries).to_bytes(4 if version == 2 else 2, "big")
        return _full(b"iloc", version, head + count + b"".join(entries))

    def infe(item: int, kind: bytes, item_name: bytes, ctype: bytes = b"") -> bytes:
        body = item.to_bytes(idsize, "big") + b"\0\0" + kind + item_name + b"\0" + ctype
        return _full(b"infe", 3 if wide else 2, body)

    iinf = _full(
        b"iinf",
        0,
        struct.pack(">H", 3)
        + infe(image, b"av01", b"Color")
        + infe(exif_id, b"Exif", name)
        + infe(xmp_id, b"mime", name, b"application/rdf+xml\0"),
    )
    iv = 1 if wide else layout.iref_version
    ref_size = 4 if iv else 2
    iref = _full(
        b"iref",
        iv,
        b"".join(
            _box(b"cdsc", i.to_bytes(ref_size, "big") + b"\0\1" + image.to_bytes(ref_size, "big"))
            for i in (exif_id, xmp_id)
        ),
    )
    ipma_body = b"\0\0\0\1" + image.to_bytes(idsize, "big") + assoc
    if layout.exif_props:  # associate ispe (property 1, not essential) with the Exif item
        ipma_body = b"\0\0\0\2" + ipma_body[4:] + exif_id.to_bytes(idsize, "big") + b"\1\1"
    ipma = _full(b"ipma", 1 if wide else 0, ipma_body)
    pitm = _full(b"pitm", 1 if wide else 0, image.to_bytes(idsize, "big"))

    def meta(mdat_body: int) -> bytes:
        body = parts[b"hdlr"] + pitm + iloc(mdat_body) + iinf + iref
        body += _box(b"iprp", iprp[b"ipco"] + ipma) + (_box(b"idat", idat) if idat else b"")
        return _full(b"meta", 0, body)

    ftyp = top[b"ftyp"]
    header = 16 if layout.large_mdat else 8
    mdat_body = len(ftyp) + header + (0 if layout.meta_last else len(meta(0)))
    mdat = _box(b"mdat", mdat_payload, large=layout.large_mdat)
    if layout.zero_mdat:
        mdat = b"\0\0\0\0" + mdat[4:]
    if layout.meta_last:
        return ftyp + mdat + meta(mdat_body)
    return ftyp + meta(mdat_body) + mdat


LAYOUTS = {
    "iloc-v0": Layout(iloc_version=0, idat=()),
    "iloc-v1-idat-exif": Layout(),
    "iloc-v1-idat-both": Layout(idat=("exif", "xmp")),
    "iloc-v2-wide-ids": Layout(iloc_version=2, first_id=70000, idat=("xmp",)),
    "offset-8-length-8": Layout(sizes=(8, 8, 0, 0), idat=()),
    "base-offset-4": Layout(sizes=(4, 4, 4, 0), split=True),
    "base-offset-8-no-offset": Layout(iloc_version=0, sizes=(0, 4, 8, 0), idat=()),
    "index-size-4": Layout(sizes=(4, 4, 0, 4), split=True),
    "iref-v1": Layout(iref_version=1),
    "large-mdat": Layout(large_mdat=True, idat=()),
    "zero-size-mdat": Layout(zero_mdat=True, idat=()),
    "meta-after-mdat": Layout(meta_last=True, idat=()),
    "meta-shrinks": Layout(long_names=True, idat=()),
    "ipma-on-exif": Layout(exif_props=True),
}


# --- Pillow-made files ---


def test_sources_carry_the_secrets() -> None:
    # Otherwise _assert_clean would prove nothing.
    for source in [_source("dirty"), _source("rgba"), _source("icc"), _build(Layout())]:
        for secret in (b"SECRET-OLD-XMP", GPS_DATUM.encode(), GPS_RATIONAL, b"Old Owner"):
            assert secret in source


def test_reads_what_pillow_wrote() -> None:
    found = bmff.read(_source("dirty"))
    assert found.xmp == OLD_XMP
    assert found.exif == OLD_EXIF  # libavif's 4-byte offset and Exif\0\0 prefix are gone
    assert bmff.read(_source("plain")) == Metadata()


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("exif", [NEW_EXIF, None], ids=["exif", "no-exif"])
def test_write_round_trips_and_is_idempotent(name: str, exif: bytes | None) -> None:
    source = _source(name)
    out = bmff.write(source, SAMPLE_XMP, exif, False)
    assert bmff.read(out) == Metadata(SAMPLE_XMP, exif)
    assert bmff.write(out, SAMPLE_XMP, exif, False) == out
    assert bmff.write(source, SAMPLE_XMP, exif, True) == out  # keep_other: nothing to keep
    _assert_clean(out)
    # Changing the metadata again reuses the trailing mdat instead of piling up boxes.
    again = bmff.write(out, SAMPLE_XMP.replace(b"Ana", b"Bea"), NEW_EXIF, False)
    assert len(again) == len(bmff.write(source, SAMPLE_XMP, NEW_EXIF, False))


@pytest.mark.parametrize("name", SOURCES)
def test_pixels_alpha_and_icc_survive(name: str) -> None:
    source = _source(name)
    before, after = decoded(source), decoded(bmff.write(source, SAMPLE_XMP, NEW_EXIF, False))
    assert after.mode == before.mode == ("RGBA" if name == "rgba" else "RGB")
    assert after.tobytes() == before.tobytes()
    assert after.info.get("icc_profile") == before.info.get("icc_profile")
    if name == "icc":
        assert after.info["icc_profile"] == ICC
    # Pillow (libavif) sees the new blocks too.
    assert after.info["xmp"] == SAMPLE_XMP
    assert after.getexif()[0x8298] == "(c) Ana"
    assert 0x8825 not in after.getexif()


def test_overhead_of_the_new_items() -> None:
    source = _source("plain")
    out = bmff.write(source, SAMPLE_XMP, NEW_EXIF, False)
    payload = len(SAMPLE_XMP) + 4 + len(NEW_EXIF)
    # mdat header 8, two infe 69, two iloc entries 28, a new iref with two cdsc 40
    assert len(out) - len(source) - payload == 145


@needs_exiftool
@pytest.mark.parametrize("name", SOURCES)
def test_exiftool_reads_the_result(tmp_path: Path, name: str) -> None:
    path = tmp_path / "out.avif"
    path.write_bytes(bmff.write(_source(name), SAMPLE_XMP, NEW_EXIF, False))
    (tags,) = exiftool(path, args=EXIF_VIEW)
    assert tags["XMP-plus:DataMining"] == PLUS + "DMI-PROHIBITED"
    assert tags["XMP-dc:Rights"] == SAMPLE_RIGHTS
    assert tags["IFD0:Copyright"] == "(c) Ana"
    assert "XMP-dc:Format" not in tags
    assert not [key for key in tags if "GPS" in key]
    (full,) = exiftool(path, args=("-G1", "-a", "-Warning"))
    assert not [key for key in full if "Warning" in key]


def test_pyexiv2_reads_the_result() -> None:
    for name in SOURCES:
        out = bmff.write(_source(name), SAMPLE_XMP, NEW_EXIF, False)
        assert pyexiv2_xmp(out)["Xmp.plus.DataMining"] == PLUS + "DMI-PROHIBITED"
        exif = pyexiv2_exif(out)
        assert exif["Exif.Image.Copyright"] == "(c) Ana"
        assert not [key for key in exif if key.startswith("Exif.GPSInfo")]


@needs_exiftool
def test_cleans_a_file_exiftool_wrote(tmp_path: Path) -> None:
    path = tmp_path / "et.avif"
    path.write_bytes(_source("plain"))
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-XMP-dc:Title=SECRET-OLD-XMP"]
        + ["-GPSLatitude=12.5", "-GPSLatitudeRef=N", f"-GPSMapDatum={GPS_DATUM}", str(path)],
        check=True,
    )
    source = path.read_bytes()
    assert GPS_DATUM.encode() in source
    out = bmff.write(source, SAMPLE_XMP, NEW_EXIF, False)
    _assert_clean(out)
    assert bmff.write(out, SAMPLE_XMP, NEW_EXIF, False) == out
    assert decoded(out).tobytes() == decoded(source).tobytes()
    path.write_bytes(out)
    (tags,) = exiftool(path, args=EXIF_VIEW)
    assert tags["XMP-plus:DataMining"] == PLUS + "DMI-PROHIBITED"
    assert not [key for key in tags if "GPS" in key or key == "XMP-dc:Title"]


# --- hand-built layouts ---


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_layouts(layout: Layout) -> None:
    source = _build(layout)
    pixels = decoded(source).tobytes()  # libavif accepts the hand-built file
    assert pixels == decoded(_source("plain")).tobytes()
    assert bmff.read(source) == Metadata(OLD_XMP, OLD_EXIF)
    out = bmff.write(source, SAMPLE_XMP, NEW_EXIF, False)
    assert decoded(out).tobytes() == pixels
    assert bmff.read(out) == Metadata(SAMPLE_XMP, NEW_EXIF)
    assert bmff.write(out, SAMPLE_XMP, NEW_EXIF, False) == out
    _assert_clean(out)
    if layout.long_names:
        assert len(out) < len(source)  # meta shrank: every image offset moved back
    if layout.exif_props:  # the stale association would now attach to the new XMP item
        ipma = out.index(b"ipma")
        assert out[ipma + 8 : ipma + 12] == b"\0\0\0\1"
    if not layout.split and layout.first_id < 0x10000:
        # exiv2 follows only 4-byte offsets, one extent per item, 16-bit ids
        assert pyexiv2_xmp(out)["Xmp.plus.DataMining"] == PLUS + "DMI-PROHIBITED"
        assert pyexiv2_exif(out)["Exif.Image.Copyright"] == "(c) Ana"


@needs_exiftool
def test_exiftool_reads_every_layout(tmp_path: Path) -> None:
    paths = []
    for name, layout in LAYOUTS.items():
        paths.append(tmp_path / f"{name}.avif")
        paths[-1].write_bytes(bmff.write(_build(layout), SAMPLE_XMP, NEW_EXIF, False))
    for tags in exiftool(*paths, args=EXIF_VIEW):
        assert tags["XMP-plus:DataMining"] == PLUS + "DMI-PROHIBITED", tags["SourceFile"]
        assert tags["IFD0:Copyright"] == "(c) Ana", tags["SourceFile"]
        assert not [key for key in tags if "GPS" in key]


# --- what write() refuses ---


def test_animated_avif_is_refused() -> None:
    ftyp = _box(b"ftyp", b"avis\0\0\0\0avismsf1miaf")
    animated = ftyp + _box(b"moov", _box(b"mvhd", bytes(100))) + _box(b"mdat", bytes(50))
    assert bmff.read(animated) == Metadata()
    with pytest.raises(ContainerError, match="^animated AVIF: metadata rewrite not supported;"):
        bmff.write(animated, SAMPLE_XMP, None, False)
    # A still-image meta box beside a track: moving mdat would break the track's offsets.
    plain = _source("plain")
    with_track = plain + _box(b"moov", bytes(16))
    with pytest.raises(ContainerError, match="^animated AVIF"):
        bmff.write(with_track, SAMPLE_XMP, None, False)


def _patched(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def _bad_inputs() -> dict[str, bytes]:
    dirty = _source("dirty")
    meta = dirty.index(b"meta") - 4
    iloc = dirty.index(b"iloc") - 4
    first_extent = iloc + 8 + 4 + 2 + 2 + 2 + 2 + 2  # v0: id, dref, extent_count, then offset
    cases = {f"truncated-{n}": dirty[:n] for n in (1, 7, 12, 20, 40, 100, 300, len(dirty) - 1)}
    cases |= {
        "empty": b"",
        "no-ftyp": _box(b"free", b"") + dirty,
        "meta-size-4": _patched(dirty, meta, b"\0\0\0\4"),
        "meta-size-huge": _patched(dirty, meta, b"\xff\xff\xff\xff"),
        "meta-largesize-small": _patched(dirty, meta, b"\0\0\0\1meta" + bytes(8)),
        "meta-largesize-huge": _patched(dirty, meta, b"\0\0\0\1meta" + b"\x7f" + bytes(7)),
        "iloc-past-end": _patched(dirty, first_extent, b"\x7f\xff\xff\xf0"),
        "iloc-length-past-end": _patched(dirty, first_extent + 4, b"\x7f\xff\xff\xf0"),
        "iloc-sizes-3": _patched(dirty, iloc + 12, b"\x33"),
        "iloc-count-huge": _patched(dirty, iloc + 14, b"\xff\xff"),
        "iinf-count-wrong": _patched(dirty, dirty.index(b"iinf") + 8, b"\0\x09"),
        "iref-count-huge": _patched(dirty, dirty.index(b"cdsc") + 6, b"\xff\xff"),
        "two-metas": dirty + dirty[meta : dirty.index(b"mdat") - 4],
    }
    return cases


BAD = _bad_inputs()


@pytest.mark.parametrize("data", BAD.values(), ids=BAD.keys())
def test_malformed_files_raise_container_error(data: bytes) -> None:
    with pytest.raises(ContainerError) as err:
        bmff.write(data, SAMPLE_XMP, NEW_EXIF, False)
    assert "\n" not in str(err.value)
    with pytest.raises(ContainerError):
        bmff.read(data)


def test_size_zero_meta_swallows_mdat() -> None:
    dirty = _source("dirty")
    meta = dirty.index(b"meta") - 4
    with pytest.raises(ContainerError, match="mdat"):
        bmff.write(_patched(dirty, meta, b"\0\0\0\0"), SAMPLE_XMP, None, False)


def test_metadata_overlapping_image_data_is_not_erased() -> None:
    dirty = _source("dirty")
    # Point the Exif item (item 2, the second iloc v0 entry) at the image item's bytes.
    iloc = dirty.index(b"iloc") - 4
    entry = iloc + 16 + 14
    image_offset = dirty[iloc + 16 + 6 : iloc + 16 + 10]
    assert dirty[entry : entry + 2] == b"\0\2"
    bad = _patched(dirty, entry + 6, image_offset)
    with pytest.raises(ContainerError, match="overlaps image data"):
        bmff.write(bad, SAMPLE_XMP, None, False)


def test_random_damage_raises_only_container_error() -> None:
    rng = random.Random(7)
    sources = [
        _source("dirty"),
        _source("rgba"),
        _build(Layout(iloc_version=2, sizes=(4, 8, 4, 4))),
    ]
    for _ in range(400):
        # Structure lives in the first few hundred bytes; hit it more often than pixels.
        data = mutated(rng, rng.choice(sources), 4, within=500)
        for call in (lambda d: bmff.read(d), lambda d: bmff.write(d, SAMPLE_XMP, NEW_EXIF, False)):
            with contextlib.suppress(ContainerError):
                call(data)
