"""The one site walker: which files of a site folder ssg-dmi reads, by one rule.

Build, check, ``tag DIR`` and ``inspect DIR`` all walk with :func:`walk`: hidden folders
and files are passed over, and so are the cache folder, links leading outside the folder
and anything that is not a regular file (a FIFO named ``x.jpg`` would block whoever opens
it forever). Only stat calls decide; nothing is opened. Each file passed over on purpose
is one line in ``notes`` (logged as a warning when no list is given).

Also here, since the build names them and the audit and the page rewriter recognise them:
the file names of ssg-dmi's own variants.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from .formats import is_image_name
from .fsutil import TEMP_PREFIX, TEMP_SUFFIX, shown

log = logging.getLogger("ssg_dmi.walk")

# photo.jpg -> photo.jpg-960w.<10 hex>.webp: unique per source file (photo.png's variants
# never collide). The hex is a hash of the tagged original's bytes and of the settings that
# made the variant (see `build.job.variant_name`): a new image or new settings give new
# names, so hosts may cache variants forever, and a rebuild over ssg-dmi's own output
# (whose re-encoded originals decode a little differently from the first sources) keeps
# every name, with any cache or none, so pages written earlier never point at removed files.
VARIANT_NAME = re.compile(
    r"^(?P<source>.+\.(?:jpe?g|jpe|png|webp|gif|tiff?|avif|svg))"
    r"-(?P<width>\d+)w\.(?P<hash>[0-9a-f]{10})\.(webp|jpg|png|avif)$",
    re.IGNORECASE,
)
PAGE_SUFFIXES = (".html", ".htm")
DANGLING = "a link to nothing (dangling)"


def variant_source(rel: str) -> str | None:
    """The site path of the image a variant of ours was made from
    (``a/p.jpg-960w.0123456789.webp`` -> ``a/p.jpg``); None for any other path."""
    folder, _, name = rel.rpartition("/")
    match = VARIANT_NAME.match(name)
    if match is None:
        return None
    return f"{folder}/{match['source']}" if folder else match["source"]


def walk(
    root: Path,
    wanted: Callable[[str], bool],
    *,
    skip_dir: Path | None = None,
    notes: list[str] | None = None,
    clean: bool = False,
    dangling: bool = False,
) -> Iterator[Path]:
    """Files under ``root`` whose name is ``wanted``, in sorted order, by the module's rule.

    ``clean`` removes the temp files of killed writes on the way; ``dangling`` yields
    links to nothing (so a reader reports them as unreadable) instead of noting them.
    """
    for _rel, path in _walk(root, wanted, skip_dir, notes, clean, dangling):
        yield Path(path)


def _walk(
    root: Path,
    wanted: Callable[[str], bool],
    skip_dir: Path | None,
    notes: list[str] | None,
    clean: bool,
    dangling: bool,
) -> Iterator[tuple[str, str]]:
    """:func:`walk` as (site-relative POSIX path, path) text pairs: a site's files are
    listed once per build, and pathlib's parsing of every name would cost more than that."""
    real_root = root.resolve()
    skip = skip_dir.resolve() if skip_dir else None
    # os.walk's order (each folder's files, then its subfolders in turn, sorted), by hand:
    # scandir's entries tell a plain file from a link without a stat call per file.
    stack = [(os.fspath(root), "")]
    while stack:
        here, prefix = stack.pop()
        try:
            with os.scandir(here) as listing:
                entries = list(listing)
        except OSError:
            continue  # as os.walk: a folder that cannot be listed is passed over silently
        dirs: list[os.DirEntry[str]] = []
        files: list[os.DirEntry[str]] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry)
        # A plain file in a folder reached without links is inside the site: only links,
        # odd file types and folders that cannot be searched need passed_over's checks.
        searchable = os.access(here, os.X_OK)
        for entry in sorted(files, key=lambda e: e.name):
            name = entry.name
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                if clean:
                    Path(entry.path).unlink(missing_ok=True)
                continue
            if name.startswith(".") or not wanted(name):
                continue
            if searchable and _plain_file(entry):
                yield prefix + name, entry.path
                continue
            why = passed_over(Path(entry.path), real_root)
            if why is None or (dangling and why == DANGLING):
                yield prefix + name, entry.path
                continue
            line = f"{shown(prefix + name)}: {why}; skipped"
            if notes is None:
                log.warning("%s", line)
            else:
                notes.append(line)
        subfolders = sorted(
            (
                entry
                for entry in dirs
                if not entry.name.startswith(".")
                and (skip is None or Path(entry.path).resolve() != skip)
            ),
            key=lambda e: e.name,
        )
        # os.walk lists a link to a folder among the folders but does not go into it.
        stack += [
            (entry.path, f"{prefix}{entry.name}/")
            for entry in reversed(subfolders)
            if not os.path.islink(entry.path)
        ]


def _plain_file(entry: os.DirEntry[str]) -> bool:
    """Whether a listed entry is a regular file and no link (from the listing alone)."""
    try:
        return not entry.is_symlink() and entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def passed_over(path: Path, real_root: Path) -> str | None:
    """Why ``path`` must not be read, or None. Only stat calls: never opened."""
    try:
        real = path.resolve(strict=True)
        mode = real.stat().st_mode
    except FileNotFoundError:
        return DANGLING
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        return f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    if not real.is_relative_to(real_root):
        return "a link leading outside the site folder"
    if not stat.S_ISREG(mode):
        return "not a regular file (FIFO, device or socket)"
    return None


def site_images(
    site: Path, cache_dir: Path | None, clean: bool = False, skipped: list[str] | None = None
) -> Iterator[str]:
    """Site-relative POSIX paths of every image-named file in the site, our variants
    included, passing over the cache folder too."""
    for rel, _path in _walk(site, is_image_name, cache_dir, skipped, clean, False):
        yield rel


def is_page_name(name: str) -> bool:
    """Whether a file name is an HTML page's."""
    return name.lower().endswith(PAGE_SUFFIXES)


def find_pages(site: Path, notes: list[str] | None = None) -> list[str]:
    """Site-relative POSIX paths of the HTML pages, sorted."""
    return [rel for rel, _path in _walk(site, is_page_name, None, notes, False, False)]


def walk_images(root: Path, skip: Path | None = None) -> Iterator[Path]:
    """Image files under ``root`` (``ssg-dmi tag DIR`` / ``inspect DIR``); a dangling link
    is yielded, so the reader reports it."""
    return walk(root, is_image_name, skip_dir=skip, dangling=True)
