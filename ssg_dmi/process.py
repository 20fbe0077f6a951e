"""The work for one distinct source image: tag the original, make its variants, place them.

Runs in a worker (process or thread). Everything it needs travels in a picklable
:class:`Job`; it returns a small :class:`JobResult` (no image bytes) to the pipeline.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import pixels, variants
from .cache import Cache, Output, fingerprint, make_key, sha256
from .containers import Format
from .errors import ImageError
from .fsutil import atomic_write
from .optimize import pays, worth_reencoding
from .policy import ImagePolicy
from .tagging import TagPlan, keeps_pixels, plan

# photo.jpg -> photo.jpg-960w.<10 hex of SHA-256>.webp: unique per source file (photo.png's
# variants never collide), content-named so hosts may cache it forever.
VARIANT_NAME = re.compile(
    r"^(?P<source>.+\.(?:jpe?g|jpe|png|webp|gif|tiff?|avif|svg))"
    r"-(?P<width>\d+)w\.(?P<hash>[0-9a-f]{10})\.(webp|jpg|png|avif)$",
    re.IGNORECASE,
)
VARIANT_FORMATS = {"webp": Format.WEBP, "jpeg": Format.JPEG, "png": Format.PNG, "avif": Format.AVIF}


@dataclass(frozen=True)
class Options:
    """The settings that shape an image's outputs (all part of its cache key)."""

    widths: tuple[int, ...]
    formats: tuple[str, ...]
    quality: Mapping[str, int]
    originals: str
    max_pixels: int
    srgb: bool

    def key_parts(self) -> dict[str, Any]:
        """The values that go into the cache key."""
        return {
            "widths": list(self.widths),
            "formats": list(self.formats),
            "quality": dict(sorted(self.quality.items())),
            "originals": self.originals,
            "max_pixels": self.max_pixels,
            "srgb": self.srgb,
        }


@dataclass(frozen=True)
class Job:
    """One distinct (source bytes, policy): every site path holding it gets the outputs."""

    site: str
    relpaths: tuple[str, ...]
    source_sha: str
    source_bytes: int
    policy: ImagePolicy
    options: Options
    cache_dir: str | None

    @property
    def fingerprint(self) -> str:
        """The settings that shape this job's outputs, as stable text."""
        return fingerprint({"policy": repr(self.policy), **self.options.key_parts()})

    @property
    def key(self) -> str:
        """The cache key of this job."""
        return make_key(self.source_sha, self.fingerprint)


@dataclass
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
    seconds: float = 0.0


def variant_path(relpath: str, output: Output) -> str:
    """Where a variant of the image at ``relpath`` lives: beside it, named by its content."""
    path = PurePosixPath(relpath)
    ext = variants.EXTENSION[output.format]
    return str(path.with_name(f"{path.name}-{output.width}w.{output.sha256[:10]}.{ext}"))


def render(
    data: bytes, name: str, policy: ImagePolicy, options: Options
) -> tuple[list[tuple[Output, bytes]], TagPlan, bool]:
    """Compute every output of one source: the tagged original first, then its variants."""
    tags = plan(data, policy, name)
    fmt = tags.format
    if fmt is Format.SVG:
        return [_output("original", tags.write(data, upright=False), 0, 0, "svg")], tags, False
    im = pixels.open_image(data, fmt, options.max_pixels)
    frames = int(getattr(im, "n_frames", 1))
    size = im.size if pixels.exif_orientation(im) in (1, 2, 3, 4) else im.size[::-1]
    lossless = tags.write(data, upright=False)
    reencode = (
        options.originals == "optimize"
        and not keeps_pixels(tags, frames)
        and worth_reencoding(fmt, im, data, options.quality)
    )
    widths = variants.plan_widths(size[0], options.widths)
    draft = None if reencode else (widths[0], variants.height_for(widths[0], size))
    animated = frames > 1 and fmt in (Format.GIF, Format.WEBP)
    if animated:  # frames are used as stored: exif_transpose would flatten to one frame
        upright = im
        pixels.load(im, options.max_pixels)
    else:
        upright = pixels.decode_upright(data, fmt, options.max_pixels, draft=draft)
    original, reencoded = lossless, False
    if reencode:
        candidate = tags.write(
            pixels.encode_like(upright, fmt, data, options.quality), upright=True
        )
        if pays(len(candidate), len(lossless)):
            original, reencoded = candidate, True
    outputs = [_output("original", original, size[0], size[1], fmt.value)]
    # Pages of a multi-page TIFF are not frames of an animation: its variants show page 1.
    if animated:
        made = (
            variants.animated_variants(upright, widths, options.quality, tags.orientation)
            if "webp" in options.formats
            else []
        )
    else:
        still = variants.normalise(upright, options.srgb)
        formats = _formats_for(still, options.formats)
        made = variants.still_variants(
            still, widths, formats, options.quality, original=(size[0], fmt.value)
        )
    for variant in variants.drop_useless(made, len(original), size[0]):
        tagged = tags.write(variant.data, VARIANT_FORMATS[variant.format], upright=True)
        outputs.append(_output("variant", tagged, variant.width, variant.height, variant.format))
    return [(o, d) for o, d in outputs], tags, reencoded


def _formats_for(im: Any, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Alpha never goes to JPEG. With WebP or AVIF variants a transparent image needs no
    other fallback (the original file is one); otherwise PNG takes JPEG's place."""
    if im.mode != "RGBA" or "jpeg" not in wanted:
        return wanted
    if "webp" in wanted or "avif" in wanted:
        return tuple(f for f in wanted if f != "jpeg")
    return tuple(dict.fromkeys("png" if f == "jpeg" else f for f in wanted))


def _output(role: str, data: bytes, width: int, height: int, fmt: str) -> tuple[Output, bytes]:
    return Output(role, width, height, fmt, sha256(data), len(data)), data


def run_job(job: Job) -> JobResult:
    """Do one job end to end; never raises for a bad image (the error is in the result)."""
    started = time.perf_counter()
    result = JobResult(relpaths=job.relpaths, key=job.key, source_bytes=job.source_bytes)
    site = Path(job.site)
    cache = Cache(Path(job.cache_dir)) if job.cache_dir else None
    try:
        hit = _from_cache(cache, job.key)
        if hit is not None:
            pairs, extra = hit
            result.cache_hit = True
            result.reencoded = bool(extra.get("reencoded", False))
            result.notes += [str(n) for n in extra.get("notes", [])]
        else:
            data = (site / job.relpaths[0]).read_bytes()
            pairs, tags, result.reencoded = render(data, job.relpaths[0], job.policy, job.options)
            result.notes += tags.notes
            if cache is not None:
                extra = {"reencoded": result.reencoded, "notes": list(tags.notes)}
                cache.put(job.key, pairs, extra, aliases=alias_keys(job, pairs[0][0]))
        result.outputs = [o for o, _ in pairs]
        for relpath in job.relpaths:
            result.written += place(site, relpath, pairs)
    except ImageError as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = f"cannot read or write ({exc.strerror or exc})"
    result.seconds = time.perf_counter() - started
    return result


def _from_cache(
    cache: Cache | None, key: str
) -> tuple[list[tuple[Output, bytes]], dict[str, Any]] | None:
    """A cache hit's outputs and facts; None on a miss or a damaged entry (then redone)."""
    stored = cache.get(key) if cache else None
    if cache is None or stored is None:
        return None
    outputs, extra = stored
    try:
        return [(o, cache.read(o)) for o in outputs], extra
    except OSError:
        return None


def alias_keys(job: Job, original: Output) -> tuple[str, ...]:
    """Keys under which a later run over this build's own output finds the same entry."""
    if original.sha256 == job.source_sha:
        return ()
    return (make_key(original.sha256, job.fingerprint),)


def place(site: Path, relpath: str, pairs: list[tuple[Output, bytes]]) -> int:
    """Write one image's outputs into the site and remove its variants from older builds."""
    written = 0
    keep = set()
    for output, data in pairs[1:]:
        target = variant_path(relpath, output)
        keep.add(PurePosixPath(target).name)
        written += atomic_write(site / target, data)
    written += atomic_write(site / relpath, pairs[0][1])
    source = site / relpath
    for sibling in source.parent.glob(f"{_glob_escape(source.name)}-*w.*"):
        match = VARIANT_NAME.match(sibling.name)
        if match and match["source"] == source.name and sibling.name not in keep:
            sibling.unlink(missing_ok=True)
    return written


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
