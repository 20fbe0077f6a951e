"""What a job is: its options, the job, its result, and where its outputs go in the site.

The light half of :mod:`ssg_dmi.build.job`: the driver plans, decides what is already in
place and reports with these alone, so a rebuild with nothing to do never imports the image
libraries (Pillow, the container parsers); :mod:`ssg_dmi.build.job` re-exports every name.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..formats import VariantFormat
from ..fsutil import atomic_write
from ..images.provenance import Signing
from ..policy import ImagePolicy
from ..settings import Originals
from ..settings.watermark import Watermark
from .cache import Output, fingerprint, make_key

# A variant's file extension by its format: ssg_dmi.images.variants.EXTENSION (a test keeps
# the two equal), here so that naming a variant does not load Pillow.
EXTENSION = {"webp": "webp", "jpeg": "jpg", "png": "png", "avif": "avif"}


@dataclass(frozen=True)
class Options:
    """The settings that shape an image's outputs (all part of its cache key)."""

    widths: tuple[int, ...]
    formats: tuple[VariantFormat, ...]
    quality: Mapping[str, int]
    originals: Originals
    max_pixels: int
    srgb: bool
    c2pa: Signing | None = None  # sign the outputs (C2PA); None: the default, no signing
    watermark: Watermark | None = None  # a visible mark; None: the default, none
    watermark_files: tuple[str, str] = ("", "")  # sha256 of the logo's and font's bytes
    # Fingerprint text by policy: the jobs of a build share their options, so each distinct
    # (policy, options) is made into text once, not once per image (not a setting: a copy
    # made by dataclasses.replace starts empty).
    _fingerprints: dict[ImagePolicy, str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def fingerprint_for(self, policy: ImagePolicy) -> str:
        """The settings that shape the outputs of an image with ``policy``, as stable text."""
        text = self._fingerprints.get(policy)
        if text is None:
            text = fingerprint({"policy": repr(policy), **self.key_parts()})
            self._fingerprints[policy] = text
        return text

    def key_parts(self) -> dict[str, Any]:
        """The values that go into the cache key: the signing certificate's fingerprint,
        never the key (and no c2pa part at all when not signing, so caches stay valid)."""
        parts: dict[str, Any] = {
            "widths": list(self.widths),
            "formats": list(self.formats),
            "quality": dict(sorted(self.quality.items())),
            "originals": self.originals,
            "max_pixels": self.max_pixels,
            "srgb": self.srgb,
        }
        if self.c2pa is not None:
            c2pa = self.c2pa
            parts["c2pa"] = [c2pa.fingerprint, c2pa.alg, c2pa.tsa_url, c2pa.apply_to]
        if self.watermark is not None:  # the files by their bytes, not where they are
            mark = dataclasses.replace(self.watermark, logo="", font="")
            parts["watermark"] = [repr(mark), *self.watermark_files]
        return parts


@dataclass(frozen=True, slots=True)
class Job:
    """One distinct (source bytes, policy): every site path holding it gets the outputs.

    Slotted, its key made once with it: a 100,000-image plan holds one per source."""

    site: str
    relpaths: tuple[str, ...]
    source_sha: str
    source_bytes: int
    policy: ImagePolicy
    options: Options
    cache_dir: str | None
    deliver: str = "site"  # "site", "result" or "cache" (see the module docstring)
    data: bytes | None = field(default=None, repr=False, compare=False)  # the source, carried
    failed: str | None = None  # why the driver could not send it (its one-line error)
    key: str = field(init=False, repr=False, compare=False)  # its cache key

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", make_key(self.source_sha, self.fingerprint))

    @property
    def fingerprint(self) -> str:
        """The settings that shape this job's outputs, as stable text (made once per
        distinct policy by the options all jobs share; no job holds a copy)."""
        return self.options.fingerprint_for(self.policy)


@dataclass(slots=True)
class JobResult:
    """What one job did, for the report."""

    relpaths: tuple[str, ...]
    key: str
    outputs: list[Output] = field(default_factory=list)
    source_bytes: int = 0
    reencoded: bool = False
    cache_hit: bool = False
    written: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    cache_error: str | None = None
    seconds: float = 0.0
    payload: list[bytes] | None = None  # the outputs' bytes, for deliver = "result"
    aliases: tuple[str, ...] = ()  # more keys of this entry (see alias_keys), for the record


def cached_result(job: Job, outputs: list[Output], extra: Mapping[str, Any]) -> JobResult:
    """What a job reports when its outputs come from a cache entry (checked by the cache)
    without a worker touching them: a hit that wrote nothing."""
    return JobResult(
        relpaths=job.relpaths,
        key=job.key,
        outputs=outputs,
        source_bytes=job.source_bytes,
        reencoded=extra["reencoded"],
        cache_hit=True,
        notes=list(extra["notes"]),
        aliases=alias_keys(job, outputs[0]) if outputs else (),
    )


def variant_path(relpath: str, output: Output) -> str:
    """Where a variant of the image at ``relpath`` (a site path as the walker gives it)
    lives: beside it (see VARIANT_NAME). Made as text: it runs once per variant per build."""
    return relpath + variant_suffix(output)


def variant_suffix(output: Output) -> str:
    """What :func:`variant_path` adds to the image's own path."""
    return f"-{output.width}w.{output.name}.{EXTENSION[output.format]}"


def crash_message(exc: BaseException) -> str:
    """An unexpected exception from the image libraries (or ours) in one line."""
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return f"cannot be processed ({detail[:300]}); if it opens in a browser, please report it"


def alias_keys(job: Job, original: Output) -> tuple[str, ...]:
    """Keys under which a later run over this build's own output finds the same entry."""
    if original.sha256 == job.source_sha:
        return ()
    return (make_key(original.sha256, job.fingerprint),)


def placements(
    site: Path, relpaths: tuple[str, ...], outputs: Sequence[Output]
) -> Iterator[tuple[int, list[str]]]:
    """Where an image's outputs go, in the order they are written: ``(index in outputs,
    its path under every site path holding the image)``, the variants first and the
    original last, so a build stopped on the way leaves each source as it was until its
    variants are there."""
    root = os.fspath(site)
    for index in range(1, len(outputs)):
        yield index, [os.path.join(root, variant_path(rel, outputs[index])) for rel in relpaths]
    yield 0, [os.path.join(root, rel) for rel in relpaths]


def place(site: Path, relpaths: tuple[str, ...], pairs: list[tuple[Output, bytes]]) -> int:
    """Write one image's outputs into the site (:func:`placements`' order): how many files
    were written.

    Variants of older builds are not removed here: the driver removes them once the pages
    point at the new ones, so an interrupted build never leaves a page with a dead srcset.
    """
    written = 0
    for index, targets in placements(site, relpaths, [o for o, _ in pairs]):
        written += sum(atomic_write(target, pairs[index][1]) for target in targets)
    return written
