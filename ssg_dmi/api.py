"""The public Python API: what ``import ssg_dmi`` offers, in one place.

The CLI and both plugins are built on these same calls; see README "Python API".
"""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

from .audit.findings import CheckReport
from .audit.folder import check_site as _check_site
from .audit.served import check_url as _check_url
from .build.site import SiteReport as BuildReport
from .build.site import run_site
from .build.workers import Workers
from .images.facts import Inspection as ImageFacts
from .images.facts import inspect_bytes as _inspect_bytes
from .images.tagging import tag_bytes as _tag_bytes
from .settings import Settings, discover_settings, load_settings

__all__ = [
    "BuildReport",
    "CheckReport",
    "ImageFacts",
    "build_site",
    "check_site",
    "check_url",
    "find_settings",
    "inspect_bytes",
    "load_settings",
    "tag_bytes",
]


def find_settings(folder: Path | str = ".") -> Settings:
    """The settings in ``folder``'s ``ssg-dmi.toml`` or ``pyproject.toml`` ``[tool.ssg-dmi]``
    (defaults when neither has any); ConfigError for a file that is not valid."""
    return discover_settings(Path(folder))


def build_site(
    site: Path | str,
    settings: Settings | None = None,
    *,
    executor: Executor | Workers | None = None,
    progress: bool | None = None,
) -> BuildReport:
    """Tag every image of a built site folder, add variants, rewrite its pages and write
    its site files (what ``ssg-dmi build`` does). ``settings`` default: the defaults."""
    return run_site(Path(site), settings or load_settings({}), executor=executor, progress=progress)


def check_site(site: Path | str, settings: Settings | None = None) -> CheckReport:
    """Audit a built site folder (what ``ssg-dmi check SITE`` does)."""
    return _check_site(Path(site), settings or load_settings({}))


def check_url(
    url: str, settings: Settings | None = None, *, time_limit: float = 120.0
) -> CheckReport:
    """Crawl a served site and audit what it serves (``ssg-dmi check --url``)."""
    return _check_url(url, settings or load_settings({}), time_limit=time_limit)


def tag_bytes(
    data: bytes,
    settings: Settings | None = None,
    *,
    name: str | None = None,
    lossless: bool = False,
) -> bytes:
    """One image's bytes tagged with the policy ``settings`` give the path ``name`` (the
    site-wide policy without a name). ImageError with a one-line reason when it cannot be."""
    settings = settings or load_settings({})
    tagged = _tag_bytes(
        data,
        settings.policy_for(name or ""),
        name=name or "image",
        lossless=lossless,
        max_pixels=settings.max_pixels,
        quality=settings.quality,
    )
    return tagged.data


def inspect_bytes(data: bytes, *, name: str | None = None) -> ImageFacts:
    """What one image says: its DataMining value, rights fields and private fields left."""
    return _inspect_bytes(data, name or "image")
