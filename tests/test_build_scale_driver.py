"""Issue 14, the driver of a 100,000-image build: memory that grows by a few hundred bytes
per image, not kilobytes, and a rebuild with nothing to do that never loads the image
libraries (Pillow, the container parsers).

Measured by what the driver holds (tracemalloc) and what it imports, never by timing.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import pytest

from ssg_dmi.build import job as job_module
from ssg_dmi.build import spec
from ssg_dmi.build.cache import Output, sha256
from ssg_dmi.build.pipeline import run
from ssg_dmi.build.report import ImageResult, ImageTable, OriginalFile, Report, VariantFile
from ssg_dmi.images import variants

from .builds import modules_after, settings


def test_the_variant_extensions_are_the_image_engines() -> None:
    assert spec.EXTENSION == variants.EXTENSION


def record(rel: str, n: int, *, reencoded: bool = False) -> ImageResult:
    made = [
        VariantFile(f"{rel}-{w}w.0123456789.webp", w, w // 2, "webp", 1000 + w) for w in (320, 640)
    ][:n]
    return ImageResult(OriginalFile(rel, 800, 400, "jpeg", 123456, reencoded), made)


@pytest.mark.parametrize(
    "entry",
    [
        record("a/b.jpg", 2, reencoded=True),
        record("a/b.jpg", 0),
        ImageResult(OriginalFile("elsewhere.png", 0, 0, "svg", 5, False), []),  # not its key
        ImageResult(
            OriginalFile("a/b.jpg", 1, 1, "png", 0, False),
            [VariantFile("other/x-1w.0123456789.png", 1, 1, "png", 7)],  # not beside it
        ),
        record("bad\udcff name, with | and ~.jpg", 1),
    ],
)
def test_the_compact_image_table_gives_back_the_records_stored(entry: ImageResult) -> None:
    rel = "a/b.jpg" if entry.original.path in ("a/b.jpg", "elsewhere.png") else entry.original.path
    table = ImageTable([(rel, entry)])
    assert table[rel] == entry and list(table) == [rel] and rel in table
    assert dict(table.items()) == {rel: entry}


def test_a_report_of_many_images_holds_about_a_hundred_bytes_each() -> None:
    count = 5000
    paths = [f"g{i // 1000:03d}/img/i{i:06d}.jpg" for i in range(count)]  # held anyway
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        report = Report()
        for rel in paths:
            report.images[rel] = record(rel, 1)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # The records as dataclasses took ~400 bytes an image (five objects, the variant's
    # path in full); one packed string and its dict slot take ~130.
    assert held / count < 250
    assert report.images[paths[7]] == record(paths[7], 1)


def stub_render(data: bytes, name: str, policy: object, options: object) -> object:
    """No pixel work: the source as its own original, and one variant."""
    variant = b"variant of " + data
    pairs = [
        (Output("original", 320, 240, "jpeg", sha256(data), len(data), ""), data),
        (Output("variant", 320, 240, "webp", sha256(variant), len(variant), ""), variant),
    ]
    return pairs, SimpleNamespace(notes=()), False


def tiny_site(root: Path, count: int) -> Path:
    for i in range(count):
        path = root / f"f{i // 100:03d}" / f"i{i:06d}.jpg"  # folders of 100, as sites have
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"img {i}\n".encode())
    return root


def warm_peak(tmp_path: Path, count: int) -> float:
    """Traced peak bytes of a warm build of ``count`` tiny images (pixels stubbed)."""
    site, cache = tiny_site(tmp_path / f"site-{count}", count), tmp_path / f"cache-{count}"
    config = settings(widths=[320], formats=["webp"], cache_dir=str(cache), jobs=1)
    cold = run(site, config, cache_dir=cache, progress=False)
    assert cold.summary.images == count and not cold.errors
    tracemalloc.start()
    try:
        warm = run(site, config, cache_dir=cache, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert warm.summary.cache_hits == count and warm.summary.files_written == 0
    return float(peak)


def test_a_warm_build_holds_no_record_per_image_beyond_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_module, "render", stub_render)
    small, large = warm_peak(tmp_path, 500), warm_peak(tmp_path, 2500)
    # Each image: its path, its walk and plan entries, its packed record, its key for the
    # cache's record (~0.6 KB), and what the cache keeps of each entry read (its blobs'
    # seals, ~0.6 KB). With every job, result and report record held at once (and no
    # seals yet): ~2.0 KB.
    assert (large - small) / 2000 < 1500


def test_past_the_spill_threshold_a_warm_build_holds_almost_nothing_per_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plan's groups, the variants found and the report's records move into SQLite
    # past spool.SPILL_AT entries (its page cache is bounded: tests/test_spool.py). What
    # the Python heap still holds per image: nothing (the keys for the cache's record go to
    # a temporary file too). The buffers that are bounded, not per image, are made small
    # enough to be full at both sizes: the cache's record is written 1,024 keys at a time
    # (72 KB of text) gathered into writes of up to 1 MiB.
    from ssg_dmi import fsutil
    from ssg_dmi.build import cache, spool

    monkeypatch.setattr(job_module, "render", stub_render)
    monkeypatch.setattr(spool, "SPILL_AT", 100)
    monkeypatch.setattr(cache, "RECORD_PIECE", 32 * 16)
    monkeypatch.setattr(fsutil, "_CHUNK", 4096)
    small, large = warm_peak(tmp_path, 500), warm_peak(tmp_path, 2500)
    assert (large - small) / 2000 < 40


def test_a_rebuild_with_nothing_to_do_never_loads_the_image_libraries(tmp_path: Path) -> None:
    from PIL import Image

    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    Image.new("RGB", (64, 48), (200, 90, 30)).save(site / "a.jpg", quality=90)
    (site / "index.html").write_text('<!doctype html><title>t</title><img src="a.jpg" alt="">')
    argv = ["build", str(site), "--cache-dir", str(cache), "--no-progress", "--jobs", "1"]
    build = f"from ssg_dmi.cli import main\nassert main({argv!r}) == 0"
    cold = modules_after(build)
    assert "PIL" in cold and "ssg_dmi.build.job" in cold  # the image was processed
    warm = modules_after(build)
    assert "ssg_dmi.build.site" in warm
    heavy = {m for m in warm if m.startswith(("PIL", "ssg_dmi.images.", "ssg_dmi.build.job"))}
    assert heavy <= {"ssg_dmi.images.provenance"}  # a dataclass of settings, no Pillow


def test_an_old_variant_beside_an_image_in_place_is_still_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each image's listing of variants is settled as its result comes (not kept to the
    # end): an old variant beside an image that is in place is still found and removed.
    monkeypatch.setattr(job_module, "render", stub_render)
    site, cache = tiny_site(tmp_path / "site", 6), tmp_path / "cache"
    config = settings(widths=[320], formats=["webp"], cache_dir=str(cache), jobs=1)
    first = run(site, config, cache_dir=cache, progress=False)
    kept = site / first.images["f000/i000002.jpg"].variants[0].path
    old = site / "f000" / "i000002.jpg-999w.0123456789.webp"
    old.write_bytes(b"an earlier build's variant")
    again = run(site, config, cache_dir=cache, progress=False)
    assert again.summary.cache_hits == 6 and again.summary.files_written == 0
    assert not old.exists() and kept.is_file()
    assert again.images == first.images
