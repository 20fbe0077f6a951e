"""Image jobs beyond this machine's process pool: CI shards and a Dask cluster.

- **Shards** (``ssg-dmi build SITE --shard K/N``): every shard plans the whole site (the
  same walk, hashes and keys), then takes its part of the distinct sources by
  :func:`shard_of` and only fills the shared cache; a final plain build finds every image
  in the cache and assembles the site.
- **Remote executors** (a Dask cluster, or any ``concurrent.futures.Executor`` that is not
  this machine's pool): the workers do not see the site folder. A job carries its source
  bytes and gets its outputs back in its result (``deliver = "result"``); only the driver
  reads and writes the site. With a cache folder on this machine the driver looks it up
  and fills it itself (a remote worker cannot see it); with an object store the workers
  use it directly, as every runner does.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import ConfigError, first_line
from .cache import Cache
from .spec import Job, JobResult, alias_keys
from .spec import place as place_outputs
from .workers import Workers

log = logging.getLogger("ssg_dmi.build.remote")
MAX_SHARDS = 10_000


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` (1 ≤ K ≤ N) as (K, N); a ConfigError saying how to write it otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: write K/N, e.g. 1/4 for the first of 4") from None
    if not 1 <= k <= n:
        raise ConfigError(f"--shard {text!r}: K must be between 1 and N, e.g. 1/{max(n, 1)}")
    if n > MAX_SHARDS:
        raise ConfigError(f"--shard {text!r}: at most {MAX_SHARDS} shards")
    return k, n


def shard_of(jobs: Sequence[Job], k: int, n: int) -> list[Job]:
    """Shard ``k`` of ``n``'s jobs: the largest sources first, each to the shard with the
    fewest bytes so far (ties: the lowest shard, then the source hash decides the order).

    Every shard sees the same distinct sources, so every shard computes the same split
    without talking to the others; the shards' bytes differ by at most one source.
    """
    loads = [(0, shard) for shard in range(1, n + 1)]
    mine: set[str] = set()
    for job in sorted(jobs, key=lambda j: (-j.source_bytes, j.source_sha, j.key)):
        load, shard = heapq.heappop(loads)
        if shard == k:
            mine.add(job.key)
        heapq.heappush(loads, (load + job.source_bytes, shard))
    return [job for job in jobs if job.key in mine]  # in the order given


def is_remote_executor(executor: object) -> bool:
    """Whether ``executor`` runs jobs where the site folder may not be (Dask, or any
    executor other than this machine's process or thread pools)."""
    local = (Workers, ProcessPoolExecutor, ThreadPoolExecutor)
    return executor is not None and not isinstance(executor, local)


def for_remote(site: Path, job: Job, local_cache: bool) -> Job:
    """``job`` as a remote worker can run it: the source bytes carried, the outputs
    returned; without the cache when the cache is a folder on this machine. A source that
    cannot be read now makes a job that fails with that reason (never a build error)."""
    cache = None if local_cache else job.cache_dir
    try:
        data = (site / job.relpaths[0]).read_bytes()
    except OSError as exc:
        failed = f"cannot read ({exc.strerror or exc})"
        return dataclasses.replace(job, deliver="result", cache_dir=None, failed=failed)
    return dataclasses.replace(job, data=data, deliver="result", cache_dir=cache)


def delivered(
    site: Path, job: Job, result: JobResult, cache: Cache | None, *, place: bool = True
) -> JobResult:
    """On the driver, a remote result's outputs: into this machine's cache (when it has
    one) and, with ``place``, into the site; the bytes are dropped from the result after."""
    payload, result.payload = result.payload, None
    if result.error is not None or payload is None:
        return result
    pairs = list(zip(result.outputs, payload, strict=True))
    result.aliases = alias_keys(job, pairs[0][0])
    if cache is not None:
        extra: dict[str, Any] = {"reencoded": result.reencoded, "notes": list(result.notes)}
        try:
            cache.put(job.key, pairs, extra, aliases=result.aliases)
        except OSError as exc:
            result.cache_error = str(exc.strerror or exc)
    if place:
        try:
            result.written += place_outputs(site, job.relpaths, pairs)
        except OSError as exc:  # as run_job reports a write that fails in a local worker
            result.error = f"cannot read or write it ({exc.strerror or exc})"
            result.outputs, result.written = [], 0
    return result


def dask_executor(address: str) -> tuple[Executor, Any]:
    """An executor on the Dask scheduler at ``address`` and its client (close it after).

    Raises ConfigError when ``distributed`` is missing or the scheduler does not answer.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            f"--scheduler {address}: needs Dask's client: pip install 'ssg-dmi[dask]'"
        ) from None
    if address.startswith("tls://"):
        from distributed.security import Security

        # Without a TLS context Dask's client fails half-built and hangs 20 s on its way out.
        if Security().get_connection_args("client").get("ssl_context") is None:  # type: ignore[no-untyped-call]
            raise ConfigError(
                f"--scheduler {address}: tls:// needs Dask's TLS configuration "
                "(distributed.comm.tls: ca-file, client cert and key); or use tcp://"
            )
    try:
        client = Client(address, timeout="10s", set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"--scheduler {address}: no Dask scheduler answers there ({first_line(exc)}); start "
            "one (`dask scheduler`) or fix the address"
        ) from None
    except Exception as exc:  # noqa: BLE001 - Dask's own (a tls:// address without TLS set up)
        raise ConfigError(
            f"--scheduler {address}: cannot connect ({first_line(exc)}); for tls:// set up "
            "Dask's TLS configuration (distributed.comm.tls)"
        ) from None
    # pure=False: two jobs are never merged by Dask because their arguments look alike.
    return client.get_executor(pure=False), client  # type: ignore[no-untyped-call]
