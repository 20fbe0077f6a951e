"""Rewrite a built page: responsive ``<img>`` and the page-level opt-out metas.

Like mkdocs-material's privacy plugin, only the start tags that change are rewritten and
every other byte (doctype, comments, scripts, ``<pre>``, entity spelling, quoting, white
space, line endings) is kept. Pure ``str -> str``, stdlib only; :mod:`.htmlscan` finds
the tags. Choices where the standards leave room:

- An ``<img>`` with ``srcset`` or ``data-srcset`` (even empty), or inside an author's
  ``<picture>``, is the author's and stays as it is. Ours has a ``srcset`` or sits in our
  ``<picture>``, so a second run changes nothing (no marker attribute needed).
- ``sizes``: an author ``sizes`` wins; else ``data-sizes`` (kept, lazy-loading scripts
  read it); else the site default. ``auto, `` goes in front only when the ``<img>`` ends
  up ``loading="lazy"`` with integer ``width`` and ``height``: browsers size-contain
  ``sizes=auto`` images, so without both they would render at 300×150.
- ``width``/``height``: both added when neither is set; with one set (a plain integer)
  the other is added at the image's aspect ratio, which is what the browser renders anyway.
- srcset URLs are built from the resolved path (the ``src``'s query and fragment are
  dropped), every segment percent-encoded so spaces, commas and non-ASCII cannot break the
  list; relative when ``src`` was, root-relative (with ``base_url``) when it was.
- ``<base href>`` is honoured; one pointing to another origin makes no image local.
- No ``<picture>`` around an ``<img>`` that ends SVG/MathML content (a ``<picture>``
  would not end it, so the tree would change).
- New void tags end in `` />`` when the page is XHTML-ish (``<?xml`` prolog or
  ``<html xmlns>``) so it stays well-formed XML; otherwise ``>``.
- Metas: every robots meta outside ``<template>`` is merged into the first (directives
  kept in order, deduplicated case-insensitively, ours appended); with ``tdm_reservation``
  or ``tdm_policy`` None the page's own such metas are left alone. New metas go right
  after ``<head>`` (after a leading ``<meta charset>``/``http-equiv``, to keep it in the
  first 1024 bytes); without ``<head>``, where the parser opens the implied head (after
  ``<html>`` or the doctype and any comments), so the tree is otherwise the same.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from .htmlscan import (
    PageScan,
    Tag,
    document_dir,
    iter_tags,
    page_dir,
    resolve,
    resolve_url,
    scan,
    site_path,
    skip_ignorable,
    split_base,
    tag_at,
)

__all__ = ["ImageInfo", "PageContext", "PageScan", "Variant", "resolve", "rewrite", "scan"]

_ALIAS = {"jpg": "jpeg", "tif": "tiff", "svg+xml": "svg"}
_MIME = {"svg": "image/svg+xml"}
_NAMES = frozenset({"img", "picture", "meta", "head", "html", "body", "template"})
_METAS = ("robots", "tdm-reservation", "tdm-policy")
_AUTO = re.compile(r"[\t\n\f\r ]*auto[\t\n\f\r ]*(?:,|$)", re.IGNORECASE)
_INT = re.compile(r"[\t\n\f\r ]*([0-9]+)[\t\n\f\r ]*")
_C0_SPACE = "".join(map(chr, range(0x21)))

Edit = tuple[int, int, str]


@dataclass(frozen=True)
class Variant:
    """One resized/re-encoded copy of an image."""

    path: str  # site-relative POSIX
    width: int
    height: int
    format: str


@dataclass(frozen=True)
class ImageInfo:
    """An original image: its intrinsic size, format and variants."""

    width: int
    height: int
    format: str
    variants: tuple[Variant, ...] = ()


@dataclass(frozen=True)
class PageContext:
    """Everything :func:`rewrite` needs to know about one page."""

    page_path: str  # site-relative POSIX, e.g. "blog/post/index.html"
    base_url: str = "/"  # URL path the site is served under: "/" or "/docs/"
    images: Mapping[str, ImageInfo] = field(default_factory=dict)
    robots: tuple[str, ...] = ("noai", "noimageai")
    tdm_reservation: int | None = 1
    tdm_policy: str | None = None
    sizes: str = "(max-width: 960px) 100vw, 960px"
    picture: bool = False
    lazy: bool = True
    formats: tuple[str, ...] = ("avif", "webp", "jpeg", "png")
    origin: str | None = None  # "https://example.org": absolute URLs on it are local too

    def __post_init__(self) -> None:
        if self.tdm_reservation not in (None, 0, 1):
            raise ValueError(
                f"tdm_reservation must be 1 (reserved), 0 (not reserved) or None (omit), "
                f"not {self.tdm_reservation!r}"
            )


def rewrite(html: str, ctx: PageContext) -> str:
    """The page with responsive local ``<img>`` and merged robots/TDMRep metas.

    Idempotent: ``rewrite(rewrite(p, c), c) == rewrite(p, c)``.
    """
    base = split_base(ctx.base_url)
    directory = document_dir(html, page_dir(ctx.page_path, base))
    xhtml = html.lstrip("\ufeff\t\n\f\r ").startswith("<?xml")
    edits: list[Edit] = []
    metas: dict[str, list[Tag]] = {key: [] for key in _METAS}
    head: Tag | None = None
    root: Tag | None = None
    body = False
    picture = template = 0
    for tag in iter_tags(html, _NAMES):
        name = tag.name
        if tag.closing:
            if name == "picture":
                picture = max(0, picture - 1)
            elif name == "template":
                template = max(0, template - 1)
        elif name == "img":
            if not picture and directory is not None:
                edit = _image(html, tag, ctx, directory, base, xhtml)
                if edit is not None:
                    edits.append(edit)
        elif name == "picture":
            picture += 1
        elif name == "template":
            template += 1
        elif name == "meta":
            key = (tag.get("name") or "").strip().lower()
            if key in metas and not template:
                metas[key].append(tag)
        elif name == "head":
            head = head or (None if body else tag)
        elif name == "html":
            if root is None:
                root = tag
                xhtml = xhtml or "xmlns" in tag.attrs
        elif name == "body":
            body = True
    edits += _meta_edits(html, ctx, metas, _insert_at(html, head, root), xhtml)
    if not edits:
        return html
    edits.sort(key=lambda e: (e[0], e[1]))
    out: list[str] = []
    pos = 0
    for start, end, text in edits:
        out += (html[pos:start], text)
        pos = end
    out.append(html[pos:])
    return "".join(out)


# -- images --------------------------------------------------------------------------------


def _image(
    html: str, tag: Tag, ctx: PageContext, directory: list[str], base: list[str], xhtml: bool
) -> Edit | None:
    if "srcset" in tag.attrs or "data-srcset" in tag.attrs:
        return None
    src = tag.get("src")
    # An absolute URL on the site's own origin (Pelican without RELATIVE_URLS) is local;
    # its srcset keeps the same absolute form.
    prefix = ""
    if src is not None and ctx.origin and src.strip().lower().startswith(ctx.origin.lower() + "/"):
        prefix, src = ctx.origin, src.strip()[len(ctx.origin) :]
    path = None if src is None else site_path(resolve_url(src, directory), base)
    info = None if path is None else ctx.images.get(path)
    if src is None or path is None or info is None:
        return None
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
    rooted = src.lstrip(_C0_SPACE)[:1] in ("/", "\\")

    def srcset(fmt: str) -> str:
        by_width = dict(groups[fmt])
        if own == fmt and info.width > 0:
            by_width.setdefault(info.width, path)
        urls = (
            f"{prefix}{_url(p, rooted, directory, base)} {w}w" for w, p in sorted(by_width.items())
        )
        return ", ".join(urls)

    add: list[tuple[str, str]] = []
    width, height = tag.get("width"), tag.get("height")
    w, h = _int(width), _int(height)
    if width is None and height is None:
        w, h = info.width, info.height
        add += [("width", str(w)), ("height", str(h))]
    elif height is None and w and info.width > 0:
        h = max(1, round(w * info.height / info.width))
        add.append(("height", str(h)))
    elif width is None and h and info.height > 0:
        w = max(1, round(h * info.width / info.height))
        add.append(("width", str(w)))
    loading = tag.get("loading")
    lazy = ctx.lazy if loading is None else loading.strip().lower() == "lazy"
    sizes = tag.get("sizes")
    if sizes is None and (img_format or source_formats):
        sizes = _sizes(tag.get("data-sizes"), ctx.sizes, lazy and bool(w) and bool(h))
        if img_format and sizes:
            add.insert(0, ("sizes", sizes))
    if img_format:
        add.insert(0, ("srcset", srcset(img_format)))
    if loading is None and ctx.lazy:
        add.append(("loading", "lazy"))
    if "decoding" not in tag.attrs:
        add.append(("decoding", "async"))
    new = html[tag.start : tag.attrs_end] + _attrs(add) + html[tag.attrs_end : tag.end]
    if source_formats and not tag.broke_out:  # <picture> would not end SVG content as <img> does
        close = " />" if xhtml else ">"
        sources = "".join(
            "<source"
            + _attrs(
                [("type", _mime(f)), ("srcset", srcset(f)), *([("sizes", sizes)] if sizes else [])]
            )
            + close
            for f in source_formats
        )
        new = f"<picture>{sources}{new}</picture>"
    return None if new == html[tag.start : tag.end] else (tag.start, tag.end, new)


@functools.lru_cache(maxsize=64)
def _fmt(name: str) -> str:
    name = name.strip().lower()
    return _ALIAS.get(name, name)


@functools.lru_cache(maxsize=16)
def _formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_fmt(f) for f in formats))


def _mime(fmt: str) -> str:
    return _MIME.get(fmt, "image/" + fmt)


def _int(value: str | None) -> int | None:
    m = None if value is None else _INT.fullmatch(value)
    return int(m.group(1)) or None if m else None


def _sizes(data_sizes: str | None, default: str, auto: bool) -> str:
    """``data-sizes`` or the default, with ``auto, `` in front only where it is valid."""
    rest = ""
    for raw in (data_sizes or "", default):
        m = _AUTO.match(raw)
        rest = (raw[m.end() :] if m else raw).strip()
        if rest:
            break
    return (f"auto, {rest}" if rest else "auto") if auto else rest


def _url(path: str, rooted: bool, directory: list[str], base: list[str]) -> str:
    """A URL for site path ``path``: root-relative, or relative to ``directory``."""
    if rooted:
        return quote("/".join(["", *base, path]), safe="/")
    segments = base + path.split("/")
    common = 0
    limit = min(len(directory), len(segments) - 1)
    while common < limit and directory[common] == segments[common]:
        common += 1
    return "../" * (len(directory) - common) + quote("/".join(segments[common:]), safe="/")


def _attrs(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f' {name}="{_escape(value)}"' for name, value in pairs)


def _escape(value: str, quote: str = '"') -> str:
    value = value.replace("&", "&amp;")
    return value.replace('"', "&quot;") if quote == '"' else value.replace("'", "&#39;")


# -- metas ---------------------------------------------------------------------------------


def _meta_edits(
    html: str, ctx: PageContext, metas: dict[str, list[Tag]], at: int, xhtml: bool
) -> list[Edit]:
    edits: list[Edit] = []
    new: list[tuple[str, str]] = []
    robots = metas["robots"]
    if robots:
        own = [_directives(t.get("content") or "") for t in robots]
        merged = _union([d for ds in own for d in ds] + list(ctx.robots))
        if len(robots) > 1 or merged != own[0]:
            edits.append(_set_content(html, robots[0], ", ".join(merged)))
    elif ctx.robots:
        new.append(("robots", ", ".join(_union(ctx.robots))))
    edits += [(t.start, t.end, "") for t in robots[1:]]
    tdm = None if ctx.tdm_reservation is None else str(ctx.tdm_reservation)
    for key, want in (("tdm-reservation", tdm), ("tdm-policy", ctx.tdm_policy)):
        found = metas[key]
        if want is None:
            continue  # not ours to decide: the page's own stay as they are
        if not found:
            new.append((key, want))
        elif (found[0].get("content") or "").strip() != want:
            edits.append(_set_content(html, found[0], want))
        edits += [(t.start, t.end, "") for t in found[1:]]
    if new:
        close = " />" if xhtml else ">"
        text = "".join(f"<meta{_attrs([('name', k), ('content', v)])}{close}" for k, v in new)
        edits.append((at, at, text))
    return edits


def _directives(content: str) -> list[str]:
    return [d for d in (part.strip() for part in content.split(",")) if d]


def _union(directives: Iterable[str]) -> list[str]:
    """Directives in order, the first spelling of each kept (case-insensitive)."""
    seen: dict[str, str] = {}
    for d in directives:
        seen.setdefault(d.strip().lower(), d.strip())
    return [d for d in seen.values() if d]


def _set_content(html: str, tag: Tag, value: str) -> Edit:
    attr = tag.attrs.get("content")
    if attr is None:
        return (tag.attrs_end, tag.attrs_end, _attrs([("content", value)]))
    q = attr.quote or '"'
    text = q + _escape(value, q) + q
    if attr.bare:
        text = "=" + text
    return (attr.value_start, attr.value_end, text)


def _insert_at(html: str, head: Tag | None, root: Tag | None) -> int:
    """Where new metas go: first in the head, or where the parser opens the implied head."""
    if head is not None:
        pos = head.end
    else:
        pos = skip_ignorable(html, root.end if root else 1 if html.startswith("\ufeff") else 0)
    first = tag_at(html, skip_ignorable(html, pos))
    if (
        first is not None
        and first.name == "meta"
        and not first.closing
        and (
            "charset" in first.attrs
            or (first.get("http-equiv") or "").strip().lower() == "content-type"
        )
    ):
        return first.end
    return pos
