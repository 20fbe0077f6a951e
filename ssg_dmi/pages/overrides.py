"""The DataMining values pages give themselves and the images they show: the one
override collector, used by the build (which applies them) and the audit (which expects
them).

A page's value comes from the adapter (front matter ``dmi:``) or its
``<meta name="ssg-dmi">``; an image's from its ``<img data-dmi>``, else from the page
showing it. When pages disagree about one image, the most restrictive value wins.

Watermarks flow the same way: a page's ``"none"`` or style name from the adapter (front
matter ``watermark:``) or its ``<meta name="ssg-dmi-watermark">``, an image's from its
``<img data-watermark>``, else from the page showing it. An image file has one set of
outputs, so when pages disagree about one image the most specific value wins (the image's
own ``data-watermark`` over a page's value), then a mark over ``"none"`` (an image some
page wants protected stays protected), then the first style name in sorted order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..policy import DMI, most_restrictive, not_a_dmi
from .encoding import PageText, decode_page
from .scan import PageScan, scan


class PageStore:
    """Pages read from a site, each read and decoded once per build: the overrides pass and
    the rewrite pass share them, up to ``budget`` characters held (beyond that a page is
    read again when asked for, so a site of any size builds in bounded memory). Reading a
    page again costs far less than the scan and the rewrite it is read for: the budget
    (16 M characters, about the pages of a 70,000-image site of small pages) is kept low."""

    def __init__(self, site: Path, budget: int = 16 << 20) -> None:
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
    return scanned_values(scan(text, rel, base_url), rel, declared)


def scanned_values(
    found: PageScan, rel: str, declared: str | None = None
) -> tuple[DMI | None, list[tuple[str, DMI]]]:
    """:func:`page_values` of a page already scanned."""
    given = declared or found.dmi
    page = dmi_value(given, rel) if given else None
    images = []
    for image, attr in found.images:
        value = dmi_value(attr, f"{rel}: data-dmi of {image}") if attr else page
        if value is not None:
            images.append((image, value))
    return page, images


# A watermark value with how specific it is: 1 from a page, 2 from the image's own attribute.
Mark = tuple[int, str]


def page_marks(found: PageScan, declared: str | None = None) -> list[tuple[str, Mark]]:
    """The (site path, watermark value) of each image of a scanned page that gets one: its
    ``data-watermark``, else the page's (``declared`` by the adapter, else its meta)."""
    page = (declared or "").strip() or found.watermark
    own = dict(found.marks)
    out: list[tuple[str, Mark]] = []
    for image, _ in found.images:
        if image in own:
            out.append((image, (2, own[image])))
        elif page:
            out.append((image, (1, page)))
    return out


def mark_order(mark: Mark) -> tuple[int, int, str]:
    """Sort key: the value that wins for an image sorts first."""
    level, value = mark
    return (-level, value.lower() == "none", value)


@dataclass
class Overrides:
    """The values collected over a site's pages."""

    pages: dict[str, DMI] = field(default_factory=dict)
    images: dict[str, DMI] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    marks: dict[str, Mark] = field(default_factory=dict)

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

    def add_marks(self, marks: list[tuple[str, Mark]]) -> None:
        """Merge one page's watermark values (see the module docstring for who wins)."""
        for image, mark in marks:
            previous = self.marks.get(image)
            if previous is not None and previous[1] != mark[1]:
                mark = min(previous, mark, key=mark_order)
                self.notes.append(f"{image}: pages disagree on its watermark; {mark[1]!r} used")
            self.marks[image] = mark

    def image_marks(self) -> dict[str, str]:
        """The watermark value of each image some page gives one."""
        return {image: value for image, (_, value) in self.marks.items()}


def collect_overrides(
    site: Path,
    pages: list[str],
    page_dmi: Mapping[str, str] | None,
    base_url: str,
    store: PageStore | None = None,
) -> tuple[dict[str, DMI], dict[str, DMI], list[str]]:
    """Page and image DMI overrides of the pages of ``site``. Returns (pages, images,
    notes); a page that cannot be read is passed over (the rewrite says why)."""
    found = collect_all(site, pages, page_dmi, base_url, store)
    return found.pages, found.images, found.notes


def collect_all(
    site: Path,
    pages: list[str],
    page_dmi: Mapping[str, str] | None,
    base_url: str,
    store: PageStore | None = None,
    page_watermark: Mapping[str, str] | None = None,
    scanner: Callable[[str, PageText], PageScan] | None = None,
) -> Overrides:
    """:func:`collect_overrides` with the watermark values too (``page_watermark``: the
    adapter's front-matter values by page), each page scanned once. ``scanner(rel,
    page)``: what :func:`~.scan.scan` with ``base_url`` gives for the page (a memo of it)."""
    found = Overrides()
    store = store or PageStore(site, budget=0)
    for rel in pages:
        page = store.get(rel)
        if isinstance(page, str):
            continue
        scanned = scanner(rel, page) if scanner else scan(page.text, rel, base_url)
        found.add(rel, *scanned_values(scanned, rel, (page_dmi or {}).get(rel)))
        found.add_marks(page_marks(scanned, (page_watermark or {}).get(rel)))
    return found


def dmi_value(value: str, where: str) -> DMI:
    """A page's or image's value; ConfigError naming ``where`` when it is not one."""
    try:
        return DMI.parse(value)
    except ValueError:
        raise ConfigError(f"{where}: {not_a_dmi(value)}") from None
