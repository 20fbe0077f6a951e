"""The page-level opt-out metas: ``robots`` merged, ``tdm-reservation``/``tdm-policy`` set.

Every robots meta outside ``<template>`` is merged into the first (directives kept in
order, deduplicated case-insensitively, ours appended); with ``tdm_reservation`` or
``tdm_policy`` None the page's own such metas are left alone. New metas go right after
``<head>`` (after a leading ``<meta charset>``/``http-equiv``, to keep it in the first
1024 bytes); without ``<head>``, where the parser opens the implied head (after
``<html>`` or the doctype and any comments), so the tree is otherwise the same.
"""

from __future__ import annotations

from collections.abc import Iterable

from .context import PageContext
from .edits import Edit, attrs, set_attr
from .tokens import Tag, skip_ignorable, tag_at

METAS = ("robots", "tdm-reservation", "tdm-policy")  # the metas :func:`meta_edits` reads


def meta_edits(
    html: str, ctx: PageContext, metas: dict[str, list[Tag]], at: int, xhtml: bool
) -> list[Edit]:
    """The edits that give the page the metas ``ctx`` asks for: ``metas`` are the page's
    own (by lower-case name, outside ``<template>``), ``at`` is where new ones go."""
    edits: list[Edit] = []
    new: list[tuple[str, str]] = []
    robots = metas["robots"]
    if robots:
        own = [directives(t.get("content") or "") for t in robots]
        merged = _union([d for ds in own for d in ds] + list(ctx.robots))
        if len(robots) > 1 or merged != own[0]:
            edits.append(set_attr(robots[0], ", ".join(merged)))
    elif ctx.robots:
        new.append(("robots", ", ".join(_union(ctx.robots))))
    edits += [Edit(t.start, t.end, "") for t in robots[1:]]
    tdm = None if ctx.tdm_reservation is None else str(ctx.tdm_reservation)
    for key, want in (("tdm-reservation", tdm), ("tdm-policy", ctx.tdm_policy)):
        found = metas[key]
        if want is None:
            continue  # not ours to decide: the page's own stay as they are
        if not found:
            new.append((key, want))
        elif (found[0].get("content") or "").strip() != want:
            edits.append(set_attr(found[0], want))
        edits += [Edit(t.start, t.end, "") for t in found[1:]]
    if new:
        close = " />" if xhtml else ">"
        text = "".join(f"<meta{attrs([('name', k), ('content', v)])}{close}" for k, v in new)
        edits.append(Edit(at, at, text))
    return edits


def directives(content: str) -> list[str]:
    """The directives of a robots meta's ``content`` (or an X-Robots-Tag value), stripped,
    as written and in order; empty ones dropped."""
    return [d for d in (part.strip() for part in content.split(",")) if d]


def _union(items: Iterable[str]) -> list[str]:
    """Directives in order, the first spelling of each kept (case-insensitive)."""
    seen: dict[str, str] = {}
    for d in items:
        seen.setdefault(d.strip().lower(), d.strip())
    return [d for d in seen.values() if d]


def insert_at(html: str, head: Tag | None, root: Tag | None) -> int:
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
