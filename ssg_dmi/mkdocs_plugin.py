"""The MkDocs adapter: ``plugins: [ssg-dmi]`` in mkdocs.yml.

It only translates MkDocs' config into :class:`~ssg_dmi.settings.Settings`, records each
page's front-matter ``dmi:``, and runs the core once the site is written. Long-lived
things (the worker pool) live from ``on_startup`` to ``on_shutdown`` so ``mkdocs serve``
rebuilds reuse them; per-build state is reset in ``on_config``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority, get_plugin_logger
from mkdocs.structure.files import Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page
from mkdocs.utils.templates import TemplateContext

from .build.workers import Workers
from .errors import ConfigError, SsgDmiError
from .settings import POLICY_KEYS, load_with_file

log = get_plugin_logger(__name__)


class DmiConfig(base.Config):
    """The plugin's options: the same names as ssg-dmi.toml."""

    enabled = c.Type(bool, default=True)
    config_file = c.Optional(c.Type(str))
    dmi = c.Optional(c.Type(str))
    other_constraints = c.Optional(c.Type(str))
    embedded_rights_expression = c.Optional(c.Type(str))
    linked_rights_expression = c.Optional(c.Type(str))
    rights_expression_type = c.Optional(c.Type(str))
    rights_expression_language = c.Optional(c.Type(str))
    copyright = c.Optional(c.Type(str))
    creator = c.Optional(c.Type((str, list)))
    credit = c.Optional(c.Type(str))
    web_statement = c.Optional(c.Type(str))
    licensor_url = c.Optional(c.Type(str))
    metadata = c.Optional(c.Choice(("strip", "copyright", "keep")))
    rules = c.Optional(c.ListOfItems(c.Type(dict)))
    max_pixels = c.Optional(c.Type(int))
    quality = c.Optional(c.Type((int, dict)))
    widths = c.Optional(c.ListOfItems(c.Type(int)))
    formats = c.Optional(c.ListOfItems(c.Choice(("avif", "webp", "jpeg", "png"))))
    originals = c.Optional(c.Choice(("optimize", "tag")))
    include = c.Optional(c.ListOfItems(c.Type(str)))
    exclude = c.Optional(c.ListOfItems(c.Type(str)))
    theme_images = c.Type(bool, default=False)
    cache_dir = c.Type(str, default=".cache/ssg-dmi")
    cache = c.Optional(c.Type(bool))
    jobs = c.Optional(c.Type(int))
    srgb = c.Optional(c.Type(bool))
    strict = c.Optional(c.Type(bool))
    tdm_policy = c.Optional(c.Type(str))
    hosts = c.Optional(c.ListOfItems(c.Choice(("netlify", "cloudflare", "apache", "nginx"))))
    sizes = c.Optional(c.Type(str))
    picture = c.Optional(c.Type(bool))
    lazy = c.Optional(c.Type(bool))
    block_search_engines = c.Optional(c.Type(bool))
    rewrite_html = c.Optional(c.Type(bool))
    site_files = c.Optional(c.Type(bool))


class DmiPlugin(BasePlugin[DmiConfig]):
    """Tags every image, adds responsive variants and opt-out signals after each build."""

    supports_multiple_instances = False

    def __init__(self) -> None:
        self.executor: Workers | None = None
        self.page_dmi: dict[str, str] = {}
        self.settings: Any = None

    def on_startup(self, *, command: Literal["build", "gh-deploy", "serve"], dirty: bool) -> None:
        workers = self.config.jobs or os.cpu_count() or 1
        if self.config.enabled and workers > 1:  # a disabled plugin starts no workers
            # Started on first use; rebuilt by the pipeline when a worker dies.
            self.executor = Workers(workers)

    def on_shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        self.page_dmi = {}
        if not self.config.enabled:
            return config
        adapter_only = ("enabled", "theme_images")
        raw = {k: v for k, v in self.config.items() if v is not None and k not in adapter_only}
        # The cache lives beside mkdocs.yml, wherever mkdocs is run from.
        config_dir = Path(config.config_file_path or ".").resolve().parent
        raw["cache_dir"] = str(config_dir / raw["cache_dir"])
        raw["base_url"] = urlsplit(config.site_url or "/").path or "/"
        if "material/optimize" in config.plugins or "optimize" in config.plugins:
            # Material's optimize plugin already compresses the originals: ssg-dmi only
            # tags them (lossless) and makes the variants, so nothing is encoded twice.
            raw["originals"] = "tag"
            log.info("material's optimize plugin compresses originals; ssg-dmi only tags them")
        # Name the file MkDocs really read (`mkdocs build -f other.yml`), as it was given.
        source = f"{config.config_file_path or 'mkdocs.yml'}: plugins.ssg-dmi"
        try:
            self.settings = load_with_file(raw, config_dir, source)
        except ConfigError as exc:
            raise PluginError(str(exc)) from None
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files | None:
        if not self.config.enabled or self.settings is None or self.config.theme_images:
            return files
        # The theme's own images (logo, favicon, icons) are left alone unless asked for;
        # .themes says the same to `ssg-dmi check`.
        from .themes import mkdocs_theme_globs

        docs = Path(config.docs_dir).resolve()
        theme = mkdocs_theme_globs(
            f.dest_uri for f in files if f.src_dir is None or Path(f.src_dir).resolve() != docs
        )
        if theme:
            exclude = (*self.settings.exclude, *theme)
            self.settings = dataclasses.replace(self.settings, exclude=exclude)
        return files

    def on_page_context(
        self, context: TemplateContext, *, page: Page, config: MkDocsConfig, nav: Navigation
    ) -> TemplateContext | None:
        value = page.meta.get("dmi")
        if value is not None:
            self.page_dmi[page.file.dest_uri] = str(value)
        return context

    @event_priority(-100)  # after other plugins (material/optimize) have written their files
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if not self.config.enabled or self.settings is None:
            return
        from .build.site import run_site

        try:
            report = run_site(
                Path(config.site_dir),
                self.settings,
                executor=self.executor,
                page_dmi=self.page_dmi,
                progress=False,
            )
        except SsgDmiError as exc:
            raise PluginError(str(exc)) from None
        for line in report.notes:
            log.info(line)
        for rel, error in report.images.errors.items():
            # A warning, so `mkdocs build --strict` fails on an untagged image.
            log.warning("%s: %s; left unchanged and untagged", rel, error)
        # The plugin logger already prefixes "ssg_dmi: "; summary_line() starts with its own.
        log.info(report.summary_line().removeprefix("ssg-dmi: "))


__all__ = ["POLICY_KEYS", "DmiPlugin"]
