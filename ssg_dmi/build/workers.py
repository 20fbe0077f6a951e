"""Running image jobs on worker processes without ever losing the build to one of them.

- A bounded window of jobs is in flight, so an interrupt has little to cancel and the
  driver never holds every future of a 100,000-image site at once.
- Small images go to the build's own workers in batches (up to 16 jobs, 256 KB of
  sources): sending each alone cost as much as an icon's pixel work.
- A worker that dies (a segfault in a decoder, the OOM killer, ``os._exit``) breaks the
  whole process pool: every job that was in flight is retried once, alone in a new pool,
  so the one that killed it is found and reported and the innocent ones finish.
- Ctrl-C / SIGTERM: queued jobs are cancelled and the workers terminated at once; the
  caller gets :class:`~ssg_dmi.errors.BuildInterrupted` with how far the build got.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    wait,
)
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import BuildInterrupted, ExecutorLost
from .spec import Job, JobResult, crash_message

if TYPE_CHECKING:  # multiprocessing is imported when a pool starts, not by a no-work build
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger("ssg_dmi.build.workers")

WORKER_DIED = (
    "the worker process died while processing it (a crash in an image decoder, or killed "
    "for memory); left unchanged and untagged — lower `max_pixels` or exclude the file"
)


def _worker_init() -> None:
    # The driver alone decides what an interrupt means: it cancels the queue and
    # terminates the workers. A worker that saw Ctrl-C itself would die mid-job and look
    # like a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Pillow logs what it found wrong in a file ("More samples per pixel than can be
    # decoded") before raising; the raise becomes that image's one-line error.
    logging.getLogger("PIL").setLevel(logging.CRITICAL)


class Workers:
    """A process pool that outlives its workers: rebuilt when one dies, terminated on an
    interrupt. Create one per build, or keep one across ``mkdocs serve`` rebuilds."""

    def __init__(self, count: int, start_method: str | None = None) -> None:
        """``start_method``: None forks (the cheapest start); ``"forkserver"`` starts the
        workers from a fresh process, for libraries whose threads do not survive a fork
        (the object-store client)."""
        self.count = max(1, count)
        self.start_method = start_method
        self._pool: ProcessPoolExecutor | None = None

    @property
    def pool(self) -> ProcessPoolExecutor:
        """The live pool (started on first use)."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = None
            if self.start_method is not None:
                context = multiprocessing.get_context(self.start_method)
                if self.start_method == "forkserver":  # import once, fork the workers warm
                    context.set_forkserver_preload(["ssg_dmi.build.job"])
            self._pool = ProcessPoolExecutor(
                self.count, mp_context=context, initializer=_worker_init
            )
        return self._pool

    def replace(self) -> None:
        """Drop a broken pool; the next use starts a new one."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def terminate(self) -> None:
        """Stop every worker now (queued jobs are cancelled, running ones killed)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            terminate(pool)

    def shutdown(self) -> None:
        """Let running jobs finish, then stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def terminate(pool: ProcessPoolExecutor) -> None:
    """Kill a process pool's workers without waiting for their jobs."""
    # `_processes` is private, but it is the only handle on the workers: shutdown() alone
    # waits for every running job to finish, which is what made Ctrl-C take 20-40 s.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join(1.0)
    # The pool's manager thread sees its workers gone and closes its wake-up pipe. Waited
    # for here: otherwise the interpreter's exit hook may write to that pipe while it
    # closes (a CPython 3.11 race) and print "Exception ignored … Bad file descriptor" after
    # the build's one-line message.
    if manager is not None:
        manager.join(1.0)


class Progress:
    """How many of a build's jobs are done (for the interrupt message and progress bars)."""

    def __init__(self, total: int, tick: Callable[[], None] | None = None) -> None:
        self.total = total
        self.done = 0
        self.tick = tick

    def add(self) -> None:
        """Count one finished job."""
        self.done += 1
        if self.tick is not None:
            self.tick()


def _failed(job: Job, error: str) -> JobResult:
    return JobResult(relpaths=job.relpaths, key=job.key, source_bytes=job.source_bytes, error=error)


def execute(
    jobs: Iterable[Job],
    run: Callable[[Job], JobResult],
    runner: Workers | Executor | None,
    progress: Progress,
    window: int,
    after: Callable[[Job, JobResult], object] | None = None,
    prepare: Callable[[Job], Job] | None = None,
) -> None:
    """Run every job and hand each its result, whatever happens to the workers.

    ``jobs`` is taken as it is needed (a window at a time): the driver of a large site
    never holds every job, nor every result. ``runner`` None runs the jobs in this process
    (one at a time); a :class:`Workers` pool is rebuilt when a worker dies; any other
    ``Executor`` (a thread pool, Dask) is used as it is: a job whose future fails becomes
    that job's error (Dask retries a job whose worker died on another worker first).
    ``after`` runs in this process on each job and its result as it arrives (a remote
    job's outputs placed). ``prepare``: what is sent for a job (a remote job with its
    source bytes, made when it is sent); ``after`` and error results get the job as given.
    """
    try:
        if runner is None:
            for job in jobs:
                result = run(prepare(job) if prepare else job)
                if after is not None:
                    after(job, result)
                progress.add()
            return
        _pooled(iter(jobs), run, runner, progress, max(1, window), after, prepare)
    except KeyboardInterrupt:
        if isinstance(runner, Workers):
            runner.terminate()
        elif _is_process_pool(runner):
            terminate(runner)  # type: ignore[arg-type]
        elif runner is not None:  # Dask and others: drop what is queued there
            _cancel(runner)
        raise BuildInterrupted(progress.done, progress.total) from None


def _is_process_pool(runner: object) -> bool:
    process = sys.modules.get("concurrent.futures.process")  # none made before it loads
    return process is not None and isinstance(runner, process.ProcessPoolExecutor)


def _cancel(runner: Executor) -> None:
    try:
        runner.shutdown(wait=False, cancel_futures=True)
    except TypeError:  # an executor without cancel_futures (Dask's)
        runner.shutdown(wait=False)


# Small images go to a worker several at a time: sending a job and its result through the
# pool costs a few hundred µs of the driver's and a worker's time, as much as the pixel
# work of an icon (2,000 64x64 PNGs on 2 workers: 1.2x one process's speed, one at a time).
# Near the end the batches shrink to one job, so no worker is left with a long batch (a
# few bytes of PNG can be many pixels) while the others have nothing to do.
BATCH_BYTES = 256 * 1024  # sources in one batch, together at most this (a larger one alone)
BATCH_JOBS = 16


def run_batch(run: Callable[[Job], JobResult], jobs: list[Job]) -> list[JobResult]:
    """In a worker: ``run`` on each job in turn (it never raises: an image's error is in
    its result)."""
    return [run(job) for job in jobs]


def _pooled(
    queue: Iterator[Job],
    run: Callable[[Job], JobResult],
    runner: Workers | Executor,
    progress: Progress,
    window: int,
    after: Callable[[Job, JobResult], object] | None,
    prepare: Callable[[Job], Job] | None,
) -> None:
    retry: deque[Job] = deque()  # jobs that were in flight when a worker died
    back: deque[list[Job]] = deque()  # batches never started when the pool broke: next
    tried: set[int] = set()  # (ids of) the jobs that were in flight when a worker died once
    # Each future's jobs: a batch of small ones from the build's own pool (a retried job
    # alone); one job each for any other executor, whose failures are per future (Dask's
    # KilledWorker), so an innocent job never shares one.
    in_flight: dict[Future[Any], list[Job]] = {}
    alone = False  # a retried job runs with nothing beside it, so a second death is its own
    batching = isinstance(runner, Workers)
    ahead: list[Job] = []  # a job taken that did not fit the last batch: the next one's

    def submit(batch: list[Job]) -> bool:
        executor = runner.pool if isinstance(runner, Workers) else runner
        future: Future[Any]
        try:
            sent = [prepare(job) for job in batch] if prepare else batch
            if batching:
                future = executor.submit(run_batch, run, sent)
            else:
                future = executor.submit(run, sent[0])
            in_flight[future] = batch
        except BrokenExecutor:
            if isinstance(runner, Workers) and in_flight:
                # A worker died since the last look; its futures fail in a moment and
                # are handled below. These jobs never started: they go back in line.
                back.appendleft(batch)
                return False
            for job in batch:
                finish(job, _failed(job, WORKER_DIED))
        return True

    def finish(job: Job, result: JobResult) -> None:
        tried.discard(id(job))  # its id may be a later job's
        if after is not None:
            after(job, result)
        progress.add()

    def take() -> Job | None:
        return ahead.pop() if ahead else next(queue, None)

    def next_batch() -> list[Job] | None:
        if back:
            return back.popleft()
        job = take()
        if job is None:
            return None
        batch, size = [job], job.source_bytes
        # A batch takes at most a quarter of a window's share of the jobs not sent yet.
        unsent = progress.total - progress.done - sum(map(len, in_flight.values()))
        most = min(BATCH_JOBS, unsent // (4 * window)) if batching else 1
        while len(batch) < most and size < BATCH_BYTES:
            more = take()
            if more is None:
                break
            if size + more.source_bytes > BATCH_BYTES:
                ahead.append(more)
                break
            batch.append(more)
            size += more.source_bytes
        return batch

    while True:
        if not in_flight:
            alone = bool(retry)
            if retry:
                submit([retry.popleft()])
        if not alone:
            while len(in_flight) < window:
                batch = next_batch()
                if batch is None or not submit(batch):
                    break
        if not in_flight:
            if retry or back:
                continue
            break
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        broken: list[Job] = []
        for future in done:
            _collect(future, in_flight.pop(future), broken, finish)
        if not broken:
            continue
        # The pool is gone: the other jobs in flight fail with it, quickly.
        rest, _ = wait(in_flight)
        for future in rest:
            _collect(future, in_flight.pop(future), broken, finish)
        rebuild = isinstance(runner, Workers)
        for job in broken:
            if id(job) in tried or not rebuild:
                finish(job, _failed(job, WORKER_DIED))
            else:
                tried.add(id(job))
                retry.append(job)
        if isinstance(runner, Workers):
            log.warning(
                "a worker process died; retrying the %d image(s) it may have held", len(retry)
            )
            runner.replace()


def _collect(
    future: Future[Any],
    jobs: list[Job],
    broken: list[Job],
    finish: Callable[[Job, JobResult], None],
) -> None:
    """Hand on the results of one future's jobs (a batch's in order, as ``run_batch``
    made them); the jobs of a future that failed with the pool go to ``broken``."""
    try:
        outcome = future.result()
    except BrokenExecutor:
        broken.extend(jobs)
        return
    except CancelledError:  # not by us (an interrupt stops before looking): the cluster
        raise ExecutorLost(  # went away, which is no image's fault
            "the cluster running the image jobs stopped answering (its scheduler is gone?); "
            "what was done is placed and consistent: start it again and rerun"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a failed future is its job's error
        # Dask's KilledWorker: the workers running it kept dying (Dask retried it first).
        dying = type(exc).__name__ == "KilledWorker"
        for job in jobs:
            finish(job, _failed(job, WORKER_DIED if dying else crash_message(exc)))
        return
    results = outcome if isinstance(outcome, list) else [outcome]
    for job, result in zip(jobs, results, strict=True):
        finish(job, result)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM stops the build as Ctrl-C does (main thread only; the previous
    handler is put back after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
