"""What each path of a site must say: the DataMining value its settings and its pages'
overrides require, collected as the build collects them (:mod:`ssg_dmi.pages.overrides`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..pages import overrides
from ..pages.overrides import Overrides, page_values
from ..policy import DMI
from ..settings import Settings
from ..sitefiles.render import SitePolicy, site_policy
from ..walk import variant_source
from .findings import Finding


@dataclass(frozen=True)
class Expectations:
    """The settings plus the page and image overrides found in the pages (as the build
    collects them): the DataMining value each site path requires."""

    settings: Settings
    pages: Mapping[str, DMI] = field(default_factory=dict)
    images: Mapping[str, DMI] = field(default_factory=dict)

    @staticmethod
    def source_of(rel: str) -> str:
        """The image a variant was made from (``a/p.jpg-960w.0123456789.webp`` -> ``a/p.jpg``);
        any other path is its own source."""
        return variant_source(rel) or rel

    def image(self, rel: str) -> DMI:
        """The value an image, or a variant of it, must carry."""
        source = self.source_of(rel)
        given = self.images.get(source)
        return given if given is not None else self.settings.policy_for(source).dmi

    def page(self, rel: str) -> DMI:
        """The value a page's metas say: its own override, else its path's policy."""
        given = self.pages.get(rel)
        return given if given is not None else self.settings.policy_for(rel).dmi

    def site_policy(self) -> SitePolicy:
        """The :class:`SitePolicy` the build renders the site files from."""
        return site_policy(self.settings, {**self.images, **self.pages})


def page_overrides(
    text: str, rel: str, base_url: str
) -> tuple[DMI | None, list[tuple[str, DMI]], Finding | None]:
    """One page's own value and the (site path, value) of each image it gives one, as the
    build reads them (:func:`ssg_dmi.pages.overrides.page_values`); a bad value is a
    finding, and then the page gives none."""
    try:
        page, images = page_values(text, rel, base_url)
    except ConfigError as exc:
        return None, [], Finding("page-dmi-invalid", rel, str(exc).removeprefix(f"{rel}: "))
    return page, images, None


def site_overrides(
    site: Path, pages: list[str], page_dmi: Mapping[str, str] | None, base_url: str
) -> tuple[Overrides, list[Finding]]:
    """The build's overrides of the pages of ``site``; a page whose value is not a DMI value
    is a finding and gives none (the build itself would stop there), an unreadable page is
    passed over (the page checks report it)."""
    found, findings = Overrides(), []
    for rel in pages:
        page = overrides.read_page(site, rel)
        if isinstance(page, str):
            continue
        try:
            values = page_values(page.text, rel, base_url, (page_dmi or {}).get(rel))
        except ConfigError as exc:
            findings.append(Finding("page-dmi-invalid", rel, str(exc)))
            continue
        found.add(rel, *values)
    return found, findings
