"""A content-addressed cache of encoded outputs, meant to be kept between CI runs.

Layout under the cache folder::

    v1/objects/ab/abcdef…      one blob per distinct output, named by its SHA-256
    v1/entries/12/1234…json    per key: the outputs (role, width, height, format, sha256)
    v1/builds/<site>.json      per site folder: the keys its last build used, and when
                               (``ssg-dmi cache prune`` keeps what any site's last build used)

A key hashes the source bytes, the settings that affect that image and the tool version.
Blobs are written before the entry that names them, each atomically, so a build killed at
any moment leaves either a complete entry or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write
from ..version import __version__

LAYOUT = "v1"
# A site whose last build is older than this no longer protects its entries from `prune`
# (a build folder that is gone, a CI job renamed): the cache would otherwise only grow.
PRUNE_MAX_AGE_DAYS = 30.0


@dataclass(frozen=True)
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


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def make_key(source_sha: str, fingerprint: str) -> str:
    """The cache key of a source under settings ``fingerprint`` for this tool version."""
    return sha256(f"{__version__}\0{source_sha}\0{fingerprint}".encode())


class Cache:
    """The store; every method is safe to call from several processes at once."""

    def __init__(self, root: Path) -> None:
        self.root = root / LAYOUT

    def _entry(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / f"{key}.json"

    def _blob(self, digest: str) -> Path:
        return self.root / "objects" / digest[:2] / digest

    def get(self, key: str) -> tuple[list[Output], dict[str, Any]] | None:
        """The outputs stored under ``key`` and the entry's extra facts (``reencoded``,
        ``notes``), or None when absent or incomplete."""
        try:
            raw = json.loads(self._entry(key).read_text(encoding="utf-8"))
            outputs = [Output(**item) for item in raw["outputs"]]
            extra = dict(raw.get("extra", {}))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if all(self._blob(o.sha256).is_file() for o in outputs):
            return outputs, extra
        return None

    def read(self, output: Output) -> bytes:
        """The bytes of one stored output (checked against its hash)."""
        data = self._blob(output.sha256).read_bytes()
        if sha256(data) != output.sha256:
            raise OSError(f"cache blob {output.sha256[:12]} is corrupt")
        return data

    def put(
        self,
        key: str,
        outputs: Iterable[tuple[Output, bytes]],
        extra: dict[str, Any] | None = None,
        aliases: Iterable[str] = (),
    ) -> None:
        """Store outputs under ``key`` (and the same entry under each alias key): blobs
        first, then the entries."""
        items = list(outputs)
        for output, data in items:
            blob = self._blob(output.sha256)
            if not blob.is_file():
                atomic_write(blob, data)
        entry = {"outputs": [asdict(o) for o, _ in items], "extra": extra or {}}
        text = json.dumps(entry, sort_keys=True).encode()
        for name in (key, *aliases):
            atomic_write(self._entry(name), text)

    def check_writable(self) -> None:
        """Raise OSError when the store cannot be written (read-only, full, not a folder)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ssg-dmi-", suffix=".tmp", dir=self.root)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)

    def record_build(self, keys: Iterable[str], site: Path) -> None:
        """Remember which keys the last build of ``site`` used (each site its own record,
        so pruning after one site's build keeps what another site sharing the cache uses)."""
        where = str(site.resolve())
        record = {"site": where, "time": time.time(), "keys": sorted(set(keys))}
        name = sha256(where.encode("utf-8", "surrogateescape"))[:16]
        atomic_write(self.root / "builds" / f"{name}.json", json.dumps(record).encode())

    def used_keys(self, max_age_days: float = PRUNE_MAX_AGE_DAYS) -> set[str] | None:
        """The keys that any site's last build (within ``max_age_days``) used; None when
        no build was ever recorded. Older records are removed on the way."""
        records = sorted((self.root / "builds").glob("*.json"))
        legacy = self.root / "last-build.json"  # written by 0.1.0, one for all sites
        if not records and not legacy.is_file():
            return None
        used: set[str] = set()
        oldest = time.time() - max_age_days * 86400
        for path in records:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if float(record["time"]) < oldest:
                    path.unlink(missing_ok=True)
                    continue
                used |= {str(k) for k in record["keys"]}
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)  # damaged: it protects nothing
        try:
            if legacy.stat().st_mtime >= oldest:
                used |= {str(k) for k in json.loads(legacy.read_text(encoding="utf-8"))}
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
        for entry in sorted((self.root / "entries").glob("*/*.json")):
            if entry.stem not in used:
                entry.unlink(missing_ok=True)
                removed["entries"] += 1
                continue
            try:
                live |= {o["sha256"] for o in json.loads(entry.read_text())["outputs"]}
            except (OSError, ValueError, KeyError, TypeError):
                entry.unlink(missing_ok=True)
        for blob in sorted((self.root / "objects").glob("*/*")):
            if blob.name not in live:
                removed["bytes"] += blob.stat().st_size
                blob.unlink(missing_ok=True)
                removed["objects"] += 1
        for stale in self.root.rglob(".ssg-dmi-*.tmp"):  # left by a killed build
            stale.unlink(missing_ok=True)
        return removed

    def clear(self) -> None:
        """Remove the whole store."""
        shutil.rmtree(self.root, ignore_errors=True)


def fingerprint(parts: dict[str, Any]) -> str:
    """A stable text of the settings that affect one image."""
    return json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
