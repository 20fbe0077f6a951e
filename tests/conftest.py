"""Fixtures shared by several test files: the two example sites, built once per session,
and ``pristine``, a small site the build tests copy and build again and again.

``example_sites`` builds ``example-site/mkdocs`` and ``example-site/pelican`` with the real
generators as subprocesses, into a temporary folder, exactly as ``make demo`` does. The
only thing either build writes inside the repository is the MkDocs plugin's cache,
``example-site/mkdocs/.cache/ssg-dmi`` (gitignored): the plugin puts it beside mkdocs.yml
and mkdocs has no command-line override. Pelican's cache goes to the temporary folder
through ``pelican -e SSG_DMI=...`` (same keys as pelicanconf.py plus ``cache_dir``).
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .images import encode, jpeg, pattern, photo

# The S3 fixtures (a real S3 API on loopback) for any test module that asks for them.
pytest_plugins = ("tests.objectstore",)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example-site"
MKDOCS_YML = EXAMPLE / "mkdocs" / "mkdocs.yml"
PELICAN_DIR = EXAMPLE / "pelican"
POLICY_TOML = EXAMPLE / "ssg-dmi.toml"
BUILD_TIMEOUT = 120


@dataclass(frozen=True)
class Build:
    """One generator run: where it wrote, how it exited, what it printed."""

    site: Path
    returncode: int
    output: str  # stdout then stderr
    repo_changes: list[str]  # files of example-site/ (outside .cache) the run changed


@dataclass(frozen=True)
class ExampleSites:
    """Both example sites, built once per session."""

    mkdocs: Build
    pelican: Build
    tmp: Path


def tool(name: str) -> str:
    """A console script of this venv (the one running pytest), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed in {sys.prefix} nor on PATH")
    return found


def _run(cmd: list[str], cwd: Path, site: Path) -> Build:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    before = snapshot(EXAMPLE)
    done = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    after = snapshot(EXAMPLE)
    changes = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return Build(site, done.returncode, done.stdout + done.stderr, changes)


def build_mkdocs(dest: Path) -> Build:
    """``mkdocs build -f example-site/mkdocs/mkdocs.yml -d DEST`` from the repo root."""
    cmd = [tool("mkdocs"), "build", "-f", str(MKDOCS_YML), "-d", str(dest)]
    return _run(cmd, ROOT, dest)


def build_pelican(dest: Path, cache: Path | None, *, plugins: bool = True) -> Build:
    """``pelican content -s pelicanconf.py -o DEST`` in example-site/pelican.

    ``cache`` redirects ssg-dmi's cache; ``plugins=False`` builds the site without ssg-dmi
    (the reference the plugin's output is compared with)."""
    cmd = [tool("pelican"), "content", "-s", "pelicanconf.py", "-o", str(dest)]
    if not plugins:
        cmd += ["-e", "PLUGINS=[]"]
    elif cache is not None:
        conf = runpy.run_path(str(PELICAN_DIR / "pelicanconf.py"))
        ssg_dmi = {**conf.get("SSG_DMI", {}), "cache_dir": str(cache)}
        cmd += ["-e", f"SSG_DMI={json.dumps(ssg_dmi)}"]
    return _run(cmd, PELICAN_DIR, dest)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file under ``folder``, skipping ``.cache`` folders."""
    files = {}
    for here, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".cache"]
        for name in names:
            path = Path(here) / name
            st = path.lstat()
            files[path.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns)
    return files


@pytest.fixture(scope="session")
def example_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleSites]:
    """Both example sites built with the real ``mkdocs`` and ``pelican`` commands."""
    tmp = tmp_path_factory.mktemp("example-sites")
    mkdocs = build_mkdocs(tmp / "mkdocs")
    pelican = build_pelican(tmp / "pelican", tmp / "pelican-cache")
    yield ExampleSites(mkdocs, pelican, tmp)


@pytest.fixture
def pristine(tmp_path: Path) -> Path:
    """A small built site: a heavy JPEG (re-encoded), a light one, a PNG, a duplicate."""
    site = tmp_path / "pristine"
    (site / "sub").mkdir(parents=True)
    (site / "heavy.jpg").write_bytes(jpeg(photo((400, 300)), quality=95))
    (site / "light.jpg").write_bytes(jpeg(photo((300, 200)), quality=70))
    (site / "sub" / "light-copy.jpg").write_bytes((site / "light.jpg").read_bytes())
    (site / "flat.png").write_bytes(encode(pattern((240, 120)), "PNG"))
    (site / "lies.png").write_bytes(jpeg(photo((120, 80))))  # a note on the first build
    return site
