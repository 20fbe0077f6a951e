"""The ``[hotlink]`` table: which Referers may embed the site's images.

Hotlink protection is opt-in: without the table the server configs refuse nothing. With it,
an image request whose ``Referer`` names another site is answered 403; an empty Referer,
the site's own host (from ``base_url`` when it is a full URL), the ``allow`` hosts and,
unless turned off, the search and social hosts of :data:`SEARCH_ENGINE_HOSTS` are let
through. Referers are forgeable: this limits embedding, it does not stop scrapers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .globs import globs
from .parse import flag, shown, table

HOTLINK_KEYS = ("allow", "allow_empty_referer", "allow_search_engines", "paths")
HOTLINK_PATHS = ("**/*.jpg", "**/*.jpeg", "**/*.png", "**/*.webp", "**/*.avif", "**/*.gif")
# Referer hosts of image search and link previews: `*.` covers the host and its subdomains,
# a trailing `.*` any top-level domain (google.de, google.co.uk). Link-preview crawlers
# (facebookexternalhit, Twitterbot, LinkedInBot, Slackbot) mostly send no Referer at all,
# which `allow_empty_referer` lets through; these cover images shown from their pages.
SEARCH_ENGINE_HOSTS = (
    "*.google.*",
    "*.googleusercontent.com",
    "*.bing.com",
    "*.duckduckgo.com",
    "*.yahoo.com",
    "*.yandex.*",
    "*.baidu.com",
    "*.ecosia.org",
    "*.qwant.com",
    "*.facebook.com",
    "*.x.com",
    "*.twitter.com",
    "t.co",
    "*.linkedin.com",
    "*.pinterest.com",
)
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class HotlinkSettings:
    """The validated ``[hotlink]`` table."""

    allow: tuple[str, ...] = ()  # host names; `*.example.org` is it and its subdomains
    allow_empty_referer: bool = True
    allow_search_engines: bool = True
    paths: tuple[str, ...] = HOTLINK_PATHS


def host_pattern(key: str, value: Any) -> str:
    """A host name, optionally ``*.``-prefixed (lower case, no scheme, port or path)."""
    if not isinstance(value, str) or not _HOST.match(value.strip().lower()):
        raise ConfigError(
            f"`{key}`: expected a host name like `example.org` or `*.example.org` (no scheme, "
            f"port or path), got {shown(value)}"
        )
    return value.strip().lower()


def hotlink_table(key: str, value: Any) -> HotlinkSettings:
    """The ``[hotlink]`` table; every key optional (an empty table turns it on with defaults)."""
    if isinstance(value, HotlinkSettings):
        return value
    value = table(key, value, HOTLINK_KEYS, '{allow = ["example.org"]}')
    allow = value.get("allow", [])
    if isinstance(allow, str):
        allow = [allow]
    if not isinstance(allow, list | tuple):
        raise ConfigError(f"`{key}.allow`: expected a list of host names, got {shown(allow)}")
    paths = globs(f"{key}.paths", value["paths"]) if "paths" in value else HOTLINK_PATHS
    if not paths:
        raise ConfigError(f"`{key}.paths`: expected at least one glob (or leave it out)")
    return HotlinkSettings(
        allow=tuple(host_pattern(f"{key}.allow", host) for host in allow),
        allow_empty_referer=flag(
            f"{key}.allow_empty_referer", value.get("allow_empty_referer", True)
        ),
        allow_search_engines=flag(
            f"{key}.allow_search_engines", value.get("allow_search_engines", True)
        ),
        paths=paths,
    )
