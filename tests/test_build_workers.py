"""``ssg-dmi build`` with more than one image or worker: the same bytes at two paths are one
job; a process pool or a thread pool gives the bytes of one serial worker.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from ssg_dmi.build.pipeline import plan_jobs, run
from ssg_dmi.images.pixels import pixel_limit
from ssg_dmi.settings import load_settings

from .builds import (
    CACHED,
    build,
    copy_site,
    settings,
    tree,
    variants_of,
)
from .images import (
    encode,
    half_transparent,
    jpeg,
    photo,
)

# --- dedupe, and the process pool ---------------------------------------------------------


def test_same_bytes_at_two_paths_is_one_job_placed_twice(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for folder in ("a", "b", "gallery"):
        (site / folder).mkdir(parents=True)
    data = jpeg(photo((300, 200)))
    for rel in ("a/p.jpg", "b/p.jpg", "gallery/p.jpg"):
        (site / rel).write_bytes(data)
    config = settings(
        widths=[100, 200], formats=["webp"], rules=[{"path": "gallery/*", "dmi": "DMI-ALLOWED"}]
    )
    jobs, errors = plan_jobs(site, config, None)
    assert errors == {}
    assert sorted(j.relpaths for j in jobs) == [("a/p.jpg", "b/p.jpg"), ("gallery/p.jpg",)]
    report = run(site, config, progress=False)
    assert report.summary["sources"] == 2 and report.summary["images"] == 3
    a, b = report.images["a/p.jpg"], report.images["b/p.jpg"]
    assert [Path(v["path"]).name for v in a["variants"]] == [
        Path(v["path"]).name for v in b["variants"]
    ]
    assert len(a["variants"]) == 2
    for rel in ("a/p.jpg", "b/p.jpg", "gallery/p.jpg"):
        made = variants_of(site, rel)
        assert len(made) == 2, rel
        assert sorted(str(p.relative_to(site)) for p in made) == sorted(
            v["path"] for v in report.images[rel]["variants"]
        )
    assert (site / "a/p.jpg").read_bytes() == (site / "b/p.jpg").read_bytes()
    assert (site / "a/p.jpg").read_bytes() != (site / "gallery/p.jpg").read_bytes()


def test_default_process_pool_gives_the_same_bytes_as_one_worker(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    for n in range(4):
        (pristine / f"p{n}.jpg").write_bytes(jpeg(photo((240 + 20 * n, 160))))
    (pristine / "clear.png").write_bytes(encode(half_transparent((200, 100)), "PNG"))
    values = {"widths": [64, 128], "formats": ["webp", "jpeg"]}
    pooled = copy_site(pristine, tmp_path / "pooled")
    # executor=None: run() makes its own process pool (jobs = 2 even on a one-core machine).
    config = load_settings({**values, "jobs": 2})
    report = run(pooled, config, cache_dir=tmp_path / "cache", progress=False)
    serial = copy_site(pristine, tmp_path / "serial")
    expected = build(serial, None, **values)
    assert report.images == expected.images and report.errors == {}
    assert tree(pooled) == tree(serial)
    assert report.summary["sources"] == 5


def test_pixel_limit_leaves_pillow_and_warnings_as_found_across_threads() -> None:
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:  # a worker opening one image...
        with pixel_limit(1000):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second() -> None:  # ...while another worker opens the next one
        a_in.wait(5)
        with pixel_limit(1000):
            b_in.set()
            a_out.wait(5)

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    after = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    Image.MAX_IMAGE_PIXELS, warnings.filters[:] = limit, filters
    assert after == (limit, filters)


def test_thread_pool_executor_gives_the_same_outputs(tmp_path: Path, pristine: Path) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    filters = list(warnings.filters)
    try:
        site = copy_site(pristine, tmp_path / "threads")
        with ThreadPoolExecutor(2) as pool:
            report = run(site, settings(**CACHED), executor=pool, progress=False)
    finally:  # a threaded build must not leave these changed (they are process-wide)
        Image.MAX_IMAGE_PIXELS = limit
        warnings.filters[:] = filters
    serial = copy_site(pristine, tmp_path / "serial")
    assert report.images == build(serial, None, **CACHED).images
    assert tree(site) == tree(serial)


def test_a_terminated_pool_leaves_no_manager_thread_for_the_exit_hook() -> None:
    # Ctrl-C kills the workers; the pool's manager thread then closes its wake-up pipe.
    # If it is still closing when the interpreter exits, CPython 3.11's exit hook writes to
    # that pipe and prints "Exception ignored … Bad file descriptor" after our message.
    import time
    from concurrent.futures import ProcessPoolExecutor

    from ssg_dmi.build.workers import terminate

    pool = ProcessPoolExecutor(2)
    futures = [pool.submit(time.sleep, 30) for _ in range(4)]
    while not any(f.running() for f in futures):
        time.sleep(0.01)
    manager = pool._executor_manager_thread  # type: ignore[attr-defined]
    assert manager is not None and manager.is_alive()
    terminate(pool)
    assert not manager.is_alive()


# --- small jobs go to the workers in batches ---------------------------------------------


def _echo(job):  # type: ignore[no-untyped-def]
    """A job run in a worker (module level, so a forked worker has it): dies on "bad"."""
    import os

    from ssg_dmi.build.spec import JobResult

    if "bad" in job.relpaths[0]:
        os._exit(3)
    return JobResult(relpaths=job.relpaths, key="", source_bytes=job.source_bytes)


def _jobs(sizes: list[tuple[str, int]]) -> list[Any]:
    from ssg_dmi.build.spec import Job
    from ssg_dmi.policy import ImagePolicy

    from .test_watermark import options

    return [
        Job("/nowhere", (rel,), "0" * 64, size, ImagePolicy(), options(None), None)
        for rel, size in sizes
    ]


def _execute(jobs: list[Any]) -> tuple[dict[str, Any], list[int]]:
    """Run ``jobs`` on the build's own pool of 2: each result by path, the jobs per send."""
    from ssg_dmi.build.workers import Progress, Workers, execute

    runner, results = Workers(2), {}
    pool = runner.pool
    sends, real = [], pool.submit

    def counted(fn: Any, run: Any, batch: list[Any]) -> Any:
        sends.append(len(batch))
        return real(fn, run, batch)

    pool.submit = counted  # type: ignore[assignment]
    try:
        execute(
            jobs,
            _echo,
            runner,
            Progress(len(jobs)),
            4,
            lambda j, r: results.update({j.relpaths[0]: r}),
        )
    finally:
        runner.shutdown()
    return results, sends


def test_small_jobs_go_to_the_workers_in_batches_large_ones_alone() -> None:
    from ssg_dmi.build.workers import BATCH_BYTES, BATCH_JOBS

    large = [(f"large{i}.jpg", BATCH_BYTES + i) for i in range(3)]
    small = [(f"small{i:03d}.png", 900) for i in range(400)]
    results, sends = _execute(_jobs(large + small))
    # Each job its own result (a batch's come back in order).
    assert sorted(results) == sorted(rel for rel, _ in large + small)
    assert all(r.relpaths == (rel,) and r.error is None for rel, r in results.items())
    # The large ones alone; the small ones 16 at a time, the batches shrinking to one job
    # at the end so no worker is left with a long one.
    assert sends[:3] == [1, 1, 1] and max(sends) == BATCH_JOBS and sends[-4:] == [1, 1, 1, 1]
    assert sum(sends) == len(large + small) and len(sends) < len(small) // 4


def test_a_worker_dying_in_a_batch_is_one_images_error_and_its_batch_finishes() -> None:
    from ssg_dmi.build.workers import WORKER_DIED

    names = [f"p{i}.png" for i in range(5)] + ["bad.png"] + [f"q{i}.png" for i in range(194)]
    results, sends = _execute(_jobs([(n, 500) for n in names]))
    assert sends[0] > 6  # "bad.png" died inside a batch
    assert sorted(results) == sorted(names)
    assert results["bad.png"].error == WORKER_DIED
    assert all(r.error is None for n, r in results.items() if n != "bad.png")
