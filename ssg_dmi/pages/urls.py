"""URLs on a page, as a browser resolves them against the page and the site's ``base_url``.

A URL path is handled as its list of decoded segments; a site path is the POSIX path of a
file below the site folder. :func:`resolve` goes from a ``src`` to a site path,
:func:`url_for` back from a site path to a URL for a page's ``srcset``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from .tokens import iter_tags

_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*:")
_C0_SPACE = "".join(map(chr, range(0x21)))
_BASE = re.compile(r"<base[\t\n\f\r />]", re.IGNORECASE)
_DOT = frozenset({".", "%2e"})
_DOTDOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


def split_base(base_url: str) -> list[str]:
    """The decoded path segments of the URL path the site is served under."""
    return [unquote(s) for s in base_url.split("/") if s]


def page_dir(page_path: str, base: list[str]) -> list[str]:
    """The decoded URL directory a page at site path ``page_path`` resolves against."""
    return base + [s for s in page_path.split("/")[:-1] if s]


def resolve_url(src: str, directory: list[str]) -> list[str] | None:
    """The decoded URL path segments ``src`` names from ``directory``, or None.

    None for anything not on this origin (a scheme, ``//host``). Dot segments that climb
    above the origin root stop there, as in browsers (RFC 3986 section 5.2.4: a Pelican
    page at the root that writes ``../images/x.jpg`` shows ``/images/x.jpg``). A path that
    ends in a directory ends with an empty segment.
    """
    s = src.strip(_C0_SPACE)
    s = s.replace("\t", "").replace("\n", "").replace("\r", "")
    if _SCHEME.match(s):
        return None
    s = s.replace("\\", "/")
    if s.startswith("//"):
        return None
    s = s.split("#", 1)[0].split("?", 1)[0]
    if not s:
        return [*directory, ""]
    out = [] if s.startswith("/") else list(directory)
    parts = s.lstrip("/").split("/") if s.startswith("/") else s.split("/")
    last = len(parts) - 1
    for k, part in enumerate(parts):
        low = part.lower()
        if low in _DOTDOT:
            if out:
                out.pop()
        elif low not in _DOT:
            decoded = unquote(part)
            if "/" in decoded:
                return None  # %2F: no file name holds a slash
            out.append(decoded)
            continue
        if k == last:
            out.append("")
    return out


def site_path(url: list[str] | None, base: list[str]) -> str | None:
    """The site-relative POSIX path of a resolved URL, None outside the site or a folder."""
    if url is None or url[: len(base)] != base:
        return None
    rest = url[len(base) :]
    if not rest or rest[-1] == "":
        return None
    return "/".join(rest)


def resolve(src: str, page_path: str, base_url: str = "/") -> str | None:
    """The site-relative POSIX path a browser fetches for ``src`` on the page, or None.

    None for other origins (``http(s):``, ``//host``, ``data:``, ``blob:``, ``javascript:``,
    ``mailto:`` …), an empty or fragment-only ``src``, a folder, or a path outside
    ``base_url`` (``..`` stops at the origin root, not at ``base_url``: from
    ``/blog/index.html``, ``../x.jpg`` is ``/x.jpg``, outside a site served under
    ``/blog/``). Query and fragment are dropped and
    percent-escapes decoded (``my%20photo.jpg`` is the file ``my photo.jpg``).
    """
    base = split_base(base_url)
    return site_path(resolve_url(src, page_dir(page_path, base)), base)


def document_dir(html: str, directory: list[str]) -> list[str] | None:
    """The directory relative URLs resolve against: the first ``<base href>``'s, if any.

    None when ``<base href>`` points to another origin: then no URL on the page is local.
    """
    if not _BASE.search(html):
        return directory
    for tag in iter_tags(html, frozenset({"base"})):
        href = tag.get("href")
        if href is not None and not tag.closing:
            url = resolve_url(href, directory)
            return None if url is None else url[:-1]
    return directory


def split_origin(src: str, origin: str | None) -> tuple[str, str]:
    """(origin prefix, the rest) for an absolute URL on the site's own origin (Pelican
    without RELATIVE_URLS); ("", src) for anything else."""
    if origin and src.strip().lower().startswith(origin.lower() + "/"):
        return origin, src.strip()[len(origin) :]
    return "", src


def is_rooted(src: str) -> bool:
    """Whether ``src`` is root-relative (``/img/a.jpg``), as a browser reads its start."""
    return src.lstrip(_C0_SPACE)[:1] in ("/", "\\")


def url_for(path: str, rooted: bool, directory: list[str], base: list[str]) -> str:
    """A URL for site path ``path``: root-relative, or relative to ``directory``."""
    if rooted:
        return quote("/".join(["", *base, path]), safe="/")
    segments = base + path.split("/")
    common = 0
    limit = min(len(directory), len(segments) - 1)
    while common < limit and directory[common] == segments[common]:
        common += 1
    return "../" * (len(directory) - common) + quote("/".join(segments[common:]), safe="/")
