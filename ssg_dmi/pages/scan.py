"""What the build needs from a page before rewriting it: the page's own DMI value (its
``<meta name="ssg-dmi">`` outside ``<template>``), its watermark (``<meta
name="ssg-dmi-watermark">``) and every real local ``<img>`` (with its ``data-dmi`` and
``data-watermark``)."""

from __future__ import annotations

from dataclasses import dataclass

from .tokens import iter_tags
from .urls import document_dir, page_dir, resolve_url, site_path, split_base

__all__ = ["PageScan", "scan"]


@dataclass(frozen=True)
class PageScan:
    """What the pipeline needs from a page before rewriting it."""

    dmi: str | None  # <meta name="ssg-dmi" content="…">, stripped
    images: tuple[tuple[str, str | None], ...]  # (site path, data-dmi) of each local <img>
    watermark: str | None = None  # <meta name="ssg-dmi-watermark" content="…">, stripped
    marks: tuple[tuple[str, str], ...] = ()  # (site path, data-watermark) where one is given


def scan(html: str, page_path: str, base_url: str = "/") -> PageScan:
    """The page's own DMI value and watermark, and every real local ``<img>`` with its
    ``data-dmi`` (and, in ``marks``, its ``data-watermark`` where it has one)."""
    base = split_base(base_url)
    directory = document_dir(html, page_dir(page_path, base))
    dmi: str | None = None
    mark: str | None = None
    images: list[tuple[str, str | None]] = []
    marks: list[tuple[str, str]] = []
    template = 0
    for tag in iter_tags(html, frozenset({"img", "meta", "template"})):
        if tag.name == "template":
            template = max(0, template - 1) if tag.closing else template + 1
        elif tag.closing:
            continue
        elif tag.name == "meta":
            name = (tag.get("name") or "").strip().lower()
            if name == "ssg-dmi" and dmi is None and not template:
                dmi = (tag.get("content") or "").strip() or None
            elif name == "ssg-dmi-watermark" and mark is None and not template:
                mark = (tag.get("content") or "").strip() or None
        elif directory is not None and (src := tag.get("src")) is not None:
            path = site_path(resolve_url(src, directory), base)
            if path is not None:
                data = tag.get("data-dmi")
                images.append((path, None if data is None else data.strip()))
                if given := (tag.get("data-watermark") or "").strip():
                    marks.append((path, given))
    return PageScan(dmi, tuple(images), mark, tuple(marks))
