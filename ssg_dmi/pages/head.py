"""Additions to a page's ``<head>`` beyond the robots and TDM metas (see :mod:`.meta`)."""

from __future__ import annotations

import html as htmllib
from pathlib import Path

from ..fsutil import atomic_write
from .encoding import PageText, decode_page
from .scan import scan
from .tokens import iter_tags

# With width/height attributes, a theme's `img { max-width: 100% }` alone squashes images
# narrower than their slot (the height attribute stays). `:where()` has zero specificity:
# this only fills in when the theme's CSS says nothing about height.
KEEP_RATIO = '<style id="ssg-dmi">:where(img[width][height][srcset]){height:auto}</style>'


def keep_ratio(html: str) -> str:
    """Add :data:`KEEP_RATIO` after ``<head>`` once, in a page that has srcset images."""
    if 'id="ssg-dmi"' in html or "srcset" not in html:
        return html
    for tag in iter_tags(html, frozenset({"head"})):
        if not tag.closing:
            return html[: tag.end] + KEEP_RATIO + html[tag.end :]
    return html


def declare_dmi(html: str, key: str) -> str:
    """Write a front-matter value into the page as ``<meta name="ssg-dmi">``, right after
    ``<head>``, so ``ssg-dmi check`` and later builds over this output see it too."""
    for tag in iter_tags(html, frozenset({"head"})):
        if not tag.closing:
            return f'{html[: tag.end]}<meta name="ssg-dmi" content="{key}">{html[tag.end :]}'
    return html


def declare_watermark(html: str, value: str, rel: str = "") -> str:
    """Write a front-matter ``watermark:`` value into the page as ``<meta
    name="ssg-dmi-watermark">``, right after ``<head>``, so a later plain ``ssg-dmi build``
    over this output sees it too (a page that already has one keeps its own)."""
    value = value.strip()
    if not value or scan(html, rel or "index.html", "/").watermark is not None:
        return html
    meta = f'<meta name="ssg-dmi-watermark" content="{htmllib.escape(value, quote=True)}">'
    for tag in iter_tags(html, frozenset({"head"})):
        if not tag.closing:
            return f"{html[: tag.end]}{meta}{html[tag.end :]}"
    return html


def declare_watermark_files(site: Path, values: dict[str, str]) -> list[str]:
    """:func:`declare_watermark` for pages already written into ``site`` (site path ->
    value), each written back atomically in its own encoding; one line per page that
    could not be (it is then marked by its value in this build only)."""
    problems = []
    root = site.resolve()
    for rel, value in sorted(values.items()):
        path = site / rel
        try:
            if not path.resolve(strict=True).is_relative_to(root):
                continue  # a link leading out of the output folder: never written
            data = path.read_bytes()
        except OSError as exc:
            problems.append(f"{rel}: cannot read ({exc.strerror or exc}); watermark not declared")
            continue
        page = decode_page(data)
        if not isinstance(page, PageText):
            continue  # the rewrite says why it cannot decode the page
        out = declare_watermark(page.text, value, rel)
        if out == page.text:
            continue
        try:
            atomic_write(path, page.encode(out))
        except (OSError, UnicodeEncodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not encodable"
            problems.append(f"{rel}: cannot write ({reason}); watermark not declared")
    return problems
