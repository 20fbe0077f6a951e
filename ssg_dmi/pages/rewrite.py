"""Rewrite a built page: responsive ``<img>`` and the page-level opt-out metas.

Like mkdocs-material's privacy plugin, only the start tags that change are rewritten and
every other byte (doctype, comments, scripts, ``<pre>``, entity spelling, quoting, white
space, line endings) is kept. Pure ``str -> str``, stdlib only; :mod:`.htmlscan` finds
the tags. Choices where the standards leave room:

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
- ``width``/``height``: both added when neither is set; with one set in pixels the other
  is added at the image's aspect ratio, which is what the browser renders anyway. A
  percentage (``width="50%"``) moves into ``style`` and the attribute gets pixels, so the
  ratio is reserved and ``ssg-dmi check`` finds both; see :func:`_sizes_of`.
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

from .scan import (
    Attr,
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

__all__ = [
    "ImageInfo",
    "PageContext",
    "PageScan",
    "Unprocessed",
    "Variant",
    "resolve",
    "rewrite",
    "scan",
]

_ALIAS = {"jpg": "jpeg", "tif": "tiff", "svg+xml": "svg"}
_MIME = {"svg": "image/svg+xml"}
_NAMES = frozenset({"img", "picture", "meta", "head", "html", "body", "template"})
_METAS = ("robots", "tdm-reservation", "tdm-policy")
_AUTO = re.compile(r"[\t\n\f\r ]*auto[\t\n\f\r ]*(?:,|$)", re.IGNORECASE)
_DIM = re.compile(r"[\t\n\f\r ]*([0-9]+(?:\.[0-9]+)?)(%?)")
_W = re.compile(r"[0-9]+w")
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
class Unprocessed:
    """A local ``<img>`` that got no srcset: ``path`` is its site path, or None when the
    URL leads outside ``base_url``. Why (missing, untagged, excluded) is the caller's to say."""

    src: str
    path: str | None


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
    # How our variant files are named (ssg_dmi.build.job.VARIANT_NAME, with a "source" group):
    # a srcset of only such names beside the image is ours to refresh after a rebuild.
    variant_name: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if self.tdm_reservation not in (None, 0, 1):
            raise ValueError(
                f"tdm_reservation must be 1 (reserved), 0 (not reserved) or None (omit), "
                f"not {self.tdm_reservation!r}"
            )


def rewrite(html: str, ctx: PageContext, unprocessed: list[Unprocessed] | None = None) -> str:
    """The page with responsive local ``<img>`` and merged robots/TDMRep metas.

    Idempotent: ``rewrite(rewrite(p, c), c) == rewrite(p, c)``. Each local ``<img>`` that
    ``ctx.images`` does not know, and each that leaves ``base_url``, is appended to
    ``unprocessed`` (not those with the author's own srcset or ``<picture>``).
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
    wrap: _Wrap | None = None  # the <picture> being read, when it is shaped as ours
    for tag in iter_tags(html, _NAMES):
        name = tag.name
        if tag.closing:
            if name == "picture":
                picture = max(0, picture - 1)
            elif name == "template":
                template = max(0, template - 1)
        elif name == "img":
            ours = wrap if wrap is not None and tag.start == wrap.img_start else None
            if (not picture or ours) and directory is not None:
                edit = _image(html, tag, ctx, directory, base, xhtml, unprocessed, ours)
                if edit is not None:
                    edits.append(edit)
        elif name == "picture":
            if not picture:
                wrap = _our_picture(html, tag)
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


@dataclass(frozen=True)
class _Wrap:
    """A ``<picture>`` shaped as ours: ``<picture>``, sources, the ``<img>``, ``</picture>``."""

    start: int
    end: int
    sources: tuple[Tag, ...]
    img_start: int


_SOURCE_ATTRS = frozenset({"type", "srcset", "sizes"})


def _our_picture(html: str, tag: Tag) -> _Wrap | None:
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
    return _Wrap(tag.start, close.end, tuple(sources), t.start)


def _local(src: str, origin: str | None) -> tuple[str, str]:
    """(origin prefix, the rest) for an absolute URL on the site's own origin (Pelican
    without RELATIVE_URLS); ("", src) for anything else."""
    if origin and src.strip().lower().startswith(origin.lower() + "/"):
        return origin, src.strip()[len(origin) :]
    return "", src


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
        cand = site_path(resolve_url(_local(bits[0], ctx.origin)[1], directory), base)
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


def _dimension(attr: Attr | None) -> tuple[str, float]:
    """An ``<img>`` width or height as the HTML "rules for parsing dimension values" read
    it: ("absent"|"fail"|"px"|"pct", number). "12em" is 12 px, "auto" a failure (ignored)."""
    if attr is None:
        return "absent", 0.0
    m = _DIM.match(attr.value)
    if m is None:
        return "fail", 0.0
    return ("pct" if m.group(2) else "px"), float(m.group(1))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _image(
    html: str,
    tag: Tag,
    ctx: PageContext,
    directory: list[str],
    base: list[str],
    xhtml: bool,
    misses: list[Unprocessed] | None,
    wrap: _Wrap | None = None,
) -> Edit | None:
    src = tag.get("src")
    if src is None or "data-srcset" in tag.attrs:
        return None
    prefix, local = _local(src, ctx.origin)
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
    rooted = local.lstrip(_C0_SPACE)[:1] in ("/", "\\")

    def srcset(fmt: str) -> str:
        by_width = dict(groups[fmt])
        if own == fmt and info.width > 0:
            by_width.setdefault(info.width, path)
        urls = (
            f"{prefix}{_url(p, rooted, directory, base)} {w}w" for w, p in sorted(by_width.items())
        )
        return ", ".join(urls)

    add: list[tuple[str, str]] = []
    inner: list[Edit] = []  # replacements inside the tag, at page offsets
    w, h = _sizes_of(tag, info, add, inner)
    loading = tag.get("loading")
    lazy = ctx.lazy if loading is None else loading.strip().lower() == "lazy"
    sizes = tag.get("sizes")
    if sizes is None and (img_format or source_formats):
        sizes = _sizes(tag.get("data-sizes"), ctx.sizes, lazy and w > 0 and h > 0)
        if img_format and sizes:
            add.insert(0, ("sizes", sizes))
    if old is not None:  # ours: refresh it in place, or drop it when nothing is left
        inner.append(
            _set_content(html, tag, srcset(img_format), "srcset")
            if img_format
            else (old.start, old.value_end, "")
        )
    elif img_format:
        add.insert(0, ("srcset", srcset(img_format)))
    if loading is None and ctx.lazy:
        add.append(("loading", "lazy"))
    if "decoding" not in tag.attrs:
        add.append(("decoding", "async"))
    inner.append((tag.attrs_end, tag.attrs_end, _attrs(add)))
    inner.sort(key=lambda e: (e[0], e[1]))
    parts: list[str] = []
    pos = tag.start
    for start, end, text in inner:
        parts += (html[pos:start], text)
        pos = end
    new = "".join(parts) + html[pos : tag.end]
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
    start, end = (wrap.start, wrap.end) if wrap else (tag.start, tag.end)
    return None if new == html[start:end] else (start, end, new)


def _sizes_of(
    tag: Tag, info: ImageInfo, add: list[tuple[str, str]], inner: list[Edit]
) -> tuple[float, float]:
    """Make ``width`` and ``height`` both numbers the browser reads as pixels, so the check
    passes and the aspect ratio is reserved; returns them.

    Neither set: the intrinsic size. One in pixels: the other at the image's ratio, which is
    what the browser renders anyway. A percentage ("50%", Markdown ``{: width="50%"}``) is
    kept as CSS (``style="width:50%"``, which wins over the attribute) and the attribute
    becomes pixels; the side we make up then gets ``auto`` so the ratio holds. A value the
    browser ignores ("auto", "") is replaced as if absent.
    """
    wa, ha = tag.attrs.get("width"), tag.attrs.get("height")
    (wk, wv), (hk, hv) = _dimension(wa), _dimension(ha)
    iw, ih = info.width, info.height
    if wk == "px" and hk == "px":
        return wv, hv
    if wk == "px":
        hv = round(wv * ih / iw) if iw > 0 else 0
    elif hk == "px":
        wv = round(hv * iw / ih) if ih > 0 else 0
    else:
        wv, hv = iw, ih
    style: list[str] = []
    for name, attr, kind, value, other in (
        ("width", wa, wk, wv, hk),
        ("height", ha, hk, hv, wk),
    ):
        if kind == "px":
            continue
        if kind == "pct":
            style.append(f"{name}:{_number(_dimension(attr)[1])}%")
        elif other == "pct":
            style.append(f"{name}:auto")
        if attr is None:
            add.append((name, str(int(value))))
        else:
            inner.append(_set_content("", tag, str(int(value)), name))
    if style:
        css = ";".join(style)
        existing = tag.attrs.get("style")
        if existing is None:
            add.append(("style", css))
        else:
            rest = existing.value.strip()
            inner.append(_set_content("", tag, f"{css};{rest}" if rest else css, "style"))
    return wv, hv


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


def _set_content(html: str, tag: Tag, value: str, name: str = "content") -> Edit:
    """The edit that gives ``tag``'s attribute ``name`` the value ``value``."""
    attr = tag.attrs.get(name)
    if attr is None:
        return (tag.attrs_end, tag.attrs_end, _attrs([(name, value)]))
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
