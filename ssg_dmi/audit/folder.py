"""``ssg-dmi check SITE_DIR``: audit a built site folder. Every image and variant (found
as the build finds them), every page and the site files are read from disk and checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from ..pages import urls
from ..pages.encoding import decode_page
from ..settings import Settings
from ..walk import VARIANT_NAME, find_pages, site_images
from . import themes
from .crawl import MAX_PAGE_BYTES
from .expect import Expectations, site_overrides
from .findings import CheckReport, Finding
from .image_checks import check_image, expects_manifest, pixel_width
from .page_checks import check_candidate, check_img_size, check_page_metas
from .page_facts import parse_srcset, read_page
from .site_files import SITE_FILES, compare_site_files, read_site_files, url_path


def images_and_variants(site: Path, settings: Settings) -> tuple[list[str], list[str]]:
    """(images, variants) as the build finds images (:func:`ssg_dmi.walk.site_images`, then
    include/exclude), without touching a file; variants are those of the images found."""
    cache = Path(settings.cache_dir) if settings.cache else None
    images: list[str] = []
    variants: list[str] = []
    for rel in site_images(site, cache):
        name = rel.rsplit("/", 1)[-1]
        (variants if VARIANT_NAME.match(name) else images).append(rel)
    chosen = {rel for rel in images if settings.matches(rel)}
    variants = [v for v in variants if Expectations.source_of(v) in chosen]
    return sorted(chosen), variants


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a NUL from %00 in a URL
        return False


def _built_by(site: Path, pages: list[str]) -> themes.BuiltBy | None:
    """The generator the home page names (see :mod:`.themes`)."""
    if "index.html" not in pages:
        return None
    try:
        home = (site / "index.html").read_bytes()[:MAX_PAGE_BYTES]
    except OSError:
        return None  # the page loop reports it
    decoded = decode_page(home)
    return None if isinstance(decoded, str) else themes.built_by(decoded.text)


def check_site(
    site: Path,
    settings: Settings,
    page_dmi: Mapping[str, str] | None = None,
    *,
    theme_images: bool = False,
) -> CheckReport:
    """Audit a built site folder; ``page_dmi`` as for :func:`ssg_dmi.build.site.run_site`.

    A site MkDocs or Pelican wrote is audited as its plugin built it: the theme's own images,
    which the plugin leaves alone unless ``theme_images`` is on, are skipped (and counted in
    a note) unless ``theme_images``; a MkDocs ``site_url`` path is read from the home page
    when the settings give no ``base_url``."""
    report = CheckReport(str(site), "dir")
    pages = find_pages(site)
    by = _built_by(site, pages)
    if by is not None and by.site_path not in (None, "/") and settings.base_url == "/":
        # The plugin built with site_url's path as base_url; the site files say so too.
        settings = dataclasses.replace(settings, base_url=by.site_path)
        report.notes.append(
            f"base_url {by.site_path} taken from the home page's canonical link "
            f"({by.generator.value} site_url); give base_url in the config to override"
        )
    overrides, report.findings = site_overrides(site, pages, page_dmi, settings.base_url)
    expect = Expectations(settings, overrides.pages, overrides.images)
    images, variants = images_and_variants(site, settings)
    if by is not None and not theme_images:
        skipped = set(themes.theme_images(by, images))
        images = [rel for rel in images if rel not in skipped]
        if skipped:
            report.notes.append(
                f"{len(skipped)} {by.generator.value} theme image(s) left alone by design, "
                f"skipped ({', '.join(sorted(skipped)[:3])}{', …' if len(skipped) > 3 else ''}); "
                "--theme-images checks them"
            )
    for rel in images + variants:
        report.checked.append(rel)
        try:
            data = (site / rel).read_bytes()
        except OSError as exc:
            report.findings.append(Finding("image-unreadable", rel, f"cannot read ({exc})"))
            continue
        signed = expects_manifest(rel, settings.c2pa)
        report.findings += check_image(data, rel, expect.image(rel), signed=signed)
    _check_pages(site, report, expect, pages)
    if settings.site_files:
        report.findings += _dir_site_files(site, report, expect, images + variants, pages)
    return report


def _check_pages(site: Path, report: CheckReport, expect: Expectations, pages: list[str]) -> None:
    """Each page's metas, and each ``<img>``'s size, src and srcset candidates on disk."""
    settings = expect.settings
    base = urls.split_base(settings.base_url)
    widths: dict[str, int | None] = {}
    for rel in pages:
        report.checked.append(rel)
        try:
            decoded = decode_page((site / rel).read_bytes())
        except OSError as exc:
            report.findings.append(Finding("fetch-failed", rel, f"cannot read ({exc})"))
            continue
        if isinstance(decoded, str):  # the build leaves such a page alone, with a warning
            message = f"cannot read it as text: {decoded}; the build leaves it alone"
            report.findings.append(Finding("fetch-failed", rel, message, "warning"))
            continue
        text = decoded.text
        facts = read_page(text)
        if settings.rewrite_html:
            report.findings += check_page_metas(facts, rel, expect.page(rel), settings.tdm_policy)
        directory = urls.document_dir(text, urls.page_dir(rel, base))
        for ref in facts.images:
            report.findings += check_img_size(ref, rel)
            if directory is None:
                continue
            path = urls.site_path(urls.resolve_url(ref.src or "", directory), base)
            if ref.src and path is not None and not _is_file(site / path):
                message = f'<img src="{ref.src}"> names {path}, which is not in the site'
                report.findings.append(Finding("src-missing-file", rel, message, "warning"))
            for url, descriptors in parse_srcset(ref.srcset or ""):
                path = urls.site_path(urls.resolve_url(url, directory), base)
                if path is None:
                    continue
                exists = _is_file(site / path)
                if exists and path not in widths:
                    widths[path] = pixel_width(str(site / path))
                width = widths.get(path)
                report.findings += check_candidate(rel, ref, url, descriptors, width, exists)


def _dir_site_files(
    site: Path, report: CheckReport, expect: Expectations, images: list[str], pages: list[str]
) -> list[Finding]:
    settings = expect.settings

    def read(name: str) -> str | None:
        try:
            data = (site / name).read_bytes() if _is_file(site / name) else None
        except OSError:
            data = None  # reported as missing: a host could not serve it either
        if data is not None and name not in report.checked:
            report.checked.append(name)
        return None if data is None else data.decode("utf-8", "surrogateescape")

    base = settings.base_url
    paths = {url_path(rel, base): expect.image(rel) for rel in images}
    for rel in pages:
        paths[url_path(rel, base)] = expect.page(rel)
        if rel == "index.html" or rel.endswith("/index.html"):
            paths[url_path(rel[: -len("index.html")], base)] = expect.page(rel)
    found = compare_site_files(read, settings, expect.site_policy())
    texts = {name: read(name) for name in SITE_FILES}
    return found + read_site_files(texts, paths, settings, lambda name: name)
