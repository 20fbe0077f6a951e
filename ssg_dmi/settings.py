"""Settings: the one place defaults live, validated once, frozen.

Loaded from ``ssg-dmi.toml``, from ``[tool.ssg-dmi]`` in ``pyproject.toml``, or from a plain
mapping (what the MkDocs and Pelican adapters pass). Every error names the key, the bad
value and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .policy import DMI, ImagePolicy, MetadataMode, Rights, RightsExpression

# Keys a per-path rule may set; they are also site-wide keys.
POLICY_KEYS = (
    "dmi",
    "other_constraints",
    "embedded_rights_expression",
    "linked_rights_expression",
    "rights_expression_type",
    "rights_expression_language",
    "copyright",
    "creator",
    "credit",
    "web_statement",
    "licensor_url",
    "metadata",
)
BUILD_KEYS = (
    "widths",
    "formats",
    "originals",
    "include",
    "exclude",
    "cache_dir",
    "cache",
    "jobs",
    "srgb",
    "strict",
    "tdm_policy",
    "hosts",
    "sizes",
    "picture",
    "lazy",
    "block_search_engines",
    "base_url",
    "rewrite_html",
    "site_files",
)
HOSTS = ("netlify", "cloudflare", "apache", "nginx")
DEFAULT_SIZES = "(max-width: 960px) 100vw, 960px"
SITE_KEYS = (*POLICY_KEYS, "rules", "max_pixels", "quality", *BUILD_KEYS)
QUALITY_DEFAULTS = {"jpeg": 82, "webp": 80, "avif": 60}
VARIANT_FORMATS = ("avif", "webp", "jpeg", "png")
ORIGINALS = ("optimize", "tag")
DEFAULT_MAX_PIXELS = 128_000_000  # above the largest common sensors (~102 MP), below RAM trouble


# What XML 1.0 cannot carry (C0 controls but tab, LF, CR; U+FFFE/U+FFFF) and lone
# surrogates, which cannot be encoded as UTF-8: a text setting holding one would be written
# into every image's XMP, which no reader (ssg-dmi's own `check` included) can then parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _shown(value: Any) -> str:
    """A value as the user wrote it: TOML/YAML spell booleans ``true``/``false``."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _kind(value: Any) -> str:
    if value is None:  # YAML `null`, Python None
        return "no value"
    kinds = {bool: "a boolean", float: "a decimal number", str: "a string", int: "a number"}
    for cls, name in kinds.items():
        if isinstance(value, cls):
            return name
    return "a table" if isinstance(value, Mapping) else f"a {type(value).__name__}"


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{key}`: expected a non-empty string, got {_shown(value)}")
    bad = _NOT_XML.search(value)
    if bad:
        raise ConfigError(
            f"`{key}`: {value!r} holds the character U+{ord(bad.group()):04X} at position "
            f"{bad.start() + 1}, which XMP (XML 1.0) cannot carry; remove it"
        )
    return value.strip()


def _url(key: str, value: Any) -> str:
    text = _text(key, value)
    if not re.match(r"^https?://[^\s/]+", text):
        raise ConfigError(f"`{key}`: expected an http(s) URL, got {value!r}")
    return text


def _creators(key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"`{key}`: expected a name or a list of names, got {value!r}")
    return tuple(_text(key, item) for item in items)


def _dmi(key: str, value: Any) -> DMI:
    try:
        return DMI.parse(value) if isinstance(value, str) else DMI.parse(str(value))
    except ValueError:
        allowed = ", ".join(m.key for m in DMI)
        raise ConfigError(
            f"`{key}`: {value!r} is not a PLUS DataMining value; use one of {allowed}"
        ) from None


def _metadata(key: str, value: Any) -> MetadataMode:
    for mode in MetadataMode:
        if value == mode.value:
            return mode
    allowed = ", ".join(m.value for m in MetadataMode)
    raise ConfigError(f"`{key}`: {value!r} is not a metadata mode; use one of {allowed}")


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "dmi": _dmi,
    "other_constraints": _text,
    "embedded_rights_expression": _text,
    "linked_rights_expression": _url,
    "rights_expression_type": _text,
    "rights_expression_language": _url,
    "copyright": _text,
    "creator": _creators,
    "credit": _text,
    "web_statement": _url,
    "licensor_url": _url,
    "metadata": _metadata,
}


@dataclass(frozen=True)
class Rule:
    """A per-path override: files matching ``path`` take the keys it sets."""

    path: str
    values: Mapping[str, Any]
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    def matches(self, relpath: str) -> bool:
        """Whether a site-relative POSIX path matches this rule's glob."""
        target = relpath if "/" in self.path.strip("/") else relpath.rsplit("/", 1)[-1]
        return self.pattern.fullmatch(target) is not None


@functools.lru_cache(maxsize=1024)  # include/exclude are matched against every image
def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Compile a path glob: ``*`` and ``?`` stay inside one folder, ``**`` crosses folders."""
    out, i = [], 0
    glob = glob.strip("/")
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            # Escaped: a backslash is literal in a glob, and a `[` (as in `[[]`) or `&`, `~`,
            # `|` would start a nested set or set operation in a future `re`.
            body = re.sub(r"([\\\[&~|])", r"\\\1", glob[i + 1 : end])
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


def _glob(key: str, value: Any) -> str:
    """A path glob that compiles and can match some site-relative path; ConfigError if not.

    Paths are matched as the site walk spells them (``images/a.jpg``): no leading ``/``, no
    ``.`` or ``..`` segments, no empty folder names, so a glob holding one would select
    nothing without a word."""
    glob = _text(key, value)
    segments = glob.split("/")
    why = fix = ""
    if glob.startswith("/"):
        why, fix = "a leading `/` is not allowed", glob.lstrip("/")
    elif ".." in segments:
        why = "`..` can never match"
        kept: list[str] = []
        for seg in segments:  # resolved as a browser would, clamped at the site root
            if seg == ".." and kept and kept[-1] != "**":
                kept.pop()
            elif seg not in ("..", ".", ""):
                kept.append(seg)
        fix = re.sub(r"^(\*\*/)+\*\*$", "**", "/".join(kept)) or "**"
    elif "." in segments:
        why, fix = "`.` can never match", "/".join(s for s in segments if s != ".")
    elif glob.endswith("/"):
        why, fix = "a trailing `/` matches no file", glob + "**"
    elif "" in segments:
        why, fix = "an empty folder name (`//`) can never match", re.sub("/+", "/", glob)
    if why:
        raise ConfigError(
            f"`{key}`: glob {glob!r} never matches: globs are matched against site-relative "
            f"paths (like `images/photo.jpg`); {why}; write {fix!r} instead"
        )
    try:
        glob_to_regex(glob)
    except re.error as exc:
        raise ConfigError(
            f"`{key}`: glob {glob!r} is not valid ({exc.msg}); in `[...]` a range goes from "
            "low to high, like `[a-z]`; write `[[]` for a literal `[`"
        ) from None
    return glob


def _globs(key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"`{key}`: expected a list of globs, got {_shown(value)}")
    return tuple(_glob(key, item) for item in items)


def _unknown(where: str, key: str, allowed: tuple[str, ...]) -> ConfigError:
    hint = difflib.get_close_matches(key, allowed, n=1)
    did = f" (did you mean `{hint[0]}`?)" if hint else ""
    return ConfigError(
        f"{where}unknown key `{key}`{did}; allowed keys: {', '.join(sorted(allowed))}"
    )


def _parse_policy_values(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _PARSERS:
            raise _unknown(where, key, POLICY_KEYS)
        try:
            values[key] = _PARSERS[key](key, value)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None
    return values


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one site; build it with :func:`load_settings`."""

    policy: Mapping[str, Any] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    max_pixels: int = DEFAULT_MAX_PIXELS
    quality: Mapping[str, int] = field(default_factory=lambda: dict(QUALITY_DEFAULTS))
    widths: tuple[int, ...] = (480, 960, 1600)
    formats: tuple[str, ...] = ("webp",)
    originals: str = "optimize"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    cache_dir: str = ".cache/ssg-dmi"
    cache: bool = True
    jobs: int | None = None
    srgb: bool = False
    strict: bool = False
    tdm_policy: str | None = None
    hosts: tuple[str, ...] = ("netlify",)
    sizes: str = DEFAULT_SIZES
    picture: bool = False
    lazy: bool = True
    block_search_engines: bool = False
    base_url: str = "/"
    origin: str | None = None  # scheme://host of base_url when given as a full URL
    rewrite_html: bool = True
    site_files: bool = True
    source: str = "defaults"

    def policy_for(self, relpath: str, overrides: Mapping[str, Any] | None = None) -> ImagePolicy:
        """The resolved policy of a site-relative path: site values, then matching rules in
        order (last match wins), then ``overrides`` (front matter, ``data-dmi``)."""
        values = dict(self.policy)
        for rule in self.rules:
            if rule.matches(relpath):
                values.update(rule.values)
        if overrides:
            values.update(_parse_policy_values(overrides, f"{relpath}: "))
        return build_policy(values, f"{self.source}: policy for {relpath}: ")

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with keys replaced by command-line values (None means not given)."""
        given = {k: v for k, v in values.items() if v is not None}
        policy = {k: v for k, v in given.items() if k in POLICY_KEYS}
        merged = {**self.policy, **_parse_policy_values(policy, "command line: ")}
        build_policy(merged, "command line: ")
        other = {k: v for k, v in given.items() if k not in POLICY_KEYS}
        try:
            return replace(self, policy=merged, **_parse_build_values(other))
        except ConfigError as exc:
            raise ConfigError(f"command line: {exc}") from None

    def matches(self, relpath: str) -> bool:
        """Whether the include/exclude globs let a site-relative path through."""
        if self.include and not any(_glob_hit(g, relpath) for g in self.include):
            return False
        return not any(_glob_hit(g, relpath) for g in self.exclude)


def _glob_hit(glob: str, relpath: str) -> bool:
    target = relpath if "/" in glob.strip("/") else relpath.rsplit("/", 1)[-1]
    return glob_to_regex(glob).fullmatch(target) is not None


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"`{key}`: expected true or false, got {value!r}")
    return value


def _widths(key: str, value: Any) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(
            f"`{key}`: expected a list of pixel widths like [480, 960, 1600], got {_shown(value)}"
        )
    widths = set()
    for item in items:
        # int() would turn 1.5 and true into 1 and report "got 1"; only whole numbers (or
        # their digits, from the command line's "480,960") are widths.
        width = int(item) if isinstance(item, str) and item.strip().isdigit() else item
        widths.add(_positive_int(key, width, 16, 16384))
    return tuple(sorted(widths))


def _formats(key: str, value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f'`{key}`: expected a list such as ["webp", "jpeg"], got {value!r}')
    formats: list[str] = []
    for item in items:
        name = str(item).strip().lower().replace("jpg", "jpeg")
        if name not in VARIANT_FORMATS:
            allowed = ", ".join(VARIANT_FORMATS)
            raise ConfigError(f"`{key}`: {item!r} is not a variant format; use some of {allowed}")
        if name not in formats:
            formats.append(name)
    return tuple(formats)


def _choices(key: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"`{key}`: expected a list, got {value!r}")
    chosen: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name not in allowed:
            raise ConfigError(f"`{key}`: {item!r} is not allowed; use some of {', '.join(allowed)}")
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def _base_url(key: str, value: Any) -> str:
    """The URL path the site is served under (``/`` or ``/docs/``); a full URL gives its path."""
    text = _text(key, value)
    match = re.match(r"^(?:https?://[^/]+)?(/[^?#]*)?$", text)
    if not match:
        raise ConfigError(f"`{key}`: expected a path like /docs/ or a URL, got {value!r}")
    path = match.group(1) or "/"
    return path if path.endswith("/") else path + "/"


def _originals(key: str, value: Any) -> str:
    if value not in ORIGINALS:
        raise ConfigError(f"`{key}`: {value!r} is not allowed; use optimize or tag")
    return str(value)


_BUILD_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "widths": _widths,
    "formats": _formats,
    "originals": _originals,
    "include": _globs,
    "exclude": _globs,
    "cache_dir": _text,
    "cache": _bool,
    "jobs": lambda key, value: _positive_int(key, value, 1, 256),
    "srgb": _bool,
    "strict": _bool,
    "max_pixels": lambda key, value: _positive_int(key, value, 1, 10**10),
    "tdm_policy": _url,
    "hosts": lambda key, value: _choices(key, value, HOSTS),
    "sizes": _text,
    "picture": _bool,
    "lazy": _bool,
    "block_search_engines": _bool,
    "base_url": _base_url,
    "rewrite_html": _bool,
    "site_files": _bool,
    "quality": lambda key, value: _quality(value),
}


def _parse_build_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _BUILD_PARSERS[key](key, value) for key, value in raw.items()}


def build_policy(values: Mapping[str, Any], where: str = "") -> ImagePolicy:
    """An :class:`ImagePolicy` from parsed values, checking the keys each DMI value needs."""
    dmi = values.get("dmi", DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING)
    needs = {
        DMI.PROHIBITED_SEECONSTRAINT: "other_constraints",
        DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR: "embedded_rights_expression",
        DMI.PROHIBITED_SEELINKEDRIGHTSEXPR: "linked_rights_expression",
    }
    if dmi in needs and needs[dmi] not in values:
        raise ConfigError(f"{where}`dmi` = {dmi.key} requires `{needs[dmi]}` to be set")
    kind = values.get("rights_expression_type", "application/ld+json")
    lang = values.get("rights_expression_language", "http://www.w3.org/ns/odrl/2/")

    def expression(key: str) -> RightsExpression | None:
        text = values.get(key)
        return RightsExpression(text, kind, lang) if text else None

    return ImagePolicy(
        dmi=dmi,
        rights=Rights(
            copyright=values.get("copyright"),
            creators=values.get("creator", ()),
            credit=values.get("credit"),
            web_statement=values.get("web_statement"),
            licensor_url=values.get("licensor_url"),
        ),
        metadata=values.get("metadata", MetadataMode.COPYRIGHT),
        other_constraints=values.get("other_constraints"),
        embedded_rights_expression=expression("embedded_rights_expression"),
        linked_rights_expression=expression("linked_rights_expression"),
    )


def _positive_int(key: str, value: Any, low: int, high: int) -> int:
    # bool is a subclass of int: `jobs = true` must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        number = isinstance(value, int) and not isinstance(value, bool)
        got = _shown(value) if number else f"{_shown(value)} ({_kind(value)})"
        raise ConfigError(f"`{key}`: expected a whole number from {low} to {high}, got {got}")
    return value


def _quality(value: Any) -> dict[str, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return {fmt: _positive_int("quality", value, 1, 100) for fmt in QUALITY_DEFAULTS}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"`quality`: expected a whole number from 1 to 100 or a table like "
            f"{{jpeg = 82, webp = 80, avif = 60}}, got {_shown(value)} ({_kind(value)})"
        )
    result = dict(QUALITY_DEFAULTS)
    for fmt, q in value.items():
        if fmt not in QUALITY_DEFAULTS:
            raise _unknown("`quality`: ", fmt, tuple(QUALITY_DEFAULTS))
        result[fmt] = _positive_int(f"quality.{fmt}", q, 1, 100)
    return result


def load_settings(raw: Mapping[str, Any] | None, source: str = "settings") -> Settings:
    """Validate a plain mapping of settings (from TOML, mkdocs.yml or pelicanconf.py)."""
    raw = dict(raw or {})
    where = f"{source}: "
    for key in raw:
        if key not in SITE_KEYS:
            raise _unknown(where, key, SITE_KEYS)
    policy = _parse_policy_values({k: v for k, v in raw.items() if k in POLICY_KEYS}, where)
    build_policy(policy, where)
    rules = []
    raw_rules = raw.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{where}`rules`: expected a list of tables, got {raw_rules!r}")
    for n, item in enumerate(raw_rules, 1):
        at = f"{where}rule {n}: "
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            raise ConfigError(f"{at}expected a table with a `path` glob, got {item!r}")
        try:
            path = _glob("path", item["path"])
        except ConfigError as exc:
            raise ConfigError(f"{at}{exc}") from None
        values = _parse_policy_values({k: v for k, v in item.items() if k != "path"}, at)
        build_policy({**policy, **values}, at)
        rules.append(Rule(path, values, glob_to_regex(path)))
    try:
        build = _parse_build_values({k: v for k, v in raw.items() if k in _BUILD_PARSERS})
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    origin = re.match(r"^(https?://[^/?#]+)", str(raw.get("base_url", "")))
    if origin:  # absolute URLs to the site itself (Pelican without RELATIVE_URLS) are local
        build["origin"] = origin.group(1)
    return Settings(policy=policy, rules=tuple(rules), source=source, **build)


def _read_toml(path: Path) -> dict[str, Any]:
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
            f"{path}: `tool` must be a table, got {_shown(tool)} ({_kind(tool)}); "
            "write the settings under a [tool.ssg-dmi] header"
        )
    section = tool.get("ssg-dmi")
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"{path}: `tool.ssg-dmi` must be a table of settings, got {_shown(section)} "
            f"({_kind(section)}); write a [tool.ssg-dmi] header followed by key = value lines"
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
    return load_settings(read_config_mapping(path), str(path))


def load_with_file(raw: Mapping[str, Any], base: Path, source: str) -> Settings:
    """Settings from an adapter's inline keys, which may name a ``config_file`` (relative to
    ``base``) whose keys they override: one file can serve the build and ``ssg-dmi check``."""
    inline = dict(raw)
    name = inline.pop("config_file", None)
    merged: dict[str, Any] = {}
    if name:
        path = (base / str(name)).resolve()
        merged = read_config_mapping(path)
        source = f"{source} + {path}"
    merged.update(inline)
    return load_settings(merged, source)


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
            return load_settings(section, str(pyproject))
    return Settings()
