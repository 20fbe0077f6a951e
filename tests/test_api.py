"""The public API, used only through ``import ssg_dmi``: build, check and tag a site."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

import ssg_dmi


def jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def test_the_api_builds_checks_and_tags_a_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "a.jpg").write_bytes(jpeg((1200, 800)))
    (site / "index.html").write_text(
        '<!doctype html><html><head><title>t</title></head><body><img src="img/a.jpg" alt="a">'
        "</body></html>",
        encoding="utf-8",
    )
    settings = ssg_dmi.load_settings(
        {"dmi": "DMI-PROHIBITED", "copyright": "© 2026 Ana", "cache": False, "jobs": 1}
    )
    assert isinstance(settings, ssg_dmi.Settings)
    report = ssg_dmi.build_site(site, settings)
    assert isinstance(report, ssg_dmi.BuildReport)
    assert report.images.summary["images"] == 1 and report.images.errors == {}
    assert 'srcset="img/a.jpg-' in (site / "index.html").read_text(encoding="utf-8")
    audit = ssg_dmi.check_site(site, settings)
    assert isinstance(audit, ssg_dmi.CheckReport)
    assert [f for f in audit.findings if f.severity == "error"] == []
    facts = ssg_dmi.inspect_bytes((site / "img" / "a.jpg").read_bytes(), name="a.jpg")
    assert isinstance(facts, ssg_dmi.ImageFacts)
    assert facts.dmi == ssg_dmi.DMI.PROHIBITED.key and facts.private == []
    tagged = ssg_dmi.tag_bytes(jpeg((64, 48)), settings, name="b.jpg", lossless=True)
    assert ssg_dmi.inspect_bytes(tagged).dmi == "DMI-PROHIBITED"


def test_the_api_settings_and_errors(tmp_path: Path) -> None:
    (tmp_path / "ssg-dmi.toml").write_text('dmi = "DMI-ALLOWED"\n', encoding="utf-8")
    assert ssg_dmi.find_settings(tmp_path).policy_for("a.jpg").dmi is ssg_dmi.DMI.ALLOWED
    for bad in ({"dmii": 1}, {"widths": [1.5]}):
        try:
            ssg_dmi.load_settings(bad)
        except ssg_dmi.ConfigError as exc:
            assert isinstance(exc, ssg_dmi.SsgDmiError)
        else:
            raise AssertionError(bad)
    try:
        ssg_dmi.tag_bytes(b"not an image", name="x.jpg")
    except ssg_dmi.ImageError as exc:
        assert "not a JPEG" in str(exc)
    else:
        raise AssertionError("tagged garbage")
    assert set(ssg_dmi.__all__) >= {"build_site", "check_site", "check_url", "tag_bytes"}
