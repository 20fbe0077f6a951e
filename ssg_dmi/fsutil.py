"""Filesystem helpers: atomic writes and printable names."""

from __future__ import annotations

import filecmp
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

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
    return _through_temp(path, lambda handle: handle.write(data), unless_same=False)


def atomic_write_chunks(path: Path, chunks: Iterable[bytes]) -> bool:
    """:func:`atomic_write` for content made piece by piece (never all held at once).

    Returns False, and leaves the file as it was, when it already held exactly these bytes.
    An exception from ``chunks`` leaves no temp file and the old file untouched.
    """
    return _through_temp(path, lambda handle: handle.writelines(chunks), unless_same=True)


def _through_temp(path: Path, fill: Callable[[BinaryIO], object], *, unless_same: bool) -> bool:
    """Fill a temp file beside ``path``, then move it over ``path`` (keeping its mode);
    with ``unless_same``, drop it instead when ``path`` already holds the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ssg-dmi-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
        same = unless_same and not path.is_symlink() and path.is_file()
        if same and filecmp.cmp(tmp, path, shallow=False):
            Path(tmp).unlink()
            return False
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
