"""A whole site build: images, then pages, then the site-level signal files.

The order matters: pages are scanned first (a page's ``<meta name="ssg-dmi">`` or front
matter and an ``<img data-dmi>`` decide the policy of the images they show), images are
processed with those overrides, pages are rewritten with the variants the images got, and
the site files are written last from the same policies.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract import signals as signals_of
from ..errors import BuildInterrupted, ConfigError
from ..fsutil import TEMP_PREFIX, TEMP_SUFFIX, atomic_write, shown
from ..pages import context as pagehtml  # the records; the rewriter only when a page needs it
from ..pages.overrides import PageStore, collect_all, dmi_value
from ..pages.scan import scan
from ..policy import DMI
from ..settings import Settings
from ..sitefiles.hotlink import hotlink_notes
from ..sitefiles.render import site_policy
from ..sitefiles.writer import write_site_files
from ..walk import VARIANT_NAME, find_pages, passed_over
from .pagememo import Lookups, PageMemo, text_digest
from .pipeline import remove_stale, run
from .report import ImageTable, Report
from .store import cache_location
from .workers import Workers, sigterm_interrupts

log = logging.getLogger("ssg_dmi.build.site")


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
    shard: tuple[int, int] | None = None  # a shard's build: the cache filled, no site written

    def summary_line(self) -> str:
        """One line: images, pages and site files."""
        s = self.images.summary
        if self.shard is not None:
            k, n = self.shard
            return (
                f"ssg-dmi: shard {k}/{n}: {s.sources} of the site's distinct images "
                f"({s.sources - s.cache_hits} processed, {s.cache_hits} already in the cache, "
                f"{s.errors} untagged); nothing written into the site: build it without "
                "--shard once every shard is done"
            )
        return (
            f"ssg-dmi: {s.images} images tagged ({s.reencoded} re-encoded), "
            f"{s.errors} untagged; originals {s.bytes_before / 1e6:.1f} -> "
            f"{s.bytes_after / 1e6:.1f} MB; {s.variants} variants, "
            f"{s.variant_bytes / 1e6:.1f} MB; {s.cache_hits}/{s.sources} from cache; "
            f"{len(self.pages)} pages ({self.pages_changed} changed); "
            f"site files written: {', '.join(self.site_files) or 'none (unchanged)'}"
        )


class ImageInfos(Mapping[str, pagehtml.ImageInfo]):
    """What the page rewriter knows of each image the build made (SVGs, with no raster
    size, are not in it), each record made when a page shows its image: no second record
    per image is held while the pages are rewritten."""

    def __init__(self, report: Report) -> None:
        self._images = report.images

    def __getitem__(self, rel: str) -> pagehtml.ImageInfo:
        entry = self._images[rel]
        original = entry.original
        if not original.width:
            raise KeyError(rel)  # SVG: no intrinsic raster size, nothing to add
        variants = tuple(
            pagehtml.Variant(v.path, v.width, v.height, v.format) for v in entry.variants
        )
        return pagehtml.ImageInfo(original.width, original.height, original.format, variants)

    def __iter__(self) -> Iterator[str]:
        return (rel for rel, entry in self._images.items() if entry.original.width)

    def answer(self, rel: str) -> str:
        """What the build knows of ``rel`` as text (equal texts: equal records), "-" when
        nothing: what a page's rewrite read, for the record of unchanged pages."""
        images = self._images
        if isinstance(images, ImageTable):
            return images.row(rel) or "-"
        entry = images.get(rel)
        return "-" if entry is None else repr(entry)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def rewrite_pages(
    site: Path,
    pages: list[str],
    settings: Settings,
    report: Report,
    page_values: Mapping[str, DMI],
    page_dmi: Mapping[str, str] | None = None,
    store: PageStore | None = None,
    memo: PageMemo | None = None,
) -> tuple[int, list[str]]:
    """Rewrite every page's images and head; returns how many files changed, and one
    warning line per page left unchanged (unreadable, undecodable, unwritable) and per
    local image that got no srcset for a reason worth fixing (missing, untagged, outside
    ``base_url``). Each page is written back in its own encoding. ``memo``: the pages a
    rewrite was seen to leave as they are, skipped while their inputs are the same (the
    caller saves it)."""
    infos = ImageInfos(report)
    store = store or PageStore(site, budget=0)
    formats = tuple(dict.fromkeys((*settings.formats, "avif", "webp", "jpeg", "png")))
    changed = 0
    notes: list[str] = []
    for rel in pages:
        page = store.get(rel)
        store.drop(rel)
        if isinstance(page, str):
            notes.append(f"{shown(rel)}: {page}; left unchanged")
            continue
        text = page.text
        sig = signals_of(page_values.get(rel) or settings.policy_for(rel).dmi)
        declared = page_dmi.get(rel) if page_dmi else None
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
        if memo is not None:
            # Everything the rewrite reads but the page's text and its images' records.
            context = repr((dataclasses.replace(ctx, images={}), declared))
            digest = text_digest(text, page.encoding, page.bom)
            if memo.unchanged(rel, digest, context, infos.answer):
                continue
            lookups = Lookups(infos, infos.answer)
            ctx = dataclasses.replace(ctx, images=lookups)
        misses: list[pagehtml.Unprocessed] = []
        out = _rewrite_page(text, ctx, declared, settings.base_url, misses)
        notes += _image_notes(site, rel, misses, report, settings)
        if out == text:
            if memo is not None and not misses:
                memo.remember(rel, digest, context, lookups.asked)
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
            continue
        if memo is not None:
            # The next build reads what was written: its scan is known now.
            written = text_digest(out, page.encoding, page.bom)
            if not memo.written(rel, digest, written, settings.base_url, bool(declared)):
                memo.scan(rel, dataclasses.replace(page, text=out), settings.base_url, fresh=True)
            if not misses:
                # The rewrite is idempotent (pages.rewrite's contract, a property test
                # holds it to that), so the written text, rewritten with these inputs,
                # gives itself; it shows the same images, so it asks the same lookups.
                memo.remember(rel, written, context, lookups.asked)
    return changed, notes


def _rewrite_page(
    text: str,
    ctx: pagehtml.PageContext,
    declared: str | None,
    base_url: str,
    misses: list[pagehtml.Unprocessed],
) -> str:
    """One page's new text: responsive images, metas, the adapter's declared value."""
    from ..pages import rewrite
    from ..pages.head import declare_dmi, keep_ratio

    out = rewrite.rewrite(text, ctx, misses)
    if declared and scan(out, ctx.page_path, base_url).dmi is None:
        out = declare_dmi(out, dmi_value(declared, ctx.page_path).key)
    return keep_ratio(out)


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
        elif (reason := passed_over(path, root)) is not None:
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
    page_watermark: Mapping[str, str] | None = None,
    shard: tuple[int, int] | None = None,
) -> SiteReport:
    """The whole build of one site folder; see the module docstring for the order.
    ``page_dmi`` and ``page_watermark``: the adapter's front-matter values by page.
    ``shard`` (K, N): only fill the cache with shard K of N's images (the pages are read
    for their per-page values, so every shard computes the same keys); nothing is written.
    With ``settings.scheduler`` and no ``executor``, the images run on that Dask cluster.

    Ctrl-C or SIGTERM raise :class:`~ssg_dmi.errors.BuildInterrupted` within a second or
    two: workers are terminated, no temp file is left, and what was written is consistent
    (pages point only at files that exist; a rerun finishes the build).
    """
    if not site.is_dir():
        what = "is a file, not a folder" if site.exists() else "no such site folder"
        raise ConfigError(f"{site}: {what}; give the generator's output folder (build it first)")
    cache_dir = cache_location(settings.cache_dir) if settings.cache else None
    if shard is not None and cache_dir is None:
        raise ConfigError(
            "--shard needs the cache: the shards fill it and a final build reads it; "
            "drop --no-cache / cache = false"
        )
    client, window = None, None
    if executor is None and settings.scheduler:
        from .remote import dask_executor

        executor, client = dask_executor(settings.scheduler)
        window = 2 * max(1, sum(client.nthreads().values()))  # two jobs per thread
    stage, done = "reading pages", 0
    try:
        with sigterm_interrupts():
            skipped_pages: list[str] = []
            pages = find_pages(site, skipped_pages)
            # Each page is read and decoded once: the rewrite reuses what this pass read.
            store = PageStore(site)
            memo = PageMemo.for_site(cache_dir, site) if isinstance(cache_dir, Path) else None
            base_url = settings.base_url
            found = collect_all(
                site,
                pages,
                page_dmi,
                base_url,
                store,
                page_watermark,
                (lambda rel, page: memo.scan(rel, page, base_url)) if memo else None,
            )
            page_values, image_values, notes = found.pages, found.images, found.notes
            image_marks = found.image_marks()

            def overrides(rel: str) -> Mapping[str, Any] | None:
                given: dict[str, Any] = {}
                if (value := image_values.get(rel)) is not None:
                    given["dmi"] = value
                if (mark := image_marks.get(rel)) is not None:
                    given["watermark"] = mark
                return given or None

            stage = ""
            images = run(
                site,
                settings,
                executor=executor,
                cache_dir=cache_dir,
                progress=progress,
                overrides=overrides,
                keep_stale=True,  # removed once the pages no longer point at them
                shard=shard,
                window=window,
            )
            done = len(images.images) + len(images.errors)
            stage = "rewriting pages"
            result = SiteReport(
                images=images, pages=pages, notes=[*skipped_pages, *images.skipped, *notes]
            )
            result.warnings += images.warnings
            if shard is not None:
                result.shard = shard
                return result
            if settings.rewrite_html:
                result.pages_changed, page_warnings = rewrite_pages(
                    site, pages, settings, images, page_values, page_dmi, store, memo
                )
                result.warnings += page_warnings
            if memo is not None:
                memo.save()
            stage = "writing site files"
            if settings.site_files:
                overridden = {**{k: v for k, v in image_values.items()}, **page_values}
                policy = site_policy(settings, overridden)
                result.notes += [*policy.notes, *hotlink_notes(settings)]
                result.site_files = write_site_files(site, policy, settings, result.warnings)
            before = len(images.warnings)
            remove_stale(site, images)
            result.warnings += images.warnings[before:]
    except BuildInterrupted:
        sweep_temp_files(site, cache_dir if isinstance(cache_dir, Path) else None)
        raise
    except KeyboardInterrupt:
        sweep_temp_files(site, cache_dir if isinstance(cache_dir, Path) else None)
        raise BuildInterrupted(done, done, stage) from None
    finally:
        if client is not None:
            client.close()
    return result


def sweep_temp_files(*folders: Path | None) -> None:
    """Remove the temp files of writes that an interrupt cut short (terminated workers
    cannot clean up after themselves)."""
    for folder in folders:
        if folder is None:
            continue
        for here, _dirs, files in os.walk(folder):
            for name in files:
                if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                    Path(here, name).unlink(missing_ok=True)
