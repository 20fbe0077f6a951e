"""Path globs (``rules`` paths, ``include``, ``exclude``): compiling, matching, validating.

Globs are matched against site-relative POSIX paths as the site walk spells them
(``images/a.jpg``); a glob without ``/`` matches the file name in any folder.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ..errors import ConfigError
from .parse import shown, text


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


def glob_hit(glob: str, relpath: str) -> bool:
    """Whether a site-relative POSIX path matches ``glob`` (by file name if it has no ``/``)."""
    target = relpath if "/" in glob.strip("/") else relpath.rsplit("/", 1)[-1]
    return glob_to_regex(glob).fullmatch(target) is not None


def glob(key: str, value: Any) -> str:
    """A path glob that compiles and can match some site-relative path; ConfigError if not.

    Paths are matched as the site walk spells them (``images/a.jpg``): no leading ``/``, no
    ``.`` or ``..`` segments, no empty folder names, so a glob holding one would select
    nothing without a word."""
    pattern = text(key, value)
    segments = pattern.split("/")
    why = fix = ""
    if pattern.startswith("/"):
        why, fix = "a leading `/` is not allowed", pattern.lstrip("/")
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
    elif pattern.endswith("/"):
        why, fix = "a trailing `/` matches no file", pattern + "**"
    elif "" in segments:
        why, fix = "an empty folder name (`//`) can never match", re.sub("/+", "/", pattern)
    if why:
        raise ConfigError(
            f"`{key}`: glob {pattern!r} never matches: globs are matched against site-relative "
            f"paths (like `images/photo.jpg`); {why}; write {fix!r} instead"
        )
    try:
        glob_to_regex(pattern)
    except re.error as exc:
        raise ConfigError(
            f"`{key}`: glob {pattern!r} is not valid ({exc.msg}); in `[...]` a range goes from "
            "low to high, like `[a-z]`; write `[[]` for a literal `[`"
        ) from None
    return pattern


def globs(key: str, value: Any) -> tuple[str, ...]:
    """One glob or a list of globs, each checked by :func:`glob`."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"`{key}`: expected a list of globs, got {shown(value)}")
    return tuple(glob(key, item) for item in items)
