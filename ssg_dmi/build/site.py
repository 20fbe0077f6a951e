"""A whole site build: images, then pages, then the site-level signal files.

The order matters: pages are scanned first (a page's ``<meta name="ssg-dmi">`` or front
matter and an ``<img data-dmi>`` decide the policy of the images they show), images are
processed with those overrides, pages are rewritten with the variants the images got, and
the site files are written last from the same policies.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..pages import rewrite as pagehtml
from ..pages import scan as htmlscan
from ..contract import signals as signals_of
from ..errors import BuildInterrupted, ConfigError
from ..fsutil import atomic_write, shown
from ..pages.encoding import PageText, decode_page
from .pipeline import Report, remove_stale, run
from ..policy import DMI
from .job import VARIANT_NAME
from ..settings import Settings
from ..sitefiles.render import site_policy
from ..sitefiles.writer import write_site_files
from .workers import Workers, sigterm_interrupts

log = logging.getLogger("ssg_dmi.build.site")
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
    # Problems that did not stop the build (a cache or a page that cannot be written).
    warnings: list[str] = field(default_factory=list)

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


def find_pages(site: Path, notes: list[str] | None = None) -> list[str]:
    """Site-relative paths of the HTML pages (hidden folders skipped), sorted.

    Read nothing outside the site, as for images: a page that is a link leading out of the
    site folder is skipped, and so is anything named ``*.html`` that is not a regular file
    (a FIFO would block the build forever when opened). Each skip is a line in ``notes``
    (logged as a warning when no list is given).
    """
    root = site.resolve()
    pages = []
    for folder, dirs, files in os.walk(site):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.lower().endswith(PAGE_SUFFIXES):
                continue
            path = Path(folder) / name
            rel = path.relative_to(site).as_posix()
            why = _not_a_page(path, root)
            if why is None:
                pages.append(rel)
            elif notes is None:
                log.warning("%s: %s; skipped", shown(rel), why)
            else:
                notes.append(f"{shown(rel)}: {why}; skipped")
    return pages


def _not_a_page(path: Path, root: Path) -> str | None:
    """Why ``path`` must not be read as a page, or None. Only stat calls: never opened."""
    try:
        if path.is_symlink() and not path.resolve(strict=True).is_relative_to(root):
            return "a link leading outside the site folder"
        mode = path.stat().st_mode
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        return f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, device or socket)"
    return None


def _read_page(site: Path, rel: str) -> PageText | str:
    """The page's text in its own encoding, or why it cannot be read or decoded."""
    try:
        data = (site / rel).read_bytes()
    except OSError as exc:
        return f"cannot read the page ({exc.strerror or exc})"
    page = decode_page(data)
    return page if isinstance(page, PageText) else f"cannot decode the page: {page}"


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
        page = _read_page(site, rel)
        if isinstance(page, str):
            continue  # rewrite_pages says why and leaves it alone
        scan = htmlscan.scan(page.text, rel, base_url)
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
) -> tuple[int, list[str]]:
    """Rewrite every page's images and head; returns how many files changed, and one
    warning line per page left unchanged (unreadable, undecodable, unwritable) and per
    local image that got no srcset for a reason worth fixing (missing, untagged, outside
    ``base_url``). Each page is written back in its own encoding."""
    infos = _image_infos(report)
    formats = tuple(dict.fromkeys((*settings.formats, "avif", "webp", "jpeg", "png")))
    changed = 0
    notes: list[str] = []
    for rel in pages:
        page = _read_page(site, rel)
        if isinstance(page, str):
            notes.append(f"{shown(rel)}: {page}; left unchanged")
            continue
        text = page.text
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
            variant_name=VARIANT_NAME,
        )
        misses: list[pagehtml.Unprocessed] = []
        out = pagehtml.rewrite(text, ctx, misses)
        notes += _image_notes(site, rel, misses, report, settings)
        declared = page_dmi.get(rel) if page_dmi else None
        if declared and htmlscan.scan(out, rel, settings.base_url).dmi is None:
            out = declare_dmi(out, _dmi(declared, rel).key)
        out = keep_ratio(out)
        if out == text:
            continue
        try:
            data = page.encode(out)
        except UnicodeEncodeError as exc:
            reason = f"{exc.object[exc.start : exc.end]!r} has no {page.encoding} encoding"
            notes.append(f"{shown(rel)}: cannot write ({reason}); left unchanged")
            continue
        try:
            changed += atomic_write(site / rel, data)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            notes.append(f"{shown(rel)}: cannot write ({reason}); left unchanged")
    return changed, notes


def _image_notes(
    site: Path,
    page: str,
    misses: list[pagehtml.Unprocessed],
    report: Report,
    settings: Settings,
) -> list[str]:
    """Why each local image the page shows got no srcset, where that is worth fixing.

    Deliberate cases say nothing: an image excluded by the include/exclude globs, or one
    with no raster size (SVG). A missing file, an untagged image, a link leading outside
    the site and a URL outside ``base_url`` are each one line naming page and image."""
    root = site.resolve()
    out: list[str] = []
    for miss in dict.fromkeys(misses):
        where = f'{shown(page)}: <img src="{miss.src}">'
        if miss.path is None:
            out.append(
                f"{where} leads outside base_url {settings.base_url}; no srcset "
                "(write the URL under base_url)"
            )
            continue
        path = site / miss.path
        if miss.path in report.errors:
            why = f"{shown(miss.path)} is untagged ({report.errors[miss.path]})"
        elif (
            miss.path in report.images
            or not settings.matches(miss.path)
            or VARIANT_NAME.match(miss.path.rsplit("/", 1)[-1])
        ):
            continue  # SVG, excluded on purpose, or one of our variants shown as such
        elif not _exists(path):
            why = f"names {shown(miss.path)}, which is not in the site"
        elif (reason := _not_a_page(path, root)) is not None:
            why = f"names {shown(miss.path)}: {reason}"
        else:
            why = f"names {shown(miss.path)}, which the build did not process"
        out.append(f"{where} {why}; no srcset")
    return out


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a NUL from %00 in a URL
        return False


def run_site(
    site: Path,
    settings: Settings,
    *,
    executor: Executor | Workers | None = None,
    page_dmi: Mapping[str, str] | None = None,
    progress: bool | None = None,
) -> SiteReport:
    """The whole build of one site folder; see the module docstring for the order.

    Ctrl-C or SIGTERM raise :class:`~ssg_dmi.errors.BuildInterrupted` within a second or
    two: workers are terminated, no temp file is left, and what was written is consistent
    (pages point only at files that exist; a rerun finishes the build).
    """
    if not site.is_dir():
        what = "is a file, not a folder" if site.exists() else "no such site folder"
        raise ConfigError(f"{site}: {what}; give the generator's output folder (build it first)")
    cache_dir = Path(settings.cache_dir) if settings.cache else None
    stage, done = "reading pages", 0
    try:
        with sigterm_interrupts():
            skipped_pages: list[str] = []
            pages = find_pages(site, skipped_pages)
            page_values, image_values, notes = collect_overrides(
                site, pages, page_dmi, settings.base_url
            )

            def overrides(rel: str) -> Mapping[str, Any] | None:
                value = image_values.get(rel)
                return {"dmi": value.key} if value is not None else None

            stage = ""
            images = run(
                site,
                settings,
                executor=executor,
                cache_dir=cache_dir,
                progress=progress,
                overrides=overrides,
                keep_stale=True,  # removed once the pages no longer point at them
            )
            done = len(images.images) + len(images.errors)
            stage = "rewriting pages"
            result = SiteReport(
                images=images, pages=pages, notes=[*skipped_pages, *images.skipped, *notes]
            )
            result.warnings += images.warnings
            if settings.rewrite_html:
                result.pages_changed, page_warnings = rewrite_pages(
                    site, pages, settings, images, page_values, page_dmi
                )
                result.warnings += page_warnings
            stage = "writing site files"
            if settings.site_files:
                overridden = {**{k: v for k, v in image_values.items()}, **page_values}
                policy = site_policy(settings, overridden)
                result.notes += list(policy.notes)
                result.site_files = write_site_files(site, policy, settings, result.warnings)
            before = len(images.warnings)
            remove_stale(site, images)
            result.warnings += images.warnings[before:]
    except BuildInterrupted:
        sweep_temp_files(site, cache_dir)
        raise
    except KeyboardInterrupt:
        sweep_temp_files(site, cache_dir)
        raise BuildInterrupted(done, done, stage) from None
    return result


def sweep_temp_files(*folders: Path | None) -> None:
    """Remove the temp files of writes that an interrupt cut short (terminated workers
    cannot clean up after themselves)."""
    for folder in folders:
        if folder is None:
            continue
        for here, _dirs, files in os.walk(folder):
            for name in files:
                if name.startswith(".ssg-dmi-") and name.endswith(".tmp"):
                    Path(here, name).unlink(missing_ok=True)
