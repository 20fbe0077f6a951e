"""``pipeline.run``: every image of a built site folder, tagged and given variants.

The only module that walks the site and drives workers; the per-image work is in
:mod:`ssg_dmi.build.job`. Nothing outside the site folder and the cache folder is written.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, overload

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
from .store import CacheLocation, is_remote, start_method_for
from .workers import Progress, Workers, execute

log = logging.getLogger("ssg_dmi.build.pipeline")

# Our variants found in the site, by the site path of their image: the suffixes their paths
# add to it (``-960w.0123456789.webp``), NUL-joined. One text per image, not a list of
# paths: a warm build of a large site holds the listing of every image at once.
Listing = dict[str, str]


def discover(
    site: Path,
    settings: Settings,
    cache_dir: CacheLocation | None,
    existing: Listing | None = None,
    skipped: list[str] | None = None,
) -> Iterator[str]:
    """Site-relative POSIX paths of the images to process, sorted: :func:`site_images` less
    our own variants, with include/exclude globs applied. Our variants found on the way are
    added to ``existing`` (see :data:`Listing`)."""
    skip = cache_dir if isinstance(cache_dir, Path) else None
    # The paths of the folder being listed, so a variant's entry in ``existing`` is keyed by
    # the same text object as its source (not a copy per image held all build long).
    folder = ""
    here: dict[str, str] = {}
    for rel in site_images(site, skip, clean=True, skipped=skipped):
        source = variant_source(rel)
        if source is None:
            parent = rel.rpartition("/")[0]
            if parent != folder:
                folder, here = parent, {}
            here[rel] = rel
            if settings.matches(rel):
                yield rel
        elif existing is not None:
            key, suffix = here.get(source, source), rel[len(source) :]
            old = existing.get(key)
            existing[key] = suffix if old is None else f"{old}\0{suffix}"


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
) -> tuple[Iterator[Job], dict[str, str]]:
    """:func:`plan_jobs`' jobs made one at a time, in no set order (the site is walked,
    read and grouped first): a driver that settles each job as it comes never holds them
    all, and each group is dropped as its job is made."""
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
    # By (digest, size, policy, mark): the paths holding those bytes (one path as text, the
    # common case, a list only for copies) -- the digest as bytes, half its hex's size.
    groups: dict[tuple[bytes, int, ImagePolicy, Watermark | None], str | list[str]] = {}
    policies: dict[ImagePolicy, ImagePolicy] = {}
    last: ImagePolicy | None = None
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
            policy = last = policies.setdefault(policy, policy)  # one per distinct policy
        mark = settings.watermark_for(rel, given)
        key = (digest, size, policy, mark)
        held = groups.setdefault(key, rel)
        if isinstance(held, list):
            held.append(rel)
        elif held is not rel:
            groups[key] = [held, rel]
    cache = str(cache_dir) if cache_dir else None
    # Once per distinct mark, not per image: checking a mark loads its font and logo.
    marked = {mark: marked_options(options, mark) for mark in {key[3] for key in groups}}
    where = str(site)

    def jobs() -> Iterator[Job]:
        while groups:
            (digest, size, policy, mark), rels = groups.popitem()
            paths = (rels,) if isinstance(rels, str) else tuple(rels)
            yield Job(where, paths, digest.hex(), size, policy, marked[mark], cache)

    return jobs(), errors


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
    existing: Listing = {}
    skipped: list[str] = []
    stream, errors = plan_stream(site, settings, cache_dir, overrides, existing, skipped)
    report = Report(errors=dict(errors), warnings=warnings, skipped=skipped)
    # Each result goes into the report as it comes (a compact record per image), and the
    # keys the build used into a list: no per-image result is held to the end.
    collected = Collector(
        record=cache_dir is not None and shard is None, existing=existing if shard is None else None
    )
    remote = False
    if executor is not None or shard is not None:  # the scale-out code only when asked for
        from .remote import is_remote_executor, shard_of

        remote = is_remote_executor(executor)
    jobs: list[Job]
    if shard is not None or remote:
        planned = sorted(stream, key=_largest_first)
        if shard is not None:
            if cache_dir is None:
                raise ConfigError(
                    "--shard needs the cache: the shards fill it and a final build reads it; "
                    "drop --no-cache, or fix the cache the warning names"
                )
            planned = [replace(j, deliver="cache") for j in shard_of(planned, *shard)]
            results, jobs = in_cache(planned, cache_dir)
        else:
            results, jobs = already_placed(site, planned, cache_dir, existing)
        total = len(planned)
        del planned  # the jobs still to run are all that is needed from here
    else:
        # Settled one at a time as planned: the jobs already in place are never all held.
        results, jobs = already_placed(site, stream, cache_dir, existing, collected.add)
        jobs.sort(key=_largest_first)
        total = collected.sources + len(results) + len(jobs)
    for result in results:
        collected.add(result)
    del results
    after: Callable[[int, JobResult], JobResult] | None = None
    if remote:
        here, jobs, placed = _remote_plan(site, jobs, cache_dir, place=shard is None)
        for result in here:
            collected.add(result)

        def after(index: int, result: JobResult) -> JobResult:
            return collected.taken(placed(index, result))
    else:
        after = lambda _index, result: collected.taken(result)  # noqa: E731
    workers = settings.jobs or os.cpu_count() or 1
    runner: Workers | Executor | None = executor
    own = executor is None and workers > 1 and len(jobs) > 1
    if own:
        runner = Workers(workers, start_method_for(cache_dir))
    # Two jobs per worker keep every core busy; an external executor may have many more.
    if window is None:
        window = 2 * workers if executor is None or isinstance(executor, Workers) else 64
    bar = _bar(len(jobs), progress)
    counted = Progress(total, bar.update if bar else None)
    counted.done = collected.sources  # in place already: done, for an interrupt's message
    todo: Sequence[Job] = RemoteJobs(site, jobs, cache_dir) if remote else jobs
    try:
        execute(todo, run_job, runner, counted, window, after)
    finally:
        if bar is not None:
            bar.close()
        if own and isinstance(runner, Workers):
            runner.shutdown()
    del jobs, todo
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
    collected.used = bytearray()
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


def in_cache(jobs: list[Job], cache_dir: CacheLocation) -> tuple[list[JobResult], list[Job]]:
    """For a shard: the jobs whose entry the cache holds already (done: another shard or an
    earlier run made them), and the others."""
    cache = Cache(cache_dir)
    done: list[JobResult] = []
    todo: list[Job] = []
    # An object store answers each lookup over the network: many at once, not in a row.
    threads = 16 if is_remote(cache_dir) else 1
    with ThreadPoolExecutor(threads) as pool:
        found = list(pool.map(lambda j: cache.get(j.key), jobs))
    for job, stored in zip(jobs, found, strict=True):
        if stored is None:
            todo.append(job)
            continue
        done.append(cached_result(job, *stored))
    return done, todo


def _remote_plan(
    site: Path, jobs: list[Job], cache_dir: CacheLocation | None, *, place: bool
) -> tuple[list[JobResult], list[Job], Callable[[int, JobResult], JobResult]]:
    """For an executor elsewhere: the jobs this process answers from its own cache folder
    (a remote worker cannot see it), the jobs to send, and what to do with each result."""
    cache = Cache(cache_dir) if isinstance(cache_dir, Path) else None
    here: list[JobResult] = []
    send: list[Job] = []
    for job in jobs:
        if cache is not None and cache.get(job.key) is not None:
            here.append(run_job(job))  # a copy from the cache: no pixel work
        else:
            send.append(job)

    def after(index: int, result: JobResult) -> JobResult:
        from .remote import delivered

        return delivered(site, send[index], result, cache, place=place)

    return here, send, after


class RemoteJobs(Sequence[Job]):
    """``jobs`` as remote workers run them, made when each is sent (so only the jobs in
    flight hold their source bytes)."""

    def __init__(self, site: Path, jobs: Sequence[Job], cache_dir: CacheLocation | None) -> None:
        self.site = site
        self.base = jobs  # the jobs as planned, without their bytes (for error results)
        self.local_cache = isinstance(cache_dir, Path)

    def __len__(self) -> int:
        return len(self.base)

    @overload
    def __getitem__(self, index: int) -> Job: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Job]: ...

    def __getitem__(self, index: int | slice) -> Job | Sequence[Job]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        from .remote import for_remote

        return for_remote(self.site, self.base[index], self.local_cache)


def already_placed(
    site: Path,
    jobs: Iterable[Job],
    cache_dir: CacheLocation | None,
    existing: Mapping[str, str],
    done: Callable[[JobResult], None] | None = None,
) -> tuple[list[JobResult], list[Job]]:
    """The results of the jobs whose outputs are all in the site already (a rebuild with
    nothing changed), and the jobs still to run.

    Decided here, from the hash the plan took of each file, the cache entry and one
    ``lstat`` per file: a worker would read every blob of the entry back only to find the
    same bytes in place. A variant's name hashes what it was made from and how, so its
    name and size stand for its bytes. Only with a cache folder on this machine: with an
    object store, one request per image from the driver alone would cost more than the
    workers' parallel ones. ``done``: called with each such result instead of listing it.
    """
    if not isinstance(cache_dir, Path):
        return [], list(jobs)
    cache = Cache(cache_dir)
    placed: list[JobResult] = []
    todo: list[Job] = []
    for job in jobs:
        result = _placed(site, job, cache, existing)
        if result is None:
            todo.append(job)
        elif done is not None:
            done(result)
        else:
            placed.append(result)
    return placed, todo


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


def stale_variants(report: Report, existing: Mapping[str, str]) -> list[str]:
    """Our variants beside each processed image that its new outputs do not include."""
    stale = []
    for rel, old in existing.items():  # the images with variants beside them: few or all
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


def _bar(total: int, enabled: bool | None) -> Any:
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show or total <= 1:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="img", desc="ssg-dmi", leave=False)


class Collector:
    """A build's results as they come, kept small: per source its paths and one packed
    record (see :class:`~ssg_dmi.build.report.ImageTable`), the summary's counts, and the
    keys the build used. :meth:`fill` puts them in the report in the order of the sources'
    first paths, as a report made from every result at once had them."""

    def __init__(self, record: bool, existing: Listing | None = None) -> None:
        self.record = record  # whether the keys used are kept (for the cache's record)
        # Our variants found in the site, by image: each image's entry is settled (its
        # stale variants noted) and dropped as its result comes, not held to the end.
        self.existing = existing
        self.stale: list[str] = []
        # The keys the build used (results' keys and aliases), 32 raw bytes each: a large
        # site's list of key texts was about 120 bytes per image, held to the end.
        self.used = bytearray()
        self.cache_errors: set[str] = set()
        self.sources = 0
        self.totals = Summary()
        # (paths, packed record or None) or, with an error or notes, a longer tuple.
        self._pending: list[tuple[Any, ...]] = []

    def taken(self, result: JobResult) -> JobResult:
        """:meth:`add` for :func:`~ssg_dmi.build.workers.execute`'s ``after``: what it
        keeps of the result is one shared empty record."""
        self.add(result)
        return _TAKEN

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
        row = None
        if result.error is None:
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
            totals.images += len(paths)
            totals.variants += len(made) * len(paths)
            totals.bytes_after += original.bytes * len(paths)
            totals.variant_bytes += sum(v.bytes for v in made) * len(paths)
        held = paths[0] if len(paths) == 1 else paths  # one path: its text, no tuple
        if result.error is None and not result.notes:
            self._pending.append((held, row))
        else:
            self._pending.append((held, row, result.error, tuple(result.notes)))

    def _settle(self, paths: tuple[str, ...], made: list[Output]) -> None:
        """The variants beside each of ``paths`` that its new ones do not include (what
        :func:`stale_variants` would find for it), noted; their listing dropped."""
        existing = self.existing or {}
        suffixes = None
        for rel in paths:
            old = existing.pop(rel, None)
            if old:
                suffixes = suffixes or {variant_suffix(v) for v in made}
                self.stale += [rel + s for s in old.split("\0") if s not in suffixes]

    def fill(self, report: Report) -> None:
        """Put what was collected into ``report`` (its images, errors, notes, summary)."""
        pending, self._pending = self._pending, []
        pending.sort(key=_first_path)
        images = report.images
        table = images if isinstance(images, ImageTable) else None
        for item in pending:
            paths, row = _paths(item[0]), item[1]
            error, notes = (item[2], item[3]) if len(item) > 2 else (None, ())
            for rel in paths:
                if notes:
                    report.notes[rel] = list(notes)
                if error is not None:
                    report.errors[rel] = error
                elif table is not None:
                    table.set_row(rel, row)
                else:
                    images[rel] = unpack(rel, row)
        del pending
        self.totals.sources = self.sources
        self.totals.errors = len(report.errors)
        report.summary = self.totals


_TAKEN = JobResult(relpaths=(), key="")


def _paths(held: str | tuple[str, ...]) -> tuple[str, ...]:
    return (held,) if isinstance(held, str) else held


def _first_path(item: tuple[Any, ...]) -> str:
    held = item[0]
    return held if isinstance(held, str) else str(held[0])


def write_report(report: Report, path: Path) -> None:
    """Write the JSON report atomically, streamed an image at a time (names that are not
    valid UTF-8 as JSON escapes: the whole report then as ASCII)."""
    try:
        atomic_write_chunks(path, (c.encode("utf-8") for c in report.json_chunks()))
    except UnicodeEncodeError:
        chunks = report.json_chunks(ascii_only=True)
        atomic_write_chunks(path, (c.encode("ascii") for c in chunks))
