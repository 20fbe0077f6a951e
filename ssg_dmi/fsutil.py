"""Filesystem helpers: atomic writes and printable names."""

from __future__ import annotations

import contextlib
import errno
import filecmp
import itertools
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger("ssg_dmi.fsutil")

# Temp files are named `.ssg-dmi-<token>-<n>.tmp`: `walk` skips them, a build's sweep
# removes those a killed build left.
TEMP_PREFIX, TEMP_SUFFIX = ".ssg-dmi-", ".tmp"
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
OPEN_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)  # a file read by os-level calls
_CHUNK = 1 << 20  # bytes per read or write of a large file
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
    it and leaves the target as it was. After the block, :attr:`moved` says whether it
    replaced the target, and :attr:`info` is its ``fstat`` after the move (when asked)."""

    __slots__ = ("fd", "name", "info", "moved", "_keep_old")

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.info: os.stat_result | None = None
        self.moved = self._keep_old = False

    def keep_old(self) -> None:
        self._keep_old = True


@contextlib.contextmanager
def replacing(
    target: str, mode: int | None = None, *, state: bool = False
) -> Iterator[Replacement]:
    """A temp file beside ``target`` that, when the block ends without an exception,
    replaces it atomically, with ``mode`` or else the mode ``target`` had (0o644 when new).
    An exception, or :meth:`Replacement.keep_old`, removes the temp file instead.
    ``state``: take the moved file's ``fstat`` (:attr:`Replacement.info`)."""
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
        temp.moved = True
        if state:
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
    mode = None  # the target's own, looked up when it is replaced
    try:
        # Sizes first: most targets differ in size, and reading them to compare would cost
        # as much as writing them.
        info = os.lstat(target)
        if stat.S_ISREG(info.st_mode) and info.st_size == len(data) and read_file(target) == data:
            return False
    except FileNotFoundError:
        mode = 0o644  # a new file: no need to look it up again
    except OSError:
        pass
    with replacing(target, mode) as temp:
        write_all(temp.fd, data)
    return True


def read_file(path: str) -> bytes:
    """The bytes of the file at ``path``, by os-level calls: Python's ``open`` adds an
    ``ioctl``, two ``lseek`` calls, a second ``fstat`` and a buffer object per file, which
    cost as much again as reading a small one (8.0 against 4.5 µs a cache entry)."""
    fd = os.open(path, OPEN_READ)
    try:
        return read_all(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def read_all(fd: int, expected: int) -> bytes:
    """The rest of the open file ``fd``, to its end; ``expected``: how much that is as far
    as known. One call asks for a byte more than that: a regular file answers short only
    at its end, so one of the expected size is read in that call (a second, looking for
    the end, allocated a 1 MiB buffer per file). A file longer than expected is read on."""
    chunks = []
    want = expected + 1
    while chunk := os.read(fd, want):
        chunks.append(chunk)
        if len(chunk) == expected == want - 1:
            break
        want = _CHUNK
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` to the open file ``fd`` (``os.write`` may take only part)."""
    with memoryview(data) as whole:  # released at once: the caller may clear a bytearray
        done = 0
        while done < len(whole):
            done += os.write(fd, whole[done:])


def atomic_copy(path: Path | str, source: int, size: int) -> bool:
    """:func:`atomic_write` of the first ``size`` bytes of the open file ``source``, copied
    by the kernel (:func:`copy_range`): no buffer in this process, and on a file system
    that shares extents (btrfs, XFS) a reflink that copies no data at all. Unlike a hard
    link, the new file is its own: writing into it later never changes ``source``.

    Returns False (and writes nothing) when the file already holds exactly these bytes.
    """
    target = os.fspath(path)
    if _holds(target, source, size):
        return False
    with replacing(target) as temp:
        copy_range(source, temp.fd, size)
    return True


# copy_file_range errors that mean "not between these files": copied by reads and writes.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


def copy_range(source: int, dest: int, size: int) -> None:
    """Copy bytes ``0..size`` of ``source`` to ``dest`` at its position, by
    ``copy_file_range`` where the kernel and file systems allow it, else by reads and
    writes. OSError when ``source`` ends before ``size``."""
    done = 0
    if hasattr(os, "copy_file_range"):
        try:
            while done < size:
                step = os.copy_file_range(source, dest, size - done, done)
                if step == 0:
                    break
                done += step
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
    while done < size:
        chunk = os.pread(source, min(_CHUNK, size - done), done)
        if not chunk:
            break
        write_all(dest, chunk)
        done += len(chunk)
    if done != size:
        raise OSError(errno.EIO, f"the file ended at {done} of {size} bytes")


def _holds(target: str, source: int, size: int) -> bool:
    """Whether ``target`` is a regular file with exactly bytes ``0..size`` of ``source``."""
    try:
        info = os.lstat(target)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        fd = os.open(target, OPEN_READ)
        try:
            offset = 0
            while offset < size:
                mine = os.read(fd, _CHUNK)
                if not mine or mine != os.pread(source, len(mine), offset):
                    return False
                offset += len(mine)
            return not os.read(fd, 1)
        finally:
            os.close(fd)
    except OSError:
        return False


def atomic_write_chunks(path: Path | str, chunks: Iterable[bytes]) -> bool:
    """:func:`atomic_write` for content made piece by piece (never all held at once).

    Returns False, and leaves the file as it was, when it already held exactly these bytes.
    An exception from ``chunks`` leaves no temp file and the old file untouched.
    """
    target = os.fspath(path)
    with replacing(target) as temp:
        pending = bytearray()
        for chunk in chunks:  # gathered into large writes: the chunks may be small
            pending += chunk
            if len(pending) >= _CHUNK:
                write_all(temp.fd, pending)
                pending.clear()
        write_all(temp.fd, pending)
        if _regular(target) and filecmp.cmp(temp.name, target, shallow=False):
            temp.keep_old()
    return temp.moved


def _regular(path: str) -> bool:
    """Whether ``path`` is a regular file itself (not a link to one)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
