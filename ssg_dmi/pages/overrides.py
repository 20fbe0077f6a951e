"""The DataMining values pages give themselves and the images they show: the one
override collector, used by the build (which applies them) and the audit (which expects
them).

A page's value comes from the adapter (front matter ``dmi:``) or its
``<meta name="ssg-dmi">``; an image's from its ``<img data-dmi>``, else from the page
showing it. When pages disagree about one image, the most restrictive value wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..policy import DMI, most_restrictive, not_a_dmi
from .encoding import PageText, decode_page
from .scan import scan


class PageStore:
    """Pages read from a site, each read and decoded once per build: the overrides pass and
    the rewrite pass share them, up to ``budget`` characters held (beyond that a page is
    read again when asked for, so a site of any size builds in bounded memory)."""

    def __init__(self, site: Path, budget: int = 64 << 20) -> None:
        self.site, self.budget = site, budget
        self._held: dict[str, PageText | str] = {}
        self._size = 0

    def get(self, rel: str) -> PageText | str:
        """The page (see :func:`read_page`)."""
        page = self._held.get(rel)
        if page is None:
            page = read_page(self.site, rel)
            size = len(page.text) if isinstance(page, PageText) else 0
            if self._size + size <= self.budget:
                self._held[rel] = page
                self._size += size
        return page

    def drop(self, rel: str) -> None:
        """Forget a page once it is rewritten."""
        page = self._held.pop(rel, None)
        if isinstance(page, PageText):
            self._size -= len(page.text)


def read_page(site: Path, rel: str) -> PageText | str:
    """The page's text in its own encoding, or why it cannot be read or decoded."""
    try:
        data = (site / rel).read_bytes()
    except OSError as exc:
        return f"cannot read the page ({exc.strerror or exc})"
    page = decode_page(data)
    return page if isinstance(page, PageText) else f"cannot decode the page: {page}"


def page_values(
    text: str, rel: str, base_url: str, declared: str | None = None
) -> tuple[DMI | None, list[tuple[str, DMI]]]:
    """One page's own value (``declared`` by the adapter, else its meta) and the (site
    path, value) of each image it gives one; ConfigError naming the page for a bad value."""
    found = scan(text, rel, base_url)
    given = declared or found.dmi
    page = dmi_value(given, rel) if given else None
    images = []
    for image, attr in found.images:
        value = dmi_value(attr, f"{rel}: data-dmi of {image}") if attr else page
        if value is not None:
            images.append((image, value))
    return page, images


@dataclass
class Overrides:
    """The values collected over a site's pages."""

    pages: dict[str, DMI] = field(default_factory=dict)
    images: dict[str, DMI] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, rel: str, page: DMI | None, images: list[tuple[str, DMI]]) -> None:
        """Merge one page's values (the most restrictive wins for an image)."""
        if page is not None:
            self.pages[rel] = page
        for image, value in images:
            previous = self.images.get(image)
            if previous is not None and previous is not value:
                value = most_restrictive(previous, value)
                self.notes.append(
                    f"{image}: pages disagree on its DataMining value; {value.key} used"
                )
            self.images[image] = value


def collect_overrides(
    site: Path,
    pages: list[str],
    page_dmi: Mapping[str, str] | None,
    base_url: str,
    store: PageStore | None = None,
) -> tuple[dict[str, DMI], dict[str, DMI], list[str]]:
    """Page and image DMI overrides of the pages of ``site``. Returns (pages, images,
    notes); a page that cannot be read is passed over (the rewrite says why)."""
    found = Overrides()
    store = store or PageStore(site, budget=0)
    for rel in pages:
        page = store.get(rel)
        if isinstance(page, str):
            continue
        found.add(rel, *page_values(page.text, rel, base_url, (page_dmi or {}).get(rel)))
    return found.pages, found.images, found.notes


def dmi_value(value: str, where: str) -> DMI:
    """A page's or image's value; ConfigError naming ``where`` when it is not one."""
    try:
        return DMI.parse(value)
    except ValueError:
        raise ConfigError(f"{where}: {not_a_dmi(value)}") from None
