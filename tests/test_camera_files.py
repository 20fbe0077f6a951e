"""Real camera files (tests/data/camera, see CREDITS.md): what cameras really leave behind
— MakerNotes, GPS, thumbnails, MPF second images, serials — is gone after tagging, in both
modes, read back by exiftool and pyexiv2; the picture itself is kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import ssg_dmi

from .readers import exiftool, needs_exiftool

CAMERA = Path(__file__).parent / "data" / "camera"
FILES = sorted(p.name for p in CAMERA.glob("*.jpg"))
SETTINGS = ssg_dmi.load_settings({"dmi": "DMI-PROHIBITED", "copyright": "© 2026 Ana Example"})
GROUPS = ("-G0:1", "-a")  # keys like "MakerNotes:Canon:…", "EXIF:GPS:…", "EXIF:IFD1:…"


def private(key: str) -> bool:
    """MakerNotes, the MPF second image, GPS and the EXIF thumbnail (IFD1)."""
    family, _, rest = key.partition(":")
    return family in ("MakerNotes", "MPF") or rest.split(":")[0] in ("GPS", "IFD1")


def test_the_files_carry_what_cameras_leave() -> None:
    assert len(FILES) == 2
    for name in FILES:
        facts = ssg_dmi.inspect_bytes((CAMERA / name).read_bytes(), name=name)
        assert facts.dmi is None


@needs_exiftool
def test_the_premise_exiftool_sees_the_private_blocks() -> None:
    found = exiftool(*(CAMERA / n for n in FILES), args=GROUPS)
    seen = {Path(d["SourceFile"]).name: d for d in found}
    assert any(k.startswith("MakerNotes:Canon:") for k in seen["canon-powershot-s40.jpg"])
    assert "MakerNotes:Nintendo:InternalSerialNumber" in seen["nintendo-3ds.jpg"]
    for name in FILES:
        assert "EXIF:IFD1:ThumbnailLength" in seen[name], name
    assert any(k.startswith("MPF:") for k in seen["nintendo-3ds.jpg"])


@needs_exiftool
@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "re-encode"])
def test_tagging_strips_everything_private_and_keeps_the_picture(
    tmp_path: Path, lossless: bool
) -> None:
    paths = []
    for name in FILES:
        source = (CAMERA / name).read_bytes()
        out = ssg_dmi.tag_bytes(source, SETTINGS, name=name, lossless=lossless)
        path = tmp_path / name
        path.write_bytes(out)
        paths.append(path)
        with Image.open(CAMERA / name) as a, Image.open(path) as b:
            assert b.size == a.size
            if lossless:
                assert b.convert("RGB").tobytes() == a.convert("RGB").tobytes()
        facts = ssg_dmi.inspect_bytes(out, name=name)
        assert facts.dmi == "DMI-PROHIBITED" and facts.private == [], name
        assert len(out) < len(source), name  # the second image and thumbnail are gone
    for view in exiftool(*paths, args=GROUPS):
        name = Path(view["SourceFile"]).name
        leaked = [k for k in view if private(k)]
        assert leaked == [], (name, leaked)
        assert not [k for k in view if "Serial" in k], name
        assert view["XMP:XMP-plus:DataMining"].endswith("DMI-PROHIBITED"), name
        assert view["XMP:XMP-dc:Rights"] == "© 2026 Ana Example", name


def test_pyexiv2_reads_our_tags_and_no_gps(tmp_path: Path) -> None:
    pyexiv2 = pytest.importorskip("pyexiv2")
    for name in FILES:
        out = ssg_dmi.tag_bytes((CAMERA / name).read_bytes(), SETTINGS, name=name)
        with pyexiv2.ImageData(out) as image:
            xmp, exif = image.read_xmp(), image.read_exif()
        assert xmp["Xmp.plus.DataMining"].endswith("DMI-PROHIBITED"), name
        assert not [
            k for k in exif if k.startswith(("Exif.GPSInfo", "Exif.Canon", "Exif.Nintendo"))
        ]
