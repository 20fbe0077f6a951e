"""Lighthouse 13 (npm ``lighthouse@13``, Debian's Chromium) on both built example sites.

Each site (built once by the ``example_sites`` fixture of tests/conftest.py) is served on
loopback by ``http.server`` and one page of it, the home page, is audited with
``--only-categories=seo,performance`` (plus ``image-size-responsive``, a Best Practices
audit), under both of Lighthouse's presets: mobile (412×823 CSS px at DPR 1.75) and desktop
(1350×940 at DPR 1). `.ci/run` installs Lighthouse with npm into
``${XDG_CACHE_HOME:-$HOME/.cache}/ssg-dmi-lighthouse`` and exports its path as
``SSG_DMI_LIGHTHOUSE``; without that variable the tests look in the cache folder and skip
when Lighthouse is not there. The reports go to ``test-artifacts/lighthouse/``.

What Lighthouse 13 reports about images: ``modern-image-formats``, ``uses-optimized-images``
and ``uses-responsive-images`` are gone, replaced by ``image-delivery-insight`` (its
``replacesAudits``), and ``offscreen-images`` was dropped without a successor. So the legacy
ids are asserted only if Lighthouse reports them again; ``image-delivery-insight`` must pass.
Its rule (trace engine ``models/trace/insights/ImageDelivery.js``, 13.5): per painted
non-SVG image, bytes = min(decoded, encoded body); a format/compression saving when bytes per
file pixel exceed 1/6 (AVIF's 12:1 of 2 B/px); a size saving of
(1 − displayed px / file px) × bytes, counted for a srcset/``<picture>`` image only above
12,288 B; every saving must exceed 4,096 B; one flagged image fails the audit (score 0, or
0.5 when no metric saving). Displayed px = painted CSS box × the DPR of the *first*
``PaintTimingVisualizer::Viewport`` trace event. With the default width ladder (steps
≤ 1.21×) the srcset variant Chromium picks stays under that 12 KiB on both presets.

One Lighthouse bug is handled, not worked around: on the MkDocs home page the 96 px SVG
``<img>`` (logo.svg) paints its own document first, and its viewport event (DPR 1) is the
one the trace engine keeps, so on the mobile preset it compares files with CSS pixels, not
device pixels. There (only while that happens) the test checks that every flagged image is
that misreading and passes Lighthouse's own rule at the emulated DPR, and audits a copy of
the page without that one SVG ``<img>``, which must pass as it is.

``SSG_DMI_LIGHTHOUSE_COMPARE=1`` also builds both sites without ssg-dmi and audits them, for
the with/without figures (``test-artifacts/lighthouse/summary.json``); CI leaves it off.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.settings import load_config_file
from ssg_dmi.sitefiles.render import robots_txt, site_policy
from tests.conftest import (
    MKDOCS_YML,
    POLICY_TOML,
    ROOT,
    Build,
    ExampleSites,
    build_pelican,
    tool,
)

CHROMIUM = Path("/usr/bin/chromium")
LIGHTHOUSE_ENV = "SSG_DMI_LIGHTHOUSE"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
LIGHTHOUSE = Path(
    os.environ.get(LIGHTHOUSE_ENV)
    or CACHE / "ssg-dmi-lighthouse" / "node_modules" / ".bin" / "lighthouse"
)
ARTIFACTS = ROOT / "test-artifacts" / "lighthouse"
CHROME_FLAGS = " ".join(
    [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
)
RUN_SECONDS = 240

# Given SSG_DMI_LIGHTHOUSE (CI), a missing Lighthouse is a failure, not a skip.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)"
    ),
    pytest.mark.skipif(
        LIGHTHOUSE_ENV not in os.environ and not LIGHTHOUSE.exists(),
        reason=f"Lighthouse 13 is not installed at {LIGHTHOUSE} (see .ci/run)",
    ),
]

SITES = ("mkdocs", "pelican")
# SEO audits a theme fails by itself (the same with and without ssg-dmi, measured): the
# Pelican theme `notmyidea` writes no <meta name="description"> on its index page and ends
# each summary with a "read more" link.
THEME_SEO: dict[str, set[str]] = {"mkdocs": set(), "pelican": {"meta-description", "link-text"}}
IMAGE_AUDITS = ("unsized-images", "image-size-responsive")
# Requested by name, absent from Lighthouse 13: asserted only if a Lighthouse reports them.
LEGACY_IMAGE_AUDITS = (
    "modern-image-formats",
    "uses-optimized-images",
    "uses-responsive-images",
    "offscreen-images",
)
PRESETS = ("mobile", "desktop")
# image-delivery-insight's responsive-size reason: "... larger than it needs to be (WxH) for
# its displayed dimensions (WxH) ..."
RESPONSIVE = re.compile(r"\(([0-9]+)x([0-9]+)\) for its displayed dimensions \(([0-9]+)x([0-9]+)\)")
RESPONSIVE_ALLOWANCE = 12288  # BYTE_SAVINGS_THRESHOLD_RESPONSIVE_BREAKPOINTS in ImageDelivery.js
SVG_IMG = re.compile(r"<img [^>]*src=\"images/logo\.svg\"[^>]*>")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextmanager
def served(site: Path) -> Iterator[str]:
    """``site`` served over loopback by http.server; yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def lighthouse(
    site: Path, name: str, categories: str = "seo,performance", preset: str = "mobile"
) -> dict[str, Any]:
    """Lighthouse's JSON report of ``site``'s home page (also kept in test-artifacts)."""
    assert LIGHTHOUSE.exists(), f"{LIGHTHOUSE_ENV}={LIGHTHOUSE} does not exist (see .ci/run)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"{name}.json"
    out.unlink(missing_ok=True)
    with served(site) as origin:
        cmd = [
            str(LIGHTHOUSE),
            origin + "/",
            f"--only-categories={categories}",
            "--only-audits=image-size-responsive",  # added to the categories' audits
            "--output=json",
            f"--output-path={out}",
            "--quiet",
            f"--chrome-flags={CHROME_FLAGS}",
            *(["--preset=desktop"] if preset == "desktop" else []),
        ]
        env = {**os.environ, "CHROME_PATH": str(CHROMIUM)}
        start = time.monotonic()
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=RUN_SECONDS, check=False
        )
    assert done.returncode == 0 and out.exists(), done.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text("utf-8"))
    report["_seconds"] = round(time.monotonic() - start, 1)
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """Scores and image figures of one report, as recorded in summary.json."""
    audits = report["audits"]
    delivery = audits.get("image-delivery-insight", {})
    return {
        "lighthouse": report["lighthouseVersion"],
        "seconds": report["_seconds"],
        **{cat: data["score"] for cat, data in report["categories"].items()},
        **{
            a: audits[a]["score"] if a in audits else "absent"
            for a in ("robots-txt", *IMAGE_AUDITS, *LEGACY_IMAGE_AUDITS)
        },
        "image-delivery-insight": delivery.get("score", "absent"),
        "image-delivery-savings-bytes": sum(
            item["wastedBytes"] for item in delivery.get("details", {}).get("items", [])
        ),
        "failing-seo": sorted(failing(report, "seo")),
    }


def failing(report: dict[str, Any], category: str) -> set[str]:
    """The weighted audits of ``category`` that do not pass."""
    return {
        ref["id"]
        for ref in report["categories"][category]["auditRefs"]
        if ref["weight"] > 0 and report["audits"][ref["id"]]["score"] not in (1, None)
    }


def passes(audit: dict[str, Any]) -> bool:
    """Lighthouse's pass: score 1, or no score (notApplicable, informative)."""
    return audit["score"] == 1 or audit["score"] is None


def record(key: str, value: dict[str, Any]) -> None:
    path = ARTIFACTS / "summary.json"
    data = json.loads(path.read_text("utf-8")) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def reports(example_sites: ExampleSites) -> dict[str, dict[str, Any]]:
    """Keyed ``mkdocs``, ``pelican`` (mobile preset) and ``mkdocs-desktop``, ``pelican-desktop``."""
    built = {"mkdocs": example_sites.mkdocs, "pelican": example_sites.pelican}
    out = {}
    for name, build in built.items():
        assert build.returncode == 0, build.output
        for preset in PRESETS:
            key = name if preset == "mobile" else f"{name}-{preset}"
            out[key] = lighthouse(build.site, key, preset=preset)
            record(f"{name} with ssg-dmi ({preset})", summary(out[key]))
    return out


def key(name: str, preset: str) -> str:
    return name if preset == "mobile" else f"{name}-{preset}"


# --- with ssg-dmi ------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", SITES)
def test_robots_txt_passes(reports: dict[str, dict[str, Any]], name: str, preset: str) -> None:
    report = reports[key(name, preset)]
    assert report["lighthouseVersion"].split(".")[0] == "13"
    audit = report["audits"]["robots-txt"]
    # Scored (binary), not notApplicable: Lighthouse read the robots.txt ssg-dmi wrote.
    assert audit["score"] == 1, json.dumps(audit.get("details"), indent=1)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", SITES)
def test_seo_loses_nothing_but_the_themes_own(
    reports: dict[str, dict[str, Any]], name: str, preset: str
) -> None:
    report = reports[key(name, preset)]
    assert failing(report, "seo") == THEME_SEO[name]
    if not THEME_SEO[name]:
        assert report["categories"]["seo"]["score"] == 1


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", SITES)
def test_image_audits(reports: dict[str, dict[str, Any]], name: str, preset: str) -> None:
    audits = reports[key(name, preset)]["audits"]
    for audit_id in IMAGE_AUDITS:
        assert audit_id in audits and passes(audits[audit_id]), audits.get(audit_id)
    for audit_id in LEGACY_IMAGE_AUDITS:
        assert audit_id not in audits or passes(audits[audit_id]), audits[audit_id]


def delivery_items(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report["audits"]["image-delivery-insight"].get("details", {}).get("items", []))


@pytest.mark.parametrize("name", SITES)
@pytest.mark.parametrize("preset", PRESETS)
def test_image_delivery_passes(
    reports: dict[str, dict[str, Any]], example_sites: ExampleSites, name: str, preset: str
) -> None:
    """No image in an old format, under-compressed, a GIF that should be a video, or more
    than 12 KiB larger than its slot needs (image-delivery-insight, module docstring)."""
    report = reports[key(name, preset)]
    delivery = report["audits"]["image-delivery-insight"]
    if passes(delivery):
        assert delivery_items(report) == []
        return
    # Only the SVG-viewport DPR misreading (module docstring) may fail it; it only happens
    # where the page's DPR is not 1 and the page has that SVG <img>.
    dpr = report["configSettings"]["screenEmulation"]["deviceScaleFactor"]
    assert dpr != 1 and name == "mkdocs", json.dumps(delivery_items(report), indent=1)
    for item in delivery_items(report):
        (reason,) = [sub["reason"] for sub in item["subItems"]["items"]]
        match = RESPONSIVE.search(reason)
        assert match, (item["url"], reason)  # a size saving only: no format or compression one
        file_w, file_h, shown_w, shown_h = map(int, match.groups())
        box = item["node"]["boundingRect"]  # CSS pixels
        assert (shown_w, shown_h) == (round(box["width"]), round(box["height"])), item
        # Lighthouse's own rule at the emulated DPR: within the allowance.
        wasted = 1 - box["width"] * dpr * box["height"] * dpr / (file_w * file_h)
        assert wasted * item["totalBytes"] <= RESPONSIVE_ALLOWANCE, (item["url"], wasted)
    # And Lighthouse itself passes the same page once the SVG <img> is not there to
    # paint first (a diagnostic copy; the site keeps its logo).
    site = example_sites.tmp / f"{name}-{preset}-without-svg-img"
    shutil.copytree(example_sites.mkdocs.site, site)
    home = site / "index.html"
    text, count = SVG_IMG.subn("", home.read_text("utf-8"))
    assert count == 1
    home.write_text(text, "utf-8")
    control = lighthouse(site, f"{name}-{preset}-without-svg-img", preset=preset)
    record(f"{name} with ssg-dmi ({preset}), home page without its SVG <img>", summary(control))
    assert passes(control["audits"]["image-delivery-insight"]), delivery_items(control)


def test_content_usage_in_robots_txt_fails_lighthouse(
    example_sites: ExampleSites, tmp_path: Path
) -> None:
    """The trade-off `robots_content_usage` documents: each Content-Usage line is an
    "Unknown directive" to Lighthouse, which fails robots-txt and costs SEO points."""
    site = tmp_path / "mkdocs"
    shutil.copytree(example_sites.mkdocs.site, site)
    settings = load_config_file(POLICY_TOML)
    robots = site / "robots.txt"
    text = robots_txt(robots.read_text("utf-8"), site_policy(settings), False, content_usage=True)
    usage_lines = [line for line in text.splitlines() if line.startswith("Content-Usage:")]
    assert usage_lines
    robots.write_text(text, "utf-8")
    report = lighthouse(site, "mkdocs-robots-content-usage", categories="seo")
    audit = report["audits"]["robots-txt"]
    assert audit["score"] == 0
    flagged = [item["line"] for item in audit["details"]["items"]]
    assert flagged == usage_lines
    assert {item["message"] for item in audit["details"]["items"]} == {"Unknown directive"}
    assert report["categories"]["seo"]["score"] < 1
    record("mkdocs with robots_content_usage = true", summary(report))


# --- with and without ssg-dmi (opt-in: SSG_DMI_LIGHTHOUSE_COMPARE=1) -----------------------


def build_mkdocs_plain(dest: Path, tmp: Path) -> Build:
    """The MkDocs example built with the ssg-dmi plugin disabled (``enabled: false``)."""
    text = MKDOCS_YML.read_text("utf-8")
    plugin = "  - ssg-dmi:\n"
    assert text.count(plugin) == 1 and "docs_dir" not in text
    text = text.replace(plugin, plugin + "      enabled: false\n")
    config = tmp / "mkdocs-plain.yml"
    config.write_text(f"docs_dir: {MKDOCS_YML.parent / 'docs'}\n" + text, "utf-8")
    cmd = [tool("mkdocs"), "build", "-f", str(config), "-d", str(dest)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    return Build(dest, done.returncode, done.stdout + done.stderr, [])


@pytest.mark.skipif(
    os.environ.get("SSG_DMI_LIGHTHOUSE_COMPARE") != "1",
    reason="set SSG_DMI_LIGHTHOUSE_COMPARE=1 to audit the sites without ssg-dmi too",
)
def test_with_and_without_ssg_dmi(
    reports: dict[str, dict[str, Any]], example_sites: ExampleSites, tmp_path: Path
) -> None:
    plain = {
        "mkdocs": build_mkdocs_plain(tmp_path / "mkdocs-plain", tmp_path),
        "pelican": build_pelican(tmp_path / "pelican-plain", None, plugins=False),
    }
    for name, build in plain.items():
        assert build.returncode == 0, build.output
        assert not (build.site / "ai.txt").exists()  # really without ssg-dmi
        without = summary(lighthouse(build.site, f"{name}-without-ssg-dmi"))
        record(f"{name} without ssg-dmi", without)
        with_ = summary(reports[name])  # mobile
        assert with_["unsized-images"] == 1 and without["unsized-images"] != 1
        assert with_["image-delivery-savings-bytes"] < without["image-delivery-savings-bytes"]
        assert with_["failing-seo"] == without["failing-seo"] == sorted(THEME_SEO[name])
