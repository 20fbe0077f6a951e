"""Where one `ssg-dmi build` spends its time, stage by stage (decode, orient, resize, encode per
format, tag, hash, write), in one process with `--jobs 1`.

Usage: python bench/stages.py [--corpus DIR] [--work DIR] [--originals tag|optimize]
       [--formats webp,jpeg] [--no-cprofile]                    (see bench/README.md)

The build runs in this process (``ssg_dmi.cli.main``) under cProfile, on a fresh copy of the
corpus and an empty cache. The library calls that make up each stage are wrapped in timers
that keep *exclusive* time (a stage called inside another, such as a PNG decode inside the
EXIF-orientation lookup, counts for itself only), so the stages add up to the total; "other"
is the rest (planning, reading sources, reports, Python glue). cProfile's own top functions
are printed under the table; its stats are saved to ``<work>/stages.pstats``.
A benchmark, not a test: it prints figures and exits non-zero only when the build failed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import FORMATS_ARG, IMAGE, QUALITY, REPO, WIDTHS_ARG, fresh_site  # noqa: E402
from PIL import Image, ImageFile, WebPImagePlugin  # noqa: E402

ORDER = (
    "open (headers)",
    "decode jpeg",
    "decode png",
    "decode webp",
    "orient",
    "convert (mode, ICC)",
    "resize",
    "encode webp",
    "encode jpeg",
    "encode png",
    "encode avif",
    "tag",
    "hash",
    "write site",
    "write cache",
)


class Stages:
    """Exclusive wall and CPU seconds per stage, from wrappers that nest."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[list[Any]] = []  # [name, wall0, cpu0, child wall, child cpu]

    def wrap(self, name: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            stage = name(*args, **kwargs) if callable(name) else name
            frame = [stage, time.perf_counter(), time.process_time(), 0.0, 0.0]
            self.stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                wall = time.perf_counter() - frame[1]
                cpu = time.process_time() - frame[2]
                self.wall[stage] += wall - frame[3]
                self.cpu[stage] += cpu - frame[4]
                self.calls[stage] += 1
                if self.stack:
                    self.stack[-1][3] += wall
                    self.stack[-1][4] += cpu

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    def active(self, stage: str) -> bool:
        return any(frame[0] == stage for frame in self.stack)


def patch_everywhere(original: Any, replacement: Any) -> None:
    """Replace every module-level reference to ``original`` in ssg_dmi's modules."""
    for name, module in list(sys.modules.items()):
        if name == "ssg_dmi" or name.startswith("ssg_dmi."):
            for attr, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attr, replacement)


def instrument(stages: Stages) -> None:
    import ssg_dmi.cli  # noqa: F401 - loads the modules whose references are patched
    from ssg_dmi import fsutil
    from ssg_dmi.build import cache, job  # noqa: F401
    from ssg_dmi.images import pixels, tagging, variants, webp_direct

    def save_stage(im: Any, fp: Any, format: str | None = None, **_: Any) -> str:
        return f"encode {(format or '?').lower()}"

    def decode_stage(im: Any, *_: Any) -> str:
        return f"decode {(im.format or '?').lower()}"

    def write_stage(*_: Any, **__: Any) -> str:
        return "write cache" if stages.active("cache put") else "write site"

    for obj, attr, stage in (
        (ImageFile.ImageFile, "load", decode_stage),
        (WebPImagePlugin.WebPImageFile, "load", decode_stage),
        (Image.Image, "transpose", "orient"),
        (Image.Image, "resize", "resize"),
        (Image.Image, "save", save_stage),
        (tagging.TagPlan, "write", "tag"),
        (cache.Cache, "put", "cache put"),
    ):
        setattr(obj, attr, stages.wrap(stage, getattr(obj, attr)))
    for fn, stage in (
        (pixels.open_image, "open (headers)"),
        (pixels.count_frames, "open (headers)"),
        (pixels.exif_orientation, "orient"),
        (webp_direct.decode, "decode webp"),  # libwebp called directly (a still WebP's draft)
        (variants.normalise, "convert (mode, ICC)"),
        (tagging.plan, "tag"),
        (cache.sha256, "hash"),
        (fsutil.atomic_write, write_stage),
    ):
        patch_everywhere(fn, stages.wrap(stage, fn))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / ".cache" / "bench-corpus")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "bench-profile")
    ap.add_argument("--originals", default="tag", choices=("tag", "optimize"))
    ap.add_argument("--formats", default=FORMATS_ARG)
    ap.add_argument("--widths", default=WIDTHS_ARG)
    ap.add_argument("--no-cprofile", action="store_true", help="stage timers only")
    args = ap.parse_args()
    images = sorted(p for p in args.corpus.resolve().glob("*") if IMAGE.search(p.name))
    if not images:
        sys.exit(f"no images in {args.corpus} (fetch them with ../shared/corpus/wallpapers.sh)")
    work = args.work.resolve()
    site = fresh_site(images, work / "site")
    cache_dir = work / "cache"
    if cache_dir.exists():
        import shutil

        shutil.rmtree(cache_dir)
    stages = Stages()
    instrument(stages)
    from ssg_dmi.cli import main as ssg_main

    argv = ["build", str(site), "--originals", args.originals, "--widths", args.widths]
    argv += ["--formats", args.formats, "--quality", str(QUALITY), "--jobs", "1"]
    argv += ["--cache-dir", str(cache_dir), "--report", str(work / "report.json")]
    profiler = None if args.no_cprofile else cProfile.Profile()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    code = ssg_main(argv)
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    stages.wall["other"] = wall - sum(stages.wall.values())
    stages.cpu["other"] = cpu - sum(stages.cpu.values())
    stages.wall["write cache"] += stages.wall.pop("cache put", 0.0)
    stages.cpu["write cache"] += stages.cpu.pop("cache put", 0.0)
    print(
        f"{len(images)} images, --originals {args.originals}, --formats {args.formats}, "
        f"--widths {args.widths}, --jobs 1, cProfile {'off' if profiler is None else 'on'}"
    )
    print("\n| stage | CPU s | wall s | share of CPU | calls |\n|---|--:|--:|--:|--:|")
    for stage in (*ORDER, "other"):
        if stage in stages.cpu:
            share = 100 * stages.cpu[stage] / cpu if cpu else 0.0
            print(
                f"| {stage} | {stages.cpu[stage]:.2f} | {stages.wall[stage]:.2f} | "
                f"{share:.1f} % | {stages.calls.get(stage, '')} |"
            )
    print(f"| **total** | **{cpu:.2f}** | **{wall:.2f}** | 100 % | |")
    if profiler is not None:
        stats_path = work / "stages.pstats"
        profiler.dump_stats(stats_path)
        print(f"\ncProfile, top functions by own time (stats in {stats_path}):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    if code:
        print(f"ssg-dmi build exited {code}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
