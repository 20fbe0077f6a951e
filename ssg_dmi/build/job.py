"""The work for one distinct source image: tag the original, make its variants, place them.

Runs in a worker (process, thread, or a Dask worker on another machine). Everything it
needs travels in a picklable :class:`Job`; how the outputs travel back is the job's
``deliver``:

- ``"site"`` (local workers): the worker writes them into the site folder itself and
  returns a small :class:`JobResult` (no image bytes);
- ``"result"`` (remote workers, which do not see the site folder): the job carries the
  source bytes and the result carries the outputs' bytes; the driver places them;
- ``"cache"`` (a CI shard): the outputs only go into the (shared) cache.

The records a job travels in and the placing of its outputs are in
:mod:`ssg_dmi.build.spec` (re-exported here): the driver needs them without the image
libraries this module loads.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigError, ContainerError, ImageError
from ..fsutil import atomic_write, read_file
from ..images import pixels, png_splice, variants, watermark
from ..images.containers import Format
from ..images.optimize import pays, worth_reencoding
from ..images.provenance import RESIZED, Signing, sign
from ..images.tagging import TagPlan, keeps_pixels, plan, reencode_to_tag, reencoded_note
from ..policy import ImagePolicy
from ..settings import Originals
from ..settings.watermark import Watermark
from .cache import Cache, Output, sha256
from .spec import (
    EXTENSION,
    Job,
    JobResult,
    Options,
    alias_keys,
    cached_result,
    crash_message,
    place,
    placements,
    variant_path,
)

__all__ = [
    "EXTENSION",
    "Job",
    "JobResult",
    "Options",
    "alias_keys",
    "cached_result",
    "crash_message",
    "place",
    "render",
    "run_job",
    "variant_path",
]

VARIANT_FORMATS = {"webp": Format.WEBP, "jpeg": Format.JPEG, "png": Format.PNG, "avif": Format.AVIF}
NO_SVG_C2PA = "not signed with C2PA: ssg-dmi signs raster images only"
WATERMARKED = "watermarked: the original was re-encoded (the mark changes its pixels)"
ALREADY_MARKED = "not watermarked again: already an output of ssg-dmi (its mark is in its pixels)"
NOT_MARKED_PAGES = "watermark on its variants only: a multi-page image's original keeps its pages"


def variant_name(original_sha: str, job_fingerprint: str, output: Output) -> str:
    """The 10 hex digits in a variant's file name (see VARIANT_NAME)."""
    text = f"{original_sha}\0{job_fingerprint}\0{output.width}\0{output.format}"
    return sha256(text.encode())[:10]


def named(pairs: list[tuple[Output, bytes]], job_fingerprint: str) -> list[tuple[Output, bytes]]:
    """``pairs`` with each variant's file-name hash filled in: from the original's hash, or
    for a C2PA-signed original from the hash of its bytes before signing (its ``name``)."""
    original = pairs[0][0].name or pairs[0][0].sha256
    out = pairs[:1]
    for output, data in pairs[1:]:
        name = variant_name(original, job_fingerprint, output)
        out.append((dataclasses.replace(output, name=name), data))
    return out


def render(
    data: bytes, name: str, policy: ImagePolicy, options: Options
) -> tuple[list[tuple[Output, bytes]], TagPlan, bool]:
    """Compute every output of one source: the tagged original first, then its variants.

    Notes about the outputs (a container re-encoded to be tagged, a variant a format
    cannot hold) come back in the plan's ``notes``.
    """
    notes: list[str] = []
    tags: TagPlan | None = None
    source = data
    try:
        tags = plan(data, policy, name)
        lossless = tags.write(data, upright=False)
        fallback = False
    except ContainerError as exc:
        # The lossless rewrite refuses a file whose structure it cannot follow; when its
        # pixels decode, a re-encode in the same format still gets it tagged.
        lossless, tags = reencode_to_tag(
            data, name, policy, options.max_pixels, options.quality, tags, exc
        )
        data = lossless
        notes.append(reencoded_note(exc))
        fallback = True
    fmt = tags.format
    if fmt is Format.SVG:
        if options.c2pa is not None:
            tags = dataclasses.replace(tags, notes=(*tags.notes, NO_SVG_C2PA))
        if options.watermark is not None:
            tags = dataclasses.replace(tags, notes=(*tags.notes, watermark.NOT_MARKED_SVG))
        return [_output("original", lossless, 0, 0, "svg")], tags, False
    im = pixels.open_image(data, fmt, options.max_pixels)
    frames = pixels.count_frames(im, options.max_pixels)
    orientation = pixels.exif_orientation(im)
    size = im.size if orientation in (1, 2, 3, 4) else im.size[::-1]
    reencode = (
        options.originals == Originals.OPTIMIZE
        and not fallback
        and not keeps_pixels(tags, frames)
        and worth_reencoding(fmt, im, data, options.quality)
    )
    animated = frames > 1 and fmt in (Format.GIF, Format.WEBP)
    mark = _mark_for(options, tags, size[0], animated, notes)
    mark_original = (
        mark is not None
        and mark.apply_to == "all"
        and options.originals == Originals.OPTIMIZE
        and frames == 1
    )
    if mark is not None and mark.apply_to == "all" and not mark_original:
        notes.append(NOT_MARKED_PAGES)
    widths = variants.plan_widths(size[0], options.widths)
    full = reencode or mark_original
    draft = None if full else (widths[0], variants.height_for(widths[0], size))
    # A marked PNG original keeps its stored rows outside the mark where the marked pixels
    # are the stored ones there: upright as stored, no colour conversion, one mark.
    spliceable = None
    if (
        mark_original
        and fmt is Format.PNG
        and mark is not None
        and not mark.tile
        and orientation == 1
        and not (options.srgb and "icc_profile" in im.info)
    ):
        spliceable = png_splice.prepare(data)
    if animated:  # frames are used as stored: exif_transpose would flatten to one frame
        upright = im
        pixels.load(im, options.max_pixels)
    else:
        pixels_of = spliceable.decodable() if spliceable is not None else data
        upright = pixels.decode_upright(pixels_of, fmt, options.max_pixels, draft=draft)
        del pixels_of
    original, reencoded = lossless, fallback
    still = None
    rows = (0, size[1])
    if mark is not None and not animated:  # once, at the largest size, before resizing
        # Drawn in place unless the unmarked pixels are still to be re-encoded below.
        keep = reencode and not mark_original
        normal = variants.normalise(upright, options.srgb)
        assets = watermark.assets_of(mark)
        still, rows = watermark.apply_rows(normal, mark, assets, copy=keep)
    if mark_original and still is not None:
        encoded = None
        if spliceable is not None:
            encoded = png_splice.splice(spliceable, still, rows)
            spliceable = None
        if encoded is None:
            encoded = pixels.encode_like(still, fmt, data, options.quality, fast=True)
        original = tags.write(encoded, upright=True)
        reencoded = True
        notes.append(WATERMARKED)
    elif reencode:
        candidate = tags.write(
            pixels.encode_like(upright, fmt, data, options.quality), upright=True
        )
        if pays(len(candidate), len(lossless)):
            original, reencoded = candidate, True
    outputs = [_output("original", original, size[0], size[1], fmt.value)]
    # Pages of a multi-page TIFF are not frames of an animation: its variants show page 1.
    if animated:
        made = variants.Made([], [])
        if "webp" in options.formats:
            animation = variants.animation_frames(
                upright, widths, options.max_pixels, tags.orientation
            )
            made = variants.animated_variants(animation, widths, options.quality)
    else:
        still = still if still is not None else variants.normalise(upright, options.srgb)
        formats = _formats_for(still, options.formats)
        made = variants.still_variants(
            still, widths, formats, options.quality, original=(size[0], fmt.value)
        )
    notes += made.notes
    title = PurePosixPath(name).name
    if options.c2pa is not None:  # last: the signature covers the final bytes
        # The variants are named after the original as tagged, before its manifest: a
        # signature differs on every signing, and a rebuild from this signed copy (no cache)
        # tags it back to the same unsigned bytes (the tagger drops the old manifest).
        unsigned = sha256(original)
        original = _signed(original, fmt, tags, options.c2pa, (source, fmt, title), notes)
        outputs = [_output("original", original, size[0], size[1], fmt.value, unsigned)]
    for variant in variants.drop_useless(made.variants, len(original), size[0]):
        vfmt = VARIANT_FORMATS[variant.format]
        tagged = tags.write(variant.data, vfmt, upright=True)
        if options.c2pa is not None and options.c2pa.apply_to == "all":
            parent = (original, fmt, title)
            tagged = _signed(tagged, vfmt, tags, options.c2pa, parent, notes, RESIZED)
        outputs.append(_output("variant", tagged, variant.width, variant.height, variant.format))
    if notes:
        tags = dataclasses.replace(tags, notes=(*tags.notes, *notes))
    return [(o, d) for o, d in outputs], tags, reencoded


def _mark_for(
    options: Options, tags: TagPlan, width: int, animated: bool, notes: list[str]
) -> Watermark | None:
    """The mark this image gets (None: not marked, with a note saying why where useful)."""
    mark = options.watermark
    if mark is None or width < mark.min_width:
        return None
    if animated:
        notes.append(watermark.NOT_MARKED_ANIMATED)
        return None
    if tags.already_ours and mark.apply_to == "all":  # its variants come from marked pixels
        notes.append(ALREADY_MARKED)
        return None
    return mark


def _signed(
    data: bytes,
    fmt: Format,
    tags: TagPlan,
    signing: Signing,
    parent: tuple[bytes, Format, str],
    notes: list[str],
    action: str = "c2pa.edited.metadata",
) -> bytes:
    """``data`` with its C2PA manifest; when the SDK refuses the file, the file as tagged
    (its opt-out matters more than its signature) and a note saying so."""
    try:
        return sign(data, fmt, tags.policy, signing, parent=parent, action=action)
    except (ImageError, ConfigError) as exc:  # a key this worker cannot read, too
        note = f"{exc}; left tagged but unsigned"
        if note not in notes:
            notes.append(note)
        return data


def _formats_for(im: Any, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Alpha never goes to JPEG. With WebP or AVIF variants a transparent image needs no
    other fallback (the original file is one); otherwise PNG takes JPEG's place."""
    if im.mode != "RGBA" or "jpeg" not in wanted:
        return wanted
    if "webp" in wanted or "avif" in wanted:
        return tuple(f for f in wanted if f != "jpeg")
    return tuple(dict.fromkeys("png" if f == "jpeg" else f for f in wanted))


def _output(
    role: str, data: bytes, width: int, height: int, fmt: str, name: str = ""
) -> tuple[Output, bytes]:
    return Output(role, width, height, fmt, sha256(data), len(data), name), data


def run_job(job: Job) -> JobResult:
    """Do one job end to end; never raises (an image's error, whatever raised it, is in the
    result), so one odd image never stops a build."""
    started = time.perf_counter()
    result = JobResult(relpaths=job.relpaths, key=job.key, source_bytes=job.source_bytes)
    try:
        _run(job, result)
    except ImageError as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = f"cannot read or write it ({exc.strerror or exc})"
    except MemoryError:
        result.error = "ran out of memory while processing it; lower `max_pixels` or `jobs`"
    except Exception as exc:  # noqa: BLE001 - whatever one image raises is its own error
        result.error = crash_message(exc)
    if result.error is not None:
        result.outputs, result.written, result.payload = [], 0, None
    result.seconds = time.perf_counter() - started
    return result


def _run(job: Job, result: JobResult) -> None:
    if job.failed is not None:
        raise ImageError(job.failed)
    site = Path(job.site)
    cache = _cache(job.cache_dir) if job.cache_dir else None
    if cache is None or not _from_cache(cache, job, site, result):
        data = (
            job.data if job.data is not None else read_file(os.path.join(job.site, job.relpaths[0]))
        )
        # Changed since the plan, or damaged on the way; unless it is this job's own output.
        if sha256(data) != job.source_sha and not _placed_before(data, job, cache):
            raise ImageError("the file changed while the build ran; build again")
        pairs, tags, result.reencoded = render(data, job.relpaths[0], job.policy, job.options)
        pairs = named(pairs, job.fingerprint)
        result.notes += tags.notes
        if cache is not None:
            extra = {"reencoded": result.reencoded, "notes": list(tags.notes)}
            try:
                cache.put(job.key, pairs, extra, aliases=alias_keys(job, pairs[0][0]))
            except OSError as exc:  # a cache is an optimisation: the image is still done
                result.cache_error = str(exc.strerror or exc)
        result.outputs = [o for o, _ in pairs]
        if job.deliver == "result":
            result.payload = [d for _, d in pairs]
        elif job.deliver == "site":
            result.written = place(site, job.relpaths, pairs)
    if cache is not None:
        result.aliases = alias_keys(job, result.outputs[0])


_CACHES: dict[tuple[int, str], Cache] = {}
# A forked worker opens its own (an object store's client must not cross a fork).
os.register_at_fork(after_in_child=_CACHES.clear)


def _cache(location: str) -> Cache:
    """The cache at ``location`` for this thread's jobs: opened once, not per job (which
    cost a store, its path parsing and a seal table for each image). The seals one job
    found and did not use are dropped before the next."""
    opened = _CACHES.get(where := (threading.get_ident(), location))
    if opened is None:
        opened = _CACHES[where] = Cache(location)
    opened.forget_seals()
    return opened


def _placed_before(data: bytes, job: Job, cache: Cache | None) -> bool:
    """Whether the site file, no longer the planned source, is this build's output: an
    earlier try of this job placed it, then its result was lost when a worker beside it
    died and broke the pool. Rendering it again gives the same files, as a rebuild over
    the output does. Only without a cache, which would have answered first (its entry is
    stored before the site is written), and only for a job that reads the site."""
    if cache is not None or job.data is not None or job.deliver != "site":
        return False
    try:
        return plan(data, job.policy, job.relpaths[0]).already_ours
    except (ContainerError, ImageError):
        return False


def _from_cache(cache: Cache, job: Job, site: Path, result: JobResult) -> bool:
    """Deliver a cache hit into ``result`` (and the site); False on a miss or a damaged
    entry or blob (then the job is done again)."""
    stored = cache.get(job.key)
    if stored is None:
        return False
    outputs, extra = stored
    if job.deliver == "site":
        written = _place_stored(cache, site, job.relpaths, outputs)
        if written is None:
            return False
        result.written = written
    else:  # read, which checks every blob
        try:
            payload = [cache.read(o) for o in outputs]
        except OSError:
            return False
        if job.deliver == "result":
            result.payload = payload
    result.outputs, result.cache_hit = outputs, True
    result.reencoded = bool(extra.get("reencoded", False))
    result.notes += [str(n) for n in extra.get("notes", [])]
    return True


def _place_stored(
    cache: Cache, site: Path, relpaths: tuple[str, ...], outputs: list[Output]
) -> int | None:
    """A hit's outputs into the site, in :func:`placements`' order: each copied by the
    kernel from its blob when a seal vouches for it, else read and hashed. How many files
    were written; None when a blob is missing or damaged (the job is then done again: the
    sources are not touched until the last)."""
    written = 0
    for index, targets in placements(site, relpaths, outputs):
        copied = cache.copy(outputs[index], targets)
        if copied is None:
            try:
                data = cache.read(outputs[index])
            except OSError:
                return None
            copied = sum(atomic_write(t, data) for t in targets)
        written += copied
    return written
