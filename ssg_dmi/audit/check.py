"""``ssg-dmi check``: audit a built site folder, or crawl a served one, for CI.

Directory mode reads every image and variant (found as the pipeline finds them), every
page and the site files; URL mode fetches the pages (same origin, under ``base_url``,
bounded in time and memory whatever the server does: :mod:`.crawl`), the images and srcset
candidates they use and the site files, and also checks the response headers. The checks
themselves are in :mod:`.audit`; what the plugins leave alone by design, in :mod:`.themes`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from .. import themes
from ..build.job import VARIANT_NAME
from ..build.pipeline import site_images
from ..build.site import RESTRICTIVENESS, collect_overrides, find_pages
from ..errors import ConfigError
from ..fsutil import is_image_name, shown
from ..pages import scan as htmlscan
from ..pages.encoding import decode_page
from ..policy import DMI
from ..settings import Settings
from ..sitefiles.render import BEGIN
from .checks import (
    TDMREP,
    Expectations,
    Finding,
    ImageRef,
    PageFacts,
    Severity,
    check_candidate,
    check_headers,
    check_image,
    check_img_size,
    check_page_metas,
    compare_site_files,
    page_overrides,
    parse_srcset,
    pixel_width,
    read_page,
    read_site_files,
    url_path,
)
from .crawl import (
    FETCH_SECONDS,
    FETCH_THREADS,
    MAX_IMAGE_BYTES,
    MAX_PAGE_BYTES,
    READ_TIMEOUT,
    SKIPPED,
    Crawler,
    Fetched,
    clean,
    origin,
)

FORMATS = ("text", "json", "junit", "github")
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2  # as in cli
SITE_FILES = ("robots.txt", "ai.txt", TDMREP)
MAX_FINDINGS = 10_000  # kept in a URL report; the rest are counted
MAX_USES = 100_000  # (page, element) uses of image URLs kept by a crawl
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class Report:
    """What a check found: ``target`` is the site folder or the base URL."""

    target: str
    mode: str  # "dir" or "url"
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped or inferred, and why

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        """How many findings are warnings."""
        return sum(f.severity == "warning" for f in self.findings)

    def display(self, path: str) -> str:
        """A finding's path as shown: under the site folder as given, or the URL."""
        return path if self.mode == "url" else shown(Path(self.target) / path)


# -- directory mode ------------------------------------------------------------------------


def discover(site: Path, settings: Settings) -> tuple[list[str], list[str]]:
    """(images, variants) as :func:`ssg_dmi.build.pipeline.discover` finds images (hidden folders,
    the cache, links leading outside and include/exclude as there), without touching a file;
    variants are those of the images found."""
    cache = Path(settings.cache_dir) if settings.cache else None
    images: list[str] = []
    variants: list[str] = []
    for rel in site_images(site, cache):
        name = rel.rsplit("/", 1)[-1]
        (variants if VARIANT_NAME.match(name) else images).append(rel)
    chosen = {rel for rel in images if settings.matches(rel)}
    variants = [v for v in variants if Expectations.source_of(v) in chosen]
    return sorted(chosen), variants


def _overrides(
    site: Path, pages: list[str], page_dmi: Mapping[str, str] | None, base_url: str
) -> tuple[dict[str, DMI], dict[str, DMI], list[Finding]]:
    """The build's overrides; a page whose value is not a DMI value is a finding and is
    left out (the build itself would stop there)."""
    try:
        return (*collect_overrides(site, pages, page_dmi, base_url)[:2], [])
    except ConfigError:
        pass
    good, findings = [], []
    for rel in pages:
        try:
            collect_overrides(site, [rel], page_dmi, base_url)
            good.append(rel)
        except ConfigError as exc:
            findings.append(Finding("page-dmi-invalid", rel, str(exc)))
    return (*collect_overrides(site, good, page_dmi, base_url)[:2], findings)


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
) -> Report:
    """Audit a built site folder; ``page_dmi`` as for :func:`ssg_dmi.build.site.run_site`.

    A site MkDocs or Pelican wrote is audited as its plugin built it: the theme's own images,
    which the plugin leaves alone unless ``theme_images`` is on, are skipped (and counted in
    a note) unless ``theme_images``; a MkDocs ``site_url`` path is read from the home page
    when the settings give no ``base_url``."""
    report = Report(str(site), "dir")
    pages = find_pages(site)
    by = _built_by(site, pages)
    if by is not None and by.site_path not in (None, "/") and settings.base_url == "/":
        # The plugin built with site_url's path as base_url; the site files say so too.
        settings = dataclasses.replace(settings, base_url=by.site_path)
        report.notes.append(
            f"base_url {by.site_path} taken from the home page's canonical link "
            f"({by.generator.value} site_url); give base_url in the config to override"
        )
    page_values, image_values, report.findings = _overrides(
        site, pages, page_dmi, settings.base_url
    )
    expect = Expectations(settings, page_values, image_values)
    images, variants = discover(site, settings)
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
        report.findings += check_image(data, rel, expect.image(rel))
    base = htmlscan.split_base(settings.base_url)
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
        directory = htmlscan.document_dir(text, htmlscan.page_dir(rel, base))
        for ref in facts.images:
            report.findings += check_img_size(ref, rel)
            if directory is None:
                continue
            path = htmlscan.site_path(htmlscan.resolve_url(ref.src or "", directory), base)
            if ref.src and path is not None and not _is_file(site / path):
                message = f'<img src="{ref.src}"> names {path}, which is not in the site'
                report.findings.append(Finding("src-missing-file", rel, message, "warning"))
            for url, descriptors in parse_srcset(ref.srcset or ""):
                path = htmlscan.site_path(htmlscan.resolve_url(url, directory), base)
                if path is None:
                    continue
                exists = _is_file(site / path)
                if exists and path not in widths:
                    widths[path] = pixel_width(str(site / path))
                width = widths.get(path)
                report.findings += check_candidate(rel, ref, url, descriptors, width, exists)
    if settings.site_files:
        report.findings += _dir_site_files(site, report, expect, images + variants, pages)
    return report


def _dir_site_files(
    site: Path, report: Report, expect: Expectations, images: list[str], pages: list[str]
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


# -- URL mode ------------------------------------------------------------------------------


@dataclass
class _Use:
    """Where an image URL is used: the page, the element, how (src/srcset/link)."""

    page: str
    kind: str
    ref: ImageRef | None = None
    text: str = ""
    descriptors: str = ""


@dataclass
class _Crawl:
    """The crawl's state. Everything kept grows with --max-pages and --max-images, never
    with what the server sends: a page's text is read, checked and dropped; links past what
    can still be fetched and images past --max-images are counted, not kept."""

    settings: Settings
    crawler: Crawler
    report: Report
    max_pages: int
    max_images: int
    pages: dict[str, str] = field(default_factory=dict)  # final URL -> site path
    paths: dict[str, DMI] = field(default_factory=dict)  # URL path -> value it must say
    images: dict[str, list[_Use]] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)  # site paths of images and their sources
    page_values: dict[str, DMI] = field(default_factory=dict)
    image_values: dict[str, DMI] = field(default_factory=dict)
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

    def use(self, url: str, use: _Use) -> None:
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


def _is_html(content_type: str) -> bool:
    return content_type in ("text/html", "application/xhtml+xml")


def _crawl_pages(c: _Crawl, start: str, severity: Severity) -> None:
    """Fetch pages breadth-first from ``start``, each checked as soon as it is read. Every
    fetch counts against --max-pages, so the queue never holds more than can be fetched."""
    queue, seen = deque([start]), {start}
    fetches = 0
    while queue:
        if fetches >= c.max_pages or c.crawler.out_of_time:
            why = "the time limit was reached" if fetches < c.max_pages else "--max-pages"
            c.cut("pages", f"{len(queue)} linked URLs not fetched ({why})")
            return
        url = queue.popleft()
        got = c.crawler.get(url, _is_html, MAX_PAGE_BYTES)
        if got.status == SKIPPED:
            queue.appendleft(url)
            continue  # out of time: the loop's first test reports it
        fetches += 1
        c.report.checked.append(url)
        if got.error or got.body is None:
            away = 300 <= got.status < 400  # a redirect off the site: not ours to check
            if got.error and (url == start or not away):
                mild = url != start and got.status in (404, 410)
                c.add(Finding("fetch-failed", url, got.error, "warning" if mild else "error"))
            continue  # not HTML: not a page
        final, rel = clean(got.url), c.rel(got.url)
        if rel is None or final in c.pages:
            continue
        decoded = decode_page(got.body)
        got.body = None  # the text is what is read from here on
        if isinstance(decoded, str):
            message = f"cannot read it as text: {decoded}"
            c.add(Finding("fetch-failed", url, message, "warning"))
            continue
        text = decoded.text
        page_rel = rel + "index.html" if rel == "" or rel.endswith("/") else rel
        facts = read_page(text, c.crawler.deadline)
        if not facts.complete or c.crawler.out_of_time:  # no time left to read it all
            c.report.checked.pop()
            queue.appendleft(url)
            continue
        c.pages[final] = page_rel
        _check_page(c, final, page_rel, text, facts, got, severity)
        del text
        room = c.max_pages - fetches - len(queue)  # what can still be fetched
        _harvest(c, final, urljoin(got.url, facts.base_href or ""), facts, seen, queue, room)


def _harvest(
    c: _Crawl,
    page: str,
    base: str,
    facts: PageFacts,
    seen: set[str],
    queue: deque[str],
    room: int,
) -> None:
    """Queue the page's links (within ``room``) and record its image uses; stops at the
    deadline, as a page of a million links would otherwise keep the check going."""
    for n, href in enumerate(facts.links):
        if n % 512 == 0 and c.crawler.out_of_time:
            c.cut("time", "the time limit was reached")
            return
        if room <= 0 and not is_image_name(href.split("#", 1)[0].split("?", 1)[0]):
            c.cut("links", f"more linked pages than --max-pages {c.max_pages}")
            continue  # no room for a page: only links to images can still be kept
        link = clean(urljoin(base, href.strip()))
        if c.rel(link) is None or link in seen:
            continue
        if is_image_name(urlsplit(link).path):
            if link not in c.images:  # the image is checked once, whoever links it
                c.use(link, _Use(page, "link", text=href))
        elif room > 0:
            seen.add(link)
            queue.append(link)
            room -= 1
        else:
            c.cut("links", f"more linked pages than --max-pages {c.max_pages}")
    for n, ref in enumerate(facts.images):
        if n % 256 == 0 and c.crawler.out_of_time:
            c.cut("time", "the time limit was reached")
            return
        if ref.src is not None and (u := clean(urljoin(base, ref.src.strip()))) and c.rel(u):
            c.use(u, _Use(page, "src", ref, ref.src))
        for cand, descriptors in parse_srcset(ref.srcset or ""):
            u = clean(urljoin(base, cand))
            if c.rel(u) is not None:
                c.use(u, _Use(page, "srcset", ref, cand, descriptors))


def _check_page(
    c: _Crawl, url: str, rel: str, text: str, facts: PageFacts, got: Fetched, severity: Severity
) -> None:
    """A page's own checks (they need only its own override), and the image overrides it
    gives for the images this crawl will fetch."""
    page, images, bad = page_overrides(text, rel, c.settings.base_url)
    if bad is not None:
        c.add(Finding(bad.code, url, bad.message))
    if page is not None:
        c.page_values[rel] = page
    for img, value in images:
        if img in c.sources:
            old = c.image_values.get(img)
            c.image_values[img] = (
                value if old is None else max(old, value, key=RESTRICTIVENESS.index)
            )
    want = page if page is not None else c.settings.policy_for(rel).dmi
    c.paths[urlsplit(url).path] = want
    if c.settings.rewrite_html:
        c.add(*check_page_metas(facts, url, want, c.settings.tdm_policy))
    c.add(*check_headers(got.headers, url, want, c.settings.tdm_policy, severity))
    for ref in facts.images:
        c.add(*check_img_size(ref, url))


def check_url(
    base_url: str,
    settings: Settings,
    *,
    max_pages: int = 500,
    max_images: int = 2000,
    time_limit: float = 120.0,
    timeout: float = READ_TIMEOUT,
    fetch_time: float = FETCH_SECONDS,
) -> Report:
    """Crawl a served site from ``base_url`` and audit what it serves, within
    ``time_limit`` seconds whatever the server does, each response within ``fetch_time``
    (see :mod:`.crawl`), and in memory bounded by the limits. ValueError when
    ``base_url`` is not an http(s) URL."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{base_url!r} is not an http(s) URL")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    site_origin = f"{parts.scheme}://{parts.netloc}"
    report = Report(base_url, "url")
    crawler = Crawler(base_url, timeout, min(time_limit, 1e9), fetch_time)
    c = _Crawl(settings, crawler, report, max_pages, max_images)
    start = clean(base_url)
    if c.rel(start) is None:
        start = clean(site_origin + settings.base_url)
    severity: Severity = "error" if settings.hosts else "warning"
    site_files = _fetch_site_files(c, site_origin)  # first: they matter whatever the limits
    _crawl_pages(c, start, severity)
    expect = Expectations(settings, c.page_values, c.image_values)
    urls = list(c.images)
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        # A few fetches in flight, each checked and dropped as it ends: bodies never pile up.
        pending: set[Future[Fetched]] = set()
        which: dict[Future[Fetched], str] = {}
        for url in [*urls, None]:
            while pending and (url is None or len(pending) >= FETCH_THREADS):
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    _check_image_url(c, expect, which.pop(future), future.result(), severity)
            if url is not None:
                future = pool.submit(c.crawler.get, url, lambda _: True, MAX_IMAGE_BYTES)
                which[future] = url
                pending.add(future)
    c.add(*read_site_files(site_files, c.paths, settings, lambda n: f"{site_origin}/{n}"))
    if c.crawler.out_of_time:
        c.truncated["time"] = f"the time limit of {time_limit:g} s was reached"
    if c.truncated:
        why = "; ".join(c.truncated.values())
        message = f"the crawl stopped early ({why}); raise --max-pages/--max-images/--time-limit"
        mild: Severity = "warning" if c.pages else "error"  # nothing read is no pass
        report.findings.append(Finding("crawl-truncated", base_url, message, mild))
    if c.dropped:
        counts = " and ".join(f"{n} more {s}s" for s, n in sorted(c.dropped.items()))
        message = f"{counts} not listed (the first {MAX_FINDINGS} findings are)"
        worst: Severity = "error" if "error" in c.dropped else "warning"
        report.findings.append(Finding("crawl-truncated", base_url, message, worst))
    return report


def _check_image_url(
    c: _Crawl, expect: Expectations, url: str, got: Fetched, severity: Severity
) -> None:
    if got.status == SKIPPED:
        return
    c.report.checked.append(url)
    uses = c.images[url]
    if got.error or got.body is None:
        missing = got.status in (404, 410)
        for use in uses:
            if use.kind == "srcset" and missing and use.ref is not None:
                c.add(*check_candidate(use.page, use.ref, use.text, "", None, False))
            elif use.kind == "src" and missing:
                message = f'<img src="{use.text}"> names {url}: {got.error}'
                c.add(Finding("src-missing-file", use.page, message, "warning"))
        if not missing or all(u.kind == "link" for u in uses):
            mild = missing or 300 <= got.status < 400
            c.add(Finding("fetch-failed", url, got.error or "", "warning" if mild else "error"))
        return
    rel = c.rel(url) or ""
    want = expect.image(rel)
    c.paths[urlsplit(url).path] = want
    if c.settings.matches(Expectations.source_of(rel)):
        c.add(*check_image(got.body, url, want))
    c.add(*check_headers(got.headers, url, want, c.settings.tdm_policy, severity))
    width = pixel_width(got.body) if any(u.kind == "srcset" for u in uses) else None
    for use in uses:
        if use.kind == "srcset" and use.ref is not None:
            c.add(*check_candidate(use.page, use.ref, use.text, use.descriptors, width, True))


def _fetch_site_files(c: _Crawl, site_origin: str) -> dict[str, str | None]:
    """The site files at the host's root, where crawlers look: served, robots.txt with our
    section, tdmrep.json valid JSON. What they say is read once the paths are known."""
    texts: dict[str, str | None] = {}
    for name in SITE_FILES:
        url = f"{site_origin}/{name}"
        got = c.crawler.get(url, lambda _: True, MAX_PAGE_BYTES)
        texts[name] = None
        if got.status == SKIPPED:
            continue
        c.report.checked.append(url)
        text = got.body.decode("utf-8", "replace") if got.body is not None else None
        texts[name] = text if got.status == 200 else None
        if got.status in (404, 410):
            c.add(Finding("site-file-missing", url, f"{name} is not served ({got.error})"))
        elif texts[name] is None:
            c.add(Finding("fetch-failed", url, got.error or f"HTTP {got.status}"))
        elif name == "robots.txt" and BEGIN not in (text or ""):
            c.add(Finding("site-file-inconsistent", url, "robots.txt has no ssg-dmi section"))
        elif name == TDMREP:
            try:
                json.loads(text or "")
            except ValueError as exc:
                c.add(Finding("site-file-inconsistent", url, f"not valid JSON ({exc})"))
    return texts


# -- output --------------------------------------------------------------------------------


def _sorted(report: Report) -> list[Finding]:
    return sorted(report.findings, key=lambda f: (report.display(f.path), f.code, f.message))


def summary(report: Report) -> str:
    """The last line of the text output."""
    what = "URLs" if report.mode == "url" else "files"
    return (
        f"ssg-dmi check: {report.errors} errors, {report.warnings} warnings "
        f"in {len(report.checked)} {what} checked"
    )


def format_text(report: Report) -> str:
    """One line per finding (``path: code: message``), the notes, then the summary."""
    lines = []
    for f in _sorted(report):
        prefix = "warning: " if f.severity == "warning" else ""
        lines.append(f"{report.display(f.path)}: {f.code}: {prefix}{f.message}")
    notes = [f"ssg-dmi check: note: {note}" for note in report.notes]
    return "\n".join([*lines, *notes, summary(report)]) + "\n"


def format_json(report: Report) -> str:
    """One JSON document: target, summary, checked paths and findings."""
    data = {
        "target": report.target,
        "mode": report.mode,
        "summary": {
            "errors": report.errors,
            "warnings": report.warnings,
            "checked": len(report.checked),
        },
        "checked": [report.display(p) for p in report.checked],
        "notes": report.notes,
        "findings": [{**asdict(f), "file": report.display(f.path)} for f in _sorted(report)],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def format_junit(report: Report) -> str:
    """JUnit XML: one testcase per checked file or URL, a failure where it has errors."""
    by_path: dict[str, list[Finding]] = {}
    for f in _sorted(report):
        by_path.setdefault(report.display(f.path), []).append(f)
    names = list(dict.fromkeys([*(report.display(p) for p in report.checked), *by_path]))
    failures = sum(any(f.severity == "error" for f in by_path.get(n, [])) for n in names)
    counts = {"tests": str(len(names)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": "ssg-dmi check", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": report.target, **counts, "skipped": "0"})
    for name in names:
        case = ET.SubElement(suite, "testcase", {"classname": "ssg-dmi.check", "name": name})
        found = by_path.get(name, [])
        errors = [f for f in found if f.severity == "error"]
        if errors:
            first = errors[0]
            failure = ET.SubElement(
                case, "failure", {"type": first.code, "message": f"{first.code}: {first.message}"}
            )
            failure.text = "\n".join(f"{f.code}: {f.message}" for f in errors)
        warnings = [f for f in found if f.severity == "warning"]
        if warnings:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"warning: {f.code}: {f.message}" for f in warnings)
    if report.notes:
        ET.SubElement(suite, "system-out").text = "\n".join(f"note: {n}" for n in report.notes)
    ET.indent(root)
    xml = ET.tostring(root, "unicode")
    # ElementTree writes control characters (a file name may hold one) as they are: not XML.
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _NOT_XML.sub("\ufffd", xml) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(report: Report) -> str:
    """GitHub Actions workflow commands (``::error file=…,title=…::message``), then the
    summary; URL findings carry the URL in the title, as they name no file."""
    lines = []
    for f in _sorted(report):
        where = report.display(f.path)
        if report.mode == "url":
            props = f"title={_escape_property(f'{f.code} {where}')}"
        else:
            props = f"file={_escape_property(where)},title={_escape_property(f.code)}"
        lines.append(f"::{f.severity} {props}::{_escape_data(f.message)}")
    lines += [f"::notice title=ssg-dmi check::{_escape_data(note)}" for note in report.notes]
    return "\n".join([*lines, summary(report)]) + "\n"


FORMATTERS: dict[str, Callable[[Report], str]] = {
    "text": format_text,
    "json": format_json,
    "junit": format_junit,
    "github": format_github,
}


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    """``ssg-dmi check``: exit 0 clean (warnings allowed), 1 with errors, 2 on bad usage."""

    def usage(message: str) -> int:
        print(f"ssg-dmi: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    if (args.site is None) == (args.url is None):
        return usage("check takes a SITE_DIR or --url BASE_URL (one of them)")
    for flag in ("max_pages", "max_images"):
        if getattr(args, flag) < 1:
            return usage(f"--{flag.replace('_', '-')} must be 1 or more")
    if not args.time_limit > 0:
        return usage("--time-limit must be more than 0 seconds")
    if args.url is not None:
        try:
            report = check_url(
                args.url,
                settings,
                max_pages=args.max_pages,
                max_images=args.max_images,
                time_limit=args.time_limit,
            )
        except ValueError as exc:
            return usage(f"--url: {exc}")
    elif not args.site.is_dir():
        return usage(f"{shown(args.site)}: no such site folder")
    else:
        report = check_site(args.site, settings, theme_images=args.theme_images)
    # Names and page text read with surrogateescape print as \\xNN escapes, never raise.
    sys.stdout.write(shown(FORMATTERS[args.format](report)))
    return EXIT_FINDINGS if report.errors else EXIT_OK
