"""A content-addressed cache of encoded outputs, meant to be kept between CI runs.

Layout under the cache folder, or under the prefix of an object store
(``s3://bucket/prefix``, see :mod:`ssg_dmi.build.store`)::

    v1/objects/ab/abcdef…      one blob per distinct output, named by its SHA-256
    v1/entries/12/1234…json    per key: the outputs (role, width, height, format, sha256);
                               in a folder, the seals of the blobs its build wrote
    v1/builds/<site>.json      per site folder: the keys its last build used, and when
                               (``ssg-dmi cache prune`` keeps what any site's last build used)

A key hashes the source bytes, the settings that affect that image and the tool version.
Blobs are written before the entry that names them, each atomically, so a build killed at
any moment (or a runner that dies mid-upload) leaves either a complete entry or none; every
blob read is checked against its hash — or, in a cache folder, against the seal taken when
this machine wrote it in this boot from bytes it had hashed (the argument is in
:class:`~ssg_dmi.build.store.FolderStore`) — and a damaged one is removed and made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from ..fsutil import OPEN_READ, atomic_write_chunks, read_all
from ..version import __version__
from .spool import SpooledBytes
from .store import FileState, FolderStore, Store, boot_id, open_store

LAYOUT = "v1"
# A site whose last build is older than this no longer protects its entries from `prune`
# (a build folder that is gone, a CI job renamed): the cache would otherwise only grow.
PRUNE_MAX_AGE_DAYS = 30.0


@dataclass(frozen=True, slots=True)
class Output:
    """One file an image produces: its original (role ``original``) or a variant.

    ``name`` is the 10 hex digits in a variant's file name (empty for the original): a hash
    of the tagged original and the settings that made the variant, so a rebuild over our
    own output, with another cache or none, gives the variants the same names.
    """

    role: str
    width: int
    height: int
    format: str
    sha256: str
    bytes: int
    name: str


# An output's fields, in an entry's JSON (not `asdict`: it deep-copies every value).
_OUTPUT_FIELDS = tuple(f.name for f in fields(Output))


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


T = TypeVar("T")
# Files smaller than this are read and hashed on the calling thread: handing one to a
# thread costs about as much as hashing it (a thread pays on large files only).
HASH_INLINE_BYTES = 1 << 20
Hashed = tuple[bytes, int] | OSError  # a file's (SHA-256 digest, size), or why not read


def hash_files(
    items: Iterable[tuple[T, str]], threads: int | None = None
) -> Iterator[tuple[T, Hashed]]:
    """For each ``(tag, path)``: ``(tag, (SHA-256 digest, size))`` of the file's bytes, or
    ``(tag, OSError)`` when it cannot be read — in the order given. Files of at least
    :data:`HASH_INLINE_BYTES` are read and hashed on ``threads`` threads (file reads and
    hashlib on large buffers release the GIL); at most a few are in flight at a time, so
    ``items`` may be a walk of any length."""
    count = threads if threads is not None else min(4, os.cpu_count() or 1)
    if count <= 1:
        for tag, path in items:
            yield tag, _hash_path(path)
        return
    pending: deque[tuple[T, Hashed | Future[Hashed]]] = deque()
    pool: Executor | None = None  # made for the first large file: most sites have none
    try:
        for tag, path in items:
            try:
                fd = os.open(path, OPEN_READ)
            except OSError as exc:
                pending.append((tag, exc))
            else:
                try:
                    size = os.fstat(fd).st_size
                except OSError:
                    size = 0
                if size < HASH_INLINE_BYTES:
                    pending.append((tag, _hash_fd(fd, size)))
                else:
                    if pool is None:
                        from concurrent.futures import ThreadPoolExecutor

                        pool = ThreadPoolExecutor(count, thread_name_prefix="ssg-dmi-hash")
                    pending.append((tag, pool.submit(_hash_fd, fd, size)))
            while len(pending) > 4 * count or (pending and _ready(pending[0][1])):
                yield _settled(*pending.popleft())
        while pending:
            yield _settled(*pending.popleft())
    finally:
        if pool is not None:
            pool.shutdown()


def _hash_path(path: str) -> Hashed:
    try:
        fd = os.open(path, OPEN_READ)
    except OSError as exc:
        return exc
    return _hash_fd(fd, -1)


_HASH_CHUNK = 1 << 18  # a chunk that stays in the CPU's cache: 1 MiB ones hash 30 % slower


def _hash_fd(fd: int, size: int) -> Hashed:
    """The hash and size of the open file ``fd`` (closed after), ``size`` bytes as far as
    known (-1: not known yet): read whole when small, a large one through one reused buffer
    (reading it whole costs a fresh allocation's page faults: 0.08 against 0.10 s for
    125 MB). By os-level calls, as :func:`~ssg_dmi.fsutil.read_file`."""
    try:
        try:
            if size < 0:
                size = os.fstat(fd).st_size
            if size < HASH_INLINE_BYTES:
                data = read_all(fd, size)
                return hashlib.sha256(data).digest(), len(data)
            digest, total = hashlib.sha256(), 0
            buffer = bytearray(_HASH_CHUNK)
            view = memoryview(buffer)
            while step := os.readv(fd, [buffer]):
                digest.update(view[:step])
                total += step
            return digest.digest(), total
        finally:
            os.close(fd)
    except OSError as exc:
        return exc


def _ready(item: object) -> bool:
    return not isinstance(item, Future) or item.done()


def _settled(tag: T, item: Hashed | Future[Hashed]) -> tuple[T, Hashed]:
    return tag, item.result() if isinstance(item, Future) else item


def make_key(source_sha: str, fingerprint: str) -> str:
    """The cache key of a source under settings ``fingerprint`` for this tool version."""
    return sha256(f"{__version__}\0{source_sha}\0{fingerprint}".encode())


RECORD_PIECE = 32 * 1024  # bytes of keys (1,024) turned into text at a time for the record


class Cache:
    """The store; every method is safe to call from several processes (and, with an object
    store, several machines) at once."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.store: Store = open_store(location)
        self.location = self.store.location
        # Seals (blob digest -> file state) of the entries this object has read.
        self._seals: dict[str, FileState] = {}

    def forget_seals(self) -> None:
        """Drop the seals read and not used yet (a reader of many entries, one at a time)."""
        self._seals.clear()

    @property
    def root(self) -> Path:
        """The layout folder of a local cache (tests and tools look inside it)."""
        if not isinstance(self.store, FolderStore):
            raise TypeError(f"{self.location} is not a local folder")
        return self.store.root / LAYOUT

    @staticmethod
    def _entry(key: str) -> str:
        return f"{LAYOUT}/entries/{key[:2]}/{key}.json"

    @staticmethod
    def _blob(digest: str) -> str:
        return f"{LAYOUT}/objects/{digest[:2]}/{digest}"

    def get(self, key: str, blobs: bool = True) -> tuple[list[Output], dict[str, Any]] | None:
        """The outputs stored under ``key`` and the entry's extra facts (``reencoded``,
        ``notes``), or None when absent, damaged or incomplete. ``blobs=False`` skips the
        check that every blob named is there: for deciding from the entry alone (are the
        outputs in the site already?), one existence check per output saved."""
        try:
            raw = json.loads(self.store.read(self._entry(key)))
            outputs = [_output(item) for item in raw["outputs"]]
            roles = [o.role for o in outputs]
            if roles[:1] != ["original"] or "original" in roles[1:]:
                raise ValueError("malformed cache entry")
            extra = _extra(raw.get("extra", {}))
            # Seals only for a reader of the blobs, and each used once (popped by read):
            # the driver's entry-only checks and a long-lived worker hold none.
            if blobs and "seals" in raw and isinstance(self.store, FolderStore):
                self._seals.update(_seals(raw["seals"], {o.sha256 for o in outputs}))
            if not blobs or all(self.store.exists(self._blob(o.sha256)) for o in outputs):
                return outputs, extra
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def read(self, output: Output) -> bytes:
        """The bytes of one stored output, checked against its hash (unless the seal that
        :meth:`get` found for it vouches for them); a blob whose bytes do not match is
        removed (so the redone job stores it again) and is an OSError."""
        digest, name = output.sha256, self._blob(output.sha256)
        if isinstance(self.store, FolderStore):
            data, sealed = self.store.read_sealed(name, self._seals.pop(digest, None))
            if sealed:  # the file is as this machine wrote it, from bytes it had hashed
                return data
        else:
            data = self.store.read(name)
        if sha256(data) != digest:
            self.store.delete(name)
            raise OSError(f"cache blob {digest[:12]} is corrupt")
        return data

    def copy(self, output: Output, targets: list[str]) -> int | None:
        """Write one stored output to each of ``targets`` by a kernel copy of its blob
        (:meth:`FolderStore.copy_sealed`), when the seal :meth:`get` found for it vouches
        for the blob: how many targets were written (one holding these bytes already is
        left as it is). None when no seal holds: then :meth:`read` it."""
        seal = self._seals.pop(output.sha256, None)
        if seal is None or not isinstance(self.store, FolderStore):
            return None
        return self.store.copy_sealed(self._blob(output.sha256), seal, targets)

    def put(
        self,
        key: str,
        outputs: Iterable[tuple[Output, bytes]],
        extra: dict[str, Any] | None = None,
        aliases: Iterable[str] = (),
    ) -> None:
        """Store outputs under ``key`` (and the same entry under each alias key): blobs
        first, then the entries, so an entry only ever names blobs that are there."""
        items = list(outputs)
        folder = self.store if isinstance(self.store, FolderStore) else None
        seals: dict[str, FileState] = {}
        for output, data in items:
            blob = self._blob(output.sha256)
            if self.store.exists(blob):
                continue
            # Sealed only when this hash of the bytes matches the name (the caller's claim
            # is not enough: a seal lets later reads skip the hash).
            if folder is not None and sha256(data) == output.sha256:
                if (seal := folder.write_sealed(blob, data)) is not None:
                    seals[output.sha256] = seal
            else:
                self.store.write(blob, data)
        outputs_ = [{f: getattr(o, f) for f in _OUTPUT_FIELDS} for o, _ in items]
        entry: dict[str, Any] = {"outputs": outputs_, "extra": extra or {}}
        if seals:
            entry["seals"] = {"boot": boot_id(), "blobs": seals}
        text = json.dumps(entry, sort_keys=True).encode()
        for name in (key, *aliases):
            self.store.write(self._entry(name), text)

    def check_writable(self) -> None:
        """Raise OSError when the store cannot be written (read-only, full, not a folder,
        a bucket that is not there or refuses the credentials)."""
        self.store.check_writable()

    def record_build(self, used: SpooledBytes, site: Path) -> None:
        """Remember which keys the last build of ``site`` used (each site its own record,
        so pruning after one site's build keeps what another site sharing the cache uses).
        ``used``: the keys as 32 raw bytes each, in the order used (the record's reader
        makes a set of them); written out a piece at a time into a cache folder (the text
        of a 100,000-image record is 6.8 MB), never a text object per key."""
        where = str(site.resolve())
        name = f"{LAYOUT}/builds/{sha256(where.encode('utf-8', 'surrogateescape'))[:16]}.json"
        pieces = used.pieces(RECORD_PIECE)

        def chunks() -> Iterator[bytes]:
            yield json.dumps({"site": where, "time": time.time()})[:-1].encode()
            yield b', "keys": ['
            sep = b""
            for part in pieces:
                keys = (b'"%s"' % part[i : i + 32].hex().encode() for i in range(0, len(part), 32))
                yield sep + b", ".join(keys)
                sep = b", "
            yield b"]}"

        if isinstance(self.store, FolderStore):
            atomic_write_chunks(self.store.path(name), chunks())
        else:  # an object is put whole
            self.store.write(name, b"".join(chunks()))

    def used_keys(self, max_age_days: float = PRUNE_MAX_AGE_DAYS) -> set[str] | None:
        """The keys that any site's last build (within ``max_age_days``) used; None when
        no build was ever recorded. Older records are removed on the way."""
        records = [n for n, _ in self.store.names(f"{LAYOUT}/builds") if n.endswith(".json")]
        legacy = f"{LAYOUT}/last-build.json"  # written by 0.1.0, one for all sites
        has_legacy = isinstance(self.store, FolderStore) and self.store.exists(legacy)
        if not records and not has_legacy:
            return None
        used: set[str] = set()
        oldest = time.time() - max_age_days * 86400
        for name in records:
            try:
                record = json.loads(self.store.read(name).decode("utf-8"))
                if float(record["time"]) < oldest:
                    self.store.delete(name)
                    continue
                used |= {str(k) for k in record["keys"]}
            except (OSError, ValueError, KeyError, TypeError):
                self.store.delete(name)  # damaged: it protects nothing
        if has_legacy and isinstance(self.store, FolderStore):
            path = self.store.path(legacy)
            try:
                if path.stat().st_mtime >= oldest:
                    used |= {str(k) for k in json.loads(path.read_text(encoding="utf-8"))}
            except (OSError, ValueError, TypeError):
                pass
        return used

    def prune(self, max_age_days: float = PRUNE_MAX_AGE_DAYS) -> dict[str, int]:
        """Remove entries that no site's last build used (builds older than
        ``max_age_days`` do not count) and blobs no entry names."""
        removed = {"entries": 0, "objects": 0, "bytes": 0}
        used = self.used_keys(max_age_days)
        if used is None:
            return removed
        live: set[str] = set()
        for name, _size in list(self.store.names(f"{LAYOUT}/entries")):
            key = name.rsplit("/", 1)[-1].removesuffix(".json")
            if key not in used:
                self.store.delete(name)
                removed["entries"] += 1
                continue
            try:
                raw = json.loads(self.store.read(name).decode("utf-8"))
                live |= {o["sha256"] for o in raw["outputs"]}
            except (OSError, ValueError, KeyError, TypeError):
                self.store.delete(name)
        for name, size in list(self.store.names(f"{LAYOUT}/objects")):
            if name.rsplit("/", 1)[-1] not in live:
                removed["bytes"] += size
                self.store.delete(name)
                removed["objects"] += 1
        self.store.sweep()  # temp files a killed build left
        return removed

    def clear(self) -> None:
        """Remove the whole store."""
        self.store.clear(LAYOUT)


_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = {"original": re.compile(r"(?:[0-9a-f]{64})?"), "variant": re.compile(r"[0-9a-f]{10}")}
_FORMAT = {"original": re.compile(r"[a-z0-9]{1,8}"), "variant": re.compile(r"webp|jpeg|png|avif")}


def _output(item: dict[str, Any]) -> Output:
    """An entry's output record, checked: a store shared by many runners is read as
    untrusted, and a variant's name and format become a path in the site (a name like
    ``../x`` must never be written). Its few distinct short strings (role, format) are
    shared, not one copy per image held by the driver. ValueError when malformed."""
    role, fmt, name = item["role"], item["format"], item["name"]
    numbers = [item["width"], item["height"], item["bytes"]]
    if (
        role not in _NAME
        or not all(type(n) is int and n >= 0 for n in numbers)
        or not (isinstance(fmt, str) and _FORMAT[role].fullmatch(fmt))
        or not (isinstance(name, str) and _NAME[role].fullmatch(name))
        or not (isinstance(item["sha256"], str) and _HEX64.fullmatch(item["sha256"]))
    ):
        raise ValueError("malformed cache entry")
    width, height, size = numbers
    return Output(sys.intern(role), width, height, sys.intern(fmt), item["sha256"], size, name)


def _seals(raw: Any, digests: set[str]) -> dict[str, FileState]:
    """An entry's seals, if made in this boot: blob digest -> file state. Read as untrusted
    (anything but the exact shape is no seal, so those blobs are hashed); they only ever
    spare a hash, so a bad one is ignored rather than making the entry a miss."""
    boot = boot_id()
    if boot is None or not isinstance(raw, dict) or set(raw) != {"boot", "blobs"}:
        return {}
    if raw["boot"] != boot or not isinstance(raw["blobs"], dict):
        return {}
    seals = {}
    for digest, state in raw["blobs"].items():
        if (
            digest in digests
            and isinstance(state, list)
            and len(state) == 5
            and all(type(n) is int for n in state)
        ):
            seals[digest] = (state[0], state[1], state[2], state[3], state[4])
    return seals


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _extra(raw: Any) -> dict[str, Any]:
    """An entry's extra facts, checked as its outputs are: ``reencoded`` a bool, ``notes``
    short lines of text without control characters (they are printed in CI logs)."""
    if not isinstance(raw, dict):
        raise ValueError("malformed cache entry")
    reencoded = raw.get("reencoded", False)
    notes = raw.get("notes", [])
    if not isinstance(reencoded, bool) or not isinstance(notes, list):
        raise ValueError("malformed cache entry")
    for note in notes:
        if not isinstance(note, str) or len(note) > 2000 or _CONTROL.search(note):
            raise ValueError("malformed cache entry")
    return {"reencoded": reencoded, "notes": notes}


def fingerprint(parts: dict[str, Any]) -> str:
    """A stable text of the settings that affect one image."""
    return json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
