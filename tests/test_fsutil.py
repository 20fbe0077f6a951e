"""Atomic writes: the temp file beside the target, its name, its mode, what an error leaves."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from ssg_dmi import fsutil
from ssg_dmi.fsutil import atomic_copy, atomic_write, atomic_write_chunks, new_temp, replacing


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(fsutil.TEMP_PREFIX))


def test_new_file_gets_0644_and_an_existing_one_keeps_its_mode(tmp_path: Path) -> None:
    new = tmp_path / "deep" / "er" / "new.bin"  # folders made as needed
    assert atomic_write(new, b"one")
    assert new.read_bytes() == b"one"
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    old = tmp_path / "old.bin"
    old.write_bytes(b"x")
    old.chmod(0o600)
    assert atomic_write(old, b"two")
    assert old.read_bytes() == b"two" and stat.S_IMODE(old.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == leftovers(new.parent) == []


def test_same_bytes_are_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "same.bin"
    path.write_bytes(b"abc")
    before = path.stat()
    assert not atomic_write(path, b"abc")
    assert not atomic_write_chunks(path, [b"a", b"bc"])
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert atomic_write_chunks(path, [b"a", b"bd"]) and path.read_bytes() == b"abd"
    assert leftovers(tmp_path) == []


def test_a_link_is_replaced_by_a_file_and_its_target_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "target.bin"
    target.write_bytes(b"abc")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    # Same bytes through the link: still written, as a file of its own.
    assert atomic_write(link, b"abc")
    assert not link.is_symlink() and link.read_bytes() == b"abc"
    link.unlink()
    link.symlink_to(target)
    assert atomic_write_chunks(link, [b"abc"])
    assert not link.is_symlink() and target.read_bytes() == b"abc"


def test_an_error_while_filling_leaves_no_temp_file_and_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "kept.bin"
    path.write_bytes(b"old")

    def chunks() -> list[bytes]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write_chunks(path, (c for c in chunks()))
    with pytest.raises(RuntimeError), replacing(os.fspath(path)) as temp:
        os.write(temp.fd, b"new")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_replacing_reports_the_moved_file_and_keep_old_drops_it(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "blob")
    with replacing(path, 0o640, state=True) as temp:
        os.write(temp.fd, b"12345")
    assert temp.moved and temp.info is not None and temp.info.st_ino == os.stat(path).st_ino
    assert temp.info.st_size == 5 and stat.S_IMODE(temp.info.st_mode) == 0o640
    with replacing(path) as again:
        os.write(again.fd, b"other")
        again.keep_old()
    assert not again.moved and again.info is None and Path(path).read_bytes() == b"12345"
    assert leftovers(tmp_path) == []


def test_temp_names_skip_a_name_a_killed_writer_left(tmp_path: Path) -> None:
    fd, first = new_temp(os.fspath(tmp_path))
    os.close(fd)
    token = fsutil._token
    upcoming = next(fsutil._counter) + 1
    stale = tmp_path / f"{fsutil.TEMP_PREFIX}{token}-{upcoming}{fsutil.TEMP_SUFFIX}"
    stale.write_bytes(b"left by a killed build")
    fd, second = new_temp(os.fspath(tmp_path))
    os.close(fd)
    assert second not in (first, os.fspath(stale))
    assert stale.read_bytes() == b"left by a killed build"  # never opened again
    assert Path(second).name.startswith(fsutil.TEMP_PREFIX)
    assert Path(second).name.endswith(fsutil.TEMP_SUFFIX)


def test_a_forked_child_names_its_temp_files_apart_from_its_parent(tmp_path: Path) -> None:
    parent = fsutil._token
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its token, then leave without cleanup handlers
        os.write(write, fsutil._token.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert child and child != parent and fsutil._token == parent


# --- atomic_copy: a kernel copy from an open file ------------------------------------------


def copy_from(source: Path, target: Path, size: int | None = None) -> bool:
    fd = os.open(source, os.O_RDONLY)
    try:
        return atomic_copy(target, fd, source.stat().st_size if size is None else size)
    finally:
        os.close(fd)


@pytest.mark.parametrize("length", [0, 1, 4096, 3 * (1 << 20) + 17])
def test_atomic_copy_gives_the_bytes_as_a_file_of_its_own(tmp_path: Path, length: int) -> None:
    data = os.urandom(length)
    source, target = tmp_path / "source.bin", tmp_path / "out" / "target.bin"
    source.write_bytes(data)
    assert copy_from(source, target)
    assert target.read_bytes() == data and stat.S_IMODE(target.stat().st_mode) == 0o644
    # Not a link: writing into the copy in place (as Pelican copies its static files over
    # the output, or `mkdocs build --dirty`) never reaches the source.
    assert target.stat().st_ino != source.stat().st_ino
    with open(target, "r+b") as handle:
        handle.write(b"changed")
    assert source.read_bytes() == data
    assert leftovers(tmp_path) == leftovers(target.parent) == []


def test_atomic_copy_of_the_same_bytes_writes_nothing(tmp_path: Path) -> None:
    source, target = tmp_path / "source.bin", tmp_path / "target.bin"
    source.write_bytes(b"x" * 5000)
    target.write_bytes(b"x" * 5000)
    target.chmod(0o600)
    before = target.stat()
    assert not copy_from(source, target)
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    target.write_bytes(b"x" * 4999 + b"y")  # same size, another byte
    assert copy_from(source, target)
    assert target.read_bytes() == b"x" * 5000 and stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize("refusal", ["EXDEV", "ENOSYS", "EINVAL", "EOPNOTSUPP", "missing"])
def test_atomic_copy_falls_back_to_reads_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: str
) -> None:
    """Where copy_file_range is refused (another file system, an old kernel, a
    platform without it), after part of the file or at once, the bytes still arrive."""
    data = os.urandom(3 * (1 << 20) + 5)
    source, target = tmp_path / "source.bin", tmp_path / "target.bin"
    source.write_bytes(data)
    if refusal == "missing":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    else:
        real, calls = os.copy_file_range, []

        def partial(src: int, dst: int, count: int, offset_src: int | None = None) -> int:
            calls.append(count)
            if len(calls) > 1:
                raise OSError(getattr(errno, refusal), refusal)
            return real(src, dst, min(count, 1000), offset_src)  # a short first step

        monkeypatch.setattr(os, "copy_file_range", partial)
    assert copy_from(source, target)
    assert target.read_bytes() == data


def test_atomic_copy_of_a_file_that_ends_early_leaves_the_target(tmp_path: Path) -> None:
    source, target = tmp_path / "source.bin", tmp_path / "target.bin"
    source.write_bytes(b"short")
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="ended at 5 of 9 bytes"):
        copy_from(source, target, size=9)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_atomic_copy_raises_a_real_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = tmp_path / "source.bin", tmp_path / "target.bin"
    source.write_bytes(b"bytes")

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    with pytest.raises(OSError, match="No space"):
        copy_from(source, target)
    assert not target.exists() and leftovers(tmp_path) == []


# --- os-level reads and writes ------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 4096, (1 << 20) + 3, 3 * (1 << 20)])
@pytest.mark.parametrize("off_by", [0, -1, 1, -(1 << 20)])
def test_read_all_reads_to_the_end_whatever_size_was_expected(
    tmp_path: Path, length: int, off_by: int
) -> None:
    data = os.urandom(length)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    assert fsutil.read_file(str(path)) == data
    fd = os.open(path, os.O_RDONLY)
    try:
        assert fsutil.read_all(fd, max(0, length + off_by)) == data
    finally:
        os.close(fd)


def test_a_file_of_the_expected_size_is_read_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each cache entry and source is read so: a second call to find the end cost an
    # os.read (and a 1 MiB buffer) per file.
    path = tmp_path / "entry.json"
    path.write_bytes(b"x" * 740)
    real, asked = os.read, []

    def counted(fd: int, n: int) -> bytes:
        asked.append(n)
        return real(fd, n)

    monkeypatch.setattr(os, "read", counted)
    assert fsutil.read_file(str(path)) == b"x" * 740 and asked == [741]


def test_write_all_finishes_a_short_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, sizes = os.write, []

    def short(fd: int, data: bytes) -> int:  # as a pipe or a full disk's last blocks may
        sizes.append(len(data))
        return real(fd, bytes(data)[:1000])

    monkeypatch.setattr(os, "write", short)
    data = os.urandom(4500)
    assert atomic_write(tmp_path / "short.bin", data)
    assert (tmp_path / "short.bin").read_bytes() == data
    assert sizes == [4500, 3500, 2500, 1500, 500]
    chunks = [os.urandom(700) for _ in range(5)]
    assert atomic_write_chunks(tmp_path / "chunks.bin", chunks)
    assert (tmp_path / "chunks.bin").read_bytes() == b"".join(chunks)


def test_many_small_chunks_are_written_in_large_pieces(tmp_path: Path) -> None:
    chunks = [os.urandom(1000) for _ in range(3000)]  # 3 MB: the gathered buffer fills twice
    assert atomic_write_chunks(tmp_path / "big.bin", iter(chunks))
    assert (tmp_path / "big.bin").read_bytes() == b"".join(chunks)
    assert not atomic_write_chunks(tmp_path / "big.bin", iter(chunks))


def test_reading_a_folder_or_a_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        fsutil.read_file(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        fsutil.read_file(str(tmp_path / "missing"))
