"""The README's CI recipes, run as written on stock sites (issue 8, item 7).

A stock Material site (GitHub Pages project site: ``site_url`` under a sub-path) and a stock
Pelican site (default theme), each built by the real generator with only the plugin added,
then ``ssg-dmi check`` exactly as the recipe says, from the project folder, with no
``ssg-dmi.toml``: it must exit 0, skipping the theme images the plugin left alone by
design and saying so."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ssg_dmi.audit.themes import (
    BuiltBy,
    Generator,
    built_by,
    mkdocs_theme_globs,
    pelican_theme_globs,
    theme_images,
)

from .conftest import tool
from .images import camera_file

MATERIAL_YML = """site_name: My project
site_url: https://someone.github.io/my-project/
theme:
  name: material
plugins:
  - search
  - ssg-dmi
"""
PELICANCONF = """AUTHOR = "Someone"
SITENAME = "My blog"
SITEURL = ""
PATH = "content"
TIMEZONE = "Europe/Paris"
DEFAULT_LANG = "en"
FEED_ALL_ATOM = None
CATEGORY_FEED_ATOM = None
TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
DEFAULT_PAGINATION = False
STATIC_PATHS = ["images"]
PLUGINS = ["ssg_dmi.pelican"]
"""


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("material")
    project = tmp_path_factory.mktemp("material")
    (project / "docs" / "img").mkdir(parents=True)
    (project / "docs" / "img" / "photo.jpg").write_bytes(camera_file("JPEG"))
    (project / "docs" / "index.md").write_text("# Home\n\n![A photo](img/photo.jpg)\n")
    (project / "mkdocs.yml").write_text(MATERIAL_YML)
    done = run([tool("mkdocs"), "build", "--strict"], project)
    assert done.returncode == 0, done.stderr
    return project


@pytest.fixture(scope="module")
def pelican(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("pelican")
    (project / "content" / "images").mkdir(parents=True)
    (project / "content" / "images" / "photo.jpg").write_bytes(camera_file("JPEG"))
    (project / "content" / "post.md").write_text(
        "Title: Post\nDate: 2026-01-01\n\n![A photo]({static}/images/photo.jpg)\n"
    )
    (project / "pelicanconf.py").write_text(PELICANCONF)
    done = run([tool("pelican"), "content", "-o", "public"], project)
    assert done.returncode == 0, done.stdout + done.stderr
    return project


def test_github_actions_recipe_passes_on_a_stock_material_site(material: Path) -> None:
    assert (material / "site" / "assets" / "images" / "favicon.png").is_file()
    done = run([tool("ssg-dmi"), "check", "site", "--format", "github"], material)
    assert done.returncode == 0, done.stdout + done.stderr
    notices = [line for line in done.stdout.splitlines() if line.startswith("::notice")]
    assert any("assets/images/favicon.png" in n and "left alone" in n for n in notices)
    assert any("base_url /my-project/" in n for n in notices)  # site_url's path, read back
    assert not any(line.startswith(("::error", "::warning")) for line in done.stdout.splitlines())
    data = json.loads(run([tool("ssg-dmi"), "check", "site", "--format", "json"], material).stdout)
    assert data["summary"]["errors"] == 0 and len(data["notes"]) == 2
    assert "site/assets/images/favicon.png" not in data["checked"]


def test_gitlab_recipe_passes_on_a_stock_pelican_site(pelican: Path) -> None:
    assert list((pelican / "public" / "theme").rglob("*.svg"))  # the theme's own SVG font
    done = run(
        ["sh", "-c", f"{tool('ssg-dmi')} check public --format junit > ssg-dmi.xml"], pelican
    )
    assert done.returncode == 0, (pelican / "ssg-dmi.xml").read_text() + done.stderr
    root = ET.parse(pelican / "ssg-dmi.xml").getroot()
    assert root.get("failures") == "0" and int(root.get("tests") or 0) > 5
    said = root.findtext("./testsuite/system-out") or ""
    assert "Pelican theme image" in said and "theme/fonts/" in said


@pytest.mark.parametrize("project", ["material", "pelican"])
def test_theme_images_flag_checks_what_the_plugin_left_alone(
    project: str, request: pytest.FixtureRequest
) -> None:
    folder: Path = request.getfixturevalue(project)
    site = "site" if project == "material" else "public"
    text = run([tool("ssg-dmi"), "check", site], folder)
    assert text.returncode == 0 and "left alone by design, skipped" in text.stdout
    every = run([tool("ssg-dmi"), "check", site, "--theme-images"], folder)
    assert every.returncode == 1, every.stdout
    untagged = [line for line in every.stdout.splitlines() if "image-untagged" in line]
    prefix = f"{site}/assets/images/" if project == "material" else f"{site}/theme/"
    assert untagged and all(line.startswith(prefix) for line in untagged), every.stdout


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            '<meta name="generator" content="mkdocs-1.6.1, mkdocs-material-9.8.2">'
            '<link rel="canonical" href="https://a.github.io/proj/">',
            BuiltBy(Generator.MKDOCS, ("material",), "/proj/"),
        ),
        (
            '<META NAME=generator CONTENT="mkdocs-1.6.1"><link rel=canonical href="/x/">',
            BuiltBy(Generator.MKDOCS, (), None),  # a relative canonical says nothing
        ),
        (
            "<html><body>Built with MkDocs</body></html><!--\nMkDocs version : 1.6.1\n-->",
            BuiltBy(Generator.MKDOCS, ("mkdocs", "readthedocs"), None),
        ),
        ('<meta name="generator" content="Pelican" />', BuiltBy(Generator.PELICAN, ())),
        ('<meta name="generator" content="Hugo 0.120">', None),
        ("<p>no head at all</p>", None),
    ],
)
def test_built_by_reads_the_home_page(page: str, expected: BuiltBy | None) -> None:
    assert built_by(page) == expected


def test_the_plugins_and_check_share_one_list() -> None:
    """What the plugins exclude is what check skips."""
    from ssg_dmi.settings import load_settings

    pelican = load_settings({"exclude": pelican_theme_globs(None)})
    images = ["theme/images/icons/rss.png", "images/theme/x.png", "theme.png"]
    skipped = theme_images(BuiltBy(Generator.PELICAN, ()), images)
    assert skipped == [rel for rel in images if not pelican.matches(rel)] == images[:1]
    assert pelican_theme_globs("/static/") == ["static/**"]
    material = BuiltBy(Generator.MKDOCS, ("material",))
    shipped = ["assets/images/favicon.png", "assets/images/mine.png", "img/grid.png"]
    assert theme_images(material, shipped) == ["assets/images/favicon.png"]
    assert mkdocs_theme_globs(["a[1].png", "b*.png"]) == ["a[[]1].png", "b[*].png"]
