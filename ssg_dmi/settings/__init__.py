"""Settings: the one place defaults live, validated once, frozen.

Loaded from ``ssg-dmi.toml``, from ``[tool.ssg-dmi]`` in ``pyproject.toml``, or from a plain
mapping (what the MkDocs and Pelican adapters pass). Every error names the key, the bad
value and what is allowed.

- :mod:`.fields`: the field table, every key declared once (name, shape, default, parser, doc)
- :mod:`.parse`: the value parsers; :mod:`.globs`: path globs
- :mod:`.model`: :class:`Settings` and how a path's policy is resolved
- :mod:`.load`: loading from a mapping, a TOML file or a folder
"""

from __future__ import annotations

from .fields import (
    DEFAULT,
    DEFAULT_MAX_PIXELS,
    DEFAULT_SIZES,
    FIELD,
    FIELDS,
    POLICY_KEYS,
    SITE_KEYS,
    Field,
    Shape,
    markdown_table,
)
from .globs import glob_to_regex
from .load import (
    discover_settings,
    load_config_file,
    load_settings,
    load_with_file,
    read_config_mapping,
)
from .model import Rule, Settings, build_policy
from .parse import HOSTS, ORIGINALS, QUALITY_DEFAULTS, VARIANT_FORMATS, Host, Originals

__all__ = [
    "DEFAULT",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_SIZES",
    "FIELD",
    "FIELDS",
    "HOSTS",
    "Host",
    "ORIGINALS",
    "Originals",
    "POLICY_KEYS",
    "QUALITY_DEFAULTS",
    "SITE_KEYS",
    "VARIANT_FORMATS",
    "Field",
    "Rule",
    "Settings",
    "Shape",
    "build_policy",
    "discover_settings",
    "glob_to_regex",
    "load_config_file",
    "load_settings",
    "load_with_file",
    "markdown_table",
    "read_config_mapping",
]
