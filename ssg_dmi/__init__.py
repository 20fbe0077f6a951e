"""ssg-dmi: tag a static site's images with a data-mining opt-out and make them lighter.

The public API (see README "Python API")::

    import ssg_dmi

    settings = ssg_dmi.load_settings({"dmi": "DMI-PROHIBITED", "copyright": "© 2026 Ana"})
    report = ssg_dmi.build_site("site", settings)
    assert not ssg_dmi.check_site("site", settings).findings
"""

from __future__ import annotations

from . import api
from .api import *  # noqa: F403 - the API is api.__all__, listed once
from .errors import (
    BuildInterrupted,
    ConfigError,
    ContainerError,
    ImageError,
    SsgDmiError,
)
from .policy import DMI
from .settings import Settings
from .version import __version__

__all__ = [
    *api.__all__,
    "DMI",
    "BuildInterrupted",
    "ConfigError",
    "ContainerError",
    "ImageError",
    "Settings",
    "SsgDmiError",
    "__version__",
]
