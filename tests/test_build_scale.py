"""The cost of a build grows with the site, no faster (issue 14), checked by counting work,
never by timing it: folder listings, cache keys computed, images sent to a worker and cache
blobs read, over a site of N images and one of 4N.

A warm rebuild (nothing changed) is decided in the driver: no image goes to a worker, no
blob is read back, nothing is written, and the report is the one the workers would give.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ssg_dmi.build import cache as cache_module
from ssg_dmi.build import pipeline
from ssg_dmi.build import spec as spec_module
from ssg_dmi.build.report import Report
from ssg_dmi.build.site import SiteReport, run_site

from .builds import settings, tree
from .test_build_scaleout import Elsewhere

FOLDERS = ("a", "b/c")  # the same folders at every size: listings must not grow
PER_PAGE = 4


def tiny_jpeg(index: int) -> bytes:
    im = Image.new("RGB", (24, 16), (index % 256, (index * 7) % 256, 99))
    im.putpixel((index % 24, 0), (255, 255, 255))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_site(root: Path, count: int) -> Path:
    """``count`` distinct images in FOLDERS, one more path holding a copy of the first, and
    pages showing them all."""
    srcs = []
    for i in range(count):
        rel = f"{FOLDERS[i % len(FOLDERS)]}/i{i:04d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(tiny_jpeg(i))
        srcs.append(rel)
    (root / "a" / "copy.jpg").write_bytes(tiny_jpeg(0))
    srcs.append("a/copy.jpg")
    for first in range(0, len(srcs), PER_PAGE):
        imgs = "".join(f'<img src="/{s}" alt="">' for s in srcs[first : first + PER_PAGE])
        page = f"<!doctype html><html><head><title>p</title></head><body>{imgs}</body></html>"
        (root / f"p{first:04d}.html").write_text(page)
    return root


class Counts:
    """What a build did, counted: patched in for the duration of a test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, site: Path) -> None:
        self.calls: Counter[str] = Counter()
        self.site = os.fspath(site)
        self._count(monkeypatch, spec_module, "make_key", "keys")
        self._count(monkeypatch, pipeline, "run_job", "jobs run")
        self._count(monkeypatch, cache_module.Cache, "read", "blobs read")
        scandir = os.scandir

        def listing(path: Any = ".") -> Any:
            if os.fspath(path).startswith(self.site):
                self.calls["listings"] += 1
            return scandir(path)

        monkeypatch.setattr(os, "scandir", listing)

    def _count(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, what: str) -> None:
        real: Callable[..., Any] = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[what] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    def reset(self) -> None:
        self.calls.clear()


def build(site: Path, cache: Path) -> SiteReport:
    return run_site(site, settings(widths=[16], formats=["webp"], cache_dir=str(cache)))


@pytest.fixture
def sized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], Any]]:
    def cold_then_warm(count: int) -> tuple[Counter[str], Counter[str], SiteReport]:
        site = make_site(tmp_path / f"site-{count}", count)
        cache = tmp_path / f"cache-{count}"
        with monkeypatch.context() as patch:
            counts = Counts(patch, site)
            build(site, cache)
            cold = Counter(counts.calls)
            before = tree(site)
            counts.reset()
            warm_report = build(site, cache)
            warm = Counter(counts.calls)
            assert tree(site) == before  # nothing written
        return cold, warm, warm_report

    yield cold_then_warm


def test_build_work_grows_linearly_and_a_warm_rebuild_sends_nothing_to_workers(
    sized: Callable[[int], tuple[Counter[str], Counter[str], SiteReport]],
) -> None:
    n = 8
    small_cold, small_warm, small = sized(n)
    large_cold, large_warm, large = sized(4 * n)
    for count, cold, warm, report in (
        (n, small_cold, small_warm, small),
        (4 * n, large_cold, large_warm, large),
    ):
        summary = report.images.summary
        assert (summary.images, summary.sources, summary.cache_hits) == (count + 1, count, count)
        assert summary.files_written == 0
        # Cold: each distinct image once to a worker, a key and an alias key for each (its
        # tagged original differs from the source), never a scan over all jobs per result.
        assert cold["jobs run"] == count
        assert count <= cold["keys"] <= 3 * count
        # Warm: one key per distinct image; no worker, no blob read back.
        assert warm["keys"] == count
        assert warm["jobs run"] == 0 and warm["blobs read"] == 0
    # Each folder is listed the same number of times at every size (pages, then images).
    assert small_warm["listings"] == large_warm["listings"] == 2 * (len(FOLDERS) + 2)
    assert small_cold["listings"] == large_cold["listings"]


def _same(one: Report, two: Report) -> None:
    assert one.images == two.images
    assert one.notes == two.notes and one.errors == two.errors
    assert one.summary == two.summary


def test_warm_rebuild_decided_in_the_driver_reports_what_the_workers_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, cache = make_site(tmp_path / "site", 6), tmp_path / "cache"
    build(site, cache)
    fast = build(site, cache).images
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_placed", lambda *args: None)
        slow = build(site, cache).images
    _same(fast, slow)
    assert fast.summary.cache_hits == 6 and fast.summary.files_written == 0


@pytest.mark.parametrize("damage", ["deleted", "other bytes", "original edited", "link"])
def test_a_warm_rebuild_redoes_an_image_whose_outputs_are_not_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    site, cache = make_site(tmp_path / "site", 6), tmp_path / "cache"
    report = build(site, cache).images
    built = tree(site)
    variant = site / report.images["a/i0002.jpg"].variants[0].path
    original = site / "b/c/i0003.jpg"
    if damage == "deleted":
        variant.unlink()
    elif damage == "other bytes":
        variant.write_bytes(b"x" * variant.stat().st_size)  # same size, other bytes: kept
    elif damage == "original edited":
        original.write_bytes(original.read_bytes() + b"\0")
    else:
        (site / "elsewhere.bin").write_bytes(variant.read_bytes())
        variant.unlink()
        variant.symlink_to(site / "elsewhere.bin")
    with monkeypatch.context() as patch:
        counts = Counts(patch, site)
        again = build(site, cache).images
    if damage == "other bytes":
        # A variant's name hashes what it was made from: a file of that name and size is
        # taken as in place (as a host would serve it), not read back to compare.
        assert counts.calls["jobs run"] == 0
        return
    assert counts.calls["jobs run"] == 1
    after = tree(site)
    if damage == "original edited":
        assert again.summary.cache_hits == 5  # a new source: made afresh
    else:
        assert (
            after[variant.relative_to(site).as_posix()]
            == built[variant.relative_to(site).as_posix()]
        )
        assert not variant.is_symlink()
        assert again.summary.cache_hits == 6


@pytest.mark.parametrize("jobs", [1, 2, "remote"])
def test_a_build_past_the_spill_threshold_writes_and_reports_what_a_small_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int | str
) -> None:
    # Past spool.SPILL_AT entries the driver's per-image tables (the plan's groups, the
    # variants found, the report's records) move into SQLite. At 3 every table of this
    # site spills: the site written, the report, the rebuilds must be the same.
    from ssg_dmi.build import spool

    spills: list[int] = []
    real_spill = spool.Spooled._spill

    def counted(table: spool.Spooled, held: dict[str, str]) -> None:
        spills.append(1)
        real_spill(table, held)

    monkeypatch.setattr(spool.Spooled, "_spill", counted)
    seen = {}
    for spill_at in (10_000, 3):
        monkeypatch.setattr(spool, "SPILL_AT", spill_at)
        spills.clear()
        root = tmp_path / str(spill_at)
        site, cache = make_site(root / "site", 8), root / "cache"
        (site / "a" / "broken.jpg").write_bytes(b"no jpeg at all")
        (site / "b" / "c" / "i0001.jpg-999w.0123456789.webp").write_bytes(b"an old variant")
        workers = 2 if jobs == "remote" else jobs
        config = settings(widths=[16, 20], formats=["webp"], cache_dir=str(cache), jobs=workers)
        # "remote": an executor taken for a cluster's (jobs carry their bytes, the driver
        # places their outputs), as a Dask build runs.
        elsewhere = Elsewhere() if jobs == "remote" else None
        reports = [run_site(site, config, executor=elsewhere).images]  # cold
        reports.append(run_site(site, config, executor=elsewhere).images)  # warm: in place
        (site / "a" / "i0002.jpg").write_bytes(tiny_jpeg(200))  # one image changed
        (site / reports[0].images["b/c/i0003.jpg"].variants[0].path).unlink()  # one redone
        reports.append(run_site(site, config, executor=elsewhere).images)
        assert [r.summary.errors for r in reports] == [1, 1, 1]
        assert reports[1].summary.cache_hits == 8 and reports[1].summary.files_written == 0
        seen[spill_at] = (tree(site), [r.as_json() for r in reports], len(spills))
    small, large = seen[10_000], seen[3]
    # Each build's groups and records; the warm builds' listings of the variants beside.
    assert small[2] == 0 and large[2] >= 8
    assert large[:2] == small[:2]


def test_a_full_temporary_folder_stops_the_build_with_one_line_and_a_consistent_site(
    tmp_path: Path,
) -> None:
    # Past the threshold the driver's tables live in a SQLite file in the temporary folder.
    # That folder full (here: files over 16 KiB refused, EFBIG) is the machine's fault: one
    # line saying where and what to do, exit 1, and the site as consistent as after Ctrl-C.
    import subprocess
    import sys

    site, cache = make_site(tmp_path / "site", 400), tmp_path / "cache"
    code = f"""
import resource, signal, sys
from ssg_dmi.build import spool
from ssg_dmi.cli import main
spool.SPILL_AT, spool.CACHE_KIB = 2, 8
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))
sys.exit(main(["build", {str(site)!r}, "--cache-dir", {str(cache)!r}, "--jobs", "1",
               "--widths", "16", "--formats", "webp", "--no-progress"]))
"""
    before = tree(site)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("ssg-dmi: error: the build's temporary tables in ")
    assert "free space there, or point TMPDIR (or SQLITE_TMPDIR) at a folder with room" in line
    after = tree(site)
    # Nothing lost; each image as it was or tagged, its variants beside it or not yet made.
    assert set(before) <= set(after)
    assert all(path.endswith(".webp") for path in set(after) - set(before))
