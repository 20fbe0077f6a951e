"""Additions to a page's ``<head>`` beyond the robots and TDM metas (see :mod:`.meta`)."""

from __future__ import annotations

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
