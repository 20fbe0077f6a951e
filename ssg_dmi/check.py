"""``ssg-dmi check``: audit a built site folder, or crawl a served one, for CI.

Directory mode reads every image and variant (found as the pipeline finds them), every
page and the site files; URL mode fetches the pages (same origin, under ``base_url``,
bounded), the images and srcset candidates they use and the site files, and also checks
the response headers. The checks themselves are in :mod:`.audit`.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from email.message import Message
from http.client import HTTPException
from pathlib import Path
from typing import IO
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from . import __version__, htmlscan
from .audit import (
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
    overrides_from_texts,
    parse_srcset,
    pixel_width,
    read_page,
    read_site_files,
    url_path,
)
from .build import collect_overrides, find_pages
from .errors import ConfigError
from .fsutil import is_image_name, shown
from .pipeline import site_images
from .policy import DMI
from .process import VARIANT_NAME
from .settings import Settings
from .signals import BEGIN

FORMATS = ("text", "json", "junit", "github")
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2  # as in cli
MAX_PAGE_BYTES = 16 << 20
MAX_IMAGE_BYTES = 64 << 20
USER_AGENT = f"ssg-dmi-check/{__version__}"
SITE_FILES = ("robots.txt", "ai.txt", TDMREP)
SKIPPED = -1  # the status of a fetch not made: the time limit was reached
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class Report:
    """What a check found: ``target`` is the site folder or the base URL."""

    target: str
    mode: str  # "dir" or "url"
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

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
    """(images, variants) as :func:`ssg_dmi.pipeline.discover` finds images (hidden folders,
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


def check_site(site: Path, settings: Settings, page_dmi: Mapping[str, str] | None = None) -> Report:
    """Audit a built site folder; ``page_dmi`` as for :func:`ssg_dmi.build.run_site`."""
    report = Report(str(site), "dir")
    pages = find_pages(site)
    page_values, image_values, report.findings = _overrides(
        site, pages, page_dmi, settings.base_url
    )
    expect = Expectations(settings, page_values, image_values)
    images, variants = discover(site, settings)
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
            text = (site / rel).read_bytes().decode("utf-8", "surrogateescape")
        except OSError as exc:
            report.findings.append(Finding("fetch-failed", rel, f"cannot read ({exc})"))
            continue
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
class Fetched:
    """One response (or why there is none); ``url`` is the final URL after redirects."""

    url: str
    status: int
    headers: Message
    body: bytes | None = None
    error: str | None = None


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    def __init__(self, origin: tuple[str, str]) -> None:
        self.origin = origin

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != self.origin:
            return None  # the 3xx is then the answer, reported as a failed fetch
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Crawler:
    """Fetches URLs of one origin, within a time budget; never follows a redirect away."""

    def __init__(self, base: str, timeout: float, time_limit: float) -> None:
        self.origin = _origin(base)
        self.deadline = time.monotonic() + time_limit
        self.timeout = timeout
        handlers: list[urllib.request.BaseHandler] = [_SameOrigin(self.origin)]
        if _is_loopback(urlsplit(base).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))
        self.opener = urllib.request.build_opener(*handlers)

    @property
    def out_of_time(self) -> bool:
        """Whether the time budget is spent."""
        return time.monotonic() >= self.deadline

    def get(self, url: str, body: Callable[[str], bool], limit: int) -> Fetched:
        """GET ``url``; its body is read when ``body(content_type)`` says so."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return Fetched(url, SKIPPED, Message(), error="the time limit was reached")
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with self.opener.open(request, timeout=min(self.timeout, left)) as resp:
                data = resp.read(limit + 1) if body(resp.headers.get_content_type()) else None
                if data is not None and len(data) > limit:
                    return Fetched(url, resp.status, resp.headers, error=f"over {limit} bytes")
                return Fetched(resp.geturl(), resp.status, resp.headers, data)
        except urllib.error.HTTPError as exc:
            exc.close()
            where = exc.headers.get("Location") if 300 <= exc.code < 400 else None
            why = f"HTTP {exc.code}" + (f", a redirect off the site to {where}" if where else "")
            return Fetched(url, exc.code, exc.headers, error=why)
        except (urllib.error.URLError, OSError, HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            return Fetched(url, 0, Message(), error=f"cannot fetch ({reason})")


def _clean(url: str) -> str:
    """Query and fragment dropped (a static host ignores them); the path percent-encoded as
    a browser sends it (spaces, non-ASCII), existing escapes kept."""
    parts = urlsplit(url.strip())
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


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
    base: str  # the site's URL: origin + settings.base_url
    settings: Settings
    crawler: Crawler
    report: Report
    pages: dict[str, tuple[str, Fetched, str, PageFacts]] = field(default_factory=dict)
    images: dict[str, list[_Use]] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)

    def rel(self, url: str) -> str | None:
        """The site path of a URL of this site, None for anything else."""
        if _origin(url) != self.crawler.origin:
            return None
        path = unquote(urlsplit(url).path)
        prefix = self.settings.base_url
        return path[len(prefix) :] if path.startswith(prefix) else None

    def add(self, finding: Finding) -> None:
        self.report.findings.append(finding)


def _is_html(content_type: str) -> bool:
    return content_type in ("text/html", "application/xhtml+xml")


def _crawl_pages(c: _Crawl, start: str, max_pages: int) -> None:
    queue, seen = deque([start]), {start}
    while queue:
        if len(c.pages) >= max_pages or c.crawler.out_of_time:
            c.truncated.append(f"{len(queue)} linked URLs not fetched")
            return
        url = queue.popleft()
        got = c.crawler.get(url, _is_html, MAX_PAGE_BYTES)
        if got.status == SKIPPED:
            queue.appendleft(url)
            continue  # out of time: the loop's first test reports it
        c.report.checked.append(url)
        if got.error or got.body is None:
            away = 300 <= got.status < 400  # a redirect off the site: not ours to check
            if got.error and (url == start or not away):
                mild = url != start and got.status in (404, 410)
                c.add(Finding("fetch-failed", url, got.error, "warning" if mild else "error"))
            continue  # not HTML: not a page
        final, rel = _clean(got.url), c.rel(got.url)
        if rel is None or final in c.pages:
            continue
        text = got.body.decode("utf-8", "surrogateescape")
        page_rel = rel + "index.html" if rel == "" or rel.endswith("/") else rel
        facts = read_page(text)
        c.pages[final] = (page_rel, got, text, facts)
        base = urljoin(got.url, facts.base_href) if facts.base_href is not None else got.url
        for href in facts.links:
            link = _clean(urljoin(base, href.strip()))
            if c.rel(link) is None or link in seen:
                continue
            seen.add(link)
            if is_image_name(urlsplit(link).path):
                c.images.setdefault(link, []).append(_Use(final, "link", text=href))
            else:
                queue.append(link)
        for ref in facts.images:
            if ref.src is not None and (u := _clean(urljoin(base, ref.src.strip()))) and c.rel(u):
                c.images.setdefault(u, []).append(_Use(final, "src", ref, ref.src))
            for cand, descriptors in parse_srcset(ref.srcset or ""):
                u = _clean(urljoin(base, cand))
                if c.rel(u) is not None:
                    c.images.setdefault(u, []).append(_Use(final, "srcset", ref, cand, descriptors))


def check_url(
    base_url: str,
    settings: Settings,
    *,
    max_pages: int = 500,
    max_images: int = 2000,
    time_limit: float = 120.0,
    timeout: float = 10.0,
) -> Report:
    """Crawl a served site from ``base_url`` and audit what it serves. ValueError when
    ``base_url`` is not an http(s) URL."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{base_url!r} is not an http(s) URL")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    origin = f"{parts.scheme}://{parts.netloc}"
    report = Report(base_url, "url")
    c = _Crawl(origin + settings.base_url, settings, Crawler(base_url, timeout, time_limit), report)
    start = _clean(base_url)
    if c.rel(start) is None:
        start = _clean(c.base)
    site_files = _fetch_site_files(c, origin)  # first: they matter whatever the time limit
    _crawl_pages(c, start, max_pages)
    texts = {rel: text for rel, _, text, _ in c.pages.values()}
    page_values, image_values, bad = overrides_from_texts(texts, settings.base_url)
    url_of = {rel: url for url, (rel, *_) in c.pages.items()}
    report.findings += [Finding(f.code, url_of[f.path], f.message) for f in bad]
    expect = Expectations(settings, page_values, image_values)
    severity: Severity = "error" if settings.hosts else "warning"
    paths: dict[str, DMI] = {}
    for url, (rel, got, _, facts) in c.pages.items():
        want = expect.page(rel)
        paths[urlsplit(url).path] = want
        if settings.rewrite_html:
            report.findings += check_page_metas(facts, url, want, settings.tdm_policy)
        report.findings += check_headers(got.headers, url, want, settings.tdm_policy, severity)
        for ref in facts.images:
            report.findings += check_img_size(ref, url)
    urls = list(c.images)
    if len(urls) > max_images:
        c.truncated.append(f"{len(urls) - max_images} images not fetched")
        urls = urls[:max_images]
    with ThreadPoolExecutor(8) as pool:
        done = pool.map(lambda u: c.crawler.get(u, lambda _: True, MAX_IMAGE_BYTES), urls)
        for url, got in zip(urls, done, strict=True):
            _check_image_url(c, expect, url, got, severity, paths)
    c.report.findings += read_site_files(site_files, paths, settings, lambda n: f"{origin}/{n}")
    if c.truncated or c.crawler.out_of_time:
        why = "; ".join(c.truncated) or "the time limit was reached"
        message = f"the crawl stopped early ({why}); raise --max-pages/--max-images/--time-limit"
        severity = "warning" if c.pages else "error"  # nothing read is no pass
        report.findings.append(Finding("crawl-truncated", base_url, message, severity))
    return report


def _check_image_url(
    c: _Crawl,
    expect: Expectations,
    url: str,
    got: Fetched,
    severity: Severity,
    paths: dict[str, DMI],
) -> None:
    if got.status == SKIPPED:
        return
    c.report.checked.append(url)
    uses = c.images[url]
    if got.error or got.body is None:
        missing = got.status in (404, 410)
        for use in uses:
            if use.kind == "srcset" and missing and use.ref is not None:
                c.report.findings += check_candidate(use.page, use.ref, use.text, "", None, False)
            elif use.kind == "src" and missing:
                message = f'<img src="{use.text}"> names {url}: {got.error}'
                c.add(Finding("src-missing-file", use.page, message, "warning"))
        if not missing or all(u.kind == "link" for u in uses):
            mild = missing or 300 <= got.status < 400
            c.add(Finding("fetch-failed", url, got.error or "", "warning" if mild else "error"))
        return
    rel = c.rel(url) or ""
    want = expect.image(rel)
    paths[urlsplit(url).path] = want
    if c.settings.matches(Expectations.source_of(rel)):
        c.report.findings += check_image(got.body, url, want)
    c.report.findings += check_headers(got.headers, url, want, c.settings.tdm_policy, severity)
    width = pixel_width(got.body) if any(u.kind == "srcset" for u in uses) else None
    for use in uses:
        if use.kind == "srcset" and use.ref is not None:
            c.report.findings += check_candidate(
                use.page, use.ref, use.text, use.descriptors, width, True
            )


def _fetch_site_files(c: _Crawl, origin: str) -> dict[str, str | None]:
    """The site files at the host's root, where crawlers look: served, robots.txt with our
    section, tdmrep.json valid JSON. What they say is read once the paths are known."""
    texts: dict[str, str | None] = {}
    for name in SITE_FILES:
        url = f"{origin}/{name}"
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
    """One line per finding (``path: code: message``), then the summary."""
    lines = []
    for f in _sorted(report):
        prefix = "warning: " if f.severity == "warning" else ""
        lines.append(f"{report.display(f.path)}: {f.code}: {prefix}{f.message}")
    return "\n".join([*lines, summary(report)]) + "\n"


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
        report = check_site(args.site, settings)
    # Names and page text read with surrogateescape print as \\xNN escapes, never raise.
    sys.stdout.write(shown(FORMATTERS[args.format](report)))
    return EXIT_FINDINGS if report.errors else EXIT_OK
