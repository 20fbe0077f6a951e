"""Edits to a page's source text: replace a span, write an attribute, splice them in.

Edits name offsets in the page as the tokenizer read it, so every byte outside them is
kept as it was (quoting, entity spelling, white space).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .tokens import Tag


class Edit(NamedTuple):
    """Replace ``html[start:end]`` with ``text`` (``start == end`` inserts)."""

    start: int
    end: int
    text: str


def splice(html: str, edits: list[Edit], start: int = 0, end: int | None = None) -> str:
    """``html[start:end]`` with ``edits`` (all inside that span) applied.

    Edits at the same place apply in the order given, so an insertion listed before a
    replacement at its offset goes first.
    """
    out: list[str] = []
    pos = start
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        out += (html[pos : e.start], e.text)
        pos = e.end
    out.append(html[pos:end])
    return "".join(out)


def attrs(pairs: Iterable[tuple[str, str]]) -> str:
    """Attributes to write into a tag: `` name="value"`` each, the value escaped."""
    return "".join(f' {name}="{escape(value)}"' for name, value in pairs)


def escape(value: str, quote: str = '"') -> str:
    """An attribute value escaped for writing between ``quote`` characters."""
    value = value.replace("&", "&amp;")
    return value.replace('"', "&quot;") if quote == '"' else value.replace("'", "&#39;")


def set_attr(tag: Tag, value: str, name: str = "content") -> Edit:
    """The edit that gives ``tag``'s attribute ``name`` the value ``value``, keeping its
    quote character; a missing attribute is added after the last one."""
    attr = tag.attrs.get(name)
    if attr is None:
        return Edit(tag.attrs_end, tag.attrs_end, attrs([(name, value)]))
    q = attr.quote or '"'
    text = q + escape(value, q) + q
    if attr.bare:
        text = "=" + text
    return Edit(attr.value_start, attr.value_end, text)
