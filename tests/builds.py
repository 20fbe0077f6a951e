"""Building a small test site in-process, and reading back what the build left on disk."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.build.pipeline import run
from ssg_dmi.build.report import Report
from ssg_dmi.cli import main
from ssg_dmi.settings import Settings, load_settings

# Our own reading of `<name>-<w>w.<10 hex>.<ext>`, independent of process.VARIANT_NAME.
NAME = re.compile(
    r"^(?P<source>.+)-(?P<width>\d+)w\.(?P<hash>[0-9a-f]{10})\.(?P<ext>webp|jpg|png|avif)$"
)
# The settings the cache tests (and the thread-pool test) build the `pristine` site with.
CACHED = {"widths": [100, 200], "formats": ["webp", "jpeg"], "quality": {"webp": 80}}


def settings(**values: Any) -> Settings:
    """Settings from keys as in ssg-dmi.toml; one worker unless told otherwise."""
    values.setdefault("jobs", 1)
    return load_settings(values, "test")


def build(site: Path, cache: Path | None = None, **values: Any) -> Report:
    """One serial in-process build of ``site``."""
    return run(site, settings(**values), cache_dir=cache, progress=False)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``ssg-dmi ARGS`` in-process: exit code, stdout, stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def copy_site(pristine: Path, to: Path) -> Path:
    """A copy of ``pristine`` at ``to`` (links copied as links)."""
    shutil.copytree(pristine, to, symlinks=True)
    return to


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (links not followed), by relative path."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def stamps(root: Path, skip: Iterable[Path] = ()) -> dict[str, tuple[bytes | str, int]]:
    """Bytes (or link target) and mtime of everything under ``root`` but ``skip``."""
    skipped = {p.resolve() for p in skip}
    out: dict[str, tuple[bytes | str, int]] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if (Path(folder) / d).resolve() not in skipped]
        for name in [*names, *dirs]:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if path.is_symlink():
                out[rel] = (os.readlink(path), st.st_mtime_ns)
            elif path.is_file():
                out[rel] = (path.read_bytes(), st.st_mtime_ns)
            else:
                out[rel] = ("<dir>", 0)
    return out


def variants_of(site: Path, rel: str) -> list[Path]:
    """The variant files the build wrote beside the image ``rel``, by our own name pattern."""
    source = site / rel
    return sorted(
        p
        for p in source.parent.iterdir()
        if (m := NAME.match(p.name)) and m["source"] == source.name
    )


def cache_files(cache: Path) -> set[str]:
    """Every file in the cache folder, by relative path."""
    return {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())
