"""``ssg-dmi check --url``: crawl a served site and audit what it serves.

The pages are fetched breadth-first (same origin, under ``base_url``, bounded in time and
memory whatever the server does: :mod:`.crawl`), then the images and srcset candidates they
use and the site files; every response's headers are checked too.
"""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from urllib.parse import urljoin, urlsplit

from ..formats import is_image_name
from ..pages.encoding import decode_page
from ..settings import Settings
from ..settings.globs import glob_hit
from ..sitefiles.render import BEGIN, TDMREP_PATH
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
)
from .crawl_state import MAX_FINDINGS, CrawlState, ImageUse
from .expect import Expectations, page_overrides
from .findings import CheckReport, Finding, Severity
from .header_checks import check_headers
from .image_checks import check_image, expects_manifest, pixel_width
from .page_checks import check_candidate, check_img_size, check_page_metas
from .page_facts import PageFacts, parse_srcset, read_page
from .site_files import SITE_FILES, read_site_files


def check_url(
    base_url: str,
    settings: Settings,
    *,
    max_pages: int = 500,
    max_images: int = 2000,
    time_limit: float = 120.0,
    timeout: float = READ_TIMEOUT,
    fetch_time: float = FETCH_SECONDS,
) -> CheckReport:
    """Crawl a served site from ``base_url`` and audit what it serves, within
    ``time_limit`` seconds whatever the server does, each response within ``fetch_time``
    (see :mod:`.crawl`), and in memory bounded by the limits. ValueError when
    ``base_url`` is not an http(s) URL."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{base_url!r} is not an http(s) URL")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    site_origin = f"{parts.scheme}://{parts.netloc}"
    report = CheckReport(base_url, "url")
    crawler = Crawler(base_url, timeout, min(time_limit, 1e9), fetch_time)
    c = CrawlState(settings, crawler, report, max_pages, max_images)
    start = clean(base_url)
    if c.rel(start) is None:
        start = clean(site_origin + settings.base_url)
    severity: Severity = "error" if settings.hosts else "warning"
    site_files = _fetch_site_files(c, site_origin)  # first: they matter whatever the limits
    _crawl_pages(c, start, severity)
    expect = c.expectations()
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
    if settings.hotlink is not None:
        _check_hotlink(c, urls, settings.hotlink.paths)
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


def _is_html(content_type: str) -> bool:
    return content_type in ("text/html", "application/xhtml+xml")


def _crawl_pages(c: CrawlState, start: str, severity: Severity) -> None:
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
    c: CrawlState,
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
                c.use(link, ImageUse(page, "link", text=href))
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
            c.use(u, ImageUse(page, "src", ref, ref.src))
        for cand, descriptors in parse_srcset(ref.srcset or ""):
            u = clean(urljoin(base, cand))
            if c.rel(u) is not None:
                c.use(u, ImageUse(page, "srcset", ref, cand, descriptors))


def _check_page(
    c: CrawlState,
    url: str,
    rel: str,
    text: str,
    facts: PageFacts,
    got: Fetched,
    severity: Severity,
) -> None:
    """A page's own checks (they need only its own override), and the image overrides it
    gives for the images this crawl will fetch."""
    page, images, bad = page_overrides(text, rel, c.settings.base_url)
    if bad is not None:
        c.add(Finding(bad.code, url, bad.message))
    c.overrides.add(rel, page, [(img, value) for img, value in images if img in c.sources])
    want = page if page is not None else c.settings.policy_for(rel).dmi
    c.paths[urlsplit(url).path] = want
    if c.settings.rewrite_html:
        c.add(*check_page_metas(facts, url, want, c.settings.tdm_policy))
    c.add(*check_headers(got.headers, url, want, c.settings.tdm_policy, severity))
    for ref in facts.images:
        c.add(*check_img_size(ref, url))


def _check_image_url(
    c: CrawlState, expect: Expectations, url: str, got: Fetched, severity: Severity
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
        signed = expects_manifest(rel, c.settings.c2pa)
        c.add(*check_image(got.body, url, want, signed=signed))
    c.add(*check_headers(got.headers, url, want, c.settings.tdm_policy, severity))
    width = pixel_width(got.body) if any(u.kind == "srcset" for u in uses) else None
    for use in uses:
        if use.kind == "srcset" and use.ref is not None:
            c.add(*check_candidate(use.page, use.ref, use.text, use.descriptors, width, True))


def _fetch_site_files(c: CrawlState, site_origin: str) -> dict[str, str | None]:
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
        elif name == TDMREP_PATH:
            try:
                json.loads(text or "")
            except ValueError as exc:
                c.add(Finding("site-file-inconsistent", url, f"not valid JSON ({exc})"))
    return texts


FOREIGN_REFERER = "https://hotlink-check.invalid/"


def _check_hotlink(c: CrawlState, urls: list[str], globs: tuple[str, ...]) -> None:
    """One request for a protected image with another site's Referer: a 403 means hotlink
    protection is active (a note); served means it is not (``hotlink-off``, a warning)."""
    url = next((u for u in urls if any(glob_hit(g, c.rel(u) or "") for g in globs)), None)
    if url is None:
        c.report.notes.append("hotlink protection: no image under `[hotlink] paths` to test")
        return
    got = c.crawler.get(url, lambda _: False, MAX_IMAGE_BYTES, referer=FOREIGN_REFERER)
    if got.status == SKIPPED:
        return
    if got.status == 403:
        c.report.notes.append(
            f"hotlink protection is active: {url} with Referer {FOREIGN_REFERER} answered 403"
        )
    elif 200 <= got.status < 300:
        message = (
            f"served with Referer {FOREIGN_REFERER} (HTTP {got.status}): `[hotlink]` is set "
            "but the server does not use the generated rules"
        )
        c.add(Finding("hotlink-off", url, message, "warning"))
    else:
        c.report.notes.append(
            f"hotlink protection: {url} with a foreign Referer answered {got.error or got.status}"
        )
