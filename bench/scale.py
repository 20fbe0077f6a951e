"""Scaling benchmark: does the cost of `ssg-dmi build` per image stay flat as sites grow?

Usage (see bench/README.md, "Scaling"):

    python bench/scale.py [--sizes 1000,4000,16000] [--work DIR] [--jobs 2] [--check]
    python bench/scale.py --dry-run 100000 [--work DIR] [--jobs 1]

Sizes mode: for each size a generated site of that many distinct 320x240 JPEGs, 20 per
page, is copied fresh and built twice with the CLI, `ssg-dmi build SITE --jobs N` and a
cache of its own: cold (empty cache) and warm (the same command again over the built
site: nothing changed). Each row: seconds and milliseconds per image, the warm/cold
ratio, and the peak resident memory of the driver and of the largest worker.

Dry-run mode: a site of N files of a few bytes each (and pages showing them) is built by
the real CLI in one process (or with `--jobs N` workers) with the pixel work stubbed
(`job.render` returns the bytes as the original and one synthetic variant): the walk,
hashing, planning, cache writes and lookups, placing, page rewriting and site files all
run for real. Cold then warm, with the driver's peak memory.

A benchmark, not a test: it prints figures (and the issue's targets beside them) and
exits non-zero only when a build failed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from build import run_env  # bench/build.py: runs with bytecode, as an installed package has it

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "ssg_dmi.cli"]
PER_PAGE = 20
PAGES_PER_FOLDER = 50  # 1,000 images per folder
MB = 1024 * 1024


@dataclass
class Run:
    name: str
    code: int = 0
    wall: float = 0.0
    driver_mb: float = 0.0  # peak RSS (VmHWM) of the ssg-dmi process
    worker_mb: float = 0.0  # the largest peak RSS among its worker processes
    # ru_maxrss from wait4: the largest single process, but (Linux) never less than the RSS
    # this process had when it forked that one
    tree_mb: float = 0.0
    log: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def measure(name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``cmd``; wall time, exact ru_maxrss from wait4, and the VmHWM (peak RSS) of the
    process and of each child, sampled every 0.1 s (VmHWM only grows, so a sample close to
    the end is exact up to growth in the last 0.1 s)."""
    run = Run(name)
    stop = threading.Event()
    print(f"-- {name}: {' '.join(map(str, cmd))}", flush=True)
    with log.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**run_env(log.parent), **(env or {})},
        )
        peaks: dict[int, int] = {}

        def sample() -> None:
            while not stop.wait(0.1):
                peaks[proc.pid] = max(peaks.get(proc.pid, 0), _hwm_kb(proc.pid))
                for kid in _children(proc.pid):
                    peaks[kid] = max(peaks.get(kid, 0), _hwm_kb(kid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        run.wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    proc.returncode = run.code = os.waitstatus_to_exitcode(status)
    run.tree_mb = usage.ru_maxrss / 1024
    run.driver_mb = peaks.get(proc.pid, 0) / 1024 or run.tree_mb
    run.worker_mb = max((v for k, v in peaks.items() if k != proc.pid), default=0) / 1024
    run.log = log.read_text(errors="replace")
    if run.code:
        print(f"   FAILED (exit {run.code}); last lines of {log}:", file=sys.stderr)
        print("   " + "\n   ".join(run.log.splitlines()[-15:]), file=sys.stderr)
    return run


# --- generated sites -------------------------------------------------------------------


def _bases() -> list[Any]:
    """A few photo-like 320x240 backgrounds (smoothed noise), made once."""
    from PIL import Image, ImageFilter

    out: list[Any] = []
    for seed in range(8):
        noise = Image.effect_noise((80, 60), 40 + 8 * seed).convert("RGB")
        tint = Image.new("RGB", (80, 60), (40 * seed % 256, 90, 200 - 20 * seed))
        small = Image.blend(noise, tint, 0.5).filter(ImageFilter.GaussianBlur(2))
        out.append(small.resize((320, 240), Image.Resampling.BICUBIC))
    return out


def jpeg(index: int, bases: list[Any]) -> bytes:
    """A distinct 320x240 JPEG (about 10 KB): a background and a mark unique to ``index``."""
    from PIL import ImageDraw

    im = bases[index % len(bases)].copy()
    draw = ImageDraw.Draw(im)
    x, y = (index * 7) % 280, (index * 13) % 200
    draw.rectangle((x, y, x + 40, y + 40), fill=(index % 251, (index // 251) % 251, 128))
    draw.text((8, 8), str(index), fill=(255, 255, 255))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def page(title: str, srcs: list[str]) -> str:
    imgs = "\n".join(f'<p><img src="{s}" alt="image {s}"></p>' for s in srcs)
    return (
        f"<!doctype html>\n<html><head><meta charset=utf-8><title>{title}</title></head>\n"
        f"<body><h1>{title}</h1>\n{imgs}\n</body></html>\n"
    )


def make_site(root: Path, count: int, tiny: bool = False) -> Path:
    """``root`` holding ``count`` distinct images in folders of 1,000, 20 per page, an index
    page per folder and a home page. ``tiny``: files of a few bytes instead of JPEGs."""
    done = root / ".complete"
    if done.is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    bases = [] if tiny else _bases()
    folders = []
    for first in range(0, count, PER_PAGE):
        folder = f"g{first // (PER_PAGE * PAGES_PER_FOLDER):03d}"
        where = root / folder
        if folder not in folders:
            (where / "img").mkdir(parents=True)
            folders.append(folder)
        srcs = []
        for i in range(first, min(first + PER_PAGE, count)):
            name = f"img/i{i:06d}.jpg"
            data = f"img {i}\n".encode() if tiny else jpeg(i, bases)
            (where / name).write_bytes(data)
            srcs.append(name)
        (where / f"p{first // PER_PAGE:05d}.html").write_text(page(f"page {first}", srcs))
    for folder in folders:
        links = sorted(p.name for p in (root / folder).glob("*.html"))
        body = "\n".join(f'<a href="{n}">{n}</a>' for n in links)
        (root / folder / "index.html").write_text(f"<!doctype html><title>{folder}</title>{body}")
    home = "\n".join(f'<a href="{f}/index.html">{f}</a>' for f in folders)
    (root / "index.html").write_text(f"<!doctype html><title>home</title>{home}")
    done.write_text("")
    return root


def discard(path: Path) -> None:
    """Move ``path`` into the work folder's trash, emptied when the benchmark ends.

    Not deleted here: on ext4 without a journal (this machine's disk) the inode allocator
    steps over the inodes freed in the last minute or more, reading each one's table block,
    whenever it creates a file. Deleting the last run's 25,000-image site and cache right
    before a cold dry run made it take 28.8 s instead of 11-13.5 s (`perf` of a
    file-creating loop after such a delete: most of the time in the kernel's
    `recently_deleted`), a cost of the benchmark, not of the build.
    """
    if not path.exists():
        return
    trash = path.parent / "trash"
    trash.mkdir(exist_ok=True)
    path.rename(trash / f"{path.name}-{time.time_ns()}")


def empty_trash(work: Path) -> None:
    shutil.rmtree(work / "trash", ignore_errors=True)


def fresh_copy(pristine: Path, site: Path) -> Path:
    discard(site)
    shutil.copytree(pristine, site, ignore=shutil.ignore_patterns(".complete"))
    return site


# --- sizes mode ------------------------------------------------------------------------


def summary(report: Path) -> dict[str, int]:
    try:
        return dict(json.loads(report.read_text())["images"]["summary"])
    except (OSError, ValueError, KeyError):
        try:
            return dict(json.loads(report.read_text())["summary"])
        except (OSError, ValueError, KeyError):
            return {}


def sizes_mode(args: argparse.Namespace) -> int:
    work: Path = args.work
    rows = []
    failed = False
    for count in args.sizes:
        pristine = make_site(work / f"pristine-{count}", count)
        site = fresh_copy(pristine, work / f"site-{count}")
        cache = work / f"cache-{count}"
        discard(cache)
        runs = []
        for kind in ("cold", "warm"):
            report = work / f"report-{count}-{kind}.json"
            cmd = [*CLI, "build", str(site), "--jobs", str(args.jobs)]
            cmd += ["--cache-dir", str(cache), "--report", str(report), "--no-progress"]
            run = measure(f"{count} {kind}", cmd, work / f"build-{count}-{kind}.log")
            run.extra = {k: float(v) for k, v in summary(report).items()}
            failed |= run.code != 0
            runs.append(run)
        if args.check:
            cmd = [*CLI, "check", str(site), "--max-pages", str(count), "--max-images"]
            cmd += [str(count * 4), "--format", "json"]
            run = measure(f"{count} check", cmd, work / f"check-{count}.log")
            runs.append(run)
        rows.append((count, runs))
        print_table(rows, args)
    return 1 if failed else 0


def print_table(rows: list[tuple[int, list[Run]]], args: argparse.Namespace) -> None:
    print(f"\njobs={args.jobs}; 320x240 JPEGs, {PER_PAGE} per page; times are wall clock")
    head = "| images | cold s | cold ms/img | warm s | warm ms/img | warm/cold "
    head += "| driver MB cold/warm | worker MB | "
    if args.check:
        head += "check s | check ms/img | check MB |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    base: tuple[float, float, float] | None = None
    for count, runs in rows:
        cold, warm = runs[0], runs[1]
        c, w = cold.wall * 1000 / count, warm.wall * 1000 / count
        line = f"| {count:,} | {cold.wall:.1f} | {c:.2f} | {warm.wall:.2f} | {w:.3f} "
        line += f"| {100 * warm.wall / cold.wall:.1f} % "
        line += f"| {cold.driver_mb:.0f} / {warm.driver_mb:.0f} | {cold.worker_mb:.0f} | "
        k = 0.0
        if args.check:
            chk = runs[2]
            k = chk.wall * 1000 / count
            line += f"{chk.wall:.1f} | {k:.2f} | {chk.driver_mb:.0f} |"
        print(line)
        base = base or (c, w, k)
    if len(rows) > 1 and base:
        count, runs = rows[-1]
        c, w = runs[0].wall * 1000 / count, runs[1].wall * 1000 / count
        ratio = f"per-image cost {count:,} / {rows[0][0]:,}: cold {c / base[0]:.2f}x, "
        ratio += f"warm {w / base[1]:.2f}x"
        if args.check:
            ratio += f", check {runs[2].wall * 1000 / count / base[2]:.2f}x"
        print(ratio + "   (target: within 1.3x; warm <= 5 % of cold)")
    for _count, runs in rows:
        for run in runs[:2]:
            if run.extra:
                s = run.extra
                print(
                    f"   {run.name}: {s.get('images', 0):.0f} images, "
                    f"{s.get('cache_hits', 0):.0f} from cache, "
                    f"{s.get('files_written', 0):.0f} files written"
                )


# --- dry-run mode ----------------------------------------------------------------------


def stub_and_build(argv: list[str]) -> int:
    """In the child: the CLI with `job.render` stubbed (no pixels), then report figures:
    the wall time and this process's own peak RSS (VmHWM, not ``ru_maxrss``: see
    :func:`dry_mode`)."""
    from types import SimpleNamespace

    from ssg_dmi.build import job
    from ssg_dmi.build.cache import Output, sha256
    from ssg_dmi.cli import main

    def render(data: bytes, name: str, policy: object, options: object) -> object:
        variant = b"variant of " + data
        pairs = [
            (Output("original", 320, 240, "jpeg", sha256(data), len(data), ""), data),
            (Output("variant", 320, 240, "webp", sha256(variant), len(variant), ""), variant),
        ]
        return pairs, SimpleNamespace(notes=()), False

    job.render = render  # type: ignore[assignment]
    t0 = time.perf_counter()
    code = main(argv)
    wall = time.perf_counter() - t0
    peak = _hwm_kb(os.getpid()) / 1024
    print(f"DRY wall={wall:.2f} peak_mb={peak:.1f}", flush=True)
    return code


def dry_mode(args: argparse.Namespace) -> int:
    work: Path = args.work
    counts = [args.dry_run // 4, args.dry_run // 2, args.dry_run]
    rows = []
    for count in counts:
        pristine = make_site(work / f"tiny-{count}", count, tiny=True)
        site = fresh_copy(pristine, work / f"tiny-site-{count}")
        cache = work / f"tiny-cache-{count}"
        discard(cache)
        runs = []
        for kind in ("cold", "warm"):
            report = work / f"tiny-report-{count}-{kind}.json"
            argv = ["build", str(site), "--jobs", str(args.jobs), "--cache-dir", str(cache)]
            argv += ["--report", str(report), "--no-progress"]
            cmd = [sys.executable, str(Path(__file__).resolve()), "--stub-child", *argv]
            log = work / f"tiny-{count}-{kind}.log"
            run = measure(f"dry {count} {kind}", cmd, log)
            if run.code:
                return 1
            # The child's own VmHWM, as it read it at the end. Not wait4's ru_maxrss: Linux
            # carries into a child's ru_maxrss the RSS of the parent it was forked from (this
            # process, holding the last report it read), and the sampled VmHWM may miss the
            # last 0.1 s.
            found = re.search(r"DRY wall=[\d.]+ peak_mb=([\d.]+)", log.read_text())
            run.driver_mb = float(found[1]) if found else run.driver_mb
            s = summary(report)
            print(f"   {s.get('images')} images, {s.get('cache_hits')} from cache")
            runs.append(run)
        rows.append((count, runs))
    print(f"\nDry run, pixels stubbed, --jobs {args.jobs}: walk, hash, plan, cache, place, pages")
    print("| images | cold s | cold µs/img | warm s | warm µs/img | driver MB cold / warm |")
    print("|---|---|---|---|---|---|")
    for count, (cold, warm) in rows:
        print(
            f"| {count:,} | {cold.wall:.1f} | {cold.wall * 1e6 / count:.0f} | {warm.wall:.1f} "
            f"| {warm.wall * 1e6 / count:.0f} | {cold.driver_mb:.0f} / {warm.driver_mb:.0f} |"
        )
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--stub-child":
        return stub_and_build(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,4000",
        type=lambda s: [int(x) for x in s.split(",")],
        help="image counts (default 1000,4000; the README table adds 16000)",
    )
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "bench-scale")
    parser.add_argument(
        "--jobs",
        type=int,
        help="workers (default: 2 for the sizes; 1 for the dry run, the driver alone)",
    )
    parser.add_argument("--check", action="store_true", help="also time `ssg-dmi check`")
    parser.add_argument("--dry-run", type=int, metavar="N", help="the stubbed N-image run")
    args = parser.parse_args()
    if args.jobs is None:
        args.jobs = 1 if args.dry_run else 2
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        if args.dry_run:
            return dry_mode(args)
        return sizes_mode(args)
    finally:
        empty_trash(args.work)  # after the measurements (see `discard`)


if __name__ == "__main__":
    raise SystemExit(main())
