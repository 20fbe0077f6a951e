"""One ``<img>`` made responsive: ``srcset`` and ``sizes`` from the variants the build
made, or a ``<picture>`` with a ``<source>`` per format. Choices where the standards leave
room:

- An ``<img>`` with ``data-srcset``, a ``srcset`` (even empty) that names anything but the
  image and our variants of it, or inside an author's ``<picture>``, is the author's and
  stays byte for byte as it is. A srcset of only our variants (named as
  ``PageContext.variant_name`` says, beside the image), and a ``<picture>`` shaped as we
  write it, are ours: refreshed with the current variants, so a rebuild that renamed or
  removed variants leaves no stale candidate, and a second run changes nothing.
- ``sizes``: an author ``sizes`` wins; else ``data-sizes`` (kept, lazy-loading scripts
  read it); else the site default. ``auto, `` goes in front only when the ``<img>`` ends
  up ``loading="lazy"`` with integer ``width`` and ``height``: browsers size-contain
  ``sizes=auto`` images, so without both they would render at 300×150.
- ``width``/``height``: see :mod:`.dimensions`.
- srcset URLs are built from the resolved path (the ``src``'s query and fragment are
  dropped), every segment percent-encoded so spaces, commas and non-ASCII cannot break the
  list; relative when ``src`` was, root-relative (with ``base_url``) when it was.
- No ``<picture>`` around an ``<img>`` that ends SVG/MathML content (a ``<picture>``
  would not end it, so the tree would change).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .context import ImageInfo, PageContext, Unprocessed
from .dimensions import fill_dimensions
from .edits import Edit, attrs, set_attr, splice
from .tokens import Tag, tag_at
from .urls import is_rooted, resolve_url, site_path, split_origin, url_for

_ALIAS = {"jpg": "jpeg", "tif": "tiff", "svg+xml": "svg"}
_MIME = {"svg": "image/svg+xml"}
_AUTO = re.compile(r"[\t\n\f\r ]*auto[\t\n\f\r ]*(?:,|$)", re.IGNORECASE)
_W = re.compile(r"[0-9]+w")


@dataclass(frozen=True)
class Wrap:
    """A ``<picture>`` shaped as ours: ``<picture>``, sources, the ``<img>``, ``</picture>``."""

    start: int
    end: int
    sources: tuple[Tag, ...]
    img_start: int


_SOURCE_ATTRS = frozenset({"type", "srcset", "sizes"})


def our_picture(html: str, tag: Tag) -> Wrap | None:
    """The span of a ``<picture>`` written as we write one (no attribute, only sources of
    type/srcset/sizes, then the ``<img>``, nothing between); whose srcsets are ours is
    decided with the image. An author's ``media`` or ``<source>`` of another shape: None."""
    if tag.attrs:
        return None
    pos, sources = tag.end, []
    while (t := tag_at(html, pos)) is not None and not t.closing and t.name == "source":
        if not t.attrs.keys() <= _SOURCE_ATTRS or "srcset" not in t.attrs:
            return None
        sources.append(t)
        pos = t.end
    if t is None or t.closing or t.name not in ("img", "image") or not sources:
        return None
    close = tag_at(html, t.end)
    if close is None or not close.closing or close.name != "picture":
        return None
    return Wrap(tag.start, close.end, tuple(sources), t.start)


def _ours(
    srcset: str, path: str, info: ImageInfo, ctx: PageContext, directory: list[str], base: list[str]
) -> bool:
    """Whether every candidate of ``srcset`` is the image itself or one of our variants of
    it (a current one, or one named as we name them beside it), with a ``w`` descriptor.
    Such a srcset is ours to refresh; anything else is the author's."""
    folder, _, name = path.rpartition("/")
    known = {v.path for v in info.variants}
    variant = False
    for part in srcset.split(","):
        bits = part.split()
        if len(bits) != 2 or not _W.fullmatch(bits[1]):
            return False
        cand = site_path(resolve_url(split_origin(bits[0], ctx.origin)[1], directory), base)
        if cand is None:
            return False
        if cand == path:
            continue
        cand_folder, _, cand_name = cand.rpartition("/")
        m = ctx.variant_name.match(cand_name) if ctx.variant_name else None
        if cand in known or (cand_folder == folder and m is not None and m["source"] == name):
            variant = True
            continue
        return False
    return variant


def rewrite_img(
    html: str,
    tag: Tag,
    ctx: PageContext,
    directory: list[str],
    base: list[str],
    xhtml: bool,
    misses: list[Unprocessed] | None,
    wrap: Wrap | None = None,
) -> Edit | None:
    """The edit that makes ``tag`` responsive (replacing ``wrap`` too, when it is the
    ``<picture>`` we wrote around it), or None when it stays as it is. A local image that
    ``ctx.images`` does not know, or outside ``base_url``, is appended to ``misses``."""
    src = tag.get("src")
    if src is None or "data-srcset" in tag.attrs:
        return None
    prefix, local = split_origin(src, ctx.origin)
    url = resolve_url(local, directory)
    path = site_path(url, base)
    info = None if path is None else ctx.images.get(path)
    old = tag.attrs.get("srcset")
    if info is None or path is None:
        if old is None and wrap is None and url is not None and url[-1] and misses is not None:
            misses.append(Unprocessed(src, path))
        return None
    if old is not None and not _ours(old.value, path, info, ctx, directory, base):
        return None  # the author's own srcset
    if wrap is not None and not all(
        _ours(s.get("srcset") or "", path, info, ctx, directory, base) for s in wrap.sources
    ):
        return None  # the author's own <picture>
    groups: dict[str, dict[int, str]] = {}
    for v in info.variants:
        if v.width > 0:
            groups.setdefault(_fmt(v.format), {}).setdefault(v.width, v.path)
    own = _fmt(info.format)
    formats = _formats(ctx.formats)
    if ctx.picture:
        img_format: str | None = own if own in groups else None
        source_formats = [f for f in formats if f != own and f in groups]
    else:
        img_format = next((f for f in formats if f in groups), None)
        source_formats = []
    rooted = is_rooted(local)

    def srcset(fmt: str) -> str:
        by_width = dict(groups[fmt])
        if own == fmt and info.width > 0:
            by_width.setdefault(info.width, path)
        urls = (
            f"{prefix}{url_for(p, rooted, directory, base)} {w}w"
            for w, p in sorted(by_width.items())
        )
        return ", ".join(urls)

    add: list[tuple[str, str]] = []
    inner: list[Edit] = []  # replacements inside the tag, at page offsets
    w, h = fill_dimensions(tag, info, add, inner)
    loading = tag.get("loading")
    lazy = ctx.lazy if loading is None else loading.strip().lower() == "lazy"
    sizes = tag.get("sizes")
    if sizes is None and (img_format or source_formats):
        sizes = _sizes(tag.get("data-sizes"), ctx.sizes, lazy and w > 0 and h > 0)
        if img_format and sizes:
            add.insert(0, ("sizes", sizes))
    if old is not None:  # ours: refresh it in place, or drop it when nothing is left
        inner.append(
            set_attr(tag, srcset(img_format), "srcset")
            if img_format
            else Edit(old.start, old.value_end, "")
        )
    elif img_format:
        add.insert(0, ("srcset", srcset(img_format)))
    if loading is None and ctx.lazy:
        add.append(("loading", "lazy"))
    if "decoding" not in tag.attrs:
        add.append(("decoding", "async"))
    inner.append(Edit(tag.attrs_end, tag.attrs_end, attrs(add)))
    new = splice(html, inner, tag.start, tag.end)
    if source_formats and not tag.broke_out:  # <picture> would not end SVG content as <img> does
        close = " />" if xhtml else ">"
        sources = "".join(
            "<source"
            + attrs(
                [("type", _mime(f)), ("srcset", srcset(f)), *([("sizes", sizes)] if sizes else [])]
            )
            + close
            for f in source_formats
        )
        new = f"<picture>{sources}{new}</picture>"
    start, end = (wrap.start, wrap.end) if wrap else (tag.start, tag.end)
    return None if new == html[start:end] else Edit(start, end, new)


@functools.lru_cache(maxsize=64)
def _fmt(name: str) -> str:
    name = name.strip().lower()
    return _ALIAS.get(name, name)


@functools.lru_cache(maxsize=16)
def _formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_fmt(f) for f in formats))


def _mime(fmt: str) -> str:
    return _MIME.get(fmt, "image/" + fmt)


def _sizes(data_sizes: str | None, default: str, auto: bool) -> str:
    """``data-sizes`` or the default, with ``auto, `` in front only where it is valid."""
    rest = ""
    for raw in (data_sizes or "", default):
        m = _AUTO.match(raw)
        rest = (raw[m.end() :] if m else raw).strip()
        if rest:
            break
    return (f"auto, {rest}" if rest else "auto") if auto else rest
