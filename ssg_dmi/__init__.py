"""ssg-dmi: tag a static site's images with a data-mining opt-out and make them lighter.

The public API (see README "Python API")::

    import ssg_dmi

    settings = ssg_dmi.load_settings({"dmi": "DMI-PROHIBITED", "copyright": "© 2026 Ana"})
    report = ssg_dmi.build_site("site", settings)
    assert not ssg_dmi.check_site("site", settings).findings
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import BuildInterrupted as BuildInterrupted
from .errors import ConfigError as ConfigError
from .errors import ContainerError as ContainerError
from .errors import ImageError as ImageError
from .errors import SsgDmiError as SsgDmiError
from .policy import DMI as DMI
from .settings import Settings as Settings
from .version import __version__ as __version__

if TYPE_CHECKING:  # for type checkers; at run time imported on first use (see __getattr__)
    from . import api as api
    from .api import *  # noqa: F403 - the API is api.__all__, listed once

# With api.__all__, the package's __all__ (made on first use, as the API's names are).
_OWN = [
    "DMI",
    "BuildInterrupted",
    "ConfigError",
    "ContainerError",
    "ImageError",
    "Settings",
    "SsgDmiError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """The API's names (and ``__all__``), imported on first use: ``python -m ssg_dmi.cli``
    imports this package first, and a build must not wait for the audit's modules."""
    if name.startswith("__") and name != "__all__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import ssg_dmi.api as api  # not `from . import api`: that asks this hook for "api" again

    if name == "__all__":
        return [*api.__all__, *_OWN]
    if name in api.__all__ or name == "api":
        value = getattr(api, name) if name != "api" else api
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
