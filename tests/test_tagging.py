"""Tagging read back by independent readers (exiftool, pyexiv2) for every format and value."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from ssg_dmi.images.tagging import tag_bytes
from ssg_dmi.policy import DMI, ImagePolicy, MetadataMode, Rights
from ssg_dmi.settings import QUALITY_DEFAULTS

from .images import FORMATS, SECRET, SERIAL, camera_file, encode, pattern
from .readers import PLUS, exiftool, needs_exiftool, pyexiv2_exif, pyexiv2_xmp

NASTY = "Ana <b>&amp; \"Bé\" 'Ç' 東京"
RIGHTS = Rights(
    copyright=f"© 2026 {NASTY}",
    creators=(NASTY, "Bo"),
    credit="Credit & Co",
    web_statement="https://example.org/licence?a=1&b=2",
    licensor_url="https://example.org/buy",
)
PYEXIV2_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "AVIF")
PRIVATE_WORDS = ("GPS", "SerialNumber", "OwnerName")


def tag(data: bytes, name: str, lossless: bool, **policy: object) -> bytes:
    result = tag_bytes(
        data,
        ImagePolicy(**policy),  # type: ignore[arg-type]
        name=name,
        lossless=lossless,
        max_pixels=10**8,
        quality=QUALITY_DEFAULTS,
    )
    return result.data


@pytest.fixture(scope="module")
def tagged_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every format × both modes × every DMI value, tagged once for the whole module."""
    out = tmp_path_factory.mktemp("tagged")
    for fmt, ext in FORMATS.items():
        source = camera_file(fmt)
        (out / f"source-{fmt}{ext}").write_bytes(source)
        for lossless in (True, False):
            for member in DMI:
                extra: dict[str, object] = {}
                if member is DMI.PROHIBITED_SEECONSTRAINT:
                    extra["other_constraints"] = "Ask first"
                data = tag(source, "x" + ext, lossless, dmi=member, rights=RIGHTS, **extra)
                mode = "lossless" if lossless else "reencode"
                (out / f"{fmt}-{mode}-{member.key}{ext}").write_bytes(data)
    return out


@pytest.fixture(scope="module")
def exif_view(tagged_dir: Path) -> dict[str, dict[str, object]]:
    """exiftool's reading of every tagged file, in one exiftool run."""
    files = sorted(tagged_dir.iterdir())
    return {Path(d["SourceFile"]).name: d for d in exiftool(*files, args=("-G1", "-a"))}


@needs_exiftool
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", ["lossless", "reencode"])
def test_exiftool_reads_every_value_and_the_rights(
    exif_view: dict[str, dict[str, object]], fmt: str, mode: str
) -> None:
    for member in DMI:
        view = exif_view[f"{fmt}-{mode}-{member.key}{FORMATS[fmt]}"]
        assert view["XMP-plus:DataMining"] == PLUS + member.key
        assert view["XMP-dc:Rights"] == RIGHTS.copyright
        assert view["XMP-dc:Creator"] == list(RIGHTS.creators)
        assert view["XMP-photoshop:Credit"] == RIGHTS.credit
        assert view["XMP-xmpRights:WebStatement"] == RIGHTS.web_statement
        assert view["XMP-plus:LicensorURL"] == RIGHTS.licensor_url
        leaked = [k for k in view if any(word in k for word in PRIVATE_WORDS)]
        assert leaked == [], leaked
        assert SECRET not in str(view)
        assert SERIAL not in str(view)
        if member is DMI.PROHIBITED_SEECONSTRAINT:
            assert view["XMP-plus:OtherConstraints"] == "Ask first"
        if fmt in ("JPEG", "TIFF", "WEBP", "PNG", "AVIF"):
            assert view.get("IFD0:Copyright") == RIGHTS.copyright
            assert view.get("IFD0:Artist") == "; ".join(RIGHTS.creators)


@pytest.mark.parametrize("fmt", PYEXIV2_FORMATS)
@pytest.mark.parametrize("mode", ["lossless", "reencode"])
def test_pyexiv2_reads_every_value(tagged_dir: Path, fmt: str, mode: str) -> None:
    for member in DMI:
        data = (tagged_dir / f"{fmt}-{mode}-{member.key}{FORMATS[fmt]}").read_bytes()
        xmp = pyexiv2_xmp(data)
        assert xmp["Xmp.plus.DataMining"] == PLUS + member.key
        assert xmp["Xmp.dc.rights"] == {'lang="x-default"': RIGHTS.copyright}
        assert xmp["Xmp.dc.creator"] == list(RIGHTS.creators)
        assert not [k for k in xmp if "GPS" in k or "City" in k]
        if fmt != "AVIF":
            exif = pyexiv2_exif(data)
            assert not [k for k in exif if any(w in k for w in PRIVATE_WORDS)]
            assert exif["Exif.Image.Copyright"] == RIGHTS.copyright


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lossless", [True, False])
def test_tagging_twice_is_byte_identical(fmt: str, lossless: bool) -> None:
    ext = FORMATS[fmt]
    once = tag(camera_file(fmt), "a" + ext, lossless, rights=RIGHTS)
    assert tag(once, "a" + ext, lossless, rights=RIGHTS) == once
    # A re-encoded output tagged again losslessly (or the other way round) also stays put.
    assert tag(once, "a" + ext, not lossless, rights=RIGHTS) == once


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "AVIF", "TIFF"])
def test_lossless_keeps_pixels_and_icc(fmt: str) -> None:
    source = camera_file(fmt)
    out = tag(source, "a" + FORMATS[fmt], True)
    with Image.open(io.BytesIO(source)) as a, Image.open(io.BytesIO(out)) as b:
        assert a.tobytes() == b.tobytes()
        assert a.info.get("icc_profile") == b.info.get("icc_profile")


def test_copyright_mode_keeps_source_rights_and_strip_does_not() -> None:
    source = camera_file("JPEG")
    kept = pyexiv2_xmp(tag(source, "a.jpg", True))
    assert kept["Xmp.dc.creator"] == ["Source Author"]
    stripped = pyexiv2_xmp(tag(source, "a.jpg", True, metadata=MetadataMode.STRIP))
    assert "Xmp.dc.creator" not in stripped
    keep = pyexiv2_xmp(tag(source, "a.jpg", True, metadata=MetadataMode.KEEP))
    assert keep["Xmp.photoshop.City"] == SECRET  # a place name is kept in `keep`
    assert not [k for k in keep if "GPS" in k]
    keep_exif = pyexiv2_exif(tag(source, "a.jpg", True, metadata=MetadataMode.KEEP))
    assert keep_exif["Exif.Image.Model"] == "Phone 12"
    assert not [k for k in keep_exif if any(w in k for w in PRIVATE_WORDS)]


def _quadrants(im: Image.Image) -> list[tuple[int, ...]]:
    w, h = im.size
    rgb = im.convert("RGB")
    return [
        rgb.getpixel((x, y))
        for x, y in (
            (w // 4, h // 4),
            (3 * w // 4, h // 4),
            (w // 4, 3 * h // 4),
            (3 * w // 4, 3 * h // 4),
        )
    ]


INVERSE = {  # what a camera stored for each orientation, given the upright picture
    1: [],
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_90],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_270],
}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_reencode_turns_every_orientation_upright(orientation: int, fmt: str) -> None:
    upright = pattern((80, 48))
    stored = upright
    for op in INVERSE[orientation]:
        stored = stored.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    source = encode(stored, fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    out = tag(source, "a" + FORMATS[fmt], lossless=False)
    with Image.open(io.BytesIO(out)) as im:
        assert im.size == upright.size
        assert im.getexif().get(0x0112, 1) == 1
        for got, want in zip(_quadrants(im), _quadrants(upright), strict=True):
            assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 40
    lossless = tag(source, "a" + FORMATS[fmt], lossless=True)
    with Image.open(io.BytesIO(lossless)) as im:
        assert im.getexif().get(0x0112, 1) == orientation  # kept: browsers still turn it
