"""The ``[watermark]`` table: a visible mark (text or a logo) drawn on the images.

Opt-in: without the table nothing is marked. ``watermark`` is a per-path key: the site's
table, then a ``[[rules]]`` entry may give a table (merged over the site's), the name of a
style from ``[watermark_styles]``, or ``"none"``. Logo and font paths are relative to the
config file; they are made absolute (and checked) when the settings are loaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .parse import flag, kind, one_of, shown, table, text

POSITIONS = (
    "top-left",
    "top",
    "top-right",
    "left",
    "center",
    "right",
    "bottom-left",
    "bottom",
    "bottom-right",
)
APPLY_TO = ("all", "variants")
NONE = "none"
WATERMARK_KEYS = (
    "text",
    "logo",
    "position",
    "offset",
    "scale",
    "opacity",
    "tile",
    "angle",
    "min_width",
    "apply_to",
    "font",
    "color",
    "shadow",
)
_COLOR = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


@dataclass(frozen=True)
class Watermark:
    """One resolved mark: every key set (paths absolute once loaded)."""

    text: str = ""
    logo: str = ""  # a PNG/WebP/GIF with alpha, or an SVG (extra [svg])
    position: str = "bottom-right"
    offset: float = 0.02  # margin, a fraction of the shorter side
    scale: float = 0.2  # mark width, a fraction of the image width
    opacity: float = 0.5
    tile: bool = False
    angle: float = 30.0  # tiles' rotation, degrees counter-clockwise
    min_width: int = 320
    apply_to: str = "all"  # or "variants": the original file stays unmarked
    font: str = ""  # "": Pillow's bundled Aileron Regular
    color: tuple[int, int, int] = (255, 255, 255)
    shadow: bool = True


def _number(key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"`{key}`: expected a number, got {shown(value)} ({kind(value)})")
    if not low <= value <= high:
        raise ConfigError(f"`{key}`: {value} is outside {low:g}–{high:g}")
    return float(value)


def _color(key: str, value: Any) -> tuple[int, int, int]:
    match = _COLOR.fullmatch(text(key, value).strip())
    if match is None:
        raise ConfigError(f'`{key}`: expected a colour like "#ffffff", got {shown(value)}')
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def _whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
        raise ConfigError(f"`{key}`: expected a whole number of pixels, got {shown(value)}")
    return value


_PARSERS: dict[str, Any] = {
    "text": text,
    "logo": text,
    "position": one_of(POSITIONS),
    "offset": lambda k, v: _number(k, v, 0, 0.5),
    "scale": lambda k, v: _number(k, v, 0.01, 1),
    "opacity": lambda k, v: _number(k, v, 0, 1),
    "tile": flag,
    "angle": lambda k, v: _number(k, v, -360, 360),
    "min_width": _whole,
    "apply_to": one_of(APPLY_TO),
    "font": text,
    "color": _color,
    "shadow": flag,
}


def watermark_table(key: str, value: Any) -> dict[str, Any]:
    """A ``[watermark]``-style table, its keys parsed (those not given stay unset)."""
    value = table(key, value, WATERMARK_KEYS, '{text = "© 2026 Ana Example"}')
    parsed = {name: _PARSERS[name](f"{key}.{name}", raw) for name, raw in value.items()}
    if parsed.get("text") and parsed.get("logo"):
        raise ConfigError(f"`{key}`: set `text` or `logo`, not both")
    return parsed


def watermark_value(key: str, value: Any) -> dict[str, Any] | str:
    """The per-path ``watermark``: a table, ``"none"`` or the name of a style."""
    if isinstance(value, str):
        return value.strip() or NONE
    return watermark_table(key, value)


def watermark_styles(key: str, value: Any) -> dict[str, dict[str, Any]]:
    """``[watermark_styles.<name>]`` tables, each a complete mark a rule names."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"`{key}`: expected a table of named watermark tables")
    styles = {}
    for name, style in value.items():
        if name == NONE:
            raise ConfigError(f'`{key}`: "none" is reserved (it means no watermark)')
        styles[str(name)] = watermark_table(f"{key}.{name}", style)
    return styles


def merged(
    current: Mapping[str, Any] | None,
    given: Mapping[str, Any] | str,
    styles: Mapping[str, Mapping[str, Any]],
    where: str,
) -> dict[str, Any] | None:
    """``current`` after a rule's or page's ``watermark``: a table overrides key by key
    (its `text` replaces an inherited `logo` and the reverse), a style name replaces it."""
    if isinstance(given, str):
        if given == NONE:
            return None
        if given not in styles:
            names = ", ".join(f'"{n}"' for n in [NONE, *styles])
            raise ConfigError(
                f"{where}`watermark` = {given!r} names no style; use one of {names} or a "
                "table of [watermark_styles]"
            )
        return dict(styles[given])
    out = dict(current or {})
    if "text" in given:
        out.pop("logo", None)
    if "logo" in given:
        out.pop("text", None)
    out.update(given)
    return out


def resolve(values: Mapping[str, Any] | None) -> Watermark | None:
    """The mark a path gets from its merged table; None when it has no text and no logo."""
    if not values or not (values.get("text") or values.get("logo")):
        return None
    return Watermark(**values)


def with_paths(values: Mapping[str, Any], base: Path, where: str) -> dict[str, Any]:
    """``values`` with ``logo`` and ``font`` made absolute against ``base`` and checked."""
    out = dict(values)
    for name in ("logo", "font"):
        if out.get(name):
            path = (base / str(out[name])).resolve()
            if not path.is_file():
                what = "logo image" if name == "logo" else "TTF/OTF font"
                raise ConfigError(
                    f"{where}`watermark.{name}`: {out[name]!r} is no file ({path}); give the "
                    f"{what}'s path relative to the config file"
                )
            out[name] = str(path)
    return out


def check_originals(values: Mapping[str, Any] | None, originals: str, where: str) -> None:
    """``originals = "tag"`` promises the originals' pixels stay: a mark on them cannot."""
    if resolve(values) is None or originals != "tag":
        return
    if values and values.get("apply_to", "all") == "all":
        raise ConfigError(
            f"{where}`originals = \"tag\"` keeps the originals' pixels, but the watermark's "
            '`apply_to = "all"` marks them; set `apply_to = "variants"` (only the variants '
            'are marked) or `originals = "optimize"`'
        )
