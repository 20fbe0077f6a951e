"""Would a pyvips pixel backend pay? Our Pillow cascade against libvips' thumbnail, per image.

Usage: python bench/vips.py [--corpus DIR] [--work DIR] [--sample N] [--small N]
                                                                   (see bench/README.md)

Needs ``pyvips`` and ``pyvips-binary`` installed in this Python's environment by hand
(``pip install pyvips-binary pyvips``); they are no dependency of ssg-dmi. Both sides run in
this process, one image at a time, libvips with one thread (VIPS_CONCURRENCY=1), and make
the same variants: the (width, format) pairs our cascade makes for widths 480, 960, 1600 and
formats webp, jpeg at quality 80 (WebP method/effort 4, progressive optimised JPEG), without
metadata.

- Pillow: ``pixels.decode_upright`` (JPEG draft to the largest width), ``variants.normalise``,
  ``variants.still_variants`` (bicubic down the chain) -- what ``ssg-dmi build`` runs.
- libvips: ``thumbnail_buffer`` to the largest width (shrink-on-load for JPEG and WebP,
  autorotate), then a cubic ``resize`` down the chain; an alpha band that is opaque everywhere
  is dropped (as ``normalise`` does), ``webpsave``/``jpegsave``.

Prints CPU seconds (process time, all threads) and bytes per source format, the
SSIMULACRA2 of each side's 960w WebP for ``--sample`` images (the reference of
bench/build.py: the source, LANCZOS to the variant's size), interpreter start-up with each
library imported, and the same for ``--small`` images re-saved at 800 px wide (a site of
small images). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import IMAGE, QUALITY, REF_WIDTH, REPO, WIDTHS, ensure_ssimulacra2, ssimulacra2  # noqa: E402
from PIL import Image  # noqa: E402

from ssg_dmi.build.job import _formats_for  # noqa: E402
from ssg_dmi.images import pixels, variants  # noqa: E402
from ssg_dmi.images.containers import Format  # noqa: E402

FORMATS = ("webp", "jpeg")
Q = {"webp": QUALITY, "jpeg": QUALITY, "png": QUALITY, "avif": QUALITY}
MAX_PIXELS = 400_000_000
FMT = {".jpg": Format.JPEG, ".jpeg": Format.JPEG, ".png": Format.PNG, ".webp": Format.WEBP}
Made = dict[tuple[int, str], tuple[int, int, bytes]]  # (width, format) -> (w, h, data)


def pillow_side(data: bytes, fmt: Format) -> Made:
    with Image.open(io.BytesIO(data)) as probe:
        w, h = probe.size
        if pixels.exif_orientation(probe) in (5, 6, 7, 8):
            w, h = h, w
    widths = variants.plan_widths(w, WIDTHS)
    draft = (widths[0], variants.height_for(widths[0], (w, h)))
    still = variants.normalise(pixels.decode_upright(data, fmt, MAX_PIXELS, draft), False)
    formats = _formats_for(still, FORMATS)
    made = variants.still_variants(still, widths, formats, Q, original=(w, fmt.value))
    return {(v.width, v.format): (v.width, v.height, v.data) for v in made.variants}


def vips_side(data: bytes, wanted: list[tuple[int, str]]) -> Made:
    import pyvips  # type: ignore[import-untyped]

    out: Made = {}
    widths = sorted({w for w, _ in wanted}, reverse=True)
    im = pyvips.Image.thumbnail_buffer(data, widths[0], height=10_000_000, size="down")
    im = im.copy_memory()  # read once (the loaders are sequential), then reused per width
    if im.hasalpha() and im.bands == 4 and im[3].min() == 255:
        im = im[:3]
    for width in widths:
        if im.width != width:
            im = im.resize(width / im.width, kernel="cubic").copy_memory()
        for w, fmt in wanted:
            if w != width:
                continue
            if fmt == "webp":
                blob = im.webpsave_buffer(Q=QUALITY, effort=4, keep="none")
            else:
                blob = im.jpegsave_buffer(
                    Q=QUALITY, optimize_coding=True, interlace=True, keep="none"
                )
            out[(w, fmt)] = (im.width, im.height, blob)
    return out


def run_corpus(images: list[Path], label: str) -> dict[str, Made]:
    cpu: dict[str, list[float]] = {"pillow": [0.0], "vips": [0.0]}
    by_fmt: dict[tuple[str, str], float] = defaultdict(float)
    size: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    made: dict[str, Made] = {}
    for path in images:
        data, fmt = path.read_bytes(), FMT[path.suffix.lower()]
        t0 = time.process_time()
        ours = pillow_side(data, fmt)
        t1 = time.process_time()
        theirs = vips_side(data, sorted(ours))
        t2 = time.process_time()
        by_fmt["pillow", fmt.value] += t1 - t0
        by_fmt["vips", fmt.value] += t2 - t1
        count[fmt.value] += 1
        size["pillow"] += sum(len(d) for *_, d in ours.values())
        size["vips"] += sum(len(d) for *_, d in theirs.values())
        made[path.name + ":pillow"], made[path.name + ":vips"] = ours, theirs
        cpu["pillow"][0] += t1 - t0
        cpu["vips"][0] += t2 - t1
    made_ours = sum(len(m) for k, m in made.items() if k.endswith(":pillow"))
    print(f"\n{label}: {len(images)} images, {made_ours} variants each side")
    print("| source format | images | Pillow CPU s | libvips CPU s | libvips / Pillow |")
    print("|---|--:|--:|--:|--:|")
    for f in sorted(count):
        p, v = by_fmt["pillow", f], by_fmt["vips", f]
        print(f"| {f} | {count[f]} | {p:.2f} | {v:.2f} | {v / p:.2f}× |")
    p, v = cpu["pillow"][0], cpu["vips"][0]
    print(f"| **all** | {len(images)} | **{p:.2f}** | **{v:.2f}** | **{v / p:.2f}×** |")
    print(
        f"bytes: Pillow {size['pillow'] / 1e6:.2f} MB, libvips {size['vips'] / 1e6:.2f} MB "
        f"({size['vips'] / size['pillow']:.3f}×)"
    )
    return made


def startup() -> None:
    def best(code: str) -> float:
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - t0)
        return min(times)

    bare = best("pass")
    pil = best("from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin")
    vips = best("import pyvips; pyvips.Image.black(1, 1).webpsave_buffer()")
    ssg = best("import ssg_dmi.build.pipeline")
    print(
        f"\nstart-up (best of 7, wall): python {bare * 1000:.0f} ms; + Pillow codecs "
        f"{(pil - bare) * 1000:.0f} ms; + pyvips and libvips (first save) "
        f"{(vips - bare) * 1000:.0f} ms; + ssg_dmi.build.pipeline {(ssg - bare) * 1000:.0f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / ".cache" / "bench-corpus")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "bench-vips")
    ap.add_argument("--sample", type=int, default=12, help="images scored with SSIMULACRA2")
    ap.add_argument("--small", type=int, default=30, help="images in the small-image site")
    args = ap.parse_args()
    import pyvips

    print(
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, "
        f"VIPS_CONCURRENCY={os.environ['VIPS_CONCURRENCY']}, load {os.getloadavg()[0]:.2f}"
    )
    pyvips.cache_set_max(0)
    images = sorted(p for p in args.corpus.resolve().glob("*") if IMAGE.search(p.name))
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    made = run_corpus(images, "corpus")

    ensure_ssimulacra2()
    wide = []
    for p in images:
        ours = made[p.name + ":pillow"]
        if (REF_WIDTH, "webp") in ours and ours[REF_WIDTH, "webp"][0] == REF_WIDTH:
            wide.append(p)
    n = min(args.sample, len(wide))
    diffs = []
    print(f"\nSSIMULACRA2 of the {REF_WIDTH}w WebP (reference: source, LANCZOS, RGB)")
    print("| source | Pillow | bytes | libvips | bytes |\n|---|--:|--:|--:|--:|")
    for src in [wide[i * len(wide) // n] for i in range(n)]:
        row = []
        for side in ("pillow", "vips"):
            _, _, blob = made[f"{src.name}:{side}"][REF_WIDTH, "webp"]
            dist = work / f"{src.name}.{side}.webp"
            dist.write_bytes(blob)
            row += [ssimulacra2(src, dist), len(blob)]
        diffs.append(row[2] - row[0])
        print(f"| {src.name[-40:]} | {row[0]:.2f} | {row[1]} | {row[2]:.2f} | {row[3]} |")
    if diffs:
        print(f"mean libvips − Pillow: {statistics.mean(diffs):+.2f} points")

    small_dir = work / "small"
    small_dir.mkdir()
    for src in images[: args.small]:
        with Image.open(src) as im:
            im = im.convert("RGB")
            im = im.resize((800, variants.height_for(800, im.size)), Image.Resampling.LANCZOS)
            im.save(small_dir / (src.stem + ".jpg"), quality=90)
    run_corpus(sorted(small_dir.glob("*.jpg")), "small images (800 px JPEG)")
    startup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
