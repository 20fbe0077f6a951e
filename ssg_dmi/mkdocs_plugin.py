"""The MkDocs adapter: ``plugins: [ssg-dmi]`` in mkdocs.yml.

It only translates MkDocs' config into :class:`~ssg_dmi.settings.Settings`, records each
page's front-matter ``dmi:``, and runs the core once the site is written. Its options are
made from the settings field table. Long-lived things (the worker pool) live from
``on_startup`` to ``on_shutdown`` so ``mkdocs serve`` rebuilds reuse them; per-build state
is reset in ``on_config``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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

from .build.store import is_remote, start_method_for
from .build.workers import Workers
from .errors import ConfigError, SsgDmiError
from .pages.head import declare_watermark
from .settings import DEFAULT, FIELDS, POLICY_KEYS, Field, Settings, load_with_file

log = get_plugin_logger(__name__)


# Keys MkDocs' own config gives (`site_url`), so they are no plugin options.
FROM_MKDOCS = ("base_url",)


def mkdocs_option(field: Field) -> base.BaseConfigOption[Any]:
    """The MkDocs option of a settings key: MkDocs checks what the YAML holds, with its own
    "Expected ... but received ..." messages; ssg-dmi's parser then checks the value."""
    shape = field.shape
    item: base.BaseConfigOption[Any]
    if shape.choices:
        item = c.Choice(shape.choices)
    else:  # one type alone, so MkDocs names it as `<class 'str'>`, not as a tuple
        item = c.Type(shape.types[0] if len(shape.types) == 1 else shape.types)
    return c.Optional(c.ListOfItems(item) if shape.many else item)


class SettingsOptions(base.Config):
    """Gives its subclasses one option per key of the settings field table (but
    :data:`FROM_MKDOCS` and the ones a subclass declares itself)."""

    def __init_subclass__(cls) -> None:
        for field in FIELDS:
            if field.name not in FROM_MKDOCS and field.name not in cls.__dict__:
                option = mkdocs_option(field)
                option.__set_name__(cls, field.name)  # what a class body would have done
                setattr(cls, field.name, option)
        super().__init_subclass__()  # MkDocs builds the schema from the class's options


class DmiConfig(SettingsOptions):
    """The plugin's options: the keys of ssg-dmi.toml, plus the adapter's own."""

    enabled = c.Type(bool, default=True)
    config_file = c.Optional(c.Type(str))
    theme_images = c.Type(bool, default=False)
    # Always given, so on_config resolves it beside mkdocs.yml, wherever mkdocs is run from.
    cache_dir = c.Type(str, default=DEFAULT["cache_dir"])


class DmiPlugin(BasePlugin[DmiConfig]):
    """Tags every image, adds responsive variants and opt-out signals after each build."""

    supports_multiple_instances = False

    def __init__(self) -> None:
        self.executor: Workers | None = None
        self.started = False  # between on_startup and on_shutdown: a pool may live on
        self.page_dmi: dict[str, str] = {}
        self.page_watermark: dict[str, str] = {}
        self.settings: Settings | None = None
        self.raw: dict[str, Any] = {}
        self.config_dir = Path()
        self.source = ""

    def on_startup(self, *, command: Literal["build", "gh-deploy", "serve"], dirty: bool) -> None:
        self.started = True  # the pool is sized in on_config, from the settings

    def on_shutdown(self) -> None:
        self.started = False
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None

    def _size_pool(self, jobs: int | None) -> None:
        """Keep a pool of as many workers as the settings ask for (config_file included)
        across `mkdocs serve` rebuilds; without on_startup, the pipeline makes its own (and
        with a Dask `scheduler`, the build uses the cluster instead)."""
        workers = jobs or os.cpu_count() or 1
        remote = self.settings is not None and self.settings.scheduler is not None
        if self.executor is not None and (self.executor.count != workers or remote):
            self.executor.shutdown()
            self.executor = None
        if self.started and self.executor is None and workers > 1 and not remote:
            # Started on first use; rebuilt by the pipeline when a worker dies.
            cache = self.settings.cache_dir if self.settings else None
            self.executor = Workers(workers, start_method_for(cache))

    def _load(self, also_exclude: Sequence[str] = ()) -> Settings:
        """The settings of this build, validated from the raw mapping on_config made."""
        try:
            return load_with_file(self.raw, self.config_dir, self.source, also_exclude=also_exclude)
        except ConfigError as exc:
            raise PluginError(str(exc)) from None

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        self.page_dmi = {}
        self.page_watermark = {}
        self.settings = None
        if not self.config.enabled:
            return config
        # Every key is set here, before validation: the Settings are never changed after.
        keys = ("config_file", *(f.name for f in FIELDS if f.name not in FROM_MKDOCS))
        raw = {k: self.config[k] for k in keys if self.config[k] is not None}
        # The cache lives beside mkdocs.yml, wherever mkdocs is run from (or in an object
        # store: an s3:// URL is kept as it is).
        config_dir = Path(config.config_file_path or ".").resolve().parent
        if not is_remote(raw["cache_dir"]):
            raw["cache_dir"] = str(config_dir / raw["cache_dir"])
        raw["base_url"] = urlsplit(config.site_url or "/").path or "/"
        if "material/optimize" in config.plugins or "optimize" in config.plugins:
            # Material's optimize plugin already compresses the originals: ssg-dmi only
            # tags them (lossless) and makes the variants, so nothing is encoded twice.
            raw["originals"] = "tag"
            log.info("material's optimize plugin compresses originals; ssg-dmi only tags them")
        # Name the file MkDocs really read (`mkdocs build -f other.yml`), as it was given.
        self.source = f"{config.config_file_path or 'mkdocs.yml'}: plugins.ssg-dmi"
        self.raw, self.config_dir = raw, config_dir
        self.settings = self._load()  # every mistake stops the build here, before any file
        self._size_pool(self.settings.jobs)
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files | None:
        if not self.config.enabled or self.settings is None or self.config.theme_images:
            return files
        # The theme's own images (logo, favicon, icons) are left alone unless asked for;
        # .themes says the same to `ssg-dmi check`. MkDocs lists them only now: the settings
        # are loaded again, with them excluded.
        from .audit.themes import mkdocs_theme_globs

        docs = Path(config.docs_dir).resolve()
        theme = mkdocs_theme_globs(
            f.dest_uri for f in files if f.src_dir is None or Path(f.src_dir).resolve() != docs
        )
        if theme:
            self.settings = self._load(also_exclude=theme)
        return files

    def on_page_context(
        self, context: TemplateContext, *, page: Page, config: MkDocsConfig, nav: Navigation
    ) -> TemplateContext | None:
        value = page.meta.get("dmi")
        if value is not None:
            self.page_dmi[page.file.dest_uri] = str(value)
        mark = page.meta.get("watermark")
        if mark is not None:  # `watermark: none` is the string "none"; `false` means it too
            self.page_watermark[page.file.dest_uri] = "none" if mark is False else str(mark)
        return context

    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str | None:
        # The front-matter watermark goes into the page as <meta name="ssg-dmi-watermark">
        # (as `dmi:` does as <meta name="ssg-dmi">): a later `ssg-dmi build` over this output
        # then honours it too, instead of marking the page's images.
        mark = self.page_watermark.get(page.file.dest_uri)
        if not self.config.enabled or self.settings is None or mark is None:
            return output
        return declare_watermark(output, mark, page.file.dest_uri)

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
                page_watermark=self.page_watermark,
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
