"""The ``--report`` JSON, written from a per-image template for speed, is exactly the text
the generic encoder (``json.dumps(indent=2, sort_keys=True)``) gives for the same data."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from ssg_dmi.build.report import ImageResult, OriginalFile, Report, Summary, VariantFile


def reference(report: Report, ascii_only: bool) -> str:
    data: dict[str, Any] = {
        "images": {rel: asdict(result) for rel, result in report.images.items()},
        "errors": report.errors,
        "notes": report.notes,
        "summary": asdict(report.summary),
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=ascii_only)


def image(rel: str, variants: int, reencoded: bool = False) -> ImageResult:
    return ImageResult(
        OriginalFile(rel, 640, 480, "jpeg", 12345, reencoded),
        [
            VariantFile(f"{rel}-{w}w.abcdef0123.webp", w, w * 3 // 4, "webp", 100 * w)
            for w in range(320, 320 + 160 * variants, 160)
        ],
    )


def full_report() -> Report:
    report = Report()
    for rel in ("z/last.jpg", 'a "quoted" \\ name.png', "é/ü — 写真.jpg", "b/tab\there.gif"):
        report.images[rel] = image(rel, 2, reencoded=rel.endswith(".png"))
    report.images["svg/logo.svg"] = ImageResult(
        OriginalFile("svg/logo.svg", 0, 0, "svg", 9, False), []
    )
    report.images["bad\udcff.jpg"] = image("bad\udcff.jpg", 1)  # a name that is not UTF-8
    report.errors = {"x/broken.jpg": "cannot be decoded (truncated)", "ü.png": 'über "limit"'}
    report.notes = {"a.gif": ["animated: one note", "another ✓"], "b.jpg": [], "c.jpg": ["x"]}
    report.summary = Summary(images=6, sources=6, variants=9, bytes_before=10, errors=2)
    return report


@pytest.mark.parametrize("ascii_only", [True, False])
def test_report_json_is_the_generic_encoders_text(ascii_only: bool) -> None:
    report = full_report()
    if not ascii_only:  # a lone surrogate cannot be written as UTF-8 JSON either way
        del report.images["bad\udcff.jpg"]
    assert report.as_json(ascii_only) == reference(report, ascii_only)
    assert json.loads(report.as_json(ascii_only))["images"]["z/last.jpg"]["variants"][1] == {
        "bytes": 48000,
        "format": "webp",
        "height": 360,
        "path": "z/last.jpg-480w.abcdef0123.webp",
        "width": 480,
    }


def test_an_empty_report_is_the_generic_encoders_text() -> None:
    assert Report().as_json() == reference(Report(), False)


def test_per_image_records_have_no_instance_dict() -> None:
    # 100,000 images: a __dict__ per record would cost ~100 bytes more each.
    entry = image("a.jpg", 1)
    for record in (entry, entry.original, entry.variants[0]):
        assert not hasattr(record, "__dict__")
    assert entry["original"]["path"] == "a.jpg"  # still read the way the JSON reads


def test_write_report_streams_atomically_and_leaves_an_unchanged_report_alone(
    tmp_path: Any,
) -> None:
    """The file holds exactly as_json(); a name that is not UTF-8 makes the whole report
    ASCII; writing the same report again leaves the file (and its mtime) alone."""
    import os

    from ssg_dmi.build.pipeline import write_report

    report = full_report()
    path = tmp_path / "out" / "report.json"
    write_report(report, path)
    assert path.read_text("ascii") == report.as_json(ascii_only=True)  # "bad\udcff.jpg"
    os.utime(path, (1, 1))
    write_report(report, path)
    assert path.stat().st_mtime == 1
    del report.images["bad\udcff.jpg"]
    write_report(report, path)
    assert path.read_bytes() == report.as_json().encode("utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left
