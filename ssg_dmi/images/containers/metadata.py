"""What every container module reads and writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metadata:
    """The metadata blocks a container holds."""

    xmp: bytes | None = None
    exif: bytes | None = None
