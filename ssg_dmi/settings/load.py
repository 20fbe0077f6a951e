"""Loading settings: from a plain mapping (what the MkDocs and Pelican adapters pass), from
``ssg-dmi.toml`` or ``[tool.ssg-dmi]`` in ``pyproject.toml``, or found in a folder.

Every mistake is one :class:`~ssg_dmi.errors.ConfigError` naming the source, the key, the
bad value and what is allowed, raised here, before any file of the site is touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .fields import FIELD, POLICY_KEYS, SITE_KEYS
from .globs import glob, glob_to_regex
from .model import (
    SITE_WIDE_KEYS,
    Rule,
    Settings,
    build_policy,
    parse_policy_values,
    parse_site_wide_values,
)
from .parse import kind, shown, unknown_key


def load_settings(
    raw: Mapping[str, Any] | None, source: str = "settings", base: Path | None = None
) -> Settings:
    """Validate a plain mapping of settings (from TOML, mkdocs.yml or pelicanconf.py);
    ``base`` is the folder relative paths in it start from (default: where you run)."""
    raw = dict(raw or {})
    where = f"{source}: "
    for key in raw:
        if key not in SITE_KEYS:
            raise unknown_key(where, key, SITE_KEYS)
    policy = parse_policy_values({k: v for k, v in raw.items() if k in POLICY_KEYS}, where)
    build_policy(policy, where)
    try:
        raw_rules = FIELD["rules"].parse("rules", raw.get("rules", []))
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    rules = []
    for n, item in enumerate(raw_rules, 1):
        at = f"{where}rule {n}: "
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            raise ConfigError(f"{at}expected a table with a `path` glob, got {item!r}")
        try:
            path = glob("path", item["path"])
        except ConfigError as exc:
            raise ConfigError(f"{at}{exc}") from None
        values = parse_policy_values({k: v for k, v in item.items() if k != "path"}, at)
        build_policy({**policy, **values}, at)
        rules.append(Rule(path, values, glob_to_regex(path)))
    try:
        site_wide = parse_site_wide_values({k: v for k, v in raw.items() if k in SITE_WIDE_KEYS})
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    origin = re.match(r"^(https?://[^/?#]+)", str(raw.get("base_url", "")))
    if origin:  # absolute URLs to the site itself (Pelican without RELATIVE_URLS) are local
        site_wide["origin"] = origin.group(1)
    settings = Settings(policy=policy, rules=tuple(rules), source=source, **site_wide)
    return settings.with_base(base)


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only with a config file: a build without one never loads it

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file") from None


def _tool_section(path: Path, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """``[tool.ssg-dmi]`` of a parsed pyproject.toml, None when absent; a ``tool`` or
    ``tool.ssg-dmi`` that is not a table is a mistake, not "no settings"."""
    tool = data.get("tool", {})
    if not isinstance(tool, Mapping):
        raise ConfigError(
            f"{path}: `tool` must be a table, got {shown(tool)} ({kind(tool)}); "
            "write the settings under a [tool.ssg-dmi] header"
        )
    section = tool.get("ssg-dmi")
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"{path}: `tool.ssg-dmi` must be a table of settings, got {shown(section)} "
            f"({kind(section)}); write a [tool.ssg-dmi] header followed by key = value lines"
        )
    return dict(section)


def read_config_mapping(path: Path) -> dict[str, Any]:
    """The raw keys of ``ssg-dmi.toml`` (top level) or ``pyproject.toml`` ([tool.ssg-dmi])."""
    data = _read_toml(path)
    if path.name != "pyproject.toml":
        return data
    section = _tool_section(path, data)
    if section is None:  # named on purpose, so an absent table is a mistake
        raise ConfigError(
            f"{path}: has no [tool.ssg-dmi] table; add one or name an ssg-dmi.toml instead"
        )
    return section


def load_config_file(path: Path) -> Settings:
    """Settings from ``ssg-dmi.toml`` (top-level keys) or ``pyproject.toml`` ([tool.ssg-dmi])."""
    return load_settings(read_config_mapping(path), str(path), path.parent)


def load_with_file(
    raw: Mapping[str, Any], base: Path, source: str, *, also_exclude: Sequence[str] = ()
) -> Settings:
    """Settings from an adapter's inline keys, which may name a ``config_file`` (relative to
    ``base``) whose keys they override: one file can serve the build and ``ssg-dmi check``.

    ``also_exclude`` globs are added after the merged ``exclude`` (the theme's own files,
    which the MkDocs adapter learns only once MkDocs has listed the files)."""
    inline = dict(raw)
    name = inline.pop("config_file", None)
    merged: dict[str, Any] = {}
    folder = base
    if name:
        path = (base / str(name)).resolve()
        merged = read_config_mapping(path)
        folder = path.parent
        source = f"{source} + {path}"
    merged.update(inline)
    given = merged.get("exclude", [])
    given = [given] if isinstance(given, str) else given
    if also_exclude and isinstance(given, list | tuple):  # anything else: the parser says so
        merged["exclude"] = [*given, *also_exclude]
    return load_settings(merged, source, folder)


def discover_settings(folder: Path) -> Settings:
    """Settings from ``ssg-dmi.toml`` or ``[tool.ssg-dmi]`` in ``folder``; defaults if neither."""
    toml = folder / "ssg-dmi.toml"
    if toml.is_file():
        return load_config_file(toml)
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        # A pyproject.toml that cannot be read may hold settings the user expects to apply:
        # building with the defaults instead would change what the site declares.
        section = _tool_section(pyproject, _read_toml(pyproject))
        if section is not None:
            return load_settings(section, str(pyproject), folder)
    return Settings()
