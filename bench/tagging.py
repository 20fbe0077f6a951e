"""Measure tagging: XMP overhead per format and the time to tag a folder in each mode.

Usage: python bench/tagging.py CORPUS_DIR [N=50]
A benchmark, not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import io
import resource
import sys
import time
from pathlib import Path

from PIL import Image

from ssg_dmi.images import containers
from ssg_dmi.images.tagging import tag_bytes
from ssg_dmi.policy import ImagePolicy, Rights
from ssg_dmi.settings import QUALITY_DEFAULTS
from ssg_dmi.walk import walk_images

POLICY = ImagePolicy(
    rights=Rights(
        copyright="© 2026 Ana Example. All rights reserved.",
        creators=("Ana Example",),
        credit="Ana Example Photography",
        web_statement="https://example.org/licensing",
    )
)


def bare(fmt: str) -> bytes:
    """A small image of ``fmt`` with no metadata at all."""
    im = Image.new("RGB", (64, 48), (200, 120, 40))
    buf = io.BytesIO()
    if fmt == "SVG":
        return b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"/>'
    im.save(buf, fmt)
    return buf.getvalue()


def overhead() -> None:
    print("XMP overhead, DMI + four rights fields (bytes added to a file with no metadata):")
    for fmt, ext in [
        ("JPEG", "jpg"),
        ("PNG", "png"),
        ("WEBP", "webp"),
        ("AVIF", "avif"),
        ("GIF", "gif"),
        ("TIFF", "tif"),
        ("SVG", "svg"),
    ]:
        source = bare(fmt)
        fmt_enum = containers.sniff(source)
        assert fmt_enum is not None
        packet_only = tag_bytes(
            source,
            ImagePolicy(dmi=POLICY.dmi, rights=POLICY.rights),
            name="a." + ext,
            lossless=True,
            max_pixels=10**8,
            quality=QUALITY_DEFAULTS,
        )
        # the EXIF mirror (Artist/Copyright) is counted separately
        xmp_only = containers.write(
            fmt_enum, source, containers.read(fmt_enum, packet_only.data).xmp or b"", None, False
        )
        print(
            f"  {fmt:5} XMP {len(xmp_only) - len(source):5} B, "
            f"XMP+EXIF mirror {len(packet_only.data) - len(source):5} B"
        )


def timing(folder: Path, count: int) -> None:
    files = sorted(walk_images(folder))[:count]
    total = sum(p.stat().st_size for p in files)
    print(f"\nTagging {len(files)} images ({total / 1e6:.1f} MB) from {folder}, one process:")
    for lossless in (True, False):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        out_bytes, failed = 0, 0
        for path in files:
            try:
                result = tag_bytes(
                    path.read_bytes(),
                    POLICY,
                    name=path.name,
                    lossless=lossless,
                    max_pixels=128_000_000,
                    quality=QUALITY_DEFAULTS,
                )
                out_bytes += len(result.data)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports, never stops
                failed += 1
                print(f"  failed: {path.name}: {exc}")
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        mode = "lossless " if lossless else "re-encode"
        print(
            f"  {mode}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
            f"{total / 1e6:.1f} -> {out_bytes / 1e6:.1f} MB, {failed} failed"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    overhead()
    if len(sys.argv) > 1:
        timing(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 50)
