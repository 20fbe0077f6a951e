"""Where the cache keeps its files: a local folder or an object store (S3 API).

The cache (:mod:`ssg_dmi.build.cache`) names its files with ``/``-separated names
(``v1/objects/ab/abcd…``) and asks a store for five things: read, write (atomic: a reader
sees the old object, the new one or none, never half of one), exists, list and delete.

- :class:`FolderStore`: a folder on this machine (writes go through a temp file and
  ``os.replace``). A blob it writes can be *sealed* (:meth:`FolderStore.write_sealed`),
  which lets a later read in the same boot skip hashing it (the argument is there).
- :class:`ObjectStore`: ``s3://bucket/prefix`` on AWS S3 or any S3 API (Cloudflare R2,
  MinIO, GCS's S3 endpoint), through ``obstore`` (``pip install ssg-dmi[s3]``). A PUT is
  atomic by the S3 API's own rules, so many runners may write one store at once without
  locks: the last writer of identical content wins. Credentials, region and endpoint come
  from the standard AWS environment variables (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``;
  ``AWS_ALLOW_HTTP=true`` for a plain-HTTP endpoint), never from ``ssg-dmi.toml``.

Every failure of a store is an ``OSError`` (a missing object a ``FileNotFoundError``), so
the callers' "a cache is an optimisation" handling covers both kinds alike.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError, first_line
from ..fsutil import (
    OPEN_READ,
    TEMP_PREFIX,
    TEMP_SUFFIX,
    atomic_copy,
    atomic_write,
    new_temp,
    read_all,
    read_file,
    replacing,
    shown,
    write_all,
)

REMOTE_SCHEMES = ("s3://",)

# A cache folder, or the URL of an object store (kept as text: a Path would fold "//").
CacheLocation = Path | str


def cache_location(value: str) -> CacheLocation:
    """A ``cache_dir`` setting as a folder path, or as the URL of an object store."""
    return value if is_remote(value) else Path(value)


def is_remote(location: str | os.PathLike[str]) -> bool:
    """Whether a ``cache_dir`` value names an object store rather than a folder."""
    return isinstance(location, str) and location.lower().startswith(REMOTE_SCHEMES)


class Store(Protocol):
    """The five operations the cache needs, by ``/``-separated name."""

    location: str

    def read(self, name: str) -> bytes: ...

    def write(self, name: str, data: bytes) -> None: ...

    def exists(self, name: str) -> bool: ...

    def names(self, prefix: str) -> Iterator[tuple[str, int]]: ...

    def delete(self, name: str) -> None: ...

    def check_writable(self) -> None: ...

    def clear(self, prefix: str) -> None: ...

    def sweep(self) -> None: ...


def start_method_for(location: CacheLocation | None) -> str | None:
    """How to start worker processes for a build with this cache: an object-store client's
    threads do not survive ``fork``, so its workers come from a fork server."""
    return "forkserver" if location is not None and is_remote(location) else None


def open_store(location: str | os.PathLike[str]) -> Store:
    """The store a ``cache_dir`` value names: ``s3://bucket/prefix`` or a folder."""
    if is_remote(location):
        return ObjectStore(str(location))
    return FolderStore(Path(location))


# A sealed blob's modification time: this far in the past when it is written. Any later
# write to the file sets its modification time to the present, so the stamp is gone.
SEAL_STAMP_AGE_NS = 1_000_000_000
_BOOT_FILE = "/proc/sys/kernel/random/boot_id"
_BOOT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# A blob file's state: device, inode, size, modification and change time (ns).
FileState = tuple[int, int, int, int, int]


@functools.cache
def boot_id() -> str | None:
    """This boot of this machine (Linux), or None where there is none to read (then no
    blob is sealed and every read is hashed)."""
    try:
        with open(_BOOT_FILE, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, ValueError):
        return None
    return text if _BOOT_ID.fullmatch(text) else None


def file_state(info: os.stat_result) -> FileState:
    """The fields of ``info`` a seal compares."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


class FolderStore:
    """A cache folder on this machine.

    **Seals.** Hashing every blob read is most of a warm rebuild's cache cost. A blob that
    this store writes, from bytes whose SHA-256 the cache has just checked against the
    blob's name, gets a *seal*: its file state after the rename (device, inode, size,
    modification and change time, :func:`file_state`), which the cache keeps, with this
    boot's id, in the entry that names the blob; the blob's modification time is first
    set to a stamp a second in the past. A read in the same boot whose file state, taken
    after reading, equals the seal returns the bytes without hashing them. Why that is
    sound:

    - Any write, truncation or ``utime`` through the file system moves the change time,
      and a write or truncation also sets the modification time to the present, which
      can no longer be the stamp (a second old, exact to the nanosecond): so a changed
      blob does not match, even when the change falls within the file system's timestamp
      tick. A replaced blob (another file renamed over it, a cache restored from an
      archive, ``cp``) has another inode and change time. The state is taken with
      ``fstat`` on the open file after the rename (a change between the stamp and the
      rename leaves no seal) and, on a read, after the bytes are read (a change during the
      read does not match).
    - A seal holds only within the boot that wrote it: data that never reached the disk
      before a crash or power loss could leave a file whose metadata survived; after a
      reboot every blob is hashed again. Other machines (a folder shared over NFS, a CI
      cache restored elsewhere) have other boot ids and are never trusted.
    - A seal is read as untrusted, with its entry: anything but the exact fields, or a
      state that differs, is no seal, and the blob is hashed as before (a damaged one
      removed).
    - Not covered, as for any file read without a checksum: corruption below the file
      system that changes bytes but no metadata (the storage's own checks catch that).
      Whoever can write the cache folder can change the images a site gets with or
      without seals (an entry may name any blob), so seals give no new power.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = shown(root)
        # Reads and checks join text: pathlib's parsing cost more than the read itself.
        self._prefix = os.path.join(os.fspath(root), "")

    def path(self, name: str) -> Path:
        return self.root / name

    def read(self, name: str) -> bytes:
        return read_file(self._prefix + name)

    def write(self, name: str, data: bytes) -> None:
        atomic_write(self._prefix + name, data)

    def write_sealed(self, name: str, data: bytes) -> FileState | None:
        """Write the blob ``name`` atomically (as :meth:`write`) and return its seal: its
        file state after the rename (see the class's notes). The caller has checked that
        the blob's name is the SHA-256 of ``data``. None (no seal) when this machine has
        no boot id, the file system does not keep the stamp to the nanosecond, or the file
        changed before its state was taken."""
        if boot_id() is None:
            self.write(name, data)
            return None
        with replacing(self._prefix + name, 0o644, state=True) as temp:
            write_all(temp.fd, data)
            stamp, stamped = time.time_ns() - SEAL_STAMP_AGE_NS, True
            try:
                os.utime(temp.fd, ns=(stamp, stamp))
            except OSError:  # a file system that refuses it: the blob, without a seal
                stamped = False
        info = temp.info  # the file as moved into place
        if info is None or not stamped or info.st_mtime_ns != stamp or info.st_size != len(data):
            return None
        return file_state(info)

    def read_sealed(self, name: str, seal: FileState | None) -> tuple[bytes, bool]:
        """The bytes of the blob ``name``, and whether ``seal`` vouches for them (then they
        need no hash: see the class's notes). OSError when the blob cannot be read."""
        fd = os.open(self._prefix + name, OPEN_READ)
        try:
            data = read_all(fd, seal[2] if seal is not None else os.fstat(fd).st_size)
            info = os.fstat(fd)  # after the read: a change during it shows
        finally:
            os.close(fd)
        return data, seal is not None and len(data) == info.st_size and file_state(info) == seal

    def copy_sealed(self, name: str, seal: FileState, targets: list[str]) -> int | None:
        """Copy the blob ``name`` to each of ``targets`` (:func:`~ssg_dmi.fsutil.atomic_copy`:
        by the kernel, atomically, not when a target holds these bytes already) when
        ``seal`` vouches for it before and after: how many targets were written. None when
        it does not (or the blob cannot be opened): the caller reads and hashes it instead,
        and writes those bytes over whatever was copied. OSError when a target cannot be
        written."""
        try:
            fd = os.open(self._prefix + name, OPEN_READ)
        except OSError:
            return None
        try:
            if file_state(os.fstat(fd)) != seal:
                return None
            written = sum(atomic_copy(target, fd, seal[2]) for target in targets)
            # A change while copying shows in the state, as after read_sealed's read.
            return written if file_state(os.fstat(fd)) == seal else None
        finally:
            os.close(fd)

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._prefix + name)

    def names(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(name, size) of every file under the folder ``prefix``, sorted; temp files of
        interrupted writes are not names."""
        base = self.root / prefix
        found = []
        for here, _dirs, files in os.walk(base):
            for file in files:
                if file.startswith(TEMP_PREFIX):
                    continue
                path = Path(here, file)
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                found.append((path.relative_to(self.root).as_posix(), size))
        yield from sorted(found)

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def check_writable(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, probe = new_temp(os.fspath(self.root))
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)

    def clear(self, prefix: str) -> None:
        shutil.rmtree(self.root / prefix, ignore_errors=True)

    def sweep(self) -> None:
        """Remove temp files that a killed build left."""
        for stale in self.root.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
            stale.unlink(missing_ok=True)


# One client per process and location: each worker process builds its own on first use.
_CLIENTS: dict[str, Any] = {}
# The process whose client runtime started: its threads are not in a process forked from
# it, where any call would hang; such a process gets an OSError instead (so a job's cache
# step fails, and the image is still done).
_STARTED_IN: int | None = None


class ObjectStore:
    """``s3://bucket/prefix`` through obstore."""

    def __init__(self, url: str) -> None:
        self.location = url
        bucket = url[len("s3://") :].split("/", 1)[0]
        if not bucket:
            raise ConfigError(f"cache_dir {url!r}: no bucket; write s3://BUCKET/PREFIX")
        try:
            import obstore  # noqa: F401 - the optional extra
        except ImportError:
            raise ConfigError(
                f"cache_dir {url!r} needs the S3 client: pip install 'ssg-dmi[s3]'"
            ) from None

    @property
    def _client(self) -> Any:
        global _STARTED_IN
        if _STARTED_IN is not None and os.getpid() != _STARTED_IN:
            raise OSError(
                f"{self.location}: the S3 client cannot be used in a process forked after "
                "it started; start workers with the forkserver method"
            )
        _STARTED_IN = os.getpid()
        client = _CLIENTS.get(self.location)
        if client is None:
            from obstore.store import from_url

            try:
                client = from_url(self.location.rstrip("/"))
            except Exception as exc:  # noqa: BLE001 - obstore raises its own, and ValueError
                raise OSError(f"cannot open {self.location} ({first_line(exc)})") from None
            _CLIENTS[self.location] = client
        return client

    def _call(self, what: str, name: str, *args: Any) -> Any:
        import obstore
        from obstore.exceptions import BaseError, NotFoundError

        try:
            return getattr(obstore, what)(self._client, name, *args)
        except (NotFoundError, FileNotFoundError) as exc:  # obstore raises either
            if what == "put":  # a bucket that is not there: no object was ever looked for
                raise OSError(f"{self.location}: {what} failed ({first_line(exc)})") from None
            raise FileNotFoundError(f"{self.location}/{name}: no such object") from None
        except (BaseError, OSError, RuntimeError, ValueError) as exc:
            raise OSError(f"{self.location}: {what} {name} failed ({first_line(exc)})") from None

    def read(self, name: str) -> bytes:
        result = self._call("get", name)
        try:
            return bytes(result.bytes())
        except Exception as exc:  # noqa: BLE001 - a connection cut mid-body: a read error
            raise OSError(f"{self.location}: reading {name} failed ({first_line(exc)})") from None

    def write(self, name: str, data: bytes) -> None:
        self._call("put", name, data)

    def exists(self, name: str) -> bool:
        try:
            self._call("head", name)
        except FileNotFoundError:
            return False
        return True

    def names(self, prefix: str) -> Iterator[tuple[str, int]]:
        import obstore
        from obstore.exceptions import BaseError

        try:
            for batch in obstore.list(self._client, prefix.rstrip("/") + "/"):
                for meta in batch:
                    yield str(meta["path"]), int(meta["size"])
        except (BaseError, OSError, RuntimeError, ValueError) as exc:
            raise OSError(f"{self.location}: listing {prefix} failed ({first_line(exc)})") from None

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call("delete", name)

    def check_writable(self) -> None:
        probe = f".ssg-dmi-probe-{os.getpid()}"
        self.write(probe, b"probe")
        self.delete(probe)

    def clear(self, prefix: str) -> None:
        for name, _size in list(self.names(prefix)):
            self.delete(name)

    def sweep(self) -> None:
        """Nothing to sweep: an object store has no half-written objects."""
