"""The cache's fast paths: sealed blobs read back without a hash (and every way of changing
one still caught), and source files hashed on threads in the walk's order.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi import fsutil
from ssg_dmi.build import cache as cache_module
from ssg_dmi.build import store as store_module
from ssg_dmi.build.cache import Cache, Output, hash_files

from .builds import CACHED, build, copy_site, tree

needs_boot_id = pytest.mark.skipif(
    store_module.boot_id() is None, reason="seals need a boot id (Linux)"
)


KEY = "k" * 64


def blob(data: bytes, role: str = "variant") -> tuple[Output, bytes]:
    digest = hashlib.sha256(data).hexdigest()
    name = "" if role == "original" else "0123456789"
    return Output(role, 10, 10, "webp", digest, len(data), name), data


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the cache's own hashing (a read that skips the hash does not add one)."""
    calls: list[int] = []
    real = cache_module.sha256

    def counting(data: bytes) -> str:
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(cache_module, "sha256", counting)
    return calls


def stored(tmp_path: Path, data: bytes = b"blob bytes " * 1000) -> tuple[Output, Path]:
    """A cache folder holding one blob (and an original) under the entry KEY; the blob's
    path."""
    cache = Cache(tmp_path / "cache")
    output, data = blob(data)
    cache.put(KEY, [blob(b"original", "original"), (output, data)])
    return output, cache.root / "objects" / output.sha256[:2] / output.sha256


def entry_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "v1" / "entries" / KEY[:2] / f"{KEY}.json"


def seals(tmp_path: Path) -> dict[str, Any]:
    """The seals field of the entry KEY."""
    raw: dict[str, Any] = json.loads(entry_path(tmp_path).read_bytes()).get("seals", {})
    return raw


def set_seals(tmp_path: Path, value: Any) -> None:
    raw = json.loads(entry_path(tmp_path).read_bytes())
    raw["seals"] = value
    entry_path(tmp_path).write_text(json.dumps(raw))


def read_back(tmp_path: Path, output: Output) -> bytes:
    """What a later build does: a new Cache, the entry looked up, then the blob read."""
    cache = Cache(tmp_path / "cache")
    assert cache.get(KEY) is not None
    return cache.read(output)


# --- sealed blobs -------------------------------------------------------------------------


@needs_boot_id
def test_a_blob_this_machine_wrote_reads_back_without_a_hash(
    tmp_path: Path, hashes: list[int]
) -> None:
    output, path = stored(tmp_path)
    assert output.sha256 in seals(tmp_path)["blobs"]
    assert seals(tmp_path)["boot"] == store_module.boot_id()
    hashes.clear()
    assert read_back(tmp_path, output) == path.read_bytes()
    assert hashes == []
    # the stamp: a modification time in the past, so any write moves it
    assert path.stat().st_mtime_ns < time.time_ns() - store_module.SEAL_STAMP_AGE_NS // 2
    # the seals are in the entry: no other file in the cache
    cache_folder = tmp_path / "cache"
    files = {p.relative_to(cache_folder).parts[1] for p in cache_folder.rglob("*") if p.is_file()}
    assert files == {"objects", "entries"}


@needs_boot_id
@pytest.mark.parametrize(
    "damage",
    [
        "same size, at once",
        "same size, in the seal's timestamp tick",
        "truncated",
        "replaced by another file",
        "mtime put back",
    ],
)
def test_a_changed_sealed_blob_is_hashed_caught_and_removed(
    tmp_path: Path, hashes: list[int], damage: str
) -> None:
    output, path = stored(tmp_path)
    assert output.sha256 in seals(tmp_path)["blobs"]
    before = path.stat()
    if damage == "same size, at once":  # within the file system's timestamp tick, likely
        with open(path, "r+b") as handle:
            handle.write(b"X")
    elif damage == "same size, in the seal's timestamp tick":
        with open(path, "r+b") as handle:
            handle.write(b"X")
        # as if the write fell in the tick of the seal's change time (a coarse clock):
        # only the modification time, now the present and not the stamp, tells
        forged = seals(tmp_path)
        forged["blobs"][output.sha256][4] = path.stat().st_ctime_ns
        set_seals(tmp_path, forged)
    elif damage == "truncated":
        os.truncate(path, before.st_size - 1)
    elif damage == "replaced by another file":
        other = path.with_name("other")
        other.write_bytes(b"Y" * before.st_size)
        os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(other, path)
    else:  # rewritten in place, then the modification time restored exactly
        time.sleep(0.05)  # a later change time than the seal's
        with open(path, "r+b") as handle:
            handle.write(b"X")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert path.stat().st_mtime_ns == before.st_mtime_ns
    hashes.clear()
    with pytest.raises(OSError, match="corrupt"):
        read_back(tmp_path, output)
    assert hashes  # not trusted: hashed
    assert not path.exists()
    assert Cache(tmp_path / "cache").get(KEY) is None  # names a missing blob: a miss, redone


@needs_boot_id
@pytest.mark.parametrize(
    "forged",
    [
        "not a table",
        "no boot",
        "an extra field",
        "a string for the inode",
        "four numbers",
        "a float",
        "a digest the entry does not name",
    ],
)
def test_seals_are_untrusted_input(tmp_path: Path, hashes: list[int], forged: str) -> None:
    output, path = stored(tmp_path)
    real = seals(tmp_path)
    state = real["blobs"][output.sha256]
    value: Any = {
        "not a table": [real],
        "no boot": {"blobs": real["blobs"]},
        "an extra field": {**real, "trusted": True},
        "a string for the inode": {
            **real,
            "blobs": {output.sha256: [*state[:1], str(state[1]), *state[2:]]},
        },
        "four numbers": {**real, "blobs": {output.sha256: state[:4]}},
        "a float": {**real, "blobs": {output.sha256: [*state[:4], float(state[4])]}},
        "a digest the entry does not name": {**real, "blobs": {"0" * 64: state}},
    }[forged]
    set_seals(tmp_path, value)
    hashes.clear()
    assert read_back(tmp_path, output) == path.read_bytes()  # still a hit
    assert hashes == [output.bytes]  # hashed, as without seals


@needs_boot_id
def test_seals_of_another_boot_or_machine_are_not_trusted(
    tmp_path: Path, hashes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    output, path = stored(tmp_path)
    assert output.sha256 in seals(tmp_path)["blobs"]  # sealed in this boot
    monkeypatch.setattr(store_module, "boot_id", lambda: "00000000-0000-0000-0000-000000000000")
    monkeypatch.setattr(cache_module, "boot_id", store_module.boot_id)
    hashes.clear()
    assert read_back(tmp_path, output) == path.read_bytes()
    assert hashes == [output.bytes]


def test_without_a_boot_id_nothing_is_sealed_and_every_read_is_hashed(
    tmp_path: Path, hashes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "boot_id", lambda: None)
    monkeypatch.setattr(cache_module, "boot_id", store_module.boot_id)
    output, path = stored(tmp_path)
    assert seals(tmp_path) == {}
    hashes.clear()
    assert read_back(tmp_path, output) == path.read_bytes()
    assert hashes == [output.bytes]


@needs_boot_id
def test_a_file_system_that_refuses_the_stamp_gets_the_blob_without_a_seal(
    tmp_path: Path, hashes: list[int]
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("not here")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "utime", refuse)
        output, path = stored(tmp_path)
    assert seals(tmp_path) == {}
    assert not list(path.parent.glob(".ssg-dmi-*"))
    hashes.clear()
    assert read_back(tmp_path, output) == path.read_bytes()
    assert hashes == [output.bytes]


@needs_boot_id
def test_bytes_that_do_not_match_their_name_are_never_sealed(
    tmp_path: Path, hashes: list[int]
) -> None:
    cache = Cache(tmp_path / "cache")
    output, _ = blob(b"what the caller claims")
    original = blob(b"original", "original")
    cache.put(KEY, [original, (output, b"other bytes")])
    assert set(seals(tmp_path)["blobs"]) == {original[0].sha256}  # only the true one
    with pytest.raises(OSError, match="corrupt"):
        read_back(tmp_path, output)


@needs_boot_id
def test_a_warm_build_reads_sealed_blobs_without_hashing_and_gives_the_same_site(
    tmp_path: Path, pristine: Path, hashes: list[int]
) -> None:
    cache = tmp_path / "cache"
    build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    hashes.clear()
    blobs = {p.stat().st_size for p in (cache / "v1" / "objects").glob("*/*")}
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert second.summary["cache_hits"] == second.summary["sources"] == 4
    assert len(blobs) > 4 and not blobs & set(hashes)  # (cache keys are hashed, no blob)
    assert tree(tmp_path / "two") == tree(tmp_path / "one")


# --- sealed blobs copied into the site by the kernel ---------------------------------------

IMAGE_SUFFIXES = (".jpg", ".png", ".webp")


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every kernel copy (fsutil.copy_range) made."""
    calls: list[int] = []
    real = fsutil.copy_range

    def counting(source: int, dest: int, size: int) -> None:
        calls.append(size)
        real(source, dest, size)

    monkeypatch.setattr(fsutil, "copy_range", counting)
    return calls


@needs_boot_id
def test_a_warm_build_copies_each_sealed_blob_into_the_site_by_the_kernel(
    tmp_path: Path, pristine: Path, hashes: list[int], copies: list[int]
) -> None:
    cache = tmp_path / "cache"
    build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    copies.clear()
    hashes.clear()
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert second.summary["cache_hits"] == second.summary["sources"] == 4
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    # Every image file the build changed or made (the duplicate's too) is one copy, and
    # nothing was hashed or read into memory for it.
    source = tree(pristine)
    made = [
        len(data)
        for rel, data in tree(tmp_path / "two").items()
        if rel.endswith(IMAGE_SUFFIXES) and source.get(rel) != data
    ]
    assert len(made) > 8 and sorted(copies) == sorted(made)
    blobs = {p.stat().st_size for p in (cache / "v1" / "objects").glob("*/*")}
    assert not blobs & set(hashes)


def test_an_unsealed_blob_is_not_copied(tmp_path: Path, copies: list[int]) -> None:
    output, _ = stored(tmp_path)
    cache = Cache(tmp_path / "cache")
    target = os.fspath(tmp_path / "site" / "out.webp")
    assert cache.copy(output, [target]) is None  # no entry read: no seal known
    assert cache.get(KEY, blobs=False) is not None  # an entry-only look keeps no seal
    assert cache.copy(output, [target]) is None
    assert copies == [] and not os.path.exists(target)


@needs_boot_id
@pytest.mark.parametrize("change", ["touched", "other bytes"])
def test_a_blob_that_changes_while_copied_is_hashed_and_the_site_comes_out_right(
    tmp_path: Path,
    pristine: Path,
    hashes: list[int],
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    cache = tmp_path / "cache"
    build(copy_site(pristine, tmp_path / "one"), cache, **CACHED)
    real, changed = fsutil.copy_range, []

    def changing(source: int, dest: int, size: int) -> None:
        real(source, dest, size)
        if not changed:  # the first blob, right after it was copied
            with open(f"/proc/self/fd/{source}", "r+b") as blob:
                changed.append(blob.name)
                if change == "touched":
                    os.utime(blob.fileno())
                else:
                    blob.write(b"\0")

    monkeypatch.setattr(fsutil, "copy_range", changing)
    hashes.clear()
    second = build(copy_site(pristine, tmp_path / "two"), cache, **CACHED)
    assert changed and hashes  # the seal no longer held: the blob was read and hashed
    assert second.summary["errors"] == 0
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    for blob in (cache / "v1" / "objects").glob("*/*"):  # a damaged blob was stored anew
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


# --- hash_files ---------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_hash_files_gives_each_files_hash_and_size_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    monkeypatch.setattr(cache_module, "HASH_INLINE_BYTES", 1000)  # small and large both
    sizes = [5000, 10, 0, 3000, 999, 1000, 20000, 7, 600_001]  # the last: several chunks
    items = []
    for n, size in enumerate(sizes):
        path = tmp_path / f"f{n}"
        path.write_bytes(os.urandom(size))
        items.append((n, str(path)))
    items.insert(3, (-1, str(tmp_path / "missing")))
    items.insert(6, (-2, str(tmp_path)))  # a folder cannot be read
    got = list(hash_files(items, threads=threads))
    assert [tag for tag, _ in got] == [tag for tag, _ in items]
    for (tag, name), (_, hashed) in zip(items, got, strict=True):
        if tag < 0:
            assert isinstance(hashed, OSError)
        else:
            data = Path(name).read_bytes()
            assert hashed == (hashlib.sha256(data).digest(), len(data))


def test_hash_files_takes_a_walk_a_few_files_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "HASH_INLINE_BYTES", 0)  # every file to a thread
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    taken = 0

    def walk() -> Iterator[tuple[int, str]]:
        nonlocal taken
        for n in range(1000):
            taken += 1
            yield n, str(path)

    results = hash_files(walk(), threads=2)
    next(results)
    assert taken <= 4 * 2 + 1
    assert len(list(results)) == 999
