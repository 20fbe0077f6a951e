"""The one place that writes the site files into a site folder."""

from __future__ import annotations

import stat
from pathlib import Path

from ..fsutil import atomic_write
from ..settings import Settings
from .headers import host_files
from .render import TDMREP_PATH, SitePolicy, ai_txt, robots_txt, tdmrep_json


def write_site_files(
    site_dir: Path, site: SitePolicy, settings: Settings, problems: list[str] | None = None
) -> list[str]:
    """Write ai.txt, robots.txt (merged), .well-known/tdmrep.json and the header configs of
    ``settings.hosts`` into ``site_dir``; the site-relative paths whose bytes changed.

    A file that cannot be written is a line in ``problems`` (when given; raised otherwise),
    and the others are still written."""
    root = site_dir.resolve()

    def read(name: str) -> str | None:
        # Only a regular file inside the site is merged: a link leading out is not read,
        # and a FIFO named robots.txt would block the build forever.
        path = site_dir / name
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(root) or not stat.S_ISREG(real.stat().st_mode):
                return None
            return real.read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            return None

    outputs = {
        "ai.txt": ai_txt(site),
        "robots.txt": robots_txt(
            read("robots.txt"),
            site,
            settings.block_search_engines,
            content_usage=settings.robots_content_usage,
        ),
        TDMREP_PATH: tdmrep_json(site, settings.tdm_policy),
        **host_files(site, settings, read),
    }
    written = []
    for name, text in outputs.items():
        path = site_dir / name
        try:
            if atomic_write(path, text.encode("utf-8", "surrogateescape")):
                written.append(name)
        except OSError as exc:
            if problems is None:
                raise
            problems.append(f"{name}: cannot write ({exc.strerror or exc}); not updated")
    return written
