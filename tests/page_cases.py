"""Images and checks shared by the page-rewriting tests."""

from __future__ import annotations

import re

from ssg_dmi.pages.context import ImageInfo, PageContext, Variant
from ssg_dmi.pages.tokens import iter_tags
from ssg_dmi.pages.urls import document_dir, page_dir, resolve_url, site_path, split_base


def image_info(
    stem: str, ext: str, fmt: str, w: int, h: int, variants: dict[str, list[int]]
) -> ImageInfo:
    """An image and its variants ``{stem}-{width}.{ext}`` per format."""
    exts = {"webp": "webp", "jpeg": "jpg", "png": "png", "avif": "avif"}
    return ImageInfo(
        w,
        h,
        fmt,
        tuple(
            Variant(f"{stem}-{vw}.{exts[f]}", vw, round(vw * h / w), f)
            for f, widths in variants.items()
            for vw in widths
        ),
    )


A = image_info("img/a", "jpg", "jpeg", 1600, 1200, {"webp": [480, 960], "jpeg": [480, 960]})
IMAGES = {
    "img/a.jpg": A,
    "img/b.png": image_info("img/b", "png", "png", 800, 600, {"png": [400], "webp": [400]}),
    "img/c.gif": ImageInfo(320, 200, "gif", ()),
    "img/a b,c'd é.jpg": image_info("img/a b,c'd é", "jpg", "jpeg", 1000, 500, {"webp": [500]}),
    "img/my photo.jpg": image_info("img/my photo", "jpg", "jpeg", 1000, 500, {"webp": [500]}),
    "img/100%.jpg": image_info("img/100%", "jpg", "jpeg", 1000, 500, {"webp": [500]}),
    "etc/passwd": A,
}


_CANDIDATE = re.compile(r"(\S+) (\d+)w")


def check_srcsets(before: str, out: str, c: PageContext) -> int:
    """Every candidate we wrote names a real variant (or original) at its real width."""
    names = frozenset({"img", "source"})
    author = {t.get("srcset") for t in iter_tags(before, names)}
    widths: dict[str, int] = {}
    for path, info in c.images.items():
        widths[path] = info.width
        for v in info.variants:
            widths[v.path] = v.width
    base = split_base(c.base_url)
    directory = document_dir(out, page_dir(c.page_path, base))
    count = 0
    for tag in iter_tags(out, names):
        srcset = tag.get("srcset")
        if tag.closing or srcset is None or srcset in author:
            continue
        for cand in srcset.split(", "):
            m = _CANDIDATE.fullmatch(cand)
            assert m, cand
            found = (
                site_path(resolve_url(m.group(1), directory), base)
                if directory is not None
                else None
            )
            assert found is not None and widths.get(found) == int(m.group(2)), cand
            count += 1
    return count
