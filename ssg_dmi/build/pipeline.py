"""``pipeline.run``: every image of a built site folder, tagged and given variants.

The only module that walks the site and drives workers; the per-image work is in
:mod:`ssg_dmi.build.job`. Nothing outside the site folder and the cache folder is written.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import replace
from itertools import chain, islice
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fsutil import atomic_write_chunks, shown
from ..images.provenance import load_signing  # no Pillow: the key's files only
from ..policy import ImagePolicy
from ..settings import Settings
from ..settings.watermark import Watermark
from ..walk import site_images, variant_source
from .cache import Cache, Output, hash_files, sha256
from .report import ImageTable, Report, Summary, row_of, unpack
from .spec import Job, JobResult, Options, cached_result, variant_suffix
from .spool import Spooled, SpooledBytes
from .store import CacheLocation, is_remote, start_method_for
from .workers import Progress, Workers, execute

log = logging.getLogger("ssg_dmi.build.pipeline")

# Our variants found in the site, by the site path of their image: the suffixes their paths
# add to it (``-960w.0123456789.webp``), NUL-joined. One text per image, not a list of
# paths, in a table that moves to SQLite past its threshold: a warm build of a large site
# lists a variant beside every image.
Listing = Spooled
# Rows written to a spooled table together (one statement when it is in SQLite).
_BATCH = 256


def discover(
    site: Path,
    settings: Settings,
    cache_dir: CacheLocation | None,
    existing: Listing | None = None,
    skipped: list[str] | None = None,
) -> Iterator[str]:
    """Site-relative POSIX paths of the images to process, sorted: :func:`site_images` less
    our own variants, with include/exclude globs applied. Our variants found on the way are
    added to ``existing`` (see :data:`Listing`), a folder at a time (the walk lists each
    folder's files together)."""
    skip = cache_dir if isinstance(cache_dir, Path) else None
    folder = ""
    here: dict[str, str] = {}  # the folder's variants, by the path of their image
    for rel in site_images(site, skip, clean=True, skipped=skipped):
        parent = rel.rpartition("/")[0]
        if parent != folder:
            _listed(existing, here)
            folder, here = parent, {}
        source = variant_source(rel)
        if source is None:
            if settings.matches(rel):
                yield rel
        elif existing is not None:
            old, suffix = here.get(source), rel[len(source) :]
            here[source] = suffix if old is None else f"{old}\0{suffix}"
    _listed(existing, here)


def _listed(existing: Listing | None, found: dict[str, str]) -> None:
    if existing is not None:
        existing.append_many(found.items())


def plan_jobs(
    site: Path,
    settings: Settings,
    cache_dir: CacheLocation | None,
    overrides: Callable[[str], Mapping[str, Any] | None] | None = None,
    existing: Listing | None = None,
    skipped: list[str] | None = None,
) -> tuple[list[Job], dict[str, str]]:
    """One job per distinct (source bytes, policy, watermark): ``overrides`` gives each file
    path at most one value (pages that disagree are settled before); unreadable files are
    errors. Largest sources first: the long jobs start early, so no core idles at the end."""
    planned, errors = plan_stream(site, settings, cache_dir, overrides, existing, skipped)
    jobs = list(planned)
    jobs.sort(key=_largest_first)
    return jobs, errors


def _largest_first(job: Job) -> tuple[int, str]:
    return -job.source_bytes, job.relpaths[0]


def plan_stream(
    site: Path,
    settings: Settings,
    cache_dir: CacheLocation | None,
    overrides: Callable[[str], Mapping[str, Any] | None] | None = None,
    existing: Listing | None = None,
    skipped: list[str] | None = None,
) -> tuple[Planned, dict[str, str]]:
    """:func:`plan_jobs`' jobs made one at a time, largest source first (the site is
    walked, read and grouped first): a driver that settles each job as it comes never
    holds them all, and each group is dropped as its job is made."""
    signing = load_signing(settings.c2pa) if settings.c2pa is not None else None
    options = Options(
        widths=settings.widths,
        formats=settings.formats,
        quality=dict(settings.quality),
        originals=settings.originals,
        max_pixels=settings.max_pixels,
        srgb=settings.srgb,
        c2pa=signing,
    )
    # The paths holding the same (bytes, policy, mark), NUL-joined, by a key that sorts
    # the largest source first (see _group_key): in SQLite past the table's threshold.
    groups = Spooled()
    grouped: list[tuple[str, str]] = []  # the next batch for groups
    policies: dict[ImagePolicy, int] = {}  # each distinct policy, numbered
    marks: dict[Watermark | None, int] = {}
    last: ImagePolicy | None = None
    at = 0
    errors: dict[str, str] = {}
    root = os.fspath(site)
    found = discover(site, settings, cache_dir, existing, skipped)
    # Read and hashed on threads (the large files), in the walk's order.
    for rel, hashed in hash_files((rel, os.path.join(root, rel)) for rel in found):
        if isinstance(hashed, OSError):
            errors[rel] = f"cannot read ({hashed.strerror or hashed})"
            continue
        digest, size = hashed
        given = overrides(rel) if overrides else None
        policy = settings.policy_for(rel, given)
        if policy is not last:  # the settings give one object per set of rules already
            last, at = policy, policies.setdefault(policy, len(policies))
        mark = marks.setdefault(settings.watermark_for(rel, given), len(marks))
        grouped.append((_group_key(size, digest, at, mark), rel))
        if len(grouped) >= _BATCH:  # a batch at a time: one statement for a spilled table
            groups.append_many(grouped)
            grouped.clear()
    groups.append_many(grouped)
    del grouped
    cache = str(cache_dir) if cache_dir else None
    # Once per distinct mark, not per image: checking a mark loads its font and logo.
    marked = [marked_options(options, mark) for mark in marks]
    policy_at = list(policies)
    where = str(site)

    def jobs() -> Iterator[Job]:
        for key, rels in groups.popitems():
            size, digest, policy, mark = _group_of(key)
            paths = tuple(rels.split("\0"))
            yield Job(where, paths, digest, size, policy_at[policy], marked[mark], cache)

    return Planned(len(groups), jobs()), errors


_LARGEST = 1 << 64


def _group_key(size: int, digest: bytes, policy: int, mark: int) -> str:
    """A text whose order is the largest source first: 16 hex digits of a number that
    falls as ``size`` grows, the digest's 64, then the policy's and the mark's numbers."""
    return f"{_LARGEST - 1 - size:016x}{digest.hex()}{policy:x}.{mark:x}"


def _group_of(key: str) -> tuple[int, str, int, int]:
    policy, _, mark = key[80:].partition(".")
    return _LARGEST - 1 - int(key[:16], 16), key[16:80], int(policy, 16), int(mark, 16)


class Planned:
    """A plan's jobs, largest source first, made as they are taken; ``len``: how many."""

    __slots__ = ("_count", "_jobs")

    def __init__(self, count: int, jobs: Iterator[Job]) -> None:
        self._count, self._jobs = count, jobs

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Job]:
        return self._jobs


def marked_options(options: Options, mark: Watermark | None) -> Options:
    """``options`` with ``mark`` and its files' hashes (the files checked: a font that does
    not load or a logo that does not decode is a ConfigError before any image is touched)."""
    if mark is None:
        return options
    from ..images import watermark  # Pillow: only when a mark is set

    files = watermark.check_assets(mark)
    hashes = (sha256(files.logo) if files.logo else "", sha256(files.font) if files.font else "")
    return replace(options, watermark=mark, watermark_files=hashes)


def run(
    site: Path,
    settings: Settings,
    *,
    executor: Executor | Workers | None = None,
    cache_dir: CacheLocation | None = None,
    progress: bool | None = None,
    overrides: Callable[[str], Mapping[str, Any] | None] | None = None,
    keep_stale: bool = False,
    shard: tuple[int, int] | None = None,
    window: int | None = None,
) -> Report:
    """Process every image under ``site``; returns the :class:`Report`.

    ``cache_dir`` None disables the cache (so does a cache folder that cannot be written,
    with a warning). ``executor`` defaults to a process pool with ``settings.jobs`` workers
    (one per core); pass a :class:`~ssg_dmi.build.workers.Workers` to keep one across builds, or
    any ``concurrent.futures.Executor`` (a thread pool, a Dask client's executor) to run
    the work elsewhere. Our variants of earlier builds that the new ones replace are
    removed at the end, or left for :func:`remove_stale` with ``keep_stale``.

    An executor other than this machine's pools (Dask) is taken to run where the site
    folder is not: its jobs carry their source bytes and return their outputs, which this
    process places (see :mod:`ssg_dmi.build.remote`). ``shard`` (K, N): only shard K of N's
    part of the distinct sources is processed, into the cache; nothing is written into the
    site (a later build without ``shard`` assembles it from the cache). ``window``: how
    many jobs an external executor gets at a time (default 64; twice its threads is right).

    Raises :class:`~ssg_dmi.errors.BuildInterrupted` on Ctrl-C (workers terminated).
    """
    if not site.is_dir():
        raise FileNotFoundError(f"{site}: no such site folder")
    warnings: list[str] = []
    cache_dir = usable_cache(cache_dir, warnings)
    existing = Listing()
    skipped: list[str] = []
    stream, errors = plan_stream(site, settings, cache_dir, overrides, existing, skipped)
    report = Report(errors=dict(errors), warnings=warnings, skipped=skipped)
    # Each result goes into the report's table as it comes (a compact record per image) and
    # its keys into the build's record: no per-image result is held to the end.
    collected = Collector(
        record=cache_dir is not None and shard is None, existing=existing if shard is None else None
    )
    counted = Progress(len(stream))

    def settled(result: JobResult) -> None:  # a result decided in this process
        collected.add(result)
        counted.add()

    remote = False
    if executor is not None or shard is not None:  # the scale-out code only when asked for
        from .remote import is_remote_executor, shard_of

        remote = is_remote_executor(executor)
    jobs: Iterable[Job]
    if shard is not None:
        if cache_dir is None:
            raise ConfigError(
                "--shard needs the cache: the shards fill it and a final build reads it; "
                "drop --no-cache, or fix the cache the warning names"
            )
        planned = [replace(j, deliver="cache") for j in shard_of(list(stream), *shard)]
        counted.total = len(planned)
        jobs = in_cache(planned, cache_dir, settled)
        del planned
    else:
        # Settled one at a time as they are taken: the jobs in place already are never
        # all held, nor (the jobs being taken a window at a time) the jobs to run.
        jobs = unplaced(site, stream, cache_dir, existing, settled)
    prepare: Callable[[Job], Job] | None = None
    if remote:
        jobs, deliver, prepare = _remote_plan(site, jobs, cache_dir, settled, place=shard is None)

        def after(job: Job, result: JobResult) -> None:
            collected.add(deliver(job, result))
    else:

        def after(job: Job, result: JobResult) -> None:
            collected.add(result)

    # Two jobs to run decide a pool (a rebuild with one or none changed starts none).
    first = list(islice(jobs, 2))
    jobs = chain(first, jobs)
    workers = settings.jobs or os.cpu_count() or 1
    runner: Workers | Executor | None = executor
    own = executor is None and workers > 1 and len(first) > 1
    if own:
        runner = Workers(workers, start_method_for(cache_dir))
    # Two jobs per worker keep every core busy; an external executor may have many more.
    if window is None:
        window = 2 * workers if executor is None or isinstance(executor, Workers) else 64
    bar = _bar(counted.total, counted.done, progress) if len(first) > 1 else None
    if bar is not None:
        counted.tick = bar.update  # the images settled from here on
    try:
        execute(jobs, run_job, runner, counted, window, after, prepare)
    finally:
        if bar is not None:
            bar.close()
        if own and isinstance(runner, Workers):
            runner.shutdown()
    del jobs, first
    collected.fill(report)
    report.stale = (
        sorted(collected.stale + stale_variants(report, existing)) if shard is None else []
    )
    cache_errors = sorted(collected.cache_errors)
    if collected.record and cache_dir is not None:  # a shard's keys are the assembly's
        try:
            Cache(cache_dir).record_build(collected.used, site)
        except OSError as exc:
            cache_errors.append(str(exc.strerror or exc))
    collected.used.close()
    if cache_errors:
        report.warnings.append(
            f"{shown(cache_dir or '')}: the cache could not be written ({cache_errors[0]}); "
            "the images were processed without it"
        )
    if not keep_stale:
        remove_stale(site, report)
    return report


def run_job(job: Job) -> JobResult:
    """:func:`ssg_dmi.build.job.run_job`, that module (and the image libraries it loads)
    imported when the first job runs: a rebuild with nothing to do never loads them."""
    from .job import run_job as run

    return run(job)


def in_cache(
    jobs: list[Job], cache_dir: CacheLocation, done: Callable[[JobResult], None]
) -> Iterator[Job]:
    """For a shard: the jobs whose entry the cache does not hold yet; ``done`` gets the
    result of each that it does (another shard or an earlier run made them)."""
    cache = Cache(cache_dir)
    # An object store answers each lookup over the network: many at once, not in a row.
    threads = 16 if is_remote(cache_dir) else 1
    from concurrent.futures import ThreadPoolExecutor  # shards only

    with ThreadPoolExecutor(threads) as pool:
        found = list(pool.map(lambda j: cache.get(j.key), jobs))
    for job, stored in zip(jobs, found, strict=True):
        if stored is None:
            yield job
        else:
            done(cached_result(job, *stored))


def _remote_plan(
    site: Path,
    jobs: Iterable[Job],
    cache_dir: CacheLocation | None,
    done: Callable[[JobResult], None],
    *,
    place: bool,
) -> tuple[Iterator[Job], Callable[[Job, JobResult], JobResult], Callable[[Job], Job]]:
    """For an executor elsewhere: the jobs to send (those this process answers from its own
    cache folder, which a remote worker cannot see, go to ``done``), each result that comes
    back as delivered (its outputs placed, its bytes dropped), and what to send for a job
    (it with its source bytes, made when it is sent: only the jobs in flight hold bytes)."""
    from .remote import delivered, for_remote

    cache = Cache(cache_dir) if isinstance(cache_dir, Path) else None

    def send() -> Iterator[Job]:
        for job in jobs:
            if cache is not None and cache.get(job.key) is not None:
                done(run_job(job))  # a copy from the cache: no pixel work
            else:
                yield job

    def deliver(job: Job, result: JobResult) -> JobResult:
        return delivered(site, job, result, cache, place=place)

    return send(), deliver, lambda job: for_remote(site, job, cache is not None)


def unplaced(
    site: Path,
    jobs: Iterable[Job],
    cache_dir: CacheLocation | None,
    existing: Mapping[str, str],
    done: Callable[[JobResult], None],
) -> Iterator[Job]:
    """The jobs still to run, as they are taken; ``done`` gets the result of each job whose
    outputs are all in the site already (a rebuild with nothing changed).

    Decided here, from the hash the plan took of each file, the cache entry and one
    ``lstat`` per file: a worker would read every blob of the entry back only to find the
    same bytes in place. A variant's name hashes what it was made from and how, so its
    name and size stand for its bytes. Only with a cache folder on this machine: with an
    object store, one request per image from the driver alone would cost more than the
    workers' parallel ones.
    """
    if not isinstance(cache_dir, Path):
        yield from jobs
        return
    cache = Cache(cache_dir)
    for job in jobs:
        result = _placed(site, job, cache, existing)
        if result is None:
            yield job
        else:
            done(result)


def _placed(site: Path, job: Job, cache: Cache, existing: Mapping[str, str]) -> JobResult | None:
    """What the worker would report for ``job`` when every output is in place already
    (a cache hit that writes nothing); None when anything is missing or differs. The
    entry alone decides (its blobs are not needed: the site holds the outputs)."""
    stored = cache.get(job.key, blobs=False)
    if stored is None:
        return None
    outputs, extra = stored
    original = outputs[0] if outputs else None
    if original is None or (original.sha256, original.bytes) != (job.source_sha, job.source_bytes):
        return None
    root = os.fspath(site)  # joined as text: pathlib's parsing would cost more than the lstat
    for rel in job.relpaths:
        present = set(existing.get(rel, "").split("\0"))
        if not _regular(os.path.join(root, rel), original.bytes):
            return None
        for output in outputs[1:]:
            suffix = variant_suffix(output)
            if suffix not in present or not _regular(
                os.path.join(root, rel + suffix), output.bytes
            ):
                return None
    return cached_result(job, outputs, extra)


def _regular(path: str, size: int) -> bool:
    """Whether ``path`` is a regular file (no link: a write would replace a link) of
    ``size`` bytes."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == size


def usable_cache(cache_dir: CacheLocation | None, warnings: list[str]) -> CacheLocation | None:
    """``cache_dir`` if it can be written; otherwise None and a warning: a cache is an
    optimisation, never a reason to fail a build or leave an image untagged."""
    if cache_dir is None:
        return None
    try:
        Cache(cache_dir).check_writable()
    except OSError as exc:
        warnings.append(
            f"{shown(cache_dir)}: the cache cannot be written "
            f"({exc.strerror or exc}); building without the cache — fix its permissions, "
            "free space, credentials or set `cache_dir`"
        )
        return None
    return cache_dir


def stale_variants(report: Report, existing: Listing) -> list[str]:
    """Our variants beside each processed image that its new outputs do not include."""
    stale = []
    for rel, old in existing.sorted_items():  # the images with variants beside them
        if rel in report.images:
            keep = {v.path for v in report.images[rel].variants}
            stale += [path for path in listed(rel, old) if path not in keep]
    return sorted(stale)


def listed(rel: str, suffixes: str) -> list[str]:
    """The paths of the variants a :data:`Listing` gives for the image at ``rel``."""
    return [rel + suffix for suffix in suffixes.split("\0")]


def remove_stale(site: Path, report: Report) -> int:
    """Remove the variants in ``report.stale``; returns how many were removed."""
    removed = 0
    for rel in report.stale:
        path = site / rel
        if path.parent.resolve().is_relative_to(site.resolve()):
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                report.warnings.append(
                    f"{shown(rel)}: an old variant could not be removed ({exc.strerror})"
                )
    report.stale = []
    return removed


def _bar(total: int, done: int, enabled: bool | None) -> Any:
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show or total <= 1:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit="img", desc="ssg-dmi", leave=False)


class Collector:
    """A build's results as they come, kept small: per path one packed record (see
    :class:`~ssg_dmi.build.report.ImageTable`, in SQLite past its threshold), the errors
    and notes, the summary's counts, and the keys the build used (in a temporary file past
    theirs). :meth:`fill` puts them in the report."""

    def __init__(self, record: bool, existing: Listing | None = None) -> None:
        self.record = record  # whether the keys used are kept (for the cache's record)
        # Our variants found in the site, by image: each image's entry is settled (its
        # stale variants noted) and dropped as its result comes, not held to the end.
        self.existing = existing
        self.stale: list[str] = []
        # The keys the build used (results' keys and aliases), 32 raw bytes each (a list of
        # key texts was about 120 bytes per image), to a temporary file past the threshold.
        self.used = SpooledBytes()
        self.cache_errors: set[str] = set()
        self.sources = 0
        self.totals = Summary()
        # The records as they come, straight into the table the report gets (in SQLite
        # past its threshold); errors and notes, few, by path.
        self.images = ImageTable()
        self._rows: list[tuple[str, str]] = []  # the next batch for images
        self.errors: dict[str, str] = {}
        self.notes: dict[str, list[str]] = {}

    def add(self, result: JobResult) -> None:
        totals = self.totals
        self.sources += 1
        paths = result.relpaths
        totals.bytes_before += result.source_bytes * len(paths)
        # Re-encoded in this run: a warm rebuild that took them from the cache re-encoded none.
        totals.reencoded += result.reencoded and not result.cache_hit
        totals.cache_hits += result.cache_hit
        totals.files_written += result.written
        if result.cache_error:
            self.cache_errors.add(result.cache_error)
        for rel in paths:
            if result.notes:
                self.notes[rel] = list(result.notes)
            if result.error is not None:
                self.errors[rel] = result.error
        if result.error is not None:
            return
        if self.record:
            self.used += bytes.fromhex(result.key)
            for alias in result.aliases:
                self.used += bytes.fromhex(alias)
        original, *made = result.outputs
        if self.existing:
            self._settle(paths, made)
        row = row_of(
            original.width,
            original.height,
            original.format,
            original.bytes,
            result.reencoded,
            [(variant_suffix(v), v.width, v.height, v.format, v.bytes) for v in made],
        )
        for rel in paths:  # one record serves every path holding the source
            self._rows.append((rel, row))
        if len(self._rows) >= _BATCH:  # a batch at a time: one statement for a spilled table
            self.images.set_rows(self._rows)
            self._rows.clear()
        totals.images += len(paths)
        totals.variants += len(made) * len(paths)
        totals.bytes_after += original.bytes * len(paths)
        totals.variant_bytes += sum(v.bytes for v in made) * len(paths)

    def _settle(self, paths: tuple[str, ...], made: list[Output]) -> None:
        """The variants beside each of ``paths`` that its new ones do not include (what
        :func:`stale_variants` would find for it), noted; their listing dropped."""
        existing = self.existing if self.existing is not None else {}
        suffixes = None
        for rel in paths:
            old = existing.pop(rel, None)
            if old:
                suffixes = suffixes or {variant_suffix(v) for v in made}
                self.stale += [rel + s for s in old.split("\0") if s not in suffixes]

    def fill(self, report: Report) -> None:
        """Put what was collected into ``report`` (its images, errors, notes, summary)."""
        self.images.set_rows(self._rows)
        self._rows = []
        images, self.images = self.images, ImageTable()
        if isinstance(report.images, ImageTable) and not report.images:
            report.images = images
        else:
            for rel, row in images.rows():
                report.images[rel] = unpack(rel, row)
        for rel in sorted(self.notes):
            report.notes[rel] = self.notes[rel]
        for rel in sorted(self.errors):
            report.errors[rel] = self.errors[rel]
        self.notes, self.errors = {}, {}
        self.totals.sources = self.sources
        self.totals.errors = len(report.errors)
        report.summary = self.totals


def write_report(report: Report, path: Path) -> None:
    """Write the JSON report atomically, streamed an image at a time (names that are not
    valid UTF-8 as JSON escapes: the whole report then as ASCII)."""
    try:
        atomic_write_chunks(path, (c.encode("utf-8") for c in report.json_chunks()))
    except UnicodeEncodeError:
        chunks = report.json_chunks(ascii_only=True)
        atomic_write_chunks(path, (c.encode("ascii") for c in chunks))
