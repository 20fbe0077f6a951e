"""What a build of a site's images did: typed records, and their JSON (``--report``).

Each record also answers ``record["field"]``, the way its JSON reads, so code written
against the ``--report`` file's shape reads the object the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class JsonShaped:
    """``record["name"]`` for ``record.name``, as the record's JSON spells it."""

    def __getitem__(self, key: str) -> Any:
        if key in {f.name for f in fields(self)}:  # type: ignore[arg-type]
            return getattr(self, key)
        raise KeyError(key)


@dataclass(frozen=True)
class VariantFile(JsonShaped):
    """One variant written beside its image."""

    path: str
    width: int
    height: int
    format: str
    bytes: int


@dataclass(frozen=True)
class OriginalFile(JsonShaped):
    """The image at its own path, after tagging (``reencoded``: its pixels too)."""

    path: str
    width: int
    height: int
    format: str
    bytes: int
    reencoded: bool


@dataclass(frozen=True)
class ImageResult(JsonShaped):
    """One image's outputs: its original and its variants, largest first."""

    original: OriginalFile
    variants: list[VariantFile]


@dataclass
class Summary(JsonShaped):
    """The counts of a build (``reencoded``: in this run, not taken from the cache)."""

    images: int = 0
    sources: int = 0
    variants: int = 0
    reencoded: int = 0
    cache_hits: int = 0
    files_written: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    variant_bytes: int = 0
    errors: int = 0


@dataclass
class Report:
    """What a build did: per image its outputs, and a summary."""

    images: dict[str, ImageResult] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    summary: Summary = field(default_factory=Summary)
    # Build-wide problems that did not stop it (a cache that cannot be written).
    warnings: list[str] = field(default_factory=list)
    # Files passed over on purpose (links leading outside the site, FIFOs), one line each.
    skipped: list[str] = field(default_factory=list)
    # Our variants from earlier builds that this build's outputs replace: removed by
    # `remove_stale` once pages point at the new ones.
    stale: list[str] = field(default_factory=list)

    def as_json(self, ascii_only: bool = False) -> str:
        """The report as JSON (``--report``)."""
        data = {
            "images": {rel: asdict(result) for rel, result in self.images.items()},
            "errors": self.errors,
            "notes": self.notes,
            "summary": asdict(self.summary),
        }
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=ascii_only)

    @property
    def untagged(self) -> int:
        """How many images are left without our tags."""
        return len(self.errors)
