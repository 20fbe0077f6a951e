"""The Pelican adapter: ``PLUGINS = ["ssg_dmi.pelican"]`` and ``SSG_DMI = {...}``.

Article and page metadata ``DMI: <value>`` overrides the policy of that page and its
images. The core runs once Pelican has written everything (``finalized``); per-run state
is reset there, so ``pelican --autoreload`` starts every run clean.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pelican import signals  # type: ignore[attr-defined]

from .errors import ConfigError
from .pages.head import declare_watermark_files
from .settings import Settings, load_with_file

log = logging.getLogger("ssg_dmi.pelican")


class _State:
    """What one Pelican run collects before ``finalized``."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.page_dmi: dict[str, str] = {}
        self.page_watermark: dict[str, str] = {}


STATE = _State()


def settings_from_pelican(pelican_settings: dict[str, Any]) -> Settings:
    """Settings from ``SSG_DMI`` in pelicanconf.py, with SITEURL's path as the base URL."""
    raw = dict(pelican_settings.get("SSG_DMI") or {})
    if not isinstance(pelican_settings.get("SSG_DMI") or {}, dict):
        raise ConfigError("pelicanconf.py: SSG_DMI must be a dict of ssg-dmi settings")
    site_url = str(pelican_settings.get("SITEURL") or "")
    if not pelican_settings.get("RELATIVE_URLS") and site_url:
        raw.setdefault("base_url", site_url if urlsplit(site_url).scheme else "/")
    # The theme's own images (icons, logos) are left alone unless asked for; .themes says
    # the same to `ssg-dmi check`. Added after a config_file's own `exclude`, not in its place.
    theme: list[str] = []
    if not raw.pop("theme_images", False):
        from .audit.themes import pelican_theme_globs

        theme = list(pelican_theme_globs(pelican_settings.get("THEME_STATIC_DIR")))
    base = Path(str(pelican_settings.get("PATH") or ".")).parent
    return load_with_file(raw, base, "pelicanconf.py: SSG_DMI", also_exclude=theme)


def on_initialized(pelican: Any) -> None:
    """Validate the settings before Pelican does any work."""
    STATE.__init__()  # type: ignore[misc]
    STATE.settings = settings_from_pelican(pelican.settings)


def _collect(contents: Any) -> None:
    for content in contents:
        value = content.metadata.get("dmi")
        if value and getattr(content, "save_as", None):
            STATE.page_dmi[content.save_as] = str(value)
        mark = content.metadata.get("watermark")
        if mark and getattr(content, "save_as", None):
            STATE.page_watermark[content.save_as] = str(mark)


def on_articles(generator: Any) -> None:
    """Record articles' ``DMI:`` metadata (translations and drafts too)."""
    for attr in ("articles", "translations", "drafts", "drafts_translations"):
        _collect(getattr(generator, attr, []))


def on_pages(generator: Any) -> None:
    """Record pages' ``DMI:`` metadata (hidden and draft pages too)."""
    for attr in ("pages", "translations", "hidden_pages", "hidden_translations", "draft_pages"):
        _collect(getattr(generator, attr, []))


def on_finalized(pelican: Any) -> None:
    """Run the whole ssg-dmi build over Pelican's output folder."""
    from .build.site import run_site

    settings = STATE.settings or settings_from_pelican(pelican.settings)
    # The metadata's watermark goes into each page as <meta name="ssg-dmi-watermark">, so a
    # later `ssg-dmi build` over this output honours it too.
    for line in declare_watermark_files(Path(pelican.output_path), dict(STATE.page_watermark)):
        log.warning("ssg-dmi: %s", line)
    try:
        report = run_site(
            Path(pelican.output_path),
            settings,
            page_dmi=dict(STATE.page_dmi),
            progress=False,
            page_watermark=dict(STATE.page_watermark),
        )
    finally:
        STATE.__init__()  # type: ignore[misc]
    for line in report.notes:
        log.info("ssg-dmi: %s", line)
    for rel, error in report.images.errors.items():
        log.warning("ssg-dmi: %s: %s; left unchanged and untagged", rel, error)
    _print_summary(report.summary_line())


def _print_summary(line: str) -> None:
    """Show the summary as Pelican shows its own "Done: Processed ..." line: on its console.
    Pelican logs only WARNING and up unless run with --verbose, so an INFO line would never
    be seen, and a success is no warning."""
    try:
        from pelican.log import console  # type: ignore[import-untyped]
    except ImportError:  # a Pelican without its rich console
        print(line, flush=True)
        return
    # One line however wide (CI logs are grepped); a file name may hold [brackets]: no markup.
    console.print(line, markup=False, soft_wrap=True)


def register() -> None:
    """Pelican's plugin entry point."""
    signals.initialized.connect(on_initialized)
    signals.article_generator_finalized.connect(on_articles)
    signals.page_generator_finalized.connect(on_pages)
    signals.finalized.connect(on_finalized)
