"""What the MkDocs and Pelican plugins leave alone by design, in one place.

A theme's own images (logo, favicon, icons, an SVG font) are not the author's content: the
plugins exclude them while building unless ``theme_images`` is on. ``ssg-dmi check`` runs
after the build with no access to the generator's config, so it recognises the generator
from the built pages (``<meta name="generator">``, MkDocs' build comment) and skips the same
files; it also reads where a MkDocs site lives (``site_url``) from the home page's
canonical link, which the plugin took from the config.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

from ..formats import is_image_name
from ..pages.tokens import iter_tags

PELICAN_THEME_STATIC_DIR = "theme"  # Pelican's THEME_STATIC_DIR default
# The images MkDocs themes ship (mkdocs 1.6, mkdocs-material 9), for a check run where the
# theme is not installed; an installed theme's own folder is read as well.
KNOWN_MKDOCS_THEME_IMAGES: dict[str, tuple[str, ...]] = {
    "material": ("assets/images/favicon.png",),
    "mkdocs": ("img/favicon.ico", "img/grid.png"),
    "readthedocs": ("img/favicon.ico", "css/fonts/fontawesome-webfont.svg"),
}
_MKDOCS_META = re.compile(r"(?:^|,)\s*mkdocs-(?P<theme>[a-z0-9_-]+?)-[0-9]", re.IGNORECASE)
_MKDOCS_COMMENT = "MkDocs version :"  # at the end of pages of MkDocs' built-in themes
_HEAD_TAGS = frozenset({"meta", "link"})


class Generator(Enum):
    """The generators whose plugin leaves theme images alone."""

    MKDOCS = "MkDocs"
    PELICAN = "Pelican"


@dataclass(frozen=True)
class BuiltBy:
    """What a built site's home page says about the generator that wrote it."""

    generator: Generator
    themes: tuple[str, ...]  # MkDocs: the theme names it may be; empty when unknown
    site_path: str | None = None  # MkDocs: the URL path of site_url, from the canonical link


def glob_escape(path: str) -> str:
    """A path as a glob that matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def pelican_theme_globs(static_dir: object) -> list[str]:
    """Pelican copies the whole theme ``static/`` folder to ``THEME_STATIC_DIR``."""
    folder = str(static_dir or PELICAN_THEME_STATIC_DIR).strip("/") or PELICAN_THEME_STATIC_DIR
    return [f"{glob_escape(folder)}/**"]


def mkdocs_theme_globs(dest_uris: Iterable[str]) -> list[str]:
    """The site paths of the files MkDocs took from the theme, each as a glob of itself."""
    return [glob_escape(uri) for uri in dest_uris]


def built_by(home_page: str) -> BuiltBy | None:
    """The generator a home page names, None for any other (or none)."""
    canonical: str | None = None
    generators: list[str] = []
    for tag in iter_tags(home_page, _HEAD_TAGS):
        if tag.closing:
            continue
        if tag.name == "meta" and (tag.get("name") or "").strip().lower() == "generator":
            generators.append(tag.get("content") or "")
        elif tag.name == "link" and "canonical" in (tag.get("rel") or "").lower().split():
            canonical = canonical or tag.get("href")
    site_path = None
    if canonical and urlsplit(canonical).scheme in ("http", "https"):
        site_path = urlsplit(canonical).path or "/"
        site_path = site_path if site_path.endswith("/") else site_path.rsplit("/", 1)[0] + "/"
    for content in generators:
        if content.strip().lower().startswith("pelican"):
            return BuiltBy(Generator.PELICAN, ())
        if content.strip().lower().startswith("mkdocs"):
            themes = tuple(m["theme"].lower() for m in _MKDOCS_META.finditer(content))
            return BuiltBy(Generator.MKDOCS, themes, site_path)
    if _MKDOCS_COMMENT in home_page:
        return BuiltBy(Generator.MKDOCS, ("mkdocs", "readthedocs"), site_path)
    return None


def theme_images(by: BuiltBy, images: Iterable[str]) -> list[str]:
    """The images among ``images`` (site paths) that the plugin of ``by`` left alone."""
    if by.generator is Generator.PELICAN:
        prefix = PELICAN_THEME_STATIC_DIR + "/"
        return [rel for rel in images if rel.startswith(prefix)]
    names = by.themes or tuple(KNOWN_MKDOCS_THEME_IMAGES)
    shipped: set[str] = set()
    for name in names:
        shipped.update(KNOWN_MKDOCS_THEME_IMAGES.get(name, ()))
        shipped |= _installed_mkdocs_theme_images(name)
    return [rel for rel in images if rel in shipped]


def _installed_mkdocs_theme_images(name: str) -> set[str]:
    """The image files of an installed MkDocs theme, as MkDocs copies them (hidden folders
    and files skipped); empty when the theme is not installed here."""
    found: set[str] = set()
    try:
        points = [p for p in entry_points(group="mkdocs.themes") if p.name == name]
        spec = importlib.util.find_spec(points[0].value) if points else None
    except (ImportError, ValueError):  # a broken theme package: the known list stands
        return found
    for root in (spec.submodule_search_locations or []) if spec else []:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for file in files:
                if not file.startswith(".") and is_image_name(file):
                    found.add(Path(folder, file).relative_to(root).as_posix())
    return found
