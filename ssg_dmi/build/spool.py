"""A build's per-image tables, held in memory while small and on disk once large.

A :class:`Spooled` table maps text to text. Up to :data:`SPILL_AT` entries it is a dict.
Past that it moves into a private temporary SQLite database (the standard library's
``sqlite3``): SQLite keeps up to :data:`CACHE_KIB` of its pages in memory and the rest in
a file it unlinks as soon as it opens it, in its temporary folder (``SQLITE_TMPDIR``,
``TMPDIR``, then ``/var/tmp`` or ``/tmp``). So the driver of a 1,000,000-image build holds
about what one of 20,000 images holds in these tables, and a site below the threshold
never loads ``sqlite3`` nor pays its ~2 µs a lookup.

The keys and values go into SQLite as UTF-8 blobs (``surrogatepass``: a file name that is
not UTF-8 is held as Python holds it). Iteration is in key order, in memory too: what a
build reports does not depend on which side of the threshold a site falls.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

from ..errors import TempTablesFailed, first_line

# Entries a table holds in a dict before it moves to SQLite (tests lower it).
SPILL_AT = 20_000
# The memory SQLite may use for its pages, per table (KiB).
CACHE_KIB = 1024

_ENC = "surrogatepass"
_MISSING: Any = object()  # pop's default when none is given: a missing key raises KeyError
_SET = "INSERT OR REPLACE INTO t VALUES (?, ?)"
# The value after the one held, a NUL between (blobs: byte for byte, NULs and all).
_APPEND = (
    "INSERT INTO t VALUES (?, ?) ON CONFLICT (k) DO UPDATE "
    "SET v = CAST(v || X'00' || excluded.v AS BLOB)"
)


def _b(text: str) -> bytes:
    return text.encode("utf-8", _ENC)


def _s(blob: bytes) -> str:
    return blob.decode("utf-8", _ENC)


class Spooled(MutableMapping[str, str]):
    """``{text: text}`` in a dict, then in SQLite past ``spill_at`` entries (see the
    module). Iterates in key order. Not for use from several threads at once."""

    __slots__ = ("_dict", "_db", "_spill_at", "_returning", "_upsert")

    def __init__(self, spill_at: int | None = None) -> None:
        self._dict: dict[str, str] | None = {}
        self._db: Any = None
        self._spill_at = SPILL_AT if spill_at is None else spill_at
        self._returning = self._upsert = False

    @property
    def spilled(self) -> bool:
        """Whether the table is in SQLite."""
        return self._dict is None

    def _spill(self, held: dict[str, str]) -> None:
        """Move ``held`` (the table's dict) into a new SQLite database."""
        import sqlite3

        db = _Guarded(sqlite3.connect("", isolation_level=None, check_same_thread=False))
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        # One transaction for the table's life: nothing is ever committed to anyone.
        db.execute("BEGIN")
        db.executemany("INSERT INTO t VALUES (?, ?)", ((_b(k), _b(v)) for k, v in held.items()))
        self._returning = sqlite3.sqlite_version_info >= (3, 35)
        self._upsert = sqlite3.sqlite_version_info >= (3, 24)  # ON CONFLICT … DO UPDATE
        self._db, self._dict = db, None

    def __getitem__(self, key: str) -> str:
        found: str | None = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: Any = None) -> Any:
        if self._dict is not None:
            return self._dict.get(key, default)
        row = self._db.execute("SELECT v FROM t WHERE k = ?", (_b(key),)).fetchone()
        return default if row is None else _s(row[0])

    def __setitem__(self, key: str, value: str) -> None:
        held = self._dict
        if held is not None:
            held[key] = value
            if len(held) > self._spill_at:
                self._spill(held)
            return
        self._db.execute(_SET, (_b(key), _b(value)))

    def append(self, key: str, value: str) -> None:
        """``value`` as ``key``'s value, or after it, NUL between, when it has one."""
        self.append_many(((key, value),))

    def append_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """:meth:`append` of each pair in turn; a spilled table takes them in one statement
        (measured: 1.6 µs a row against 2.0 one at a time; SQLite's own insert is most of
        it)."""
        rest = iter(pairs)
        held = self._dict
        if held is not None:
            for key, value in rest:
                old = held.get(key)
                held[key] = value if old is None else f"{old}\0{value}"
                if len(held) > self._spill_at:
                    self._spill(held)
                    break  # spilled: the rest in one statement
            else:
                return
        db = self._db
        if self._upsert:
            db.executemany(_APPEND, ((_b(k), _b(v)) for k, v in rest))
            return
        for key, value in rest:  # an SQLite before 3.24: no ON CONFLICT … DO UPDATE
            k, v = _b(key), _b(value)
            if db.execute("INSERT OR IGNORE INTO t VALUES (?, ?)", (k, v)).rowcount == 0:
                (old_v,) = db.execute("SELECT v FROM t WHERE k = ?", (k,)).fetchone()
                db.execute("UPDATE t SET v = ? WHERE k = ?", (old_v + b"\0" + v, k))

    def set_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """``table[key] = value`` for each pair in turn (one statement when spilled)."""
        rest = iter(pairs)
        if self._dict is not None:
            for key, value in rest:
                self[key] = value
                if self._dict is None:
                    break
            else:
                return
        self._db.executemany(_SET, ((_b(k), _b(v)) for k, v in rest))

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        if self._dict is not None:
            return self._dict.pop(key) if default is _MISSING else self._dict.pop(key, default)
        k = _b(key)
        if self._returning:
            row = self._db.execute("DELETE FROM t WHERE k = ? RETURNING v", (k,)).fetchone()
        else:
            row = self._db.execute("SELECT v FROM t WHERE k = ?", (k,)).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM t WHERE k = ?", (k,))
        if row is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return _s(row[0])

    def __delitem__(self, key: str) -> None:
        if self.pop(key, None) is None:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if self._dict is not None:
            return key in self._dict
        if not isinstance(key, str):
            return False
        return self._db.execute("SELECT 1 FROM t WHERE k = ?", (_b(key),)).fetchone() is not None

    def __len__(self) -> int:
        if self._dict is not None:
            return len(self._dict)
        return int(self._db.execute("SELECT count(*) FROM t").fetchone()[0])

    def __bool__(self) -> bool:
        if self._dict is not None:
            return bool(self._dict)
        return self._db.execute("SELECT 1 FROM t LIMIT 1").fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        return (k for k, _v in self.sorted_items())

    def sorted_items(self) -> Iterator[tuple[str, str]]:
        """(key, value) pairs in key order, read as they are used (a spilled table's rows
        a page at a time). The table must not change meanwhile."""
        if self._dict is not None:
            return iter(sorted(self._dict.items()))
        rows = self._db.execute("SELECT k, v FROM t ORDER BY k")
        return ((_s(k), _s(v)) for k, v in self._db.rows(rows))

    def popitems(self) -> Iterator[tuple[str, str]]:
        """:meth:`sorted_items`, the table emptied as it goes (a spilled table at the end):
        what is not taken is dropped all the same."""
        if self._dict is not None:
            held, self._dict = self._dict, {}
            for key in sorted(held):
                yield key, held.pop(key)
            return
        try:
            yield from self.sorted_items()
        finally:
            self.close()

    def close(self) -> None:
        """Drop everything (a spilled table's file goes with its connection)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self._dict = {}

    def __repr__(self) -> str:
        return f"Spooled({dict(self.sorted_items())!r})"


class SpooledBytes:
    """Bytes appended in order (the keys a build used, 32 bytes each), in memory up to
    ``spill_at`` bytes (default: 64 per entry of :data:`SPILL_AT`), past that in an unlinked
    temporary file (Python's ``tempfile``, in the same folder SQLite would use)."""

    __slots__ = ("_mem", "_file", "_spill_at", "_filed")

    def __init__(self, spill_at: int | None = None) -> None:
        self._mem = bytearray()
        self._file: Any = None
        self._spill_at = 64 * SPILL_AT if spill_at is None else spill_at
        self._filed = 0  # bytes in the file

    def __iadd__(self, data: bytes) -> SpooledBytes:
        self._mem += data
        if len(self._mem) > self._spill_at:
            self._flush()
        return self

    def _flush(self) -> None:
        try:
            if self._file is None:
                import tempfile

                self._file = tempfile.TemporaryFile()  # noqa: SIM115 - held; close() closes it
            self._file.write(self._mem)
        except OSError as exc:
            raise _failed(exc) from None
        self._filed += len(self._mem)
        self._mem.clear()

    def __len__(self) -> int:
        return self._filed + len(self._mem)

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def pieces(self, size: int) -> Iterator[bytes]:
        """The bytes in order, ``size`` at a time (the last piece shorter)."""
        if self._file is not None:
            self._flush()
            try:
                self._file.seek(0)
                while piece := self._file.read(size):
                    yield piece
            except OSError as exc:
                raise _failed(exc) from None
            return
        for start in range(0, len(self._mem), size):
            yield bytes(self._mem[start : start + size])

    def close(self) -> None:
        """Drop everything (the file goes when it is closed)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._mem, self._filed = bytearray(), 0


class _Guarded:
    """A SQLite connection whose every failure (the temporary folder full, mostly) is
    :class:`~ssg_dmi.errors.TempTablesFailed`, saying where and what to do."""

    __slots__ = ("_db", "_error")

    def __init__(self, db: Any) -> None:
        import sqlite3

        self._db, self._error = db, sqlite3.Error

    def execute(self, sql: str, params: Any = ()) -> Any:
        try:
            return self._db.execute(sql, params)
        except self._error as exc:
            raise _failed(exc) from None

    def executemany(self, sql: str, params: Any) -> Any:
        try:
            return self._db.executemany(sql, params)
        except self._error as exc:
            raise _failed(exc) from None

    def rows(self, cursor: Any) -> Iterator[Any]:
        try:
            yield from cursor
        except self._error as exc:
            raise _failed(exc) from None

    def close(self) -> None:
        self._db.close()


def _failed(exc: BaseException) -> TempTablesFailed:
    where = os.environ.get("SQLITE_TMPDIR") or os.environ.get("TMPDIR") or "/var/tmp or /tmp"
    return TempTablesFailed(
        f"the build's temporary tables in {where} failed ({first_line(exc)}): free space "
        "there, or point TMPDIR (or SQLITE_TMPDIR) at a folder with room, and rerun; what "
        "is written is consistent"
    )
