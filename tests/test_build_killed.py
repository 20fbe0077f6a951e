"""``ssg-dmi build`` killed at any write (SIGKILL, no clean-up): no partial file is left
where a reader would take it, and the next build recovers to the clean result.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.cli import main

from .builds import (
    NAME,
    build,
    copy_site,
    tree,
)
from .images import (
    encode,
    half_transparent,
    jpeg,
    photo,
)
from .readers import decoded

TMP = re.compile(r"^\.ssg-dmi-.*\.tmp$")


# --- killed builds ------------------------------------------------------------------------

KILL_AT = """
import os, signal, sys
limit, calls, real = int(sys.argv[1]), 0, os.replace
def replace(src, dst):
    global calls
    calls += 1
    if calls == limit:  # the temp file is complete, the rename never happens
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
from ssg_dmi.cli import main
sys.exit(main(sys.argv[2:]))
"""
KILL_ARGS = ("--widths", "64,128", "--formats", "webp,jpeg")


def kill_site(root: Path, count: int, size: tuple[int, int]) -> Path:
    root.mkdir()
    (root / "sub").mkdir()
    for n in range(count):
        folder = root / "sub" if n % 3 == 0 else root
        (folder / f"p{n:02}.jpg").write_bytes(jpeg(photo(size), quality=90 if n % 2 else 70))
    (root / "clear.png").write_bytes(encode(half_transparent((160, 100)), "PNG"))
    return root


def assert_no_partial_files(site: Path, cache: Path) -> list[str]:
    """Every image in the site decodes; every blob matches its name; entries parse.
    Returns the leftover temp files (complete files that were never renamed)."""
    leftovers = []
    for rel, data in tree(site).items():
        if TMP.match(Path(rel).name):
            leftovers.append(rel)
            continue
        decoded(data)  # raises on a truncated file
    if cache.exists():
        for rel, data in tree(cache).items():
            name = Path(rel).name
            if TMP.match(name):
                leftovers.append(f"cache/{rel}")
            elif rel.startswith("v1/objects/"):
                assert hashlib.sha256(data).hexdigest() == name, rel
            else:
                json.loads(data)
    return leftovers


def without_temp(files: dict[str, bytes]) -> dict[str, bytes]:
    return {r: d for r, d in files.items() if not TMP.match(Path(r).name)}


def test_build_killed_at_any_write_recovers_to_a_clean_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pristine = kill_site(tmp_path / "pristine", 8, (200, 150))
    clean = copy_site(pristine, tmp_path / "clean")
    calls = []
    real = os.replace

    def counting(src: Any, dst: Any) -> None:
        calls.append(dst)
        real(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", counting)
        expected_report = build(
            clean, tmp_path / "clean-cache", widths=[64, 128], formats=["webp", "jpeg"]
        )
    expected = tree(clean)
    total = len(calls)
    assert total > 40 and expected_report.summary["images"] == 9
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for point in sorted({1, total // 3, total // 2, total - 3, total}):
        site = copy_site(pristine, tmp_path / f"site-{point}")
        cache = tmp_path / f"cache-{point}"
        args = ["build", str(site), "--cache-dir", str(cache), "--jobs", "1", *KILL_ARGS]
        done = subprocess.run(
            [sys.executable, "-c", KILL_AT, str(point), *args, "--no-progress"],
            capture_output=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert done.returncode == -signal.SIGKILL, (point, done.stderr)
        leftovers = assert_no_partial_files(site, cache)
        assert len(leftovers) == 1, (point, leftovers)  # the one write that was cut
        report = build(site, cache, widths=[64, 128], formats=["webp", "jpeg"])
        assert report.errors == {} and report.summary["images"] == 9, point
        assert without_temp(tree(site)) == expected, point
        assert {r: e["variants"] for r, e in report.images.items()} == {
            r: e["variants"] for r, e in expected_report.images.items()
        }
        assert main(["cache", "prune", "--cache-dir", str(cache)]) == 0
        assert not [p for p in cache.rglob("*") if TMP.match(p.name)], point


def test_build_killed_by_sigkill_mid_way_then_rerun(tmp_path: Path) -> None:
    pristine = kill_site(tmp_path / "pristine", 20, (640, 480))
    clean = copy_site(pristine, tmp_path / "clean")
    build(clean, tmp_path / "clean-cache", widths=[64, 128], formats=["webp", "jpeg"])
    expected = tree(clean)
    site = copy_site(pristine, tmp_path / "site")
    cache = tmp_path / "cache"
    args = ["build", str(site), "--cache-dir", str(cache), "--jobs", "2", *KILL_ARGS]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssg_dmi.cli", *args, "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not any(NAME.match(p.name) for p in site.rglob("*")):
            assert proc.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)
        assert proc.poll() is None, "the build ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    partial = without_temp(tree(site))
    assert partial != expected  # killed mid-way: some work done, not all
    assert_no_partial_files(site, cache)
    report = build(site, cache, widths=[64, 128], formats=["webp", "jpeg"])
    assert report.errors == {} and report.summary["images"] == 21
    assert report.summary["cache_hits"] >= 1
    assert without_temp(tree(site)) == expected
