"""``ssg-dmi build`` touches only the images it should: links out, hidden folders, globs;
bad images are reported, left unchanged, and the rest of the site is processed.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from .builds import (
    NAME,
    build,
    cli,
    copy_site,
    stamps,
    variants_of,
)
from .images import (
    camera_file,
    encode,
    jpeg,
    photo,
)
from .readers import dmi_of, exiftool, needs_exiftool
from .test_cli import png_claiming

# --- safety -------------------------------------------------------------------------------


def test_links_out_hidden_folders_and_the_rest_of_the_disk_are_left_alone(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(camera_file("JPEG"))
    (outside / "notes.txt").write_text("keep me")
    site = tmp_path / "site"
    (site / ".git").mkdir(parents=True)
    (site / ".git" / "x.jpg").write_bytes(camera_file("JPEG"))
    (site / ".well-known").mkdir()
    (site / ".well-known" / "logo.png").write_bytes(camera_file("PNG"))
    (site / "real.jpg").write_bytes(camera_file("JPEG"))
    (site / "link.jpg").symlink_to(outside / "secret.jpg")
    (site / "linked-folder").symlink_to(outside, target_is_directory=True)
    (site / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    cache = tmp_path / "cache"
    before = stamps(tmp_path, skip=[site, cache])
    hidden = stamps(site / ".git"), stamps(site / ".well-known")
    time.sleep(0.01)
    report = build(site, cache, widths=[16, 32], formats=["webp"])
    assert sorted(report.images) == ["real.jpg"]
    assert report.errors == {}
    assert stamps(tmp_path, skip=[site, cache]) == before
    assert (stamps(site / ".git"), stamps(site / ".well-known")) == hidden
    assert os.readlink(site / "link.jpg") == str(outside / "secret.jpg")
    assert os.readlink(site / "dangling.jpg") == str(tmp_path / "nowhere.jpg")
    made = sorted(p.name for p in site.iterdir() if NAME.match(p.name))
    assert made and all(n.startswith("real.jpg-") for n in made)


@needs_exiftool
def test_a_file_only_named_like_a_variant_is_still_tagged(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "hero-1200w.0123456789.jpg").write_bytes(camera_file("JPEG"))
    report = build(site, widths=[32], formats=["webp"])
    assert "hero-1200w.0123456789.jpg" in report.images or report.errors
    view = exiftool(site / "hero-1200w.0123456789.jpg")[0]
    assert dmi_of(view) and not [k for k in view if "GPS" in k]


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for folder in ("blog/2024", "docs"):
        (site / folder).mkdir(parents=True)
    data = jpeg(photo((100, 80)))
    for rel in ("blog/a.jpg", "blog/2024/b.jpg", "blog/2024/skip-c.jpg", "docs/d.jpg"):
        (site / rel).write_bytes(data)
    (site / "e.png").write_bytes(encode(photo((100, 80)), "PNG"))
    (site / "docs" / "f.png").write_bytes(encode(photo((90, 80)), "PNG"))
    before = stamps(site)
    report = build(
        site, widths=[32], formats=["webp"], include=["blog/**", "*.png"], exclude=["**/skip-*"]
    )
    chosen = ["blog/2024/b.jpg", "blog/a.jpg", "docs/f.png", "e.png"]
    assert sorted(report.images) == chosen
    for rel, (data_before, mtime) in before.items():
        if rel not in chosen and data_before != "<dir>":
            assert (site / rel).read_bytes() == data_before, rel
            assert (site / rel).stat().st_mtime_ns == mtime, rel
            assert variants_of(site, rel) == [], rel
    for rel in chosen:
        assert len(variants_of(site, rel)) == 1, rel


@needs_exiftool
def test_bad_images_reported_left_alone_and_the_rest_processed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    pristine = tmp_path / "pristine"
    (pristine / "deep").mkdir(parents=True)
    full = jpeg(photo((600, 400)))
    bad = {
        "bomb.png": png_claiming(5000, 5000),  # Pillow's own check refuses it
        "deep/bomb2.png": png_claiming(1200, 1000),  # only ssg-dmi's limit refuses it
        "truncated.jpg": full[: len(full) * 2 // 3],
        "empty.jpg": b"",
    }
    for rel, data in bad.items():
        (pristine / rel).write_bytes(data)
    (pristine / "ok.jpg").write_bytes(full)
    (pristine / "deep" / "ok.png").write_bytes(encode(photo((200, 100)), "PNG"))
    site = copy_site(pristine, tmp_path / "site")
    before = stamps(site)
    time.sleep(0.01)
    report = build(site, tmp_path / "cache", widths=[64], formats=["webp"], max_pixels=1_000_000)
    assert sorted(report.errors) == sorted(bad)
    assert "over the limit of 1,000,000 pixels" in report.errors["bomb.png"]
    assert "1200×1000" in report.errors["deep/bomb2.png"]
    assert "over the limit" in report.errors["deep/bomb2.png"]
    assert re.search(r"truncat|EOI|end of the file", report.errors["truncated.jpg"])
    assert "empty file" in report.errors["empty.jpg"]
    assert report.summary["errors"] == 4 and report.untagged == 4
    for rel in bad:
        assert stamps(site)[rel] == before[rel], rel
        assert variants_of(site, rel) == [], rel
    assert sorted(report.images) == ["deep/ok.png", "ok.jpg"]
    for rel in report.images:
        assert dmi_of(exiftool(site / rel)[0]), rel
        assert len(variants_of(site, rel)) == 1
    config = tmp_path / "ssg-dmi.toml"
    config.write_text("max_pixels = 1000000\nwidths = [64]\n")
    common = ["--config", str(config), "--jobs", "1", "--cache-dir", str(tmp_path / "c")]
    code, out, err = cli(capsys, "build", str(copy_site(pristine, tmp_path / "s1")), *common)
    assert code == 0
    assert "2 images tagged" in out and "4 untagged" in out
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 4 and all(line.endswith("left unchanged and untagged") for line in lines)
    assert "Traceback" not in err
    site2 = copy_site(pristine, tmp_path / "s2")
    code, _, err = cli(capsys, "build", str(site2), *common, "--strict")
    assert code == 1 and "Traceback" not in err
    config.write_text("max_pixels = 1000000\nwidths = [64]\nstrict = true\n")
    code, _, _ = cli(capsys, "build", str(copy_site(pristine, tmp_path / "s3")), *common)
    assert code == 1
    good = copy_site(pristine, tmp_path / "good")
    for rel in bad:
        (good / rel).unlink()
    code, _, _ = cli(capsys, "build", str(good), *common, "--strict")
    assert code == 0
