"""``ssg-dmi build``: every output carries the tags of its path's rule and no private
metadata (read back with exiftool); an SVG is tagged and gets no raster variants.
"""

from __future__ import annotations

from pathlib import Path

from .builds import (
    build,
)
from .images import (
    SECRET,
    SERIAL,
    camera_file,
)
from .readers import PLUS, dmi_of, exiftool, needs_exiftool, views

# --- every output tagged ------------------------------------------------------------------


@needs_exiftool
def test_every_output_tagged_per_path_rules_and_no_gps(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "gallery" / "deep").mkdir(parents=True)
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")):
        (site / f"a.{ext}").write_bytes(camera_file(fmt))
        (site / "gallery" / "deep" / f"b.{ext}").write_bytes(camera_file(fmt))
    assert "GPS" in str(exiftool(site / "a.jpg"))  # the sources do carry a position
    report = build(
        site,
        widths=[24, 32, 64],
        formats=["avif", "webp", "jpeg", "png"],
        dmi="DMI-PROHIBITED",
        rules=[{"path": "gallery/**", "dmi": "DMI-ALLOWED"}],
    )
    assert report.errors == {}
    outputs = [p for p in site.rglob("*") if p.is_file()]
    formats = {v["format"] for e in report.images.values() for v in e["variants"]}
    assert formats == {"avif", "webp", "jpeg", "png"}
    assert len(outputs) == len(report.images) + report.summary["variants"]
    seen = views(*outputs)
    assert len(seen) == len(outputs)
    for name, view in seen.items():
        want = "DMI-ALLOWED" if "/gallery/" in name else "DMI-PROHIBITED"
        assert dmi_of(view) == PLUS + want, name
        assert not [k for k in view if "GPS" in k], name
        assert SECRET not in str(view) and SERIAL not in str(view), name


# --- SVG ----------------------------------------------------------------------------------


@needs_exiftool
def test_svg_is_tagged_without_raster_variants(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "drawing.svg").write_bytes(camera_file("SVG"))
    report = build(site, widths=[16, 32], formats=["webp", "png"], dmi="DMI-PROHIBITED")
    assert report.images["drawing.svg"]["variants"] == []
    assert report.images["drawing.svg"]["original"]["format"] == "svg"
    assert sorted(p.name for p in site.iterdir()) == ["drawing.svg"]
    assert dmi_of(exiftool(site / "drawing.svg")[0]) == PLUS + "DMI-PROHIBITED"
    assert b'<rect width="64" height="48" fill="red"/>' in (site / "drawing.svg").read_bytes()
