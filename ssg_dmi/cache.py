"""A content-addressed cache of encoded outputs, meant to be kept between CI runs.

Layout under the cache folder::

    v1/objects/ab/abcdef…      one blob per distinct output, named by its SHA-256
    v1/entries/12/1234…json    per key: the outputs (role, width, height, format, sha256)
    v1/last-build.json         the keys the last build used (for ``ssg-dmi cache prune``)

A key hashes the source bytes, the settings that affect that image and the tool version.
Blobs are written before the entry that names them, each atomically, so a build killed at
any moment leaves either a complete entry or none.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .fsutil import atomic_write

LAYOUT = "v1"


@dataclass(frozen=True)
class Output:
    """One file an image produces: its original (role ``original``) or a variant."""

    role: str
    width: int
    height: int
    format: str
    sha256: str
    bytes: int


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

    def record_build(self, keys: Iterable[str]) -> None:
        """Remember which keys the last build used."""
        atomic_write(self.root / "last-build.json", json.dumps(sorted(set(keys))).encode())

    def prune(self) -> dict[str, int]:
        """Remove entries the last build did not use and blobs no entry names."""
        try:
            used = set(json.loads((self.root / "last-build.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {"entries": 0, "objects": 0, "bytes": 0}
        removed = {"entries": 0, "objects": 0, "bytes": 0}
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
