"""Benchmark `ssg-dmi build` against the peer, @11ty/eleventy-img 7 (sharp/libvips).

Usage: python bench/build.py [--corpus DIR] [--work DIR] [--sample N]   (see bench/README.md)
A benchmark, not a test: it prints figures and the issue's targets beside them, and exits
non-zero only when a tool failed to run.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parent.parent
PEER = REPO.parent / "shared" / "bench" / "eleventy-img.sh"
WIDTHS, FORMATS, QUALITY, REF_WIDTH = (480, 960, 1600), ("webp", "jpeg"), 80, 960
WIDTHS_ARG, FORMATS_ARG = ",".join(map(str, WIDTHS)), ",".join(FORMATS)
SSIM_PKG = "ssimulacra2==0.3.0"
IMAGE = re.compile(r"\.(jpe?g|png|webp|avif|gif|tiff?)$", re.I)  # the peer's own filter
PEER_LINE = re.compile(r"eleventy-img: (\d+) sources, (\d+) files, (\d+) bytes, ([\d.]+) s")
PEER_FILE = re.compile(r"^(.+)-(\d+)\.(\w+)$")  # <hash>-<width>.<format>; hash may hold '-'
VariantKey = tuple[str, int, str]  # (source file name, width, format)
Odd = dict[str, list[str]]  # kind of oddity -> where
MB = 1e6


@dataclass
class Run:
    name: str
    code: int | None = None  # exit code; None: not run
    wall: float = 0.0
    cpu: float = 0.0  # user + sys of the child and every descendant it reaped
    rss: float = 0.0  # ru_maxrss in MB: the largest single process of the tree
    tree: float = 0.0  # sampled peak of the tree's summed PSS in MB: all processes at once
    files: int = 0
    bytes: int = 0
    log: str = ""


def tree_pss_mb(root: int) -> float:
    """Sum of the proportional set size of ``root`` and all its live descendants, in MB."""
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(int(x.split()[1]) for x in rollup.splitlines() if x.startswith("Pss:"))
    return total * 1024 / MB


def run_env(work: Path) -> dict[str, str]:
    """The environment of every measured run: Python may write bytecode (into the work
    folder), as an installed package has it (pip compiles it at install). A shell with
    PYTHONDONTWRITEBYTECODE set would make each run compile ssg-dmi's modules from source
    again: about 0.05 s of a warm build (measured), which no user's install pays."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def measure(run: Run, cmd: list[str], log: Path) -> Run:
    """Run ``cmd``; wall time, CPU and ru_maxrss from os.wait4, tree PSS sampled every 0.2 s."""
    print(f"-- {run.name}: {' '.join(cmd)}", flush=True)
    stop = threading.Event()
    with log.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent, env=run_env(log.parent)
        )

        def sample() -> None:
            while not stop.wait(0.2):
                run.tree = max(run.tree, tree_pss_mb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        run.wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    proc.returncode = run.code = os.waitstatus_to_exitcode(status)
    run.cpu = usage.ru_utime + usage.ru_stime
    run.rss = usage.ru_maxrss * 1024 / MB
    run.tree = max(run.tree, run.rss)  # a run shorter than one sample
    run.log = log.read_text(errors="replace")
    if run.code:
        print(f"   FAILED (exit {run.code}); last lines of {log}:", file=sys.stderr)
        print("   " + "\n   ".join(run.log.splitlines()[-15:]), file=sys.stderr)
    return run


def fresh_site(images: list[Path], site: Path) -> Path:
    """A pristine copy of the corpus as ``site/img/*`` plus a trivial page."""
    shutil.rmtree(site, ignore_errors=True)
    (site / "img").mkdir(parents=True)
    for src in images:
        shutil.copy2(src, site / "img" / src.name)
    tags = "".join(f'<img src="img/{src.name}" alt="">\n' for src in images)
    (site / "index.html").write_text(f"<!doctype html>\n<title>bench</title>\n{tags}")
    return site


def upright(path: Path) -> Image.Image:
    with Image.open(path) as im:
        out = ImageOps.exif_transpose(im)
        return out if out.mode in ("RGB", "RGBA", "L", "LA") else out.convert("RGBA")


def upright_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        w, h = im.size
        return (h, w) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)


def short(name: str) -> str:
    """The corpus names, shorter: ``pkg-dir_Name_contents_images_WxH.png`` -> ``Name_WxH.png``."""
    return name.split("_", 1)[-1].replace("_contents_images", "")


def fmt_name(ext: str) -> str:
    return {"jpg": "jpeg", "tif": "tiff"}.get(ext.lower(), ext.lower())


def ssg_variants(report: dict[str, Any], site: Path) -> dict[VariantKey, tuple[Path, int]]:
    out: dict[VariantKey, tuple[Path, int]] = {}
    for rel, entry in report.get("images", {}).items():
        for v in entry.get("variants", []):
            key = (Path(rel).name, int(v["width"]), fmt_name(v["format"]))
            out[key] = (site / v["path"], int(v["bytes"]))
    return out


def urls(report: dict[str, Any]) -> set[str]:
    return {v["path"] for e in report.get("images", {}).values() for v in e.get("variants", [])}


def check_ssg(report: dict[str, Any], site: Path, sizes: dict[str, tuple[int, int]]) -> Odd:
    """Anything odd in a report, by kind: missing sources, variants, files; wrong sizes, names."""
    odd: Odd = {}
    images: dict[str, Any] = report.get("images", {})
    for name in sorted(set(sizes) - {Path(rel).name for rel in images}):
        odd.setdefault("source not in the report", []).append(name)
    have = ssg_variants(report, site)
    for rel, entry in images.items():
        name, stem = Path(rel).name, Path(rel).stem
        w0, h0 = sizes.get(name, (0, 0))
        for key in sorted({(name, min(w, w0), f) for w in WIDTHS for f in FORMATS}):
            if key not in have:
                odd.setdefault(f"no {key[2]} variant at min(asked, source width)", []).append(
                    f"{rel} {key[1]}w"
                )
        for v in entry.get("variants", []):
            path, width, height, where = site / v["path"], v["width"], v["height"], v["path"]
            if not path.is_file():
                odd.setdefault("variant file missing", []).append(where)
                continue
            with Image.open(path) as im:
                size, real = im.size, fmt_name(im.format or "?")
            problems = {
                "decoded size differs from the report": size != (width, height),
                "aspect ratio off by > 1 px, or upscaled": width > w0
                or abs(height - h0 * width / max(w0, 1)) > 1,
                "width neither asked for nor the source width": width not in (*WIDTHS, w0),
                "format not asked for": real not in FORMATS,
                "format or bytes differ from the report": real != fmt_name(v["format"])
                or path.stat().st_size != v["bytes"],
                "name is not <name or stem>-<width>w.<hash>.<ext>": not re.fullmatch(
                    rf"({re.escape(name)}|{re.escape(stem)})-{width}w\.[\w-]+\.\w+", path.name
                ),
            }
            for kind in (k for k, bad in problems.items() if bad):
                odd.setdefault(kind, []).append(f"{where} ({width}x{height} {real})")
    return odd


def signature(im: Image.Image) -> tuple[float, bytes]:
    small = im.convert("RGB").resize((24, 24), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return im.width / im.height, small.tobytes()


def nearness(sig: tuple[float, bytes], aspect: float, thumb: bytes) -> tuple[bool, int]:
    """Sort key: a matching aspect ratio first, then the squared thumbnail difference."""
    diff = sum((x - y) ** 2 for x, y in zip(sig[1], thumb, strict=True))
    return abs(sig[0] / aspect - 1) > 0.02, diff


def peer_variants(out: Path, sources: list[Path]) -> dict[VariantKey, tuple[Path, int]]:
    """Map eleventy-img's ``<hash>-<width>.<format>`` files to their sources: same aspect
    ratio and the nearest 24x24 thumbnail of the hash's smallest output."""
    groups: dict[str, dict[tuple[int, str], Path]] = {}
    for f in out.iterdir():
        if m := PEER_FILE.match(f.name):
            groups.setdefault(m[1], {})[(int(m[2]), fmt_name(m[3]))] = f
    sigs = {}
    for src in sources:
        with Image.open(src) as im:
            im.draft("RGB", (256, 256))
            sigs[src.name] = signature(ImageOps.exif_transpose(im))
    mapping: dict[VariantKey, tuple[Path, int]] = {}
    for files in groups.values():
        with Image.open(files[min(files)]) as im:
            aspect, thumb = signature(im)
        name = min(sigs, key=lambda k: nearness(sigs[k], aspect, thumb))
        for (width, fmt), path in files.items():
            mapping[(name, width, fmt)] = (path, path.stat().st_size)
    if len(groups) != len({k[0] for k in mapping}):
        print(f"warning: {len(groups)} eleventy-img sources mapped to fewer names", file=sys.stderr)
    return mapping


def ssimulacra2(source: Path, dist: Path) -> float:
    """SSIMULACRA2 of ``dist`` against ``source`` resized (LANCZOS) to ``dist``'s size."""
    from ssimulacra2 import compute_ssimulacra2  # type: ignore[import-untyped]

    with Image.open(dist) as im:
        size = im.size
    ref = upright(source).resize(size, Image.Resampling.LANCZOS).convert("RGB")
    buf = io.BytesIO()
    ref.save(buf, "PPM")
    buf.seek(0)
    return float(compute_ssimulacra2(buf, dist))


def ensure_ssimulacra2() -> None:
    if importlib.util.find_spec("ssimulacra2") is None:
        print(f"installing {SSIM_PKG} into {sys.prefix} (for this benchmark only)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", SSIM_PKG], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / ".cache" / "bench-corpus")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "bench-build")
    ap.add_argument("--sample", type=int, default=12, help="images scored with SSIMULACRA2")
    args = ap.parse_args()
    missing = [tool for tool in ("node", "npm", "bash") if shutil.which(tool) is None]
    if missing or not PEER.is_file():
        sys.exit(f"the peer needs {PEER} and node + npm on PATH; missing: {missing or PEER}")
    ssg = Path(sys.executable).with_name("ssg-dmi")
    ssg = ssg if ssg.is_file() else Path(shutil.which("ssg-dmi") or "/nonexistent")
    if not ssg.is_file():
        sys.exit("ssg-dmi is not installed in this Python's environment: run `make install`")
    ensure_ssimulacra2()
    corpus, work, jobs = args.corpus.resolve(), args.work.resolve(), len(os.sched_getaffinity(0))
    images = sorted(p for p in corpus.glob("*") if p.is_file() and IMAGE.search(p.name))
    if not images:
        sys.exit(f"no images in {corpus} (fetch them with ../shared/corpus/wallpapers.sh)")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sizes = {p.name: upright_size(p) for p in images}
    print(
        f"corpus: {len(images)} images, {sum(p.stat().st_size for p in images) / MB:.1f} MB;"
        f" {jobs} CPUs, load {os.getloadavg()[0]:.2f}; widths {WIDTHS_ARG}, {FORMATS_ARG},"
        f" quality {QUALITY}; work in {work}"
    )
    (work / "empty").mkdir()
    subprocess.run(
        ["bash", str(PEER), str(work / "empty"), str(work / "peer-warmup")],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # installs the peer, unmeasured

    common_opts = ["--widths", WIDTHS_ARG, "--formats", FORMATS_ARG, "--quality", str(QUALITY)]

    def ssg_run(name: str, site: str, originals: str, cache: str) -> tuple[Run, dict[str, Any]]:
        root, report = fresh_site(images, work / site), work / f"report-{site}.json"
        cmd = [str(ssg), "build", str(root), "--originals", originals, *common_opts]
        cmd += ["--jobs", str(jobs), "--cache-dir", str(work / cache), "--report", str(report)]
        run = measure(Run(name), cmd, work / f"{site}.log")
        data = json.loads(report.read_text()) if report.is_file() else {}
        variants = ssg_variants(data, root)
        run.files, run.bytes = len(variants), sum(b for _, b in variants.values())
        return run, data

    cold, rep_cold = ssg_run("ssg-dmi cold, tag", "site-cold", "tag", "cache-tag")
    warm, rep_warm = ssg_run("ssg-dmi warm, tag", "site-warm", "tag", "cache-tag")
    opt, rep_opt = ssg_run("ssg-dmi cold, optimize", "site-optimize", "optimize", "cache-opt")
    peer_out = work / "eleventy-out"
    peer_args = [str(corpus), str(peer_out), WIDTHS_ARG, FORMATS_ARG, str(QUALITY), str(jobs)]
    peer = measure(Run("eleventy-img"), ["bash", str(PEER), *peer_args], work / "eleventy.log")
    line = PEER_LINE.search(peer.log)
    peer_files = list(peer_out.iterdir()) if peer_out.is_dir() else []
    peer.files, peer.bytes = len(peer_files), sum(f.stat().st_size for f in peer_files)
    runs = [cold, warm, opt, peer]

    print(
        f"\n{'run':<24}{'exit':>5}{'wall s':>9}{'CPU s':>9}{'maxRSS MB':>11}{'tree MB':>9}"
        f"{'files':>7}{'variant bytes':>15}"
    )
    for r in runs:
        print(
            f"{r.name:<24}{r.code!s:>5}{r.wall:>9.2f}{r.cpu:>9.2f}{r.rss:>11.0f}{r.tree:>9.0f}"
            f"{r.files:>7}{r.bytes:>15,}"
        )
    if line:
        print(f"eleventy-img's own encode time: {line[4]} s ({line[1]} sources, {line[2]} files)")
    for r, rep in ((cold, rep_cold), (warm, rep_warm), (opt, rep_opt)):
        print(f"{r.name} summary: {json.dumps(rep.get('summary'))}")
    orig = sum(p.stat().st_size for p in images)
    for r, rep in ((cold, rep_cold), (opt, rep_opt)):
        after = sum(e["original"]["bytes"] for e in rep.get("images", {}).values())
        print(f"originals after '{r.name}': {after:,} B ({after / orig:.3f}x of {orig:,} B)")

    peer_map = peer_variants(peer_out, images) if peer_files else {}
    ours = ssg_variants(rep_cold, work / "site-cold")
    common = sorted(set(ours) & set(peer_map))
    ours_common = sum(ours[k][1] for k in common)
    peer_common = sum(peer_map[k][1] for k in common)
    print(
        f"variants: ssg-dmi {len(ours)}, eleventy-img {len(peer_map)}, in both {len(common)}"
        f" (same source, width, format): {ours_common:,} B vs {peer_common:,} B"
    )
    for label, only in (
        ("ssg-dmi", set(ours) - set(peer_map)),
        ("eleventy", set(peer_map) - set(ours)),
    ):
        if only:
            print(
                f"  only {label} ({len(only)}): "
                + ", ".join(f"{short(n)} {w} {f}" for n, w, f in sorted(only)[:8])
                + (" …" if len(only) > 8 else "")
            )

    wide = [p for p in images if sizes[p.name][0] >= REF_WIDTH]
    n = min(args.sample, len(wide))
    sample = [wide[i * len(wide) // n] for i in range(n)]
    scores: list[tuple[float, float]] = []
    if sample and ours and peer_map:
        print(f"\nSSIMULACRA2 of the {REF_WIDTH}w WebP (reference: source, LANCZOS, RGB)")
        print(f"{'source':<36}{'ssg-dmi':>9}{'bytes':>9}{'eleventy':>10}{'bytes':>9}")
    for src in sample if ours and peer_map else []:
        key = (src.name, REF_WIDTH, "webp")
        if key not in ours or key not in peer_map:
            print(f"{short(src.name):<36} (no {REF_WIDTH}w webp from one of the tools)")
            continue
        pair = (ssimulacra2(src, ours[key][0]), ssimulacra2(src, peer_map[key][0]))
        scores.append(pair)
        print(
            f"{short(src.name):<36}{pair[0]:>9.2f}{ours[key][1]:>9,}{pair[1]:>10.2f}"
            f"{peer_map[key][1]:>9,}"
        )

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.3f}x" if a and b else "n/a"

    both = cold.code == 0 and peer.code == 0
    s_ours = sum(s[0] for s in scores) / len(scores) if scores else 0.0
    s_peer = sum(s[1] for s in scores) / len(scores) if scores else 0.0
    peak = max(r.tree for r in (cold, warm, opt))
    ssg_ok = cold.code == warm.code == opt.code == 0
    rows = [
        # Issue 13's target (0.4x its goal); the earlier one was 0.6x.
        ("cold wall, tag: ssg-dmi / eleventy-img", ratio(cold.wall, peer.wall), "<= 0.45x",
         both and cold.wall <= 0.45 * peer.wall, both),
        ("  cold CPU, tag (steadier on a busy machine)", ratio(cold.cpu, peer.cpu), "-", None,
         both),
        ("variant bytes: ssg-dmi / eleventy-img", ratio(cold.bytes, peer.bytes), "<= 1.0x",
         cold.bytes <= peer.bytes, both),
        ("  the same variants only", ratio(ours_common, peer_common), "<= 1.0x",
         ours_common <= peer_common, bool(common)),
        (f"SSIMULACRA2 mean of {len(scores)}: {s_ours:.2f} vs {s_peer:.2f}",
         f"{s_ours - s_peer:+.2f}", ">= -1.0", s_ours - s_peer >= -1.0, bool(scores)),
        ("warm / cold wall, tag", f"{warm.wall / cold.wall:.1%}" if cold.wall else "n/a",
         "<= 3 %", warm.wall <= 0.03 * cold.wall, ssg_ok),
        ("peak memory of an ssg-dmi run (tree PSS)", f"{peak:.0f} MB", "<= 1536 MB",
         peak <= 1536, ssg_ok),
    ]  # fmt: skip
    print(f"\n{'figure':<50}{'measured':>10}{'target':>12}  verdict")
    for label, value, target, ok, valid in rows:  # ok None: a figure with no target
        verdict = "n/a" if not valid else "" if ok is None else "met" if ok else "MISSED"
        print(f"{label:<50}{value:>10}{target:>12}  {verdict}")

    odd = check_ssg(rep_cold, work / "site-cold", sizes) if rep_cold else {}
    if urls(rep_warm) != urls(rep_cold):
        odd["warm run's variants differ from the cold run's"] = sorted(
            urls(rep_warm) ^ urls(rep_cold)
        )
    if odd:
        print("\nodd in ssg-dmi's output (cold, tag):")
    for kind, where in odd.items():
        print(f"  {kind} ({len(where)}): {', '.join(where[:2])}{', …' if len(where) > 2 else ''}")
    return 1 if any(r.code != 0 for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
