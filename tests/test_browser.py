"""The built example sites in a real browser: Debian's Chromium driven by Playwright.

Each site (built once by the ``example_sites`` fixture of tests/conftest.py) is served
over loopback by ``http.server``. For every page, viewport width and device pixel ratio:
the responsive images load, Chromium picks the variant that fits the slot, no request
fails, and nothing moves when the image bytes arrive. A full-page screenshot of each goes
to ``test-artifacts/screenshots/`` (gitignored) and the variants Chromium picked to
``test-artifacts/browser-choices.json``.

Never ``playwright install``: the browser is Debian's ``chromium`` package (CI installs it).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.conftest import ROOT, ExampleSites

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) not installed")

ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"


class Stretched(AssertionError):
    """An image drawn at another aspect ratio than its picture's."""


PAGES = [
    ("mkdocs", "home", "/"),
    ("mkdocs", "gallery", "/gallery/"),
    ("pelican", "home", "/"),
]
WIDTHS = (375, 1440)
DPRS = (1, 2)
HEIGHT = 800
VARIANT_URL = re.compile(r"-(?P<width>[0-9]+)w\.[0-9a-f]{10}\.\w+$")
# Image files of the sites: held back until every box has been measured (see below).
IMAGE_URL = re.compile(r"/images/.+\.(?:jpe?g|png|webp|gif|avif)$", re.IGNORECASE)
CHOICES: dict[str, dict[str, str]] = {}  # "site page" -> "WxDPR" -> cups variant picked
# A shift the theme makes by itself, before any image byte arrives (measured with every
# image request held back; 0 with the font requests blocked): not the images' doing.
THEME_SHIFT = {
    "pelican": "notmyidea swaps its Yanone Kaffeesatz web font into the banner after the "
    "first paint: the banner shrinks 50 px, CLS 0.056 at 375 px wide",
}

# The responsive images the page shows (display: none ones have no client rects).
SHOWN = "[...document.querySelectorAll('img[srcset]')].filter(i => i.getClientRects().length)"
BOXES_JS = (
    "() => "
    + SHOWN
    + """.map(img => {
  const r = img.getBoundingClientRect();
  return {src: img.getAttribute('src'), x: r.left + scrollX, y: r.top + scrollY,
          w: r.width, h: r.height, loaded: img.naturalWidth > 0};
})"""
)
IMAGES_JS = (
    "() => "
    + SHOWN
    + """.map(img => ({
  src: img.getAttribute('src'), srcset: img.getAttribute('srcset'),
  width: img.getAttribute('width'), height: img.getAttribute('height'),
  complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
  currentSrc: img.currentSrc, slot: img.getBoundingClientRect().width,
  boxHeight: img.getBoundingClientRect().height,
}))"""
)
# Every stylesheet loaded, @import-ed ones too: a <link>'s sheet exists as soon as its own
# file is in, but Chromium applies none of it until its @imports are (Pelican's theme).
STYLES_READY_JS = """() => {
  const ready = sheet => {
    if (!sheet) return false;
    let rules;
    try { rules = sheet.cssRules; } catch (e) { return true; }  // cross-origin: no rules
    return [...rules].every(r => !(r instanceof CSSImportRule) || ready(r.styleSheet));
  };
  return [...document.querySelectorAll('link[rel~=stylesheet]')].every(l => ready(l.sheet));
}"""
# Installed before the page's own scripts: every layout shift since navigation, with its
# time, value and the nodes that moved.
SHIFTS_INIT = """
window.__shifts = [];
new PerformanceObserver(list => {
  for (const e of list.getEntries()) {
    if (e.hadRecentInput) continue;
    window.__shifts.push({t: e.startTime, value: e.value, nodes: e.sources.map(
      s => s.node ? s.node.nodeName + (s.node.id ? '#' + s.node.id : '') : null)});
  }
}).observe({type: 'layout-shift', buffered: true});
"""
# Read after a task turn, so entries still queued for the observer are delivered.
SHIFTS_JS = "() => new Promise(r => setTimeout(() => r(window.__shifts), 100))"


# --- a loopback server per site ----------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    """Serves the site folder; records (method, path, status) instead of printing."""

    server: _Server

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.log.append((self.command, self.path, int(code) if code != "-" else 0))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: Path) -> None:
        super().__init__(("127.0.0.1", 0), functools.partial(_Handler, directory=str(site)))
        self.log: list[tuple[str, str, int]] = []

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def servers(example_sites: ExampleSites) -> Iterator[dict[str, _Server]]:
    built = {"mkdocs": example_sites.mkdocs, "pelican": example_sites.pelican}
    running = {}
    for name, build in built.items():
        assert build.returncode == 0, build.output
        server = _Server(build.site)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running[name] = server
    yield running
    for server in running.values():
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-choices.json").write_text(json.dumps(CHOICES, indent=2) + "\n")


# --- what "fits the slot" means ----------------------------------------------------------


def chromium_pick(candidates: list[tuple[str, int]], slot: float, dpr: float) -> tuple[str, int]:
    """The candidate that fits a slot ``slot`` CSS px wide at device pixel ratio ``dpr``.

    With ``sizes="auto, ..."`` on a lazy image, the slot is the image's rendered CSS width.
    A candidate's density is ``w / slot``; Chromium takes the smallest candidate whose
    density is >= the DPR, i.e. ``w >= slot x DPR``, or the largest when none is that big
    (Blink's ``SelectionLogic`` with ``SrcsetSelectionMatchesImageSet``, as Debian's
    Chromium 156 does: a 335 px slot at DPR 2 takes 960w over 480w, which the older
    geometric-mean rule would not). That candidate is what "fits the slot" means here.
    One exception is allowed for by the caller: Blink takes a larger candidate instead
    when it is already in its memory cache (``AvoidDownloadIfHigherDensityResourceIsInCache``).
    """
    ordered = sorted(candidates, key=lambda c: c[1])
    return next((c for c in ordered if c[1] / slot >= dpr), ordered[-1])


def parse_srcset(value: str) -> list[tuple[str, int]]:
    out = []
    for candidate in value.split(","):
        url, descriptor = candidate.split()
        out.append((url, int(descriptor.removesuffix("w"))))
    return out


# --- one page at one size ----------------------------------------------------------------


@dataclass
class Visit:
    """What one page load saw."""

    responses: list[tuple[int, str]] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    held: list[Any] = field(default_factory=list)
    released: bool = False


def scroll_to_bottom(page: Any) -> None:
    """Scroll down three quarters of a screen at a time, so every lazy image comes into view."""
    for _ in range(100):
        at_end = page.evaluate(
            "() => scrollY + innerHeight >= document.documentElement.scrollHeight - 1"
        )
        if at_end:
            break
        page.mouse.wheel(0, HEIGHT * 3 // 4)
        page.wait_for_timeout(50)


@pytest.mark.parametrize("dpr", DPRS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("site", "name", "path"), PAGES)
def test_page_loads_fitting_variants_without_layout_shift(
    browser: Any,
    servers: dict[str, _Server],
    site: str,
    name: str,
    path: str,
    width: int,
    dpr: int,
) -> None:
    server = servers[site]
    origin = server.origin
    served_before = len(server.log)
    visit = Visit()
    context = browser.new_context(
        viewport={"width": width, "height": HEIGHT}, device_scale_factor=dpr
    )
    context.set_default_timeout(20_000)
    context.add_init_script(SHIFTS_INIT)

    def route(r: Any) -> None:
        url = r.request.url
        if not url.startswith(origin + "/"):
            visit.external.append(url)  # the sites must work offline
            r.abort()
        elif IMAGE_URL.search(url.split("?")[0]) and not visit.released:
            visit.held.append(r)  # answered once every image box has been measured
        else:
            r.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.on("response", lambda resp: visit.responses.append((resp.status, resp.url)))
    try:
        page.goto(origin + path, wait_until="domcontentloaded")
        # The layout before any image byte arrives (every image request is held back):
        # stylesheets applied, then web fonts in (measuring once makes the fonts load).
        page.wait_for_function(STYLES_READY_JS)
        page.evaluate(BOXES_JS)
        page.evaluate("async () => { await document.fonts.ready; }")
        before = page.evaluate(BOXES_JS)
        released_at = page.evaluate("() => performance.now()")
        visit.released = True
        for held in visit.held:
            held.continue_()
        scroll_to_bottom(page)
        page.wait_for_load_state("networkidle")
        page.wait_for_function("() => " + SHOWN + ".every(i => i.complete)")
        after = page.evaluate(BOXES_JS)
        images = page.evaluate(IMAGES_JS)
        shifts = page.evaluate(SHIFTS_JS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{site}-{name}-{width}w-{dpr}x.jpg"
        page.evaluate("() => scrollTo(0, 0)")
        # JPEG: full resolution in a quarter of PNG's time for a tall page at DPR 2.
        page.screenshot(path=str(shot), full_page=True, type="jpeg", quality=85)
    finally:
        context.close()

    # Nothing failed, nothing left the machine. (Chromium asks for /favicon.ico by itself
    # when a page names no icon, as Pelican's theme does: not a link of the site.)
    assert [(status, url) for status, url in visit.responses if status >= 400] == []
    served = [e for e in server.log[served_before:] if e[1] != "/favicon.ico"]
    assert [entry for entry in served if entry[2] >= 400] == []
    assert visit.external == []

    # Every shown responsive image loaded, from a variant that fits its slot. (Pelican's
    # theme hides the images of the "other articles" list on its home page: display none,
    # so a lazy image there is never fetched, and is not counted.)
    assert before and images, "no responsive image shown on the page"
    assert not [b for b in before if b["loaded"]], "an image loaded before it was measured"
    picked = {}
    # What images earlier in the page loaded: Blink reuses a larger cached candidate.
    loaded_before = {
        img["src"]: {i["currentSrc"] for i in images[:n]} for n, img in enumerate(images)
    }
    for img in images:
        assert img["complete"] and img["naturalWidth"] > 0, img
        assert img["width"] and img["height"], f"no width/height on {img['src']}"
        candidates = [(origin_url(origin, path, url), w) for url, w in parse_srcset(img["srcset"])]
        by_url = dict(candidates)
        assert img["currentSrc"] in by_url, img
        chosen_width = by_url[img["currentSrc"]]
        if not VARIANT_URL.search(img["currentSrc"]):
            # Only acceptable when the srcset lists the original itself (its widest copy).
            assert img["currentSrc"] == origin_url(origin, path, img["src"]), img
        slot, biggest = img["slot"], max(w for _, w in candidates)
        expected = chromium_pick(candidates, slot, dpr)
        cached = chosen_width > expected[1] and img["currentSrc"] in loaded_before[img["src"]]
        how = "cached" if cached else "fits" if chosen_width >= slot * dpr else "largest"
        assert img["currentSrc"] == expected[0] or cached, (
            f"{img['src']}: slot {slot} CSS px x DPR {dpr} = {slot * dpr:.0f} px; picked "
            f"{chosen_width}w; the fitting candidate is {expected[1]}w of {candidates}"
        )
        assert chosen_width >= slot * dpr or chosen_width == biggest, img
        picked[img["src"]] = f"{img['currentSrc'].rsplit('/', 1)[-1]} ({how}, slot {slot:g})"
    cups = [v for k, v in picked.items() if k.endswith("/cups.jpg")]
    if cups:
        CHOICES.setdefault(f"{site} {name}", {})[f"{width}x{dpr}"] = cups[0]

    # No layout shift when the images load: each box is where it was before its bytes
    # arrived (width/height reserve it) ...
    assert len(after) == len(before)
    moved = [
        (b["src"], {k: (b[k], a[k]) for k in ("x", "y", "w", "h") if abs(b[k] - a[k]) > 0.5})
        for b, a in zip(before, after, strict=True)
        if any(abs(b[k] - a[k]) > 0.5 for k in ("x", "y", "w", "h"))
    ]
    assert moved == []
    # ... and the browser's own measure agrees: no shift at all once images could load,
    # and a page CLS under 0.05 ("good" is 0.1).
    cls = sum(s["value"] for s in shifts)
    late = [s for s in shifts if s["t"] >= released_at]
    if site in THEME_SHIFT:
        # On a loaded machine the theme's font swap can land after the images were let
        # through; a shift that moved no image is the theme's, whenever it happened.
        late = [s for s in late if any((n or "").upper().startswith("IMG") for n in s["nodes"])]
    cls_images = sum(s["value"] for s in late)
    assert cls_images < 0.001, shifts
    if site in THEME_SHIFT:
        # Only the theme's own shift, from before any image byte arrived, is allowed over;
        # its size follows the browser's font timing (0.056 in Chromium 156.0.8078.73,
        # 0.108 in .114), so what is asserted is that no image moved in it.
        assert not [n for s in shifts for n in s["nodes"] if (n or "").upper().startswith("IMG")], (
            THEME_SHIFT[site],
            shifts,
        )
    else:
        assert cls < 0.05, shifts
    assert shot.stat().st_size > 10_000

    # Not stretched: each image is drawn at its picture's upright aspect ratio. (Its box
    # comes from width/height and the theme's CSS; a `sizes=auto` image is size-contained,
    # so the picture itself never resizes it.)
    stretched = [
        f"{img['src']}: drawn {img['slot']:g}x{img['boxHeight']:g}, picture "
        f"{img['naturalWidth']}x{img['naturalHeight']}, attributes {img['width']}x{img['height']}"
        for img in images
        if abs(img["slot"] / img["boxHeight"] / (img["naturalWidth"] / img["naturalHeight"]) - 1)
        > 0.02
    ]
    if stretched:
        raise Stretched("; ".join(stretched))


def origin_url(origin: str, page_path: str, url: str) -> str:
    """``url`` (relative to the page at ``page_path``) as the absolute URL the browser uses."""
    return urljoin(origin + page_path, url)
