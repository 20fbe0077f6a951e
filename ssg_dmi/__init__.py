"""ssg-dmi: tag a static site's images with a data-mining opt-out and make them lighter."""

from __future__ import annotations

__version__ = "0.1.0"
