"""End to end: the two example sites built with the real generators, read back from outside.

``example_sites`` (tests/conftest.py) runs ``mkdocs build`` and ``pelican content`` on
``example-site/`` as subprocesses, as ``make demo`` does. Everything here is read back
with independent tools: exiftool for the images, the standard library's HTML and XML
parsers for pages and the Atom feed, byte comparison with the themes' own files.
The policy comes from ``example-site/ssg-dmi.toml``, the file both sites load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import struct
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.conftest import (
    EXAMPLE,
    POLICY_TOML,
    Build,
    ExampleSites,
    build_mkdocs,
    build_pelican,
)
from tests.readers import PLUS, exiftool, needs_exiftool

SITES = ("mkdocs", "pelican")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".svg", ".avif", ".tif", ".tiff"}
# <original name>-<width>w.<first 10 hex of the variant's SHA-256>.<ext>  (README)
VARIANT = re.compile(
    r"^(?P<original>.+)-(?P<width>[0-9]+)w\.(?P<digest>[0-9a-f]{10})\.(?P<ext>\w+)$"
)
# The theme's own files: the plugins leave them alone (theme_images = false).
THEME_DIR = {"mkdocs": "assets", "pelican": "theme"}
# The page whose source opts in (front matter `dmi:` / metadata `DMI:`), and that source.
ALLOWED_PAGE = {"mkdocs": "open/index.html", "pelican": "pages/open-data.html"}
ALLOWED_SOURCE = {
    "mkdocs": (EXAMPLE / "mkdocs/docs/open.md", "dmi: DMI-ALLOWED"),
    "pelican": (EXAMPLE / "pelican/content/pages/open-data.md", "DMI: DMI-ALLOWED"),
}
ALLOWED_IMAGE = "images/kite.webp"  # the only image the opted-in page shows
HOME = {"mkdocs": "index.html", "pelican": "index.html"}
SITE_URL = "https://example.org/"  # site_url / SITEURL of both sites


# --- the policy, read from the file both sites load --------------------------------------


@dataclass(frozen=True)
class Policy:
    default: str
    gallery_prefix: str
    gallery_dmi: str
    gallery_constraint: str
    tdm_policy: str


def load_policy() -> Policy:
    data = tomllib.loads(POLICY_TOML.read_text(encoding="utf-8"))
    (gallery,) = [r for r in data.get("rules", []) if r["path"].startswith("images/gallery/")]
    assert gallery["path"] == "images/gallery/**", "the test reads this rule as a prefix"
    return Policy(
        default=data["dmi"],
        gallery_prefix="images/gallery/",
        gallery_dmi=gallery["dmi"],
        gallery_constraint=gallery["other_constraints"],
        tdm_policy=data["tdm_policy"],
    )


POLICY = load_policy()


def expected_dmi(rel: str) -> tuple[str, str | None]:
    """(DataMining key, OtherConstraints) the policy gives the image at ``rel`` (an original
    or a variant, which inherits its original's)."""
    original = original_of(rel) or rel
    if original.startswith(POLICY.gallery_prefix):
        return POLICY.gallery_dmi, POLICY.gallery_constraint
    if original == ALLOWED_IMAGE:
        return "DMI-ALLOWED", None
    return POLICY.default, None


# --- helpers over a built site -----------------------------------------------------------


def original_of(rel: str) -> str | None:
    """The original's site path of variant ``rel``; None when ``rel`` is not a variant."""
    folder, _, name = rel.rpartition("/")
    match = VARIANT.match(name)
    if match is None:
        return None
    return f"{folder}/{match['original']}" if folder else match["original"]


def site_files(site: Path) -> Iterator[str]:
    for here, dirs, names in os.walk(site):
        dirs.sort()
        for name in sorted(names):
            yield (Path(here) / name).relative_to(site).as_posix()


def content_images(site: Path, name: str) -> list[str]:
    """Site paths of every image and variant that is not the theme's own."""
    theme = THEME_DIR[name] + "/"
    return [
        rel
        for rel in site_files(site)
        if Path(rel).suffix.lower() in IMAGE_SUFFIXES and not rel.startswith(theme)
    ]


def pages(site: Path) -> list[str]:
    return [rel for rel in site_files(site) if rel.endswith(".html")]


def tree_hashes(site: Path) -> dict[str, str]:
    return {rel: hashlib.sha256((site / rel).read_bytes()).hexdigest() for rel in site_files(site)}


def plain(value: Any) -> str:
    """A DataMining value as its key, whether exiftool printed the URI or the key."""
    return str(value).removeprefix(PLUS)


def dims(info: dict[str, Any]) -> tuple[int, int]:
    """Pixel size from exiftool's file-level group (File, RIFF, PNG, GIF)."""
    for group in ("File", "RIFF", "PNG", "GIF", "SVG"):
        if f"{group}:ImageWidth" in info:
            return int(info[f"{group}:ImageWidth"]), int(info[f"{group}:ImageHeight"])
    raise AssertionError(f"no image size in {info}")


def upright(info: dict[str, Any]) -> tuple[int, int]:
    """Displayed size: stored size with EXIF orientation 5-8 (a quarter turn) applied."""
    w, h = dims(info)
    orientation = int(info.get("IFD0:Orientation", 1))
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def riff_chunks(data: bytes) -> list[bytes]:
    """The chunk ids of a RIFF/WEBP file, in order (a reader independent of Pillow)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", "not a WebP file"
    ids, pos = [], 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        ids.append(fourcc)
        pos += 8 + size + (size & 1)
    return ids


class _Tags(HTMLParser):
    """Every start tag of a page, with its attributes (the stdlib's parser, not ours)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def tags(html: str, name: str) -> list[dict[str, str]]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return [attrs for tag, attrs in parser.tags if tag == name]


def metas(html: str, name: str) -> list[str]:
    """The content of every ``<meta name=NAME>`` in the page."""
    return [m.get("content", "") for m in tags(html, "meta") if m.get("name", "").lower() == name]


def srcset(value: str) -> list[tuple[str, int]]:
    """(url, width) of each candidate of a ``w``-descriptor srcset (ours have no commas in
    URLs: they are percent-encoded)."""
    out = []
    for candidate in value.split(","):
        url, descriptor = candidate.split()
        assert descriptor.endswith("w"), candidate
        out.append((url, int(descriptor[:-1])))
    return out


def site_path(page: str, url: str) -> str:
    """The site path a relative URL on ``page`` resolves to."""
    return unquote(urlsplit(urljoin("http://site/" + page, url)).path).lstrip("/")


def tdm_rules(site: Path) -> list[dict[str, Any]]:
    import json

    rules: list[dict[str, Any]] = json.loads((site / ".well-known/tdmrep.json").read_text())
    return rules


def tdm_reservation_for(rules: list[dict[str, Any]], path: str) -> int | None:
    """TDMRep: the first rule whose location (robots.txt pattern syntax) matches ``path``."""
    for rule in rules:
        pattern = rule["location"]
        anchored = pattern.endswith("$")
        regex = ".*".join(map(re.escape, pattern.rstrip("$").split("*")))
        if re.match(regex + ("$" if anchored else ""), path):
            return int(rule["tdm-reservation"])
    return None


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(example_sites: ExampleSites) -> dict[str, Build]:
    return {"mkdocs": example_sites.mkdocs, "pelican": example_sites.pelican}


@pytest.fixture(scope="module")
def exif(built: dict[str, Build]) -> dict[tuple[str, str], dict[str, Any]]:
    """exiftool's full reading (-a -G1 -n) of every content image of both sites, one run."""
    for build in built.values():
        assert build.returncode == 0, build.output
    paths = {
        (name, rel): built[name].site / rel
        for name in SITES
        for rel in content_images(built[name].site, name)
    }
    by_file = {info["SourceFile"]: info for info in exiftool(*paths.values())}
    return {key: by_file[str(path)] for key, path in paths.items()}


@pytest.fixture(scope="module")
def mkdocs_again(example_sites: ExampleSites) -> Build:
    """The MkDocs site built a second time, with the same (now warm) cache."""
    return build_mkdocs(example_sites.tmp / "mkdocs-again")


@pytest.fixture(scope="module")
def pelican_plain(example_sites: ExampleSites) -> Build:
    """The Pelican site built without ssg-dmi: the reference for what it must not touch."""
    return build_pelican(example_sites.tmp / "pelican-plain", None, plugins=False)


# --- the builds --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SITES)
def test_build_exits_0_without_warnings(built: dict[str, Build], name: str) -> None:
    build = built[name]
    assert build.returncode == 0, build.output
    # Stricter than "no warning from ssg-dmi": these are our own example sites, so any
    # warning or error line (ssg-dmi's are prefixed ssg_dmi / ssg-dmi) is worth a look.
    noisy = [line for line in build.output.splitlines() if re.search(r"WARNING|ERROR", line)]
    assert noisy == [], build.output
    assert any((build.site / rel).exists() for rel in ("index.html", "images/cups.jpg"))


def test_builds_write_nothing_into_the_repo_but_the_cache(
    built: dict[str, Build], mkdocs_again: Build, pelican_plain: Build
) -> None:
    # Files of example-site/ outside its .cache folders, before and after each run.
    runs = {**built, "mkdocs again": mkdocs_again, "pelican without ssg-dmi": pelican_plain}
    assert {name: run.repo_changes for name, run in runs.items() if run.repo_changes} == {}


@pytest.mark.parametrize("name", SITES)
def test_ssg_dmi_check_passes(
    built: dict[str, Build], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ssg_dmi.cli import main

    code = main(["check", str(built[name].site), "--config", str(POLICY_TOML)])
    out = capsys.readouterr()
    assert code == 0, f"ssg-dmi check {name} exited {code}:\n{out.out}\n{out.err}"


@pytest.mark.parametrize("name", SITES)
def test_ssg_dmi_check_passes_given_the_page_override(built: dict[str, Build], name: str) -> None:
    from ssg_dmi.audit.folder import check_site
    from ssg_dmi.settings import load_config_file

    settings = load_config_file(POLICY_TOML)
    report = check_site(built[name].site, settings, page_dmi={ALLOWED_PAGE[name]: "DMI-ALLOWED"})
    assert report.checked
    assert [str(finding) for finding in report.findings] == []


# --- images ------------------------------------------------------------------------------


@needs_exiftool
@pytest.mark.parametrize("name", SITES)
def test_every_image_and_variant_carries_the_policy(
    exif: dict[tuple[str, str], dict[str, Any]], built: dict[str, Build], name: str
) -> None:
    path, line = ALLOWED_SOURCE[name]
    assert line in path.read_text(encoding="utf-8")  # why kite.webp is DMI-ALLOWED
    images = [rel for (site, rel) in exif if site == name]
    assert len(images) >= 7 + 10, images  # 7 originals and their variants
    assert any(original_of(rel) == ALLOWED_IMAGE for rel in images)
    wrong = {}
    for rel in images:
        info = exif[name, rel]
        dmi, constraint = expected_dmi(rel)
        got = (plain(info.get("XMP-plus:DataMining")), info.get("XMP-plus:OtherConstraints"))
        if got != (dmi, constraint):
            wrong[rel] = {"expected": (dmi, constraint), "got": got}
    assert wrong == {}


@needs_exiftool
@pytest.mark.parametrize("name", SITES)
def test_no_gps_serial_or_owner_anywhere(
    exif: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    source = exiftool(EXAMPLE / "images/cups.jpg", args=("-G1", "-a", "-gps:all"))[0]
    assert any("GPS" in key for key in source), "the example photos should carry GPS"
    leaks = {
        rel: sorted(k for k in info if re.search(r"gps|serial|owner", k, re.IGNORECASE))
        for (site, rel), info in exif.items()
        if site == name
    }
    assert {rel: keys for rel, keys in leaks.items() if keys} == {}


@needs_exiftool
@pytest.mark.parametrize("name", SITES)
def test_variants_are_named_by_width_one_per_format(
    exif: dict[tuple[str, str], dict[str, Any]], built: dict[str, Build], name: str
) -> None:
    site = built[name].site
    variants = [rel for (s, rel) in exif if s == name and original_of(rel)]
    assert variants
    for rel in variants:
        match = VARIANT.match(rel.rpartition("/")[2])
        assert match is not None
        original = original_of(rel)
        assert original is not None and (site / original).is_file(), rel
        assert dims(exif[name, rel])[0] == int(match["width"]), rel
    # One file per (original, width, format): the hex names the original and the settings
    # (test_build_robust proves names survive rebuilds with another cache or none).
    made = set()
    for rel in variants:
        match = VARIANT.match(rel.rpartition("/")[2])
        assert match is not None
        made.add((original_of(rel), match["width"], rel.rsplit(".", 1)[1]))
    assert len(made) == len(variants)


@needs_exiftool
@pytest.mark.parametrize("name", SITES)
def test_sideways_photo_variants_are_upright(
    exif: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    original = exif[name, "images/autumn-sideways.jpg"]
    stored, shown = dims(original), upright(original)
    assert stored[0] < stored[1] and shown[0] > shown[1], "the source is stored sideways"
    variants = [
        rel for (s, rel) in exif if s == name and original_of(rel) == "images/autumn-sideways.jpg"
    ]
    assert len(variants) >= 2, variants
    for rel in variants:
        info = exif[name, rel]
        w, h = dims(info)
        assert int(info.get("IFD0:Orientation", 1)) == 1, rel  # pixels turned, tag gone
        assert w > h, f"{rel} is {w}x{h}: sideways, the upright photo is {shown}"
        assert abs(w / h - shown[0] / shown[1]) < 0.01, (rel, (w, h), shown)


@needs_exiftool
@pytest.mark.parametrize("name", SITES)
def test_animated_gif_gets_an_animated_webp(
    exif: dict[tuple[str, str], dict[str, Any]], built: dict[str, Build], name: str
) -> None:
    frames = int(exif[name, "images/ripple.gif"]["GIF:FrameCount"])
    assert frames >= 2
    variants = [rel for (s, rel) in exif if s == name and original_of(rel) == "images/ripple.gif"]
    webps = [rel for rel in variants if rel.endswith(".webp")]
    assert webps, variants
    for rel in webps:
        chunks = riff_chunks((built[name].site / rel).read_bytes())
        assert b"ANIM" in chunks, rel
        assert chunks.count(b"ANMF") == frames, (rel, chunks)


@needs_exiftool
@pytest.mark.parametrize("name", SITES)
def test_svg_is_tagged_and_has_no_variants(
    exif: dict[tuple[str, str], dict[str, Any]], built: dict[str, Build], name: str
) -> None:
    assert plain(exif[name, "images/logo.svg"].get("XMP-plus:DataMining")) == POLICY.default
    assert not [rel for (s, rel) in exif if s == name and original_of(rel) == "images/logo.svg"]
    home = (built[name].site / HOME[name]).read_text(encoding="utf-8")
    (logo,) = [img for img in tags(home, "img") if img.get("src", "").endswith("logo.svg")]
    assert "srcset" not in logo


# --- pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SITES)
def test_allowed_page_says_not_reserved_and_no_noai(built: dict[str, Build], name: str) -> None:
    html = (built[name].site / ALLOWED_PAGE[name]).read_text(encoding="utf-8")
    assert metas(html, "tdm-reservation") == ["0"]
    assert metas(html, "tdm-policy") == []
    assert not [c for c in metas(html, "robots") if "noai" in c or "noimageai" in c]


@pytest.mark.parametrize("name", SITES)
def test_every_other_page_has_one_noai_robots_meta(built: dict[str, Build], name: str) -> None:
    site = built[name].site
    others = [rel for rel in pages(site) if rel != ALLOWED_PAGE[name]]
    assert len(others) >= 3, others
    wrong = {}
    for rel in others:
        html = (site / rel).read_text(encoding="utf-8")
        # Neither theme writes a robots meta of its own, so ours is the only one.
        got = {
            "robots": metas(html, "robots"),
            "tdm-reservation": metas(html, "tdm-reservation"),
            "tdm-policy": metas(html, "tdm-policy"),
        }
        want = {
            "robots": ["noai, noimageai"],
            "tdm-reservation": ["1"],
            "tdm-policy": [POLICY.tdm_policy],
        }
        if got != want:
            wrong[rel] = got
    assert wrong == {}


@needs_exiftool
@pytest.mark.parametrize("name", SITES)
def test_every_responsive_img_points_at_real_files_of_the_right_shape(
    exif: dict[tuple[str, str], dict[str, Any]], built: dict[str, Build], name: str
) -> None:
    site = built[name].site
    seen = 0
    for page in pages(site):
        for img in tags((site / page).read_text(encoding="utf-8"), "img"):
            if "srcset" not in img:
                continue
            seen += 1
            src = site_path(page, img["src"])
            assert (site / src).is_file(), (page, img["src"])
            shown = upright(exif[name, src])
            ratio = shown[0] / shown[1]
            # width/height reserve the upright box (no layout shift, autumn not sideways)
            assert abs(int(img["width"]) / int(img["height"]) - ratio) < 0.01, (page, img)
            assert img.get("loading") == "lazy", (page, img)
            for url, width in srcset(img["srcset"]):
                rel = site_path(page, url)
                assert (site / rel).is_file(), (page, url)
                assert rel == src or original_of(rel) == src, (page, url)
                assert dims(exif[name, rel])[0] == width, (page, url)
    assert seen >= 4


@pytest.mark.parametrize("name", SITES)
def test_tdmrep_json_agrees_with_every_page(built: dict[str, Build], name: str) -> None:
    site = built[name].site
    rules = tdm_rules(site)
    for page in pages(site):
        (meta,) = metas((site / page).read_text(encoding="utf-8"), "tdm-reservation")
        urls = ["/" + page]
        if page.endswith("index.html"):
            urls.append("/" + page.removesuffix("index.html"))
        for url in urls:
            assert tdm_reservation_for(rules, url) == int(meta), (url, rules)


@needs_exiftool
@pytest.mark.parametrize("name", SITES)
def test_tdmrep_json_agrees_with_every_images_xmp(
    exif: dict[tuple[str, str], dict[str, Any]], built: dict[str, Build], name: str
) -> None:
    # kite.webp's variants are what the opted-in page serves: DMI-ALLOWED in their XMP,
    # so tdm-reservation 0 in tdmrep.json too (not only for /images/kite.webp itself).
    rules = tdm_rules(built[name].site)
    disagree = {}
    for (site, rel), info in exif.items():
        if site != name:
            continue
        want = 0 if plain(info.get("XMP-plus:DataMining")) == "DMI-ALLOWED" else 1
        got = tdm_reservation_for(rules, "/" + rel)
        if got != want:
            disagree[rel] = {"xmp": plain(info.get("XMP-plus:DataMining")), "tdmrep": got}
    assert disagree == {}


# --- what must stay untouched ------------------------------------------------------------


def test_pelican_feed_parses_and_is_untouched(
    built: dict[str, Build], pelican_plain: Build
) -> None:
    assert pelican_plain.returncode == 0, pelican_plain.output
    site = built["pelican"].site
    feed = site / "feeds/all.atom.xml"
    assert feed.read_bytes() == (pelican_plain.site / "feeds/all.atom.xml").read_bytes()
    atom = "{http://www.w3.org/2005/Atom}"
    entries = ET.parse(feed).getroot().findall(f"{atom}entry")
    assert len(entries) == 2
    for entry in entries:
        content = entry.find(f"{atom}content")
        assert content is not None and content.text
        images = tags(content.text, "img")
        assert images
        for img in images:  # absolute URLs, as Pelican writes them, to files that exist
            assert img["src"].startswith(SITE_URL), img
            assert (site / img["src"].removeprefix(SITE_URL)).is_file(), img
            assert "srcset" not in img


def test_material_theme_files_untouched(built: dict[str, Build]) -> None:
    spec = importlib.util.find_spec("material")
    assert spec is not None and spec.submodule_search_locations
    theme = Path(spec.submodule_search_locations[0]) / "templates"
    site = built["mkdocs"].site
    favicon = "assets/images/favicon.png"
    assert (site / favicon).read_bytes() == (theme / favicon).read_bytes()
    files = [rel for rel in site_files(site) if rel.startswith("assets/")]
    assert favicon in files
    changed = [rel for rel in files if (site / rel).read_bytes() != (theme / rel).read_bytes()]
    assert changed == []
    home = (site / "index.html").read_text(encoding="utf-8")
    assert [link for link in tags(home, "link") if link.get("rel") == "icon"] == [
        {"rel": "icon", "href": "assets/images/favicon.png"}
    ]
    # Material's logo is an inline SVG icon inside the header link: still there.
    assert re.search(r'class="md-header__button md-logo"[^>]*>\s*<svg', home)


def test_pelican_theme_files_untouched(built: dict[str, Build]) -> None:
    spec = importlib.util.find_spec("pelican")
    assert spec is not None and spec.submodule_search_locations
    static = Path(spec.submodule_search_locations[0]) / "themes/notmyidea/static"
    site = built["pelican"].site
    files = [rel for rel in site_files(site) if rel.startswith("theme/")]
    assert "theme/fonts/Yanone_Kaffeesatz_400.svg" in files  # an SVG ssg-dmi must skip
    changed = [
        rel
        for rel in files
        if (site / rel).read_bytes() != (static / rel.removeprefix("theme/")).read_bytes()
    ]
    assert changed == []


# --- rebuilding --------------------------------------------------------------------------


def test_mkdocs_rebuild_is_byte_identical(built: dict[str, Build], mkdocs_again: Build) -> None:
    assert mkdocs_again.returncode == 0, mkdocs_again.output
    # Everything came from the cache the first build filled.
    hits = re.search(r"([0-9]+)/([0-9]+) from cache", mkdocs_again.output)
    assert hits and hits[1] == hits[2], mkdocs_again.output
    first, again = tree_hashes(built["mkdocs"].site), tree_hashes(mkdocs_again.site)
    assert sorted(again) == sorted(first)
    assert {rel for rel in first if first[rel] != again[rel]} == set()
    for rel in pages(mkdocs_again.site):
        html = (mkdocs_again.site / rel).read_text(encoding="utf-8")
        for name in ("robots", "tdm-reservation", "tdm-policy"):
            assert len(metas(html, name)) <= 1, (rel, name)
