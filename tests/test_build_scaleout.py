"""Scale-out: CI shards into a shared cache, then one assembling build; image jobs on a real
Dask cluster (scheduler and worker processes on loopback). Each ends in a site
byte-identical to one local build, whatever happened to the workers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.build.cache import Cache
from ssg_dmi.build.remote import parse_shard, shard_of
from ssg_dmi.errors import ConfigError

from .builds import copy_site, tree
from .images import jpeg, photo
from .objectstore import S3, needs_s3
from .servers import free_port, stop, wait_until_listening

ARGS = ["--widths", "100,200", "--formats", "webp,jpeg", "--no-progress"]


def _site(root: Path, count: int = 12) -> Path:
    """A built site: ``count`` distinct photos of different sizes, a duplicate, a page."""
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(count):
        name = f"img/p{i:02d}.jpg"
        (root / name).write_bytes(jpeg(photo((240 + 16 * i, 180 + 8 * i)), quality=80 + i))
        rows.append(f'<img src="{name}" alt="p{i}">')
    (root / "img" / "copy.jpg").write_bytes((root / "img" / "p00.jpg").read_bytes())
    rows.append('<img src="img/copy.jpg" alt="copy">')
    page = "<!doctype html><html><head><title>t</title></head><body>" + "".join(rows)
    (root / "index.html").write_text(page + "</body></html>", encoding="utf-8")
    return root


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssg_dmi.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def _report(path: Path) -> dict:  # type: ignore[type-arg]
    return dict(json.loads(path.read_text()))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return _site(tmp_path / "source")


@pytest.fixture
def reference(tmp_path: Path, source: Path) -> dict[str, bytes]:
    """What one plain local build writes."""
    site = copy_site(source, tmp_path / "reference")
    done = _cli("build", str(site), *ARGS, "--no-cache")
    assert done.returncode == 0, done.stderr
    return tree(site)


# --- shards -------------------------------------------------------------------------------


def test_shard_split_is_a_partition_balanced_by_bytes(tmp_path: Path) -> None:
    from ssg_dmi.build.pipeline import plan_jobs
    from ssg_dmi.settings import load_settings

    site = _site(tmp_path / "s", count=30)
    jobs, _ = plan_jobs(site, load_settings({}), None)
    for n in (1, 2, 3, 7):
        parts = [shard_of(jobs, k, n) for k in range(1, n + 1)]
        keys = [j.key for part in parts for j in part]
        assert sorted(keys) == sorted(j.key for j in jobs)  # each job in exactly one shard
        loads = [sum(j.source_bytes for j in part) for part in parts]
        assert max(loads) - min(loads) <= max(j.source_bytes for j in jobs)
        # The same split whatever order the jobs come in (each shard plans on its own).
        again = [shard_of(list(reversed(jobs)), k, n) for k in range(1, n + 1)]
        assert [{j.key for j in p} for p in again] == [{j.key for j in p} for p in parts]


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2"])
def test_bad_shard_is_a_usage_error(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(bad)
    done = _cli("build", str(_site(tmp_path / "s", 1)), "--shard", bad)
    assert done.returncode == 2 and "--shard" in done.stderr and "Traceback" not in done.stderr


def test_two_shards_then_assemble_equal_one_local_build(
    tmp_path: Path, source: Path, reference: dict[str, bytes]
) -> None:
    cache = tmp_path / "shared-cache"
    before = tree(source)
    reports = []
    for k in (1, 2):
        runner = copy_site(source, tmp_path / f"shard{k}")  # each CI job has its own checkout
        out = tmp_path / f"shard{k}.json"
        done = _cli("build", str(runner), *ARGS, "--cache-dir", str(cache),
                    "--shard", f"{k}/2", "--report", str(out))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"shard {k}/2" in done.stdout
        assert tree(runner) == before  # a shard writes nothing into the site
        reports.append(_report(out))
    counts = [r["summary"]["sources"] for r in reports]
    assert sum(counts) == 12 and min(counts) >= 4  # 12 distinct sources split
    site = copy_site(source, tmp_path / "assemble")
    out = tmp_path / "assemble.json"
    done = _cli("build", str(site), *ARGS, "--cache-dir", str(cache), "--report", str(out))
    assert done.returncode == 0, done.stderr
    summary = _report(out)["summary"]
    assert summary["cache_hits"] == summary["sources"] == 12 and summary["reencoded"] == 0
    assert tree(site) == reference


def test_shard_needs_the_cache(tmp_path: Path) -> None:
    done = _cli("build", str(_site(tmp_path / "s", 1)), "--shard", "1/2", "--no-cache")
    assert done.returncode == 2
    assert "--shard needs the cache" in done.stderr


@needs_s3
def test_shards_through_an_object_store(
    tmp_path: Path, source: Path, reference: dict[str, bytes], s3: S3, s3_cache: str
) -> None:
    for k in (1, 2, 3):
        runner = copy_site(source, tmp_path / f"shard{k}")
        done = _cli("build", str(runner), *ARGS, "--cache-dir", s3_cache, "--shard", f"{k}/3",
                    env=s3.env())  # fmt: skip
        assert done.returncode == 0, done.stderr
    site = copy_site(source, tmp_path / "assemble")
    out = tmp_path / "assemble.json"
    done = _cli("build", str(site), *ARGS, "--cache-dir", s3_cache, "--report", str(out),
                env=s3.env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = _report(out)["summary"]
    assert summary["cache_hits"] == summary["sources"] == 12
    assert tree(site) == reference


# --- Dask ---------------------------------------------------------------------------------

needs_dask = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import distributed"], check=False).returncode != 0,
    reason="needs Dask (pip install -e '.[test]')",
)
DASK = str(Path(sys.executable).with_name("dask"))


# Dask may run a preload more than once: wrap the real render, never a wrapper.
SLOW_WORKER = """
import time
from ssg_dmi.build import job
real = getattr(job.render, "unslowed", job.render)
def render(data, name, policy, options):
    time.sleep(0.5)
    return real(data, name, policy, options)
render.unslowed = real
job.render = render
"""


@contextmanager
def dask_cluster(
    tmp_path: Path, *, slow: bool = False, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A scheduler and two single-threaded worker processes (each under its nanny, which
    restarts a worker that dies), as `dask scheduler` / `dask worker` start them; yields the
    scheduler's address. ``slow``: each image job sleeps first (a preload in the workers)."""
    port = free_port()
    environ = {**os.environ, **(env or {})}
    log = (tmp_path / "dask.log").open("wb")
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=log, stderr=log, env=environ,
    )  # fmt: skip
    procs = [scheduler]
    extra = []
    if slow:
        preload = tmp_path / "slow_worker.py"
        preload.write_text(SLOW_WORKER)
        extra = ["--preload", str(preload)]
    try:
        wait_until_listening(scheduler, port, seconds=60)
        address = f"tcp://127.0.0.1:{port}"
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--local-directory",
                        str(tmp_path / "dask-work"),
                        *extra,
                    ],
                    stdout=log,
                    stderr=log,
                    env=environ,
                )  # fmt: skip
            )
        _wait_for_workers(address, 2)
        yield address
    finally:
        for proc in reversed(procs):
            stop(proc)  # type: ignore[arg-type]
        log.close()


def _wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(count, timeout=60)


def _worker_pids(address: str) -> list[int]:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        return sorted(client.run(os.getpid).values())


@needs_dask
def test_dask_build_is_byte_identical_to_a_local_build(
    tmp_path: Path,
    source: Path,
    reference: dict[str, bytes],
) -> None:
    site = copy_site(source, tmp_path / "dask")
    out = tmp_path / "dask.json"
    with dask_cluster(tmp_path) as address:
        done = _cli("build", str(site), *ARGS, "--no-cache", "--scheduler", address,
                    "--report", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert tree(site) == reference
    assert _report(out)["summary"]["sources"] == 12


@needs_dask
def test_dask_with_a_local_cache_fills_it_and_a_rebuild_hits(
    tmp_path: Path,
    source: Path,
    reference: dict[str, bytes],
) -> None:
    cache = tmp_path / "cache"
    site = copy_site(source, tmp_path / "dask")
    with dask_cluster(tmp_path) as address:
        done = _cli("build", str(site), *ARGS, "--cache-dir", str(cache), "--scheduler", address)
    assert done.returncode == 0, done.stderr
    assert tree(site) == reference
    assert Cache(cache).used_keys()  # the driver filled its own cache folder
    again = copy_site(source, tmp_path / "again")
    out = tmp_path / "again.json"
    done = _cli("build", str(again), *ARGS, "--cache-dir", str(cache), "--report", str(out))
    summary = _report(out)["summary"]
    assert summary["cache_hits"] == summary["sources"] == 12
    assert tree(again) == reference


@needs_dask
def test_killing_a_dask_worker_mid_build_still_gives_the_whole_site(
    tmp_path: Path,
    source: Path,
    reference: dict[str, bytes],
) -> None:
    site = copy_site(source, tmp_path / "dask")
    with dask_cluster(tmp_path, slow=True) as address:  # each job sleeps: the kill lands mid-run
        build = subprocess.Popen(
            [sys.executable, "-m", "ssg_dmi.cli", "build", str(site), *ARGS, "--no-cache",
             "--scheduler", address, "--report", str(tmp_path / "r.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2.0)
        assert build.poll() is None
        os.kill(_worker_pids(address)[0], signal.SIGKILL)
        out, err = build.communicate(timeout=300)
    assert build.returncode == 0, err
    assert tree(site) == reference
    summary = _report(tmp_path / "r.json")["summary"]
    assert summary["errors"] == 0 and summary["sources"] == 12


@needs_dask
@needs_s3
def test_dask_workers_use_the_object_store_and_a_second_runner_hits(
    tmp_path: Path,
    source: Path,
    reference: dict[str, bytes],
    s3: S3,
    s3_cache: str,
) -> None:
    site = copy_site(source, tmp_path / "dask")
    # The workers reach the store with credentials of their own, as a cluster's would.
    with dask_cluster(tmp_path, env=s3.env()) as address:
        done = _cli("build", str(site), *ARGS, "--cache-dir", s3_cache, "--scheduler", address,
                    env=s3.env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert tree(site) == reference
    again = copy_site(source, tmp_path / "again")
    out = tmp_path / "again.json"
    done = _cli("build", str(again), *ARGS, "--cache-dir", s3_cache, "--report", str(out),
                env=s3.env())  # fmt: skip
    summary = _report(out)["summary"]
    assert summary["cache_hits"] == summary["sources"] == 12
    assert tree(again) == reference


def test_unreachable_scheduler_is_a_usage_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    port = free_port()
    done = _cli("build", str(_site(tmp_path / "s", 1)), "--scheduler", f"tcp://127.0.0.1:{port}")
    assert done.returncode == 2
    assert "no Dask scheduler answers there" in done.stderr and "Traceback" not in done.stderr


@needs_dask
def test_ctrl_c_stops_a_dask_build_and_leaves_a_working_site(tmp_path: Path, source: Path) -> None:
    site = copy_site(source, tmp_path / "dask")
    with dask_cluster(tmp_path, slow=True) as address:
        build = subprocess.Popen(
            [sys.executable, "-m", "ssg_dmi.cli", "build", str(site), *ARGS, "--no-cache",
             "--scheduler", address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        time.sleep(3.0)
        assert build.poll() is None
        sent = time.monotonic()
        build.send_signal(signal.SIGINT)
        out, err = build.communicate(timeout=60)
        took = time.monotonic() - sent
    assert build.returncode == 130, err
    assert re.search(r"interrupted: \d+ of 12 images done; rerun to finish", err), err
    assert "Traceback" not in err and took < 10, took
    # Whatever was placed is whole: every file in the site is complete (no temp files).
    assert not [p for p in site.rglob(".ssg-dmi-*")]


def test_the_scale_out_libraries_are_imported_only_when_asked_for() -> None:
    code = (
        "import sys, ssg_dmi.build.site, ssg_dmi.cli;"
        "print(sorted(m for m in ('obstore', 'distributed', 'dask') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@needs_dask
def test_mkdocs_with_a_scheduler_builds_the_same_site_on_the_cluster(tmp_path: Path) -> None:
    """`scheduler:` in mkdocs.yml: a real `mkdocs build` runs its images on the cluster
    (even with the pool MkDocs keeps across `serve` rebuilds) and writes the same site."""
    from .test_plugins import mkdocs_build, mkdocs_project

    plain = mkdocs_project(tmp_path / "plain", "  - ssg-dmi:\n      cache: false\n")
    mkdocs_build(plain, tmp_path / "plain-site")
    with dask_cluster(tmp_path) as address:
        on_dask = mkdocs_project(
            tmp_path / "dask", f"  - ssg-dmi:\n      cache: false\n      scheduler: {address}\n"
        )
        mkdocs_build(on_dask, tmp_path / "dask-site")
        from distributed import Client

        with Client(address, timeout="30s") as client:  # the cluster did the image work
            done = client.run_on_scheduler(
                lambda dask_scheduler: [
                    k for k in dask_scheduler.task_prefixes if k.startswith("run_job")
                ]
            )
    assert done == ["run_job"]
    images = {k: v for k, v in tree(tmp_path / "plain-site").items() if "img/" in k}
    assert (
        images and {k: v for k, v in tree(tmp_path / "dask-site").items() if "img/" in k} == images
    )


# --- what the review found: each failure is one image's error or one line ----------------


class KilledWorker(Exception):
    """Dask's name for a job whose workers kept dying (matched by name: no import)."""


class Elsewhere(Executor):
    """An executor ssg-dmi takes for a remote one (not this machine's pools): jobs carry
    their bytes and the driver places their outputs; runs them on threads here."""

    def __init__(self, cancel: bool = False, kill: str = "") -> None:
        self.pool = ThreadPoolExecutor(2)
        self.cancel, self.kill = cancel, kill

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self.cancel:  # as Dask's futures end when the scheduler goes away
            future.cancel()
            future.set_running_or_notify_cancel()
            return future
        if self.kill and args[0].relpaths[0] == self.kill:  # as Dask gives up on a job
            future.set_exception(KilledWorker("('run_job-1', <WorkerState closed>)"))
            return future
        return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, **_: Any) -> None:
        self.pool.shutdown(wait)


def _settings() -> Any:
    from ssg_dmi.settings import load_settings

    return load_settings({"widths": [100, 200], "formats": ["webp"]})


def test_remote_results_that_cannot_be_placed_are_that_images_error(tmp_path: Path) -> None:
    from ssg_dmi.build.pipeline import run

    site = _site(tmp_path / "s", count=3)
    first = run(site, _settings(), progress=False)
    blocked = first.images["img/p01.jpg"].variants[0].path
    (site / blocked).unlink()
    (site / blocked).mkdir()  # a folder where the variant goes
    report = run(site, _settings(), executor=Elsewhere(), progress=False)
    assert list(report.errors) == ["img/p01.jpg"]
    assert report.errors["img/p01.jpg"].startswith("cannot read or write it (")
    assert len(report.images) == 3  # the others, and the duplicate, are placed


def test_a_source_unreadable_when_sent_is_that_images_error(tmp_path: Path) -> None:
    from ssg_dmi.build import pipeline, remote

    site = _site(tmp_path / "s", count=3)
    real = remote.for_remote

    def gone(site_: Path, job: Any, local_cache: bool) -> Any:
        if job.relpaths[0] == "img/p02.jpg":
            (site_ / job.relpaths[0]).unlink(missing_ok=True)
        return real(site_, job, local_cache)

    remote.for_remote = gone  # type: ignore[assignment]
    try:
        report = pipeline.run(site, _settings(), executor=Elsewhere(), progress=False)
    finally:
        remote.for_remote = real
    assert report.errors == {"img/p02.jpg": "cannot read (No such file or directory)"}


def test_a_cluster_that_goes_away_is_a_build_error_not_untagged_images(tmp_path: Path) -> None:
    from ssg_dmi.build.pipeline import run
    from ssg_dmi.errors import ExecutorLost

    site = _site(tmp_path / "s", count=3)
    with pytest.raises(ExecutorLost, match="stopped answering"):
        run(site, _settings(), executor=Elsewhere(cancel=True), progress=False)


def test_workers_that_keep_dying_on_dask_are_reported_as_such(tmp_path: Path) -> None:
    from ssg_dmi.build.pipeline import run
    from ssg_dmi.build.workers import WORKER_DIED

    site = _site(tmp_path / "s", 2)
    report = run(site, _settings(), executor=Elsewhere(kill="img/copy.jpg"), progress=False)
    assert report.errors == {"img/copy.jpg": WORKER_DIED, "img/p00.jpg": WORKER_DIED}
    assert "img/p01.jpg" in report.images


def test_tls_scheduler_without_tls_set_up_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    port = free_port()
    site = _site(tmp_path / "s", 1)
    done = _cli("build", str(site), "--scheduler", f"tls://127.0.0.1:{port}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--scheduler tls://" in done.stderr and len(done.stderr.strip().splitlines()) == 1
