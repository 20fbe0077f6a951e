"""Filesystem helpers: atomic writes, safe walks, printable names."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .images.containers import EXTENSIONS

log = logging.getLogger("ssg_dmi.fsutil")


def shown(path: Path | str) -> str:
    """A path as printable text, even when its name is not valid UTF-8."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


def atomic_write(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temp file and ``os.replace``.

    Returns False (and writes nothing) when the file already holds exactly these bytes, so a
    second run over the same input changes nothing, not even modification times.
    """
    try:
        # Sizes first: most targets differ in size, and reading them to compare would cost
        # as much as writing them.
        same_size = not path.is_symlink() and path.stat().st_size == len(data)
        if same_size and path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ssg-dmi-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the image extensions ssg-dmi handles."""
    return os.path.splitext(name)[1].lower() in EXTENSIONS


def walk_images(root: Path, skip: Path | None = None) -> Iterator[Path]:
    """Image files under ``root`` in sorted order: hidden folders, ``skip``, links that
    lead outside ``root`` and anything that is not a regular file (a FIFO named
    ``x.jpg`` would block whoever opens it forever) are passed over; only stat calls
    decide, nothing is opened."""
    real_root = root.resolve()
    skip_real = skip.resolve() if skip else None
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (skip_real is None or (here / d).resolve() != skip_real)
        )
        for name in sorted(files):
            path = here / name
            if not is_image_name(name) or name.startswith(".ssg-dmi-"):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                continue
            try:
                regular = stat.S_ISREG(path.stat().st_mode)
            except OSError:
                regular = True  # a dangling link: the reader reports it as unreadable
            if not regular:
                log.warning(
                    "%s: not a regular file (a FIFO, device or socket); skipped", shown(path)
                )
                continue
            yield path
