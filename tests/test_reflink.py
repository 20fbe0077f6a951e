"""On a file system that shares extents (XFS here), a rebuild's copies from the cache are
reflinks: the site's files share their blocks with the cache's blobs, as the kernel's own
extent map (``filefrag``) shows, and writing into one never changes the other.

Needs root, ``mkfs.xfs`` (Debian's xfsprogs, which .ci/run installs) and loop devices: a
small XFS image is made in the test's folder and mounted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssg_dmi.build import store as store_module

from .builds import CACHED, build, copy_site, tree

MKFS_XFS = shutil.which("mkfs.xfs") or "/usr/sbin/mkfs.xfs"
FILEFRAG = shutil.which("filefrag") or "/usr/sbin/filefrag"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system needs root"),
    pytest.mark.skipif(
        not os.access(MKFS_XFS, os.X_OK), reason="mkfs.xfs is not installed (xfsprogs)"
    ),
    pytest.mark.skipif(not os.access(FILEFRAG, os.X_OK), reason="filefrag (e2fsprogs) missing"),
    pytest.mark.skipif(store_module.boot_id() is None, reason="seals need a boot id (Linux)"),
]


@pytest.fixture
def xfs(tmp_path: Path) -> Iterator[Path]:
    """An empty XFS (reflinks on) mounted for the test."""
    image, mount = tmp_path / "xfs.img", tmp_path / "mnt"
    with open(image, "wb") as handle:
        handle.truncate(320 << 20)  # sparse; XFS's smallest size is 300 MB
    mount.mkdir()
    subprocess.run([MKFS_XFS, "-q", "-m", "reflink=1", str(image)], check=True)
    done = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def shared(path: Path) -> bool:
    """Whether every extent of ``path`` is shared with another file (filefrag's flags)."""
    out = subprocess.run(
        [FILEFRAG, "-v", str(path)], capture_output=True, text=True, check=True
    ).stdout
    extents = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    return bool(extents) and all("shared" in line for line in extents)


def test_a_rebuild_from_the_cache_on_xfs_shares_the_blobs_blocks(xfs: Path, pristine: Path) -> None:
    cache = xfs / "cache"
    build(copy_site(pristine, xfs / "one"), cache, **CACHED)
    second = build(copy_site(pristine, xfs / "two"), cache, **CACHED)
    assert second.summary["cache_hits"] == second.summary["sources"]
    assert tree(xfs / "two") == tree(xfs / "one")
    source = tree(pristine)
    made = [
        xfs / "two" / rel
        for rel, data in tree(xfs / "two").items()
        if rel.endswith((".jpg", ".png", ".webp")) and source.get(rel) != data
    ]
    assert len(made) > 8
    assert all(shared(path) for path in made)
    # The first build's files were written from bytes: not shared (the check can fail).
    assert not any(shared(xfs / "one" / path.relative_to(xfs / "two")) for path in made)
    # Copy on write: a generator writing into a site file in place leaves the cache alone.
    blobs = tree(cache)
    for path in made:
        with open(path, "r+b") as handle:
            handle.write(b"\0" * 16)
    assert tree(cache) == blobs


def test_a_cache_on_another_file_system_still_gives_the_same_site(
    xfs: Path, pristine: Path, tmp_path: Path
) -> None:
    """The cache on the XFS, the site on the test's own folder: the kernel refuses a copy
    between them (EXDEV) or copies it itself, and either way the bytes arrive."""
    cache = xfs / "cache"
    build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert second.summary["cache_hits"] == second.summary["sources"]
    assert os.stat(tmp_path / "two").st_dev != os.stat(cache).st_dev
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
