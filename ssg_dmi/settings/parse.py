"""Value parsers: one raw value (from TOML, mkdocs.yml, pelicanconf.py or the command line)
in, the typed value out, or a :class:`~ssg_dmi.errors.ConfigError` naming the key, the bad
value and what is allowed.

Every parser takes ``(key, value)``, so the field table can name one per key.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..formats import VariantFormat
from ..policy import DMI, MetadataMode

Parser = Callable[[str, Any], Any]


class Host(enum.StrEnum):
    """The web servers / hosts whose header config ssg-dmi writes."""

    NETLIFY = "netlify"
    CLOUDFLARE = "cloudflare"
    APACHE = "apache"
    NGINX = "nginx"
    CADDY = "caddy"


class Originals(enum.StrEnum):
    """What happens to an original's pixels: re-encoded where that pays, or only tagged."""

    OPTIMIZE = "optimize"
    TAG = "tag"


HOSTS = tuple(h.value for h in Host)
QUALITY_DEFAULTS = {"jpeg": 82, "webp": 80, "avif": 60}
VARIANT_FORMATS = tuple(f.value for f in VariantFormat)
ORIGINALS = tuple(o.value for o in Originals)

# What XML 1.0 cannot carry (C0 controls but tab, LF, CR; U+FFFE/U+FFFF) and lone
# surrogates, which cannot be encoded as UTF-8: a text setting holding one would be written
# into every image's XMP, which no reader (ssg-dmi's own `check` included) can then parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def shown(value: Any) -> str:
    """A value as the user wrote it: TOML/YAML spell booleans ``true``/``false``."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def kind(value: Any) -> str:
    """What a value is, in the words of a config file ("a boolean", "a table")."""
    if value is None:  # YAML `null`, Python None
        return "no value"
    kinds = {bool: "a boolean", float: "a decimal number", str: "a string", int: "a number"}
    for cls, name in kinds.items():
        if isinstance(value, cls):
            return name
    return "a table" if isinstance(value, Mapping) else f"a {type(value).__name__}"


def unknown_key(where: str, key: str, allowed: tuple[str, ...]) -> ConfigError:
    """The error for a key that is not allowed, with the closest allowed one as a hint."""
    import difflib  # only for a mistake: every build would pay for its import

    hint = difflib.get_close_matches(key, allowed, n=1)
    did = f" (did you mean `{hint[0]}`?)" if hint else ""
    return ConfigError(
        f"{where}unknown key `{key}`{did}; allowed keys: {', '.join(sorted(allowed))}"
    )


def table(key: str, value: Any, allowed: tuple[str, ...], example: str) -> Mapping[str, Any]:
    """``value`` as a sub-table (``[c2pa]``, ``[hotlink]``, ``[watermark]``) whose keys are all
    in ``allowed``; ``example`` shows the user what one looks like."""
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"`{key}`: expected a table like {example}, got {shown(value)} ({kind(value)})"
        )
    for name in value:
        if name not in allowed:
            raise unknown_key(f"`{key}`: ", str(name), allowed)
    return value


def text(key: str, value: Any) -> str:
    """A non-empty string that XMP can carry, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{key}`: expected a non-empty string, got {shown(value)}")
    bad = _NOT_XML.search(value)
    if bad:
        raise ConfigError(
            f"`{key}`: {value!r} holds the character U+{ord(bad.group()):04X} at position "
            f"{bad.start() + 1}, which XMP (XML 1.0) cannot carry; remove it"
        )
    return value.strip()


def http_url(key: str, value: Any) -> str:
    """An http(s) URL."""
    url = text(key, value)
    if not re.match(r"^https?://[^\s/]+", url):
        raise ConfigError(f"`{key}`: expected an http(s) URL, got {value!r}")
    return url


def creators(key: str, value: Any) -> tuple[str, ...]:
    """One name or a list of names."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"`{key}`: expected a name or a list of names, got {value!r}")
    return tuple(text(key, item) for item in items)


def dmi_value(key: str, value: Any) -> DMI:
    """A PLUS DataMining value: its key (any case) or its full URI, or one already parsed
    (a page's override, read by the build: not turned back into text to be parsed again)."""
    if isinstance(value, DMI):
        return value
    try:
        return DMI.parse(value) if isinstance(value, str) else DMI.parse(str(value))
    except ValueError:
        allowed = ", ".join(m.key for m in DMI)
        raise ConfigError(
            f"`{key}`: {value!r} is not a PLUS DataMining value; use one of {allowed}"
        ) from None


def metadata_mode(key: str, value: Any) -> MetadataMode:
    """``strip``, ``copyright`` or ``keep``."""
    for mode in MetadataMode:
        if value == mode.value:
            return mode
    allowed = ", ".join(m.value for m in MetadataMode)
    raise ConfigError(f"`{key}`: {value!r} is not a metadata mode; use one of {allowed}")


def flag(key: str, value: Any) -> bool:
    """``true`` or ``false`` (never a number or a string)."""
    if not isinstance(value, bool):
        raise ConfigError(f"`{key}`: expected true or false, got {value!r}")
    return value


def whole_number(key: str, value: Any, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``."""
    # bool is a subclass of int: `jobs = true` must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        number = isinstance(value, int) and not isinstance(value, bool)
        got = shown(value) if number else f"{shown(value)} ({kind(value)})"
        raise ConfigError(f"`{key}`: expected a whole number from {low} to {high}, got {got}")
    return value


def whole(low: int, high: int) -> Parser:
    """The parser of a whole number from ``low`` to ``high``."""
    return lambda key, value: whole_number(key, value, low, high)


def widths(key: str, value: Any) -> tuple[int, ...]:
    """Pixel widths, as a list or the command line's ``480,960``; sorted, no duplicates."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(
            f"`{key}`: expected a list of pixel widths like [480, 960, 1600], got {shown(value)}"
        )
    found = set()
    for item in items:
        # int() would turn 1.5 and true into 1 and report "got 1"; only whole numbers (or
        # their digits, from the command line's "480,960") are widths.
        width = int(item) if isinstance(item, str) and item.strip().isdigit() else item
        found.add(whole_number(key, width, 16, 16384))
    return tuple(sorted(found))


def variant_formats(key: str, value: Any) -> tuple[VariantFormat, ...]:
    """Variant formats (``jpg`` is ``jpeg``), in the order given, no duplicates."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f'`{key}`: expected a list such as ["webp", "jpeg"], got {value!r}')
    formats: list[VariantFormat] = []
    for item in items:
        name = str(item).strip().lower().replace("jpg", "jpeg")
        if name not in VARIANT_FORMATS:
            allowed = ", ".join(VARIANT_FORMATS)
            raise ConfigError(f"`{key}`: {item!r} is not a variant format; use some of {allowed}")
        if name not in formats:
            formats.append(VariantFormat(name))
    return tuple(formats)


def some_of(kind: type[enum.StrEnum]) -> Parser:
    """The parser of a list of words naming members of ``kind`` (or the command line's
    ``a,b``); the members come back, in the order given, no duplicates."""
    allowed = tuple(m.value for m in kind)

    def parse(key: str, value: Any) -> tuple[enum.StrEnum, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"`{key}`: expected a list, got {value!r}")
        chosen: list[enum.StrEnum] = []
        for item in items:
            name = str(item).strip().lower()
            if name not in allowed:
                raise ConfigError(
                    f"`{key}`: {item!r} is not allowed; use some of {', '.join(allowed)}"
                )
            if name not in chosen:
                chosen.append(kind(name))
        return tuple(chosen)

    return parse


def member_of(kind: type[enum.StrEnum]) -> Parser:
    """The parser of one word naming a member of ``kind``; the member comes back."""
    allowed = tuple(m.value for m in kind)

    def parse(key: str, value: Any) -> enum.StrEnum:
        if value not in allowed:
            raise ConfigError(f"`{key}`: {value!r} is not allowed; use {' or '.join(allowed)}")
        return kind(value)

    return parse


def one_of(allowed: tuple[str, ...]) -> Parser:
    """The parser of one word from ``allowed``."""

    def parse(key: str, value: Any) -> str:
        if value not in allowed:
            raise ConfigError(f"`{key}`: {value!r} is not allowed; use {' or '.join(allowed)}")
        return str(value)

    return parse


def url_path(key: str, value: Any) -> str:
    """The URL path the site is served under (``/`` or ``/docs/``); a full URL gives its path."""
    path_or_url = text(key, value)
    match = re.match(r"^(?:https?://[^/]+)?(/[^?#]*)?$", path_or_url)
    if not match:
        raise ConfigError(f"`{key}`: expected a path like /docs/ or a URL, got {value!r}")
    path = match.group(1) or "/"
    return path if path.endswith("/") else path + "/"


def scheduler(key: str, value: Any) -> str:
    """A Dask scheduler address: ``tcp://host:port`` or ``tls://host:port``."""
    address = text(key, value)
    if not re.match(r"^(?:tcp|tls)://[^\s/]+:\d+/?$", address):
        raise ConfigError(
            f"`{key}`: expected a Dask scheduler address like tcp://10.0.0.5:8786, got {value!r}"
        )
    return address


def quality(key: str, value: Any) -> dict[str, int]:
    """One quality for every encoder, or a table of them by format."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {fmt: whole_number(key, value, 1, 100) for fmt in QUALITY_DEFAULTS}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"`{key}`: expected a whole number from 1 to 100 or a table like "
            f"{{jpeg = 82, webp = 80, avif = 60}}, got {shown(value)} ({kind(value)})"
        )
    result = dict(QUALITY_DEFAULTS)
    for fmt, q in value.items():
        if fmt not in QUALITY_DEFAULTS:
            raise unknown_key(f"`{key}`: ", fmt, tuple(QUALITY_DEFAULTS))
        result[fmt] = whole_number(f"{key}.{fmt}", q, 1, 100)
    return result


def tables(key: str, value: Any) -> list[Any]:
    """A list (of tables, which the caller checks one by one)."""
    if not isinstance(value, list):
        raise ConfigError(f"`{key}`: expected a list of tables, got {value!r}")
    return value
