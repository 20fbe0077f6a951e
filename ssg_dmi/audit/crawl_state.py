"""What a crawl of a served site keeps while it runs, bounded by the crawl's limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from ..pages.overrides import Overrides
from ..policy import DMI
from ..settings import Settings
from .crawl import Crawler, origin
from .expect import Expectations
from .findings import CheckReport, Finding, Severity
from .page_facts import ImageRef

MAX_FINDINGS = 10_000  # kept in a URL report; the rest are counted
MAX_USES = 100_000  # (page, element) uses of image URLs kept by a crawl

UseKind = Literal["src", "srcset", "link"]


@dataclass(frozen=True)
class ImageUse:
    """Where an image URL is used: the page, how (``<img src>``, a srcset candidate or an
    ``<a href>``), the element and the URL as written there."""

    page: str
    kind: UseKind
    ref: ImageRef | None = None
    text: str = ""
    descriptors: str = ""


@dataclass
class CrawlState:
    """The crawl's state. Everything kept grows with --max-pages and --max-images, never
    with what the server sends: a page's text is read, checked and dropped; links past what
    can still be fetched and images past --max-images are counted, not kept."""

    settings: Settings
    crawler: Crawler
    report: CheckReport
    max_pages: int
    max_images: int
    pages: dict[str, str] = field(default_factory=dict)  # final URL -> site path
    paths: dict[str, DMI] = field(default_factory=dict)  # URL path -> value it must say
    images: dict[str, list[ImageUse]] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)  # site paths of images and their sources
    # The pages' values, and the images' values of the images this crawl fetches.
    overrides: Overrides = field(default_factory=Overrides)
    uses: int = 0
    truncated: dict[str, str] = field(default_factory=dict)  # why -> message, in order
    dropped: dict[Severity, int] = field(default_factory=dict)  # findings past MAX_FINDINGS

    def rel(self, url: str) -> str | None:
        """The site path of a URL of this site, None for anything else."""
        if origin(url) != self.crawler.origin:
            return None
        path = unquote(urlsplit(url).path)
        prefix = self.settings.base_url
        return path[len(prefix) :] if path.startswith(prefix) else None

    def add(self, *findings: Finding) -> None:
        """Keep the first MAX_FINDINGS findings; count the rest by severity."""
        for f in findings:
            if len(self.report.findings) < MAX_FINDINGS:
                self.report.findings.append(f)
            else:
                self.dropped[f.severity] = self.dropped.get(f.severity, 0) + 1

    def cut(self, why: str, message: str) -> None:
        """Record that a limit left part of the site unchecked (once per kind)."""
        self.truncated.setdefault(why, message)

    def use(self, url: str, use: ImageUse) -> None:
        """Record one use of an image URL, within --max-images and MAX_USES."""
        if url not in self.images:
            if len(self.images) >= self.max_images:
                self.cut("images", f"more than --max-images {self.max_images} images")
                return
            self.images[url] = []
            rel = self.rel(url) or ""
            self.sources |= {rel, Expectations.source_of(rel)}
        if self.uses >= MAX_USES:
            self.cut("uses", f"more than {MAX_USES} image uses")
            return
        self.uses += 1
        self.images[url].append(use)

    def expectations(self) -> Expectations:
        """What each path must say, by the overrides of the pages read so far."""
        return Expectations(self.settings, self.overrides.pages, self.overrides.images)
