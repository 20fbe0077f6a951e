"""What a page says, read for the audit: its metas, images and links (real tags only, as
:func:`ssg_dmi.pages.tokens.iter_tags` finds them), and its srcsets split as the HTML spec
splits them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..pages.meta import directives
from ..pages.tokens import iter_tags

_WS = "\t\n\f\r "
_W_DESCRIPTOR = re.compile(r"([0-9]+)w")
_PAGE_TAGS = frozenset({"meta", "img", "source", "a", "base", "template"})


@dataclass(frozen=True)
class ImageRef:
    """An ``<img>`` or ``<source>`` as written: the attributes the checks read."""

    element: str
    src: str | None
    srcset: str | None
    width: str | None
    height: str | None


@dataclass
class PageFacts:
    """What a page says, outside ``<template>``."""

    metas: dict[str, list[str]] = field(default_factory=dict)  # lower-case name -> contents
    images: list[ImageRef] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # <a href>
    base_href: str | None = None
    complete: bool = True  # False when read_page's deadline cut the reading short


def read_page(html: str, deadline: float | None = None) -> PageFacts:
    """The metas, images and links of a page; reading stops, ``complete`` False, once
    ``time.monotonic()`` passes ``deadline``."""
    facts = PageFacts()
    template = 0
    for count, tag in enumerate(iter_tags(html, _PAGE_TAGS)):
        if deadline is not None and count % 512 == 0 and time.monotonic() > deadline:
            facts.complete = False
            return facts
        if tag.name == "template":
            template = max(0, template - 1) if tag.closing else template + 1
            continue
        if tag.closing:
            continue
        if tag.name == "base" and facts.base_href is None and tag.get("href") is not None:
            facts.base_href = tag.get("href")
        if template:
            continue
        if tag.name == "meta":
            name = (tag.get("name") or "").strip().lower()
            if name:
                facts.metas.setdefault(name, []).append(tag.get("content") or "")
        elif tag.name == "a" and (href := tag.get("href")) is not None:
            facts.links.append(href)
        elif tag.name in ("img", "source"):
            src = tag.get("src") if tag.name == "img" else None
            ref = ImageRef(tag.name, src, tag.get("srcset"), tag.get("width"), tag.get("height"))
            facts.images.append(ref)
    return facts


def directive_set(contents: Iterable[str]) -> set[str]:
    """The lower-case directives of robots metas' contents (or X-Robots-Tag values)."""
    return {d.lower() for content in contents for d in directives(content)}


def parse_srcset(value: str) -> list[tuple[str, str]]:
    """The (URL, descriptors) candidates of a srcset, split as the HTML spec splits them
    (a URL ends at white space; descriptors at a comma outside parentheses)."""
    out: list[tuple[str, str]] = []
    pos, n = 0, len(value)
    while True:
        while pos < n and (value[pos] in _WS or value[pos] == ","):
            pos += 1
        if pos >= n:
            return out
        start = pos
        while pos < n and value[pos] not in _WS:
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            out.append((url.rstrip(","), ""))
            continue
        depth, begin = 0, pos
        while pos < n and (value[pos] != "," or depth):
            depth += {"(": 1, ")": -1 if depth else 0}.get(value[pos], 0)
            pos += 1
        out.append((url, value[begin:pos].strip()))


def width_descriptor(descriptors: str) -> int | None:
    """The ``w`` descriptor's number, when that is the candidate's only descriptor."""
    m = _W_DESCRIPTOR.fullmatch(descriptors.strip())
    return int(m.group(1)) if m else None
