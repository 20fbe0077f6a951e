"""``ssg-dmi build``'s cache: hits give identical bytes, any setting change misses, a warm
rebuild writes nothing, prune and clear, and a corrupt blob is a miss.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.build.cache import Cache

from .builds import (
    CACHED,
    NAME,
    build,
    cache_files,
    cli,
    copy_site,
    stamps,
    tree,
)
from .readers import PLUS, dmi_of, needs_exiftool, views

# --- cache --------------------------------------------------------------------------------


def test_cache_second_build_of_a_fresh_copy_hits_and_gives_identical_bytes(
    tmp_path: Path, pristine: Path
) -> None:
    cache = tmp_path / "cache"
    first = build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    assert first.summary["cache_hits"] == 0 and first.summary["reencoded"] >= 1
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert second.summary["sources"] == 4
    assert second.summary["cache_hits"] == second.summary["sources"]
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    assert {r: e["variants"] for r, e in second.images.items()} == {
        r: e["variants"] for r, e in first.images.items()
    }


def test_cached_build_keeps_reencoded_flags_but_counts_none(tmp_path: Path, pristine: Path) -> None:
    cache = tmp_path / "cache"
    first = build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert first.images["heavy.jpg"]["original"]["reencoded"] is True
    assert second.images["heavy.jpg"]["original"]["reencoded"] is True
    # The summary counts this run's work: a warm rebuild re-encoded nothing itself.
    assert first.summary["reencoded"] > 0 and second.summary["reencoded"] == 0


def test_cached_build_keeps_the_notes(tmp_path: Path, pristine: Path) -> None:
    cache = tmp_path / "cache"
    first = build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    assert "named .png but the content is JPEG" in first.notes["lies.png"][0]
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert second.notes == first.notes


def _variant_bytes(site: Path) -> dict[str, bytes]:
    return {r: d for r, d in tree(site).items() if NAME.match(Path(r).name)}


@needs_exiftool
@pytest.mark.parametrize(
    "change",
    [
        {"quality": {"webp": 60}},
        {"widths": [100, 150]},
        {"dmi": "DMI-ALLOWED"},
    ],
    ids=["quality", "widths", "dmi"],
)
def test_cache_misses_when_a_setting_changes(
    tmp_path: Path, pristine: Path, change: dict[str, Any]
) -> None:
    cache = tmp_path / "cache"
    first = build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    changed = {**CACHED, **change}
    second = build(copy_site(pristine, tmp_path / "two"), cache, **changed)
    assert second.summary["cache_hits"] == 0 and second.summary["sources"] == 4
    before, after = _variant_bytes(tmp_path / "one"), _variant_bytes(tmp_path / "two")
    if "quality" in change:
        webp = [r for r in after if r.endswith(".webp")]
        assert webp and not set(webp) & set(before)
        assert {d for r, d in after.items() if r.endswith(".webp")}.isdisjoint(before.values())
        # JPEG quality is unchanged: the same bytes (under new names: any setting renames)
        jpegs = sorted(d for r, d in after.items() if r.endswith(".jpg"))
        assert jpegs and jpegs == sorted(d for r, d in before.items() if r.endswith(".jpg"))
        assert not {r for r in after if r.endswith(".jpg")} & set(before)
    if "widths" in change:
        widths = {v["width"] for e in second.images.values() for v in e["variants"]}
        assert 150 in widths and 200 not in widths
        assert first.summary["variants"] > 0
    if "dmi" in change:
        seen = views(*(tmp_path / "two" / r for r in after))
        assert {dmi_of(v) for v in seen.values()} == {PLUS + "DMI-ALLOWED"}
        assert set(after).isdisjoint(before)  # new tags: new bytes, new names
    third = build(copy_site(pristine, tmp_path / "three"), cache, **changed)
    assert third.summary["cache_hits"] == 4  # the changed settings are cached in turn


def test_rebuilding_the_processed_site_writes_nothing(tmp_path: Path, pristine: Path) -> None:
    cache = tmp_path / "cache"
    site = copy_site(pristine, tmp_path / "site")
    first = build(site, cache, **CACHED)
    assert first.summary["files_written"] > 0
    before = stamps(site)
    time.sleep(0.01)
    again = build(site, cache, **CACHED)
    assert again.summary["files_written"] == 0
    assert again.summary["cache_hits"] == again.summary["sources"] == 4
    assert stamps(site) == before
    assert {r: e["variants"] for r, e in again.images.items()} == {
        r: e["variants"] for r, e in first.images.items()
    }


def test_narrower_widths_remove_the_old_variants(tmp_path: Path, pristine: Path) -> None:
    site = copy_site(pristine, tmp_path / "site")
    build(site, tmp_path / "cache", **CACHED)
    assert any("-200w." in r for r in tree(site))
    report = build(site, tmp_path / "cache", **{**CACHED, "widths": [100]})
    names = [r for r in tree(site) if NAME.match(Path(r).name)]
    assert names and not [r for r in names if "-200w." in r]
    assert sorted(names) == sorted(v["path"] for e in report.images.values() for v in e["variants"])


def test_no_cache_writes_nothing_to_any_cache_folder(
    tmp_path: Path,
    pristine: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    site = copy_site(pristine, tmp_path / "site")
    report = build(site, None, **CACHED)
    assert report.summary["images"] == 5
    code, _, _ = cli(
        capsys,
        "build",
        str(copy_site(pristine, tmp_path / "site2")),
        "--no-cache",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--jobs",
        "1",
    )
    assert code == 0
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / ".cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pristine", "site", "site2"]


def test_cli_cache_prune_removes_entries_and_blobs_no_longer_used(
    tmp_path: Path,
    pristine: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    # The same site folder built twice (prune keeps what each site's last build used)
    smaller = copy_site(pristine, tmp_path / "smaller")
    build(smaller, cache, **CACHED)
    shutil.rmtree(smaller)
    copy_site(pristine, smaller)
    (smaller / "heavy.jpg").unlink()
    (smaller / "flat.png").unlink()
    fewer = copy_site(smaller, tmp_path / "fewer-pristine")
    second = build(smaller, cache, **CACHED)
    assert second.summary["cache_hits"] == second.summary["sources"] == 2
    before = cache_files(cache)
    code, out, _ = cli(capsys, "cache", "prune", "--cache-dir", str(cache))
    assert code == 0 and "pruned" in out
    after = cache_files(cache)
    assert after < before
    blobs = {Path(p).name for p in after if p.startswith("v1/objects/")}
    assert blobs == {hashlib.sha256(d).hexdigest() for d in tree(smaller).values()}
    entries = [p for p in after if p.startswith("v1/entries/")]
    # one per source the last build used, plus each one's alias: the key under which a
    # later build over this processed output finds the same entry
    assert len(entries) == 4
    removed = before - after
    assert [p for p in removed if p.startswith("v1/objects/")]
    assert [p for p in removed if p.startswith("v1/entries/")]
    again = build(copy_site(fewer, tmp_path / "again"), cache, **CACHED)
    assert again.summary["cache_hits"] == 2
    assert tree(tmp_path / "again") == tree(smaller)
    code, out, _ = cli(capsys, "cache", "clear", "--cache-dir", str(cache))
    assert code == 0 and cache_files(cache) == set()


def test_prune_keeps_what_a_rebuild_of_the_processed_site_needs(
    tmp_path: Path, pristine: Path
) -> None:
    cache = tmp_path / "cache"
    site = copy_site(pristine, tmp_path / "site")
    build(site, cache, **CACHED)
    before = tree(site)
    Cache(cache).prune()
    again = build(site, cache, **CACHED)
    assert again.summary["cache_hits"] == again.summary["sources"]
    assert again.summary["files_written"] == 0
    assert tree(site) == before


def test_a_corrupt_cache_blob_is_a_miss_not_an_error(tmp_path: Path, pristine: Path) -> None:
    cache = tmp_path / "cache"
    build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    for blob in (cache / "v1" / "objects").glob("*/*"):
        blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    report = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert report.errors == {}
    assert tree(tmp_path / "two") == tree(tmp_path / "one")


def test_jobs_share_one_cache_per_thread_and_never_a_stale_seal(tmp_path: Path) -> None:
    # A job opens the cache once per worker thread, not once per image; the seals one job
    # read and did not use are not the next job's.
    import threading

    from ssg_dmi.build import job

    first = job._cache(str(tmp_path / "c"))
    first._seals["ab" * 32] = (1, 2, 3, 4, 5)
    assert job._cache(str(tmp_path / "c")) is first and not first._seals
    assert job._cache(str(tmp_path / "other")) is not first
    elsewhere: list[Cache] = []
    thread = threading.Thread(target=lambda: elsewhere.append(job._cache(str(tmp_path / "c"))))
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] is not first
    # A forked worker starts with none (an object store's client must not cross a fork).
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, b"%d" % len(job._CACHES))
        os._exit(0)
    os.waitpid(pid, 0)
    assert job._CACHES and os.read(read, 16) == b"0"
