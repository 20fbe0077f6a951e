"""A small site: does a process pool pay? `ssg-dmi build` with --jobs 1, --jobs 2 and a thread
pool (through the API), cold, each a fresh process.

Usage: python bench/small_site.py [--corpus DIR] [--work DIR] [--images 10] [--repeat 3]
                                                                    (see bench/README.md)

Two sites of ``--images`` images: "photos" (sources picked evenly from the sorted corpus,
full size) and "small" (the same, JPEG re-saved at 800 px wide, a blog's images). Every run
starts from a pristine copy with ``--no-cache``; widths 480, 960, 1600, webp + jpeg, q80,
``--originals tag``. Wall and CPU (user + sys of the process and the workers it reaped,
os.wait4); the best and the median of ``--repeat`` runs, the modes interleaved.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import FORMATS_ARG, IMAGE, QUALITY, REPO, WIDTHS_ARG, fresh_site  # noqa: E402
from PIL import Image  # noqa: E402

THREADS = """
import sys
from concurrent.futures import ThreadPoolExecutor
from ssg_dmi.api import build_site, load_settings
settings = load_settings({"widths": [%s], "formats": [%s], "quality": %d,
                          "originals": "tag", "cache": False})
with ThreadPoolExecutor(2) as pool:
    report = build_site(sys.argv[1], settings, executor=pool, progress=False)
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    pid = os.spawnv(os.P_NOWAIT, cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if status:
        sys.exit(f"{' '.join(cmd)} exited with status {status}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / ".cache" / "bench-corpus")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "bench-small")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    corpus = sorted(p for p in args.corpus.resolve().glob("*") if IMAGE.search(p.name))
    n = min(args.images, len(corpus))
    picked = [corpus[i * len(corpus) // n] for i in range(n)]
    work = args.work.resolve()
    small = work / "small-src"
    small.mkdir(parents=True, exist_ok=True)
    for src in picked:
        with Image.open(src) as im:
            rgb = im.convert("RGB")
            rgb = rgb.resize((800, round(rgb.height * 800 / rgb.width)), Image.Resampling.LANCZOS)
            rgb.save(small / f"{src.stem}.jpg", quality=90)
    ssg = str(Path(sys.executable).with_name("ssg-dmi"))
    common = ["--widths", WIDTHS_ARG, "--formats", FORMATS_ARG, "--quality", str(QUALITY)]
    common += ["--originals", "tag", "--no-cache"]
    widths, formats = WIDTHS_ARG, ", ".join(f'"{f}"' for f in FORMATS_ARG.split(","))
    threads = THREADS % (widths, formats, QUALITY)
    modes = {
        "--jobs 1": lambda site: [ssg, "build", str(site), *common, "--jobs", "1"],
        "--jobs 2": lambda site: [ssg, "build", str(site), *common, "--jobs", "2"],
        "2 threads (API)": lambda site: [sys.executable, "-c", threads, str(site)],
    }
    print(f"{n} images; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print("| site | mode | wall s (best) | wall s (median) | CPU s (median) |")
    print("|---|---|--:|--:|--:|")
    for label, sources in (("photos", picked), ("small (800 px)", sorted(small.glob("*.jpg")))):
        figures: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
        for _ in range(args.repeat):
            for mode, cmd in modes.items():
                site = fresh_site(sources, work / "site")
                figures[mode].append(timed(cmd(site)))
        for mode, runs in figures.items():
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            print(
                f"| {label} | {mode} | {min(walls):.2f} | {statistics.median(walls):.2f} | "
                f"{statistics.median(cpus):.2f} |"
            )
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
