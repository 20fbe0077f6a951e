"""Rewrite a built page: responsive ``<img>`` and the page-level opt-out metas.

Like mkdocs-material's privacy plugin, only the start tags that change are rewritten and
every other byte (doctype, comments, scripts, ``<pre>``, entity spelling, quoting, white
space, line endings) is kept. Pure ``str -> str``, stdlib only: :mod:`.tokens` finds the
tags, :mod:`.responsive` rewrites each ``<img>``, :mod:`.meta` the metas. Choices where
the standards leave room, beside those two modules':

- ``<base href>`` is honoured; one pointing to another origin makes no image local.
- New void tags end in `` />`` when the page is XHTML-ish (``<?xml`` prolog or
  ``<html xmlns>``) so it stays well-formed XML; otherwise ``>``.
"""

from __future__ import annotations

from .context import ImageInfo, PageContext, Unprocessed, Variant
from .edits import Edit, splice
from .meta import METAS, insert_at, meta_edits
from .responsive import Wrap, our_picture, rewrite_img
from .tokens import Tag, iter_tags
from .urls import document_dir, page_dir, split_base

# The types rewrite() takes and gives, importable with it.
__all__ = ["ImageInfo", "PageContext", "Unprocessed", "Variant", "rewrite"]

_NAMES = frozenset({"img", "picture", "meta", "head", "html", "body", "template"})


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
    metas: dict[str, list[Tag]] = {key: [] for key in METAS}
    head: Tag | None = None
    root: Tag | None = None
    body = False
    picture = template = 0
    wrap: Wrap | None = None  # the <picture> being read, when it is shaped as ours
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
                edit = rewrite_img(html, tag, ctx, directory, base, xhtml, unprocessed, ours)
                if edit is not None:
                    edits.append(edit)
        elif name == "picture":
            if not picture:
                wrap = our_picture(html, tag)
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
    edits += meta_edits(html, ctx, metas, insert_at(html, head, root), xhtml)
    if not edits:
        return html
    return splice(html, edits)
