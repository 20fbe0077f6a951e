"""Filesystem helpers: atomic writes and printable names."""

from __future__ import annotations

import contextlib
import filecmp
import itertools
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("ssg_dmi.fsutil")

# Temp files are named `.ssg-dmi-<token>-<n>.tmp`: `walk` skips them, a build's sweep
# removes those a killed build left.
TEMP_PREFIX, TEMP_SUFFIX = ".ssg-dmi-", ".tmp"
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_counter = itertools.count()


def _new_token() -> None:
    """A random token per process (made again in a forked child): two processes, on this
    machine or on others sharing a folder, never pick the same temp name."""
    global _token
    _token = os.urandom(6).hex()


_token = ""
_new_token()
os.register_at_fork(after_in_child=_new_token)


def shown(path: Path | str) -> str:
    """A path as printable text, even when its name is not valid UTF-8."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


def new_temp(folder: str) -> tuple[int, str]:
    """A new empty file in ``folder`` (made when missing) under a temp name no other
    writer uses: (its descriptor, its path). Cheaper than :func:`tempfile.mkstemp`, which
    draws a random name per file: a cold build of a large site makes several per image."""
    while True:
        name = os.path.join(folder, f"{TEMP_PREFIX}{_token}-{next(_counter)}{TEMP_SUFFIX}")
        try:
            return os.open(name, _OPEN_NEW, 0o600), name
        except FileExistsError:  # a name left by a killed process: draw the next
            continue
        except FileNotFoundError:  # the folder's first file
            os.makedirs(folder, exist_ok=True)


class Replacement:
    """The temp file :func:`replacing` fills: write to :attr:`fd`; :meth:`keep_old` drops
    it and leaves the target as it was; :attr:`info` is its ``fstat`` after the move."""

    __slots__ = ("fd", "name", "info", "_keep_old")

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.info: os.stat_result | None = None
        self._keep_old = False

    def keep_old(self) -> None:
        self._keep_old = True


@contextlib.contextmanager
def replacing(target: str, mode: int | None = None) -> Iterator[Replacement]:
    """A temp file beside ``target`` that, when the block ends without an exception,
    replaces it atomically, with ``mode`` or else the mode ``target`` had (0o644 when new).
    An exception, or :meth:`Replacement.keep_old`, removes the temp file instead."""
    fd, name = new_temp(os.path.dirname(target) or ".")
    temp = Replacement(fd, name)
    try:
        yield temp
        if temp._keep_old:
            os.unlink(name)
            return
        if mode is None:
            try:
                mode = os.stat(target).st_mode & 0o777
            except FileNotFoundError:
                mode = 0o644
        os.fchmod(fd, mode)
        os.replace(name, target)
        temp.info = os.fstat(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    finally:
        os.close(fd)


def atomic_write(path: Path | str, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temp file and ``os.replace``.

    Returns False (and writes nothing) when the file already holds exactly these bytes, so a
    second run over the same input changes nothing, not even modification times.
    """
    target = os.fspath(path)
    try:
        # Sizes first: most targets differ in size, and reading them to compare would cost
        # as much as writing them.
        info = os.lstat(target)
        if stat.S_ISREG(info.st_mode) and info.st_size == len(data):
            with open(target, "rb") as handle:
                if handle.read() == data:
                    return False
    except OSError:
        pass
    return _through_temp(target, lambda handle: handle.write(data), unless_same=False)


def atomic_write_chunks(path: Path | str, chunks: Iterable[bytes]) -> bool:
    """:func:`atomic_write` for content made piece by piece (never all held at once).

    Returns False, and leaves the file as it was, when it already held exactly these bytes.
    An exception from ``chunks`` leaves no temp file and the old file untouched.
    """
    return _through_temp(
        os.fspath(path), lambda handle: handle.writelines(chunks), unless_same=True
    )


def _through_temp(target: str, fill: Callable[[BinaryIO], object], *, unless_same: bool) -> bool:
    """Fill a temp file beside ``target``, then move it over ``target`` (keeping its mode);
    with ``unless_same``, drop it instead when ``target`` already holds the same bytes."""
    with replacing(target) as temp:
        with open(temp.fd, "wb", closefd=False) as handle:
            fill(handle)
        if unless_same and _regular(target) and filecmp.cmp(temp.name, target, shallow=False):
            temp.keep_old()
    return temp.info is not None


def _regular(path: str) -> bool:
    """Whether ``path`` is a regular file itself (not a link to one)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
