"""``pipeline.run``: every image of a built site folder, tagged and given variants.

The only module that walks the site and drives workers; the per-image work is in
:mod:`ssg_dmi.process`. Nothing outside the site folder and the cache folder is written.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import Cache, sha256
from .fsutil import atomic_write, is_image_name
from .policy import ImagePolicy
from .process import VARIANT_NAME, Job, JobResult, Options, alias_keys, run_job, variant_path
from .settings import Settings

log = logging.getLogger("ssg_dmi.pipeline")


@dataclass
class Report:
    """What a build did: per image its outputs, and a summary."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    summary: dict[str, int] = field(default_factory=dict)

    def as_json(self, ascii_only: bool = False) -> str:
        """The report as JSON (the HTML rewriter and ``--report`` read this)."""
        data = {
            "images": self.images,
            "errors": self.errors,
            "notes": self.notes,
            "summary": self.summary,
        }
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=ascii_only)

    @property
    def untagged(self) -> int:
        """How many images are left without our tags."""
        return len(self.errors)


def site_images(site: Path, cache_dir: Path | None, clean: bool = False) -> Iterator[str]:
    """Site-relative POSIX paths of every image-named file in the site, sorted, variants
    included: hidden folders, the cache folder and links leading outside are passed over.
    With ``clean``, temp files a killed build left behind are removed on the way."""
    root = site.resolve()
    skip = cache_dir.resolve() if cache_dir else None
    for folder, dirs, files in os.walk(site):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (skip is None or (here / d).resolve() != skip)
        )
        for name in sorted(files):
            path = here / name
            if clean and name.startswith(".ssg-dmi-") and name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # left by a build that was killed mid-write
                continue
            if not is_image_name(name) or name.startswith("."):
                continue
            try:
                real = path.resolve(strict=True)
            except OSError:
                continue
            if not real.is_relative_to(root) or not real.is_file():
                log.warning("%s: a link leading outside the site folder; skipped", path)
                continue
            yield path.relative_to(site).as_posix()


def discover(site: Path, settings: Settings, cache_dir: Path | None) -> Iterator[str]:
    """Site-relative POSIX paths of the images to process, sorted: :func:`site_images` less
    our own variants, with include/exclude globs applied."""
    for rel in site_images(site, cache_dir, clean=True):
        if not VARIANT_NAME.match(rel.rsplit("/", 1)[-1]) and settings.matches(rel):
            yield rel


def plan_jobs(
    site: Path,
    settings: Settings,
    cache_dir: Path | None,
    overrides: Callable[[str], Mapping[str, Any] | None] | None = None,
) -> tuple[list[Job], dict[str, str]]:
    """One job per distinct (source bytes, policy); unreadable files are errors."""
    options = Options(
        widths=settings.widths,
        formats=settings.formats,
        quality=dict(settings.quality),
        originals=settings.originals,
        max_pixels=settings.max_pixels,
        srgb=settings.srgb,
    )
    groups: dict[tuple[str, int, ImagePolicy], list[str]] = {}
    errors: dict[str, str] = {}
    for rel in discover(site, settings, cache_dir):
        try:
            data = (site / rel).read_bytes()
        except OSError as exc:
            errors[rel] = f"cannot read ({exc.strerror or exc})"
            continue
        policy = settings.policy_for(rel, overrides(rel) if overrides else None)
        groups.setdefault((sha256(data), len(data), policy), []).append(rel)
    cache = str(cache_dir) if cache_dir else None
    jobs = [
        Job(str(site), tuple(rels), digest, size, policy, options, cache)
        for (digest, size, policy), rels in groups.items()
    ]
    # Largest sources first: the long jobs start early, so no core idles at the end.
    jobs.sort(key=lambda j: (-j.source_bytes, j.relpaths[0]))
    return jobs, errors


def run(
    site: Path,
    settings: Settings,
    *,
    executor: Executor | None = None,
    cache_dir: Path | None = None,
    progress: bool | None = None,
    overrides: Callable[[str], Mapping[str, Any] | None] | None = None,
) -> Report:
    """Process every image under ``site``; returns the :class:`Report`.

    ``cache_dir`` None disables the cache. ``executor`` defaults to a process pool with
    ``settings.jobs`` workers (one per core); pass any ``concurrent.futures.Executor`` (a
    thread pool, a Dask client's executor) to run the work elsewhere.
    """
    if not site.is_dir():
        raise FileNotFoundError(f"{site}: no such site folder")
    jobs, errors = plan_jobs(site, settings, cache_dir, overrides)
    report = Report(errors=dict(errors))
    results: list[JobResult] = []
    own = executor is None
    workers = settings.jobs or os.cpu_count() or 1
    pool = executor or (ProcessPoolExecutor(workers) if workers > 1 and len(jobs) > 1 else None)
    try:
        if pool is None:
            results = [run_job(job) for job in _progress(jobs, len(jobs), progress)]
        else:
            futures = [pool.submit(run_job, job) for job in jobs]
            done = _progress(as_completed(futures), len(jobs), progress)
            results = [future.result() for future in done]
    finally:
        if own and pool is not None:
            pool.shutdown()
    _fill(report, results)
    if cache_dir is not None:
        used = [r.key for r in results if r.error is None]
        used += [
            k for r in results if r.error is None and r.outputs for k in alias_keys_for(r, jobs)
        ]
        Cache(cache_dir).record_build(used)
    return report


def alias_keys_for(result: JobResult, jobs: list[Job]) -> tuple[str, ...]:
    """The alias keys of a finished job (kept by ``cache prune`` with the job's own key)."""
    job = next(j for j in jobs if j.key == result.key)
    return alias_keys(job, result.outputs[0])


def _progress(items: Any, total: int, enabled: bool | None) -> Iterator[Any]:
    show = sys.stderr.isatty() if enabled is None else enabled
    if show and total > 1:
        try:
            from tqdm import tqdm
        except ImportError:
            yield from items
            return
        yield from tqdm(items, total=total, unit="img", desc="ssg-dmi", leave=False)
    else:
        yield from items


def _fill(report: Report, results: list[JobResult]) -> None:
    totals = dict.fromkeys(
        [
            "images",
            "sources",
            "variants",
            "reencoded",
            "cache_hits",
            "files_written",
            "bytes_before",
            "bytes_after",
            "variant_bytes",
        ],
        0,
    )
    for result in sorted(results, key=lambda r: r.relpaths[0]):
        totals["sources"] += 1
        for rel in result.relpaths:
            if result.notes:
                report.notes[rel] = list(result.notes)
            if result.error:
                report.errors[rel] = result.error
                continue
            original, *made = result.outputs
            report.images[rel] = {
                "original": {
                    "path": rel,
                    "width": original.width,
                    "height": original.height,
                    "format": original.format,
                    "bytes": original.bytes,
                    "reencoded": result.reencoded,
                },
                "variants": [
                    {
                        "path": variant_path(rel, v),
                        "width": v.width,
                        "height": v.height,
                        "format": v.format,
                        "bytes": v.bytes,
                    }
                    for v in made
                ],
            }
            totals["images"] += 1
            totals["variants"] += len(made)
            totals["bytes_after"] += original.bytes
            totals["variant_bytes"] += sum(v.bytes for v in made)
        totals["bytes_before"] += result.source_bytes * len(result.relpaths)
        totals["reencoded"] += result.reencoded
        totals["cache_hits"] += result.cache_hit
        totals["files_written"] += result.written
    totals["errors"] = len(report.errors)
    report.summary = totals


def write_report(report: Report, path: Path) -> None:
    """Write the JSON report atomically (names that are not valid UTF-8 as JSON escapes)."""
    text = report.as_json()
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = report.as_json(ascii_only=True).encode("ascii")
    atomic_write(path, data)
