"""``ssg-dmi build`` on the command line: the JSON report, flags that reach the encoder, and
bad flags or a missing site exiting 2 with one line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ssg_dmi.build.pipeline import run
from ssg_dmi.cli import main

from .builds import (
    build,
    cli,
    settings,
)
from .images import (
    camera_file,
    encode,
    jpeg,
    pattern,
    photo,
)
from .readers import decoded

# --- CLI ----------------------------------------------------------------------------------


def test_cli_build_writes_the_json_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    source = jpeg(photo((1000, 500)), quality=95)
    (site / "img" / "a.jpg").write_bytes(source)
    (site / "b.png").write_bytes(encode(photo((700, 300)), "PNG"))
    (site / "c.svg").write_bytes(camera_file("SVG"))
    report_path = tmp_path / "out" / "report.json"
    cache = tmp_path / "cache-dir"
    code, out, err = cli(
        capsys,
        "build",
        str(site),
        "--widths",
        "480,960",
        "--formats",
        "webp",
        "--quality",
        "70",
        "--originals",
        "tag",
        "--jobs",
        "1",
        "--cache-dir",
        str(cache),
        "--report",
        str(report_path),
    )
    assert code == 0, err
    assert "ssg-dmi: 3 images tagged (0 re-encoded), 0 untagged" in out
    data = json.loads(report_path.read_text(encoding="utf-8"))
    assert set(data) == {"images", "errors", "notes", "summary"}
    assert sorted(data["images"]) == ["b.png", "c.svg", "img/a.jpg"]
    assert data["errors"] == {}
    assert data["summary"]["images"] == 3 and data["summary"]["variants"] == 4
    assert data["summary"]["files_written"] > 0 and data["summary"]["cache_hits"] == 0
    for rel, entry in data["images"].items():
        original = entry["original"]
        assert original["path"] == rel and original["reencoded"] is False
        assert original["bytes"] == (site / rel).stat().st_size
        for variant in entry["variants"]:
            assert set(variant) == {"path", "width", "height", "format", "bytes"}
            path = site / variant["path"]
            assert variant["bytes"] == path.stat().st_size
            im = decoded(path)
            assert variant["format"] == "webp" == im.format.lower()
            assert im.size == (variant["width"], variant["height"])
    a = data["images"]["img/a.jpg"]
    assert (a["original"]["width"], a["original"]["height"]) == (1000, 500)
    assert sorted(v["width"] for v in a["variants"]) == [480, 960]
    assert sorted(v["width"] for v in data["images"]["b.png"]["variants"]) == [480, 700]
    # --originals tag: the heavy JPEG keeps its pixels; --quality 70 reaches the encoder.
    assert decoded(site / "img/a.jpg").tobytes() == decoded(source).tobytes()
    q70 = [(site / v["path"]).read_bytes() for v in a["variants"] if v["width"] == 480][0]
    site80 = tmp_path / "site80"
    (site80 / "img").mkdir(parents=True)
    (site80 / "img" / "a.jpg").write_bytes(source)
    q80 = build(site80, widths=[480, 960], formats=["webp"], originals="tag", quality=80)
    q80_path = [v["path"] for v in q80.images["img/a.jpg"]["variants"] if v["width"] == 480][0]
    q80_bytes = (site80 / q80_path).read_bytes()
    assert len(q70) < len(q80_bytes)
    assert len(list((cache / "v1" / "builds").glob("*.json"))) == 1
    assert not (tmp_path / ".cache").exists()


def test_cli_report_with_a_non_utf8_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    with open(os.fsencode(site) + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(jpeg(photo((100, 80))))
    report_path = tmp_path / "report.json"
    code, _, err = cli(
        capsys,
        "build",
        str(site),
        "--jobs",
        "1",
        "--widths",
        "32",
        "--cache-dir",
        str(tmp_path / "c"),
        "--report",
        str(report_path),
    )
    assert code == 0 and "Traceback" not in err
    assert len(json.loads(report_path.read_bytes())["images"]) == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--formats", "gif"], ["`formats`", "'gif'"]),
        (["--formats", "webp,tiff"], ["`formats`", "'tiff'"]),
        (["--widths", "abc"], ["`widths`", "'abc'"]),
        (["--widths", "480,x"], ["`widths`", "'x'"]),
        (["--widths", "8"], ["`widths`", "8"]),
        (["--jobs", "0"], ["`jobs`", "0"]),
        (["--quality", "101"], ["`quality`", "101"]),
        (["--originals", "shrink"], ["--originals", "'shrink'"]),
        (["--quality", "high"], ["--quality", "'high'"]),
    ],
)
def test_cli_bad_flags_exit_2_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    words: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.jpg").write_bytes(jpeg(pattern()))
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(["build", str(site), "--cache-dir", str(tmp_path / "c"), *args]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1, err
    assert all(word in errors[0] for word in words), errors[0]
    assert "Traceback" not in err
    assert (site / "a.jpg").read_bytes() == jpeg(pattern())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing written


def test_cli_missing_site_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "build", str(tmp_path / "no-site"), "--jobs", "1")
    assert code == 2
    assert err.strip().splitlines() == [
        f"ssg-dmi: error: {tmp_path / 'no-site'}: no such site folder; "
        "give the generator's output folder"
    ]
    assert out == "" and sorted(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="no such site folder"):
        run(tmp_path / "no-site", settings())
