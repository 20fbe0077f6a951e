"""A whole site build: images, then pages, then the site-level signal files.

The order matters: pages are scanned first (a page's ``<meta name="ssg-dmi">`` or front
matter and an ``<img data-dmi>`` decide the policy of the images they show), images are
processed with those overrides, pages are rewritten with the variants the images got, and
the site files are written last from the same policies.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import html as pagehtml
from . import htmlscan
from .contract import signals as signals_of
from .errors import ConfigError
from .fsutil import atomic_write
from .pipeline import Report, run
from .policy import DMI
from .settings import Settings
from .signals import site_policy, write_site_files

log = logging.getLogger("ssg_dmi.build")
PAGE_SUFFIXES = (".html", ".htm")
# When pages disagree about one image, the most restrictive value wins.
RESTRICTIVENESS = [
    DMI.ALLOWED,
    DMI.UNSPECIFIED,
    DMI.PROHIBITED_GENAIMLTRAINING,
    DMI.PROHIBITED_AIMLTRAINING,
    DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING,
    DMI.PROHIBITED_SEELINKEDRIGHTSEXPR,
    DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR,
    DMI.PROHIBITED_SEECONSTRAINT,
    DMI.PROHIBITED,
]


@dataclass
class SiteReport:
    """What a site build did: the image report plus pages and site files."""

    images: Report
    pages: list[str] = field(default_factory=list)
    pages_changed: int = 0
    site_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        """One line: images, pages and site files."""
        s = self.images.summary
        return (
            f"ssg-dmi: {s['images']} images tagged ({s['reencoded']} re-encoded), "
            f"{s['errors']} untagged; originals {s['bytes_before'] / 1e6:.1f} -> "
            f"{s['bytes_after'] / 1e6:.1f} MB; {s['variants']} variants, "
            f"{s['variant_bytes'] / 1e6:.1f} MB; {s['cache_hits']}/{s['sources']} from cache; "
            f"{len(self.pages)} pages ({self.pages_changed} changed); "
            f"site files written: {', '.join(self.site_files) or 'none (unchanged)'}"
        )


def find_pages(site: Path) -> list[str]:
    """Site-relative paths of the HTML pages (hidden folders skipped), sorted."""
    pages = []
    for folder, dirs, files in os.walk(site):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(PAGE_SUFFIXES):
                pages.append((Path(folder) / name).relative_to(site).as_posix())
    return pages


def _read_page(site: Path, rel: str) -> str | None:
    try:
        return (site / rel).read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        log.warning("%s: cannot read the page (%s); left unchanged", rel, exc.strerror)
        return None


def _dmi(value: str, where: str) -> DMI:
    try:
        return DMI.parse(value)
    except ValueError:
        allowed = ", ".join(m.key for m in DMI)
        raise ConfigError(
            f"{where}: {value!r} is not a DataMining value; use one of {allowed}"
        ) from None


def collect_overrides(
    site: Path,
    pages: list[str],
    page_dmi: Mapping[str, str] | None,
    base_url: str,
) -> tuple[dict[str, DMI], dict[str, DMI], list[str]]:
    """Page and image DMI overrides: from adapters (front matter), ``<meta name="ssg-dmi">``
    and ``<img data-dmi>``. Returns (pages, images, notes)."""
    page_values: dict[str, DMI] = {}
    image_values: dict[str, DMI] = {}
    notes: list[str] = []
    for rel in pages:
        text = _read_page(site, rel)
        if text is None:
            continue
        scan = htmlscan.scan(text, rel, base_url)
        given = (page_dmi or {}).get(rel) or scan.dmi
        page_value = _dmi(given, rel) if given else None
        if page_value is not None:
            page_values[rel] = page_value
        for image, attr in scan.images:
            value = _dmi(attr, f"{rel}: data-dmi of {image}") if attr else page_value
            if value is None:
                continue
            previous = image_values.get(image)
            if previous is not None and previous is not value:
                value = max(previous, value, key=RESTRICTIVENESS.index)
                notes.append(f"{image}: pages disagree on its DataMining value; {value.key} used")
            image_values[image] = value
    return page_values, image_values, notes


def _image_infos(report: Report) -> dict[str, pagehtml.ImageInfo]:
    infos = {}
    for rel, entry in report.images.items():
        original = entry["original"]
        if not original["width"]:
            continue  # SVG: no intrinsic raster size, nothing to add
        variants = tuple(
            pagehtml.Variant(v["path"], v["width"], v["height"], v["format"])
            for v in entry["variants"]
        )
        infos[rel] = pagehtml.ImageInfo(
            original["width"], original["height"], original["format"], variants
        )
    return infos


# With width/height attributes, a theme's `img { max-width: 100% }` alone squashes images
# narrower than their slot (the height attribute stays). `:where()` has zero specificity:
# this only fills in when the theme's CSS says nothing about height.
KEEP_RATIO = '<style id="ssg-dmi">:where(img[width][height][srcset]){height:auto}</style>'


def keep_ratio(html: str) -> str:
    """Add :data:`KEEP_RATIO` after ``<head>`` once, in a page that has srcset images."""
    if 'id="ssg-dmi"' in html or "srcset" not in html:
        return html
    for tag in htmlscan.iter_tags(html, frozenset({"head"})):
        if not tag.closing:
            return html[: tag.end] + KEEP_RATIO + html[tag.end :]
    return html


def declare_dmi(html: str, key: str) -> str:
    """Write a front-matter value into the page as ``<meta name="ssg-dmi">``, right after
    ``<head>``, so ``ssg-dmi check`` and later builds over this output see it too."""
    for tag in htmlscan.iter_tags(html, frozenset({"head"})):
        if not tag.closing:
            return f'{html[: tag.end]}<meta name="ssg-dmi" content="{key}">{html[tag.end :]}'
    return html


def rewrite_pages(
    site: Path,
    pages: list[str],
    settings: Settings,
    report: Report,
    page_values: Mapping[str, DMI],
    page_dmi: Mapping[str, str] | None = None,
) -> int:
    """Rewrite every page's images and head; returns how many files changed."""
    infos = _image_infos(report)
    formats = tuple(dict.fromkeys((*settings.formats, "avif", "webp", "jpeg", "png")))
    changed = 0
    for rel in pages:
        text = _read_page(site, rel)
        if text is None:
            continue
        sig = signals_of(page_values.get(rel) or settings.policy_for(rel).dmi)
        ctx = pagehtml.PageContext(
            page_path=rel,
            base_url=settings.base_url,
            images=infos,
            robots=sig.robots_meta,
            tdm_reservation=sig.tdm_reservation,
            tdm_policy=settings.tdm_policy if sig.tdm_reservation == 1 else None,
            sizes=settings.sizes,
            picture=settings.picture,
            lazy=settings.lazy,
            formats=formats,
            origin=settings.origin,
        )
        out = pagehtml.rewrite(text, ctx)
        declared = page_dmi.get(rel) if page_dmi else None
        if declared and htmlscan.scan(out, rel, settings.base_url).dmi is None:
            out = declare_dmi(out, _dmi(declared, rel).key)
        out = keep_ratio(out)
        if out != text:
            changed += atomic_write(site / rel, out.encode("utf-8", errors="surrogateescape"))
    return changed


def run_site(
    site: Path,
    settings: Settings,
    *,
    executor: Executor | None = None,
    page_dmi: Mapping[str, str] | None = None,
    progress: bool | None = None,
) -> SiteReport:
    """The whole build of one site folder; see the module docstring for the order."""
    if not site.is_dir():
        raise ConfigError(f"{site}: no such site folder; build the site first")
    pages = find_pages(site)
    page_values, image_values, notes = collect_overrides(site, pages, page_dmi, settings.base_url)

    def overrides(rel: str) -> Mapping[str, Any] | None:
        value = image_values.get(rel)
        return {"dmi": value.key} if value is not None else None

    cache_dir = Path(settings.cache_dir) if settings.cache else None
    images = run(
        site,
        settings,
        executor=executor,
        cache_dir=cache_dir,
        progress=progress,
        overrides=overrides,
    )
    result = SiteReport(images=images, pages=pages, notes=notes)
    if settings.rewrite_html:
        result.pages_changed = rewrite_pages(site, pages, settings, images, page_values, page_dmi)
    if settings.site_files:
        overridden = {**{k: v for k, v in image_values.items()}, **page_values}
        policy = site_policy(settings, overridden)
        result.notes += list(policy.notes)
        result.site_files = write_site_files(site, policy, settings)
    return result
