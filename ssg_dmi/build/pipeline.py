"""``pipeline.run``: every image of a built site folder, tagged and given variants.

The only module that walks the site and drives workers; the per-image work is in
:mod:`ssg_dmi.build.job`. Nothing outside the site folder and the cache folder is written.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, overload

from ..errors import ConfigError
from ..fsutil import atomic_write_chunks, shown
from ..images import watermark
from ..images.provenance import load_signing
from ..policy import ImagePolicy
from ..settings import Settings
from ..settings.watermark import Watermark
from ..walk import site_images, variant_source
from .cache import Cache, sha256
from .job import Job, JobResult, Options, cached_result, run_job, variant_path
from .remote import delivered, for_remote, is_remote_executor, shard_of
from .report import ImageResult, OriginalFile, Report, Summary, VariantFile
from .store import CacheLocation, is_remote, start_method_for
from .workers import Progress, Workers, execute

log = logging.getLogger("ssg_dmi.build.pipeline")


def discover(
    site: Path,
    settings: Settings,
    cache_dir: CacheLocation | None,
    existing: dict[str, list[str]] | None = None,
    skipped: list[str] | None = None,
) -> Iterator[str]:
    """Site-relative POSIX paths of the images to process, sorted: :func:`site_images` less
    our own variants, with include/exclude globs applied. Our variants found on the way are
    added to ``existing`` (by the site path of their source)."""
    skip = cache_dir if isinstance(cache_dir, Path) else None
    for rel in site_images(site, skip, clean=True, skipped=skipped):
        source = variant_source(rel)
        if source is None:
            if settings.matches(rel):
                yield rel
        elif existing is not None:
            existing.setdefault(source, []).append(rel)


def plan_jobs(
    site: Path,
    settings: Settings,
    cache_dir: CacheLocation | None,
    overrides: Callable[[str], Mapping[str, Any] | None] | None = None,
    existing: dict[str, list[str]] | None = None,
    skipped: list[str] | None = None,
) -> tuple[list[Job], dict[str, str]]:
    """One job per distinct (source bytes, policy, watermark): ``overrides`` gives each file
    path at most one value (pages that disagree are settled before); unreadable files are
    errors."""
    options = Options(
        widths=settings.widths,
        formats=settings.formats,
        quality=dict(settings.quality),
        originals=settings.originals,
        max_pixels=settings.max_pixels,
        srgb=settings.srgb,
        c2pa=load_signing(settings.c2pa) if settings.c2pa is not None else None,
    )
    groups: dict[tuple[str, int, ImagePolicy, Watermark | None], list[str]] = {}
    policies: dict[ImagePolicy, ImagePolicy] = {}
    errors: dict[str, str] = {}
    root = os.fspath(site)
    for rel in discover(site, settings, cache_dir, existing, skipped):
        try:
            with open(os.path.join(root, rel), "rb") as handle:
                data = handle.read()
        except OSError as exc:
            errors[rel] = f"cannot read ({exc.strerror or exc})"
            continue
        given = overrides(rel) if overrides else None
        policy = settings.policy_for(rel, given)
        policy = policies.setdefault(policy, policy)  # one object per distinct policy
        mark = settings.watermark_for(rel, given)
        groups.setdefault((sha256(data), len(data), policy, mark), []).append(rel)
    cache = str(cache_dir) if cache_dir else None
    # Once per distinct mark, not per image: checking a mark loads its font and logo.
    marked = {mark: marked_options(options, mark) for mark in {key[3] for key in groups}}
    jobs = [
        Job(str(site), tuple(rels), digest, size, policy, marked[mark], cache)
        for (digest, size, policy, mark), rels in groups.items()
    ]
    # Largest sources first: the long jobs start early, so no core idles at the end.
    jobs.sort(key=lambda j: (-j.source_bytes, j.relpaths[0]))
    return jobs, errors


def marked_options(options: Options, mark: Watermark | None) -> Options:
    """``options`` with ``mark`` and its files' hashes (the files checked: a font that does
    not load or a logo that does not decode is a ConfigError before any image is touched)."""
    if mark is None:
        return options
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
    existing: dict[str, list[str]] = {}
    skipped: list[str] = []
    planned, errors = plan_jobs(site, settings, cache_dir, overrides, existing, skipped)
    report = Report(errors=dict(errors), warnings=warnings, skipped=skipped)
    results: list[JobResult]
    jobs: list[Job]
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
    remote = is_remote_executor(executor)
    after = None
    if remote:
        results_here, jobs, after = _remote_plan(site, jobs, cache_dir, place=shard is None)
        results += results_here
    workers = settings.jobs or os.cpu_count() or 1
    runner: Workers | Executor | None = executor
    own = executor is None and workers > 1 and len(jobs) > 1
    if own:
        runner = Workers(workers, start_method_for(cache_dir))
    # Two jobs per worker keep every core busy; an external executor may have many more.
    if window is None:
        window = 2 * workers if executor is None or isinstance(executor, Workers) else 64
    total = len(planned)
    del planned  # the jobs still to run are all that is needed from here
    bar = _bar(len(jobs), progress)
    counted = Progress(total, bar.update if bar else None)
    counted.done = len(results)  # in place already: done, for an interrupt's message
    todo: Sequence[Job] = RemoteJobs(site, jobs, cache_dir) if remote else jobs
    try:
        results += execute(todo, run_job, runner, counted, window, after)
    finally:
        if bar is not None:
            bar.close()
        if own and isinstance(runner, Workers):
            runner.shutdown()
    _fill(report, results)
    report.stale = stale_variants(report, existing) if shard is None else []
    cache_errors = sorted({r.cache_error for r in results if r.cache_error})
    if cache_dir is not None and shard is None:  # a shard's keys are the assembly's
        used = [k for r in results if r.error is None for k in (r.key, *r.aliases)]
        try:
            Cache(cache_dir).record_build(used, site)
        except OSError as exc:
            cache_errors.append(str(exc.strerror or exc))
    if cache_errors:
        report.warnings.append(
            f"{shown(cache_dir or '')}: the cache could not be written ({cache_errors[0]}); "
            "the images were processed without it"
        )
    if not keep_stale:
        remove_stale(site, report)
    return report


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
        return for_remote(self.site, self.base[index], self.local_cache)


def already_placed(
    site: Path,
    jobs: list[Job],
    cache_dir: CacheLocation | None,
    existing: Mapping[str, list[str]],
) -> tuple[list[JobResult], list[Job]]:
    """The results of the jobs whose outputs are all in the site already (a rebuild with
    nothing changed), and the jobs still to run.

    Decided here, from the hash the plan took of each file, the cache entry and one
    ``lstat`` per file: a worker would read every blob of the entry back only to find the
    same bytes in place. A variant's name hashes what it was made from and how, so its
    name and size stand for its bytes. Only with a cache folder on this machine: with an
    object store, one request per image from the driver alone would cost more than the
    workers' parallel ones.
    """
    if not isinstance(cache_dir, Path) or not jobs:
        return [], list(jobs)
    cache = Cache(cache_dir)
    done: list[JobResult] = []
    todo: list[Job] = []
    for job in jobs:
        result = _placed(site, job, cache, existing)
        if result is None:
            todo.append(job)
        else:
            done.append(result)
    return done, todo


def _placed(
    site: Path, job: Job, cache: Cache, existing: Mapping[str, list[str]]
) -> JobResult | None:
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
        present = set(existing.get(rel, ()))
        if not _regular(os.path.join(root, rel), original.bytes):
            return None
        for output in outputs[1:]:
            path = variant_path(rel, output)
            if path not in present or not _regular(os.path.join(root, path), output.bytes):
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


def stale_variants(report: Report, existing: Mapping[str, list[str]]) -> list[str]:
    """Our variants beside each processed image that its new outputs do not include."""
    stale = []
    for rel, entry in report.images.items():
        keep = {v.path for v in entry.variants}
        stale += [old for old in existing.get(rel, ()) if old not in keep]
    return sorted(stale)


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


def _fill(report: Report, results: list[JobResult]) -> None:
    totals = Summary()
    for result in sorted(results, key=lambda r: r.relpaths[0]):
        totals.sources += 1
        for rel in result.relpaths:
            if result.notes:
                report.notes[rel] = list(result.notes)
            if result.error:
                report.errors[rel] = result.error
                continue
            original, *made = result.outputs
            report.images[rel] = ImageResult(
                OriginalFile(
                    rel,
                    original.width,
                    original.height,
                    original.format,
                    original.bytes,
                    result.reencoded,
                ),
                [
                    VariantFile(variant_path(rel, v), v.width, v.height, v.format, v.bytes)
                    for v in made
                ],
            )
            totals.images += 1
            totals.variants += len(made)
            totals.bytes_after += original.bytes
            totals.variant_bytes += sum(v.bytes for v in made)
        totals.bytes_before += result.source_bytes * len(result.relpaths)
        # Re-encoded in this run: a warm rebuild that took them from the cache re-encoded none.
        totals.reencoded += result.reencoded and not result.cache_hit
        totals.cache_hits += result.cache_hit
        totals.files_written += result.written
    totals.errors = len(report.errors)
    report.summary = totals


def write_report(report: Report, path: Path) -> None:
    """Write the JSON report atomically, streamed an image at a time (names that are not
    valid UTF-8 as JSON escapes: the whole report then as ASCII)."""
    try:
        atomic_write_chunks(path, (c.encode("utf-8") for c in report.json_chunks()))
    except UnicodeEncodeError:
        chunks = report.json_chunks(ascii_only=True)
        atomic_write_chunks(path, (c.encode("ascii") for c in chunks))
