"""Just enough of the HTML tokenizer to find the real tags of a page, as browsers do.

Follows the WHATWG tokenizer wherever a ``<`` can be hidden from the tree builder:
comments (also ``<!-->``, ``--!>``), doctypes and bogus comments (``<?xml …?>``,
``</ x>``), CDATA (only where the current node is SVG/MathML), the raw-text elements
(script with its ``<!--<script>`` escape states, style, xmp, iframe, noembed, noframes),
the escapable raw-text ones (textarea, title) and plaintext. ``<noscript>`` is read as
markup, as a parser with scripting off reads it (html5lib's default, crawlers without
JS); with scripting on it is text, so an image rewritten there is harmless. SVG/MathML
are tracked with their HTML integration points and breakout tags, including the ``</p>``
and ``</br>`` rule html5lib 1.1 predates. Attributes follow the tokenizer too: names end at
``=``, white space, ``/`` or ``>``; unquoted values only at white space or ``>``
(``src=a.jpg/>`` is ``a.jpg/``); the first of duplicate attributes wins. Not modelled:
tree-builder drops (an ``<img>`` in ``<select>`` or ``<frameset>`` is still reported).

Plain HTML between the tags a caller names is stepped over by one regular-expression
match in C; Python only sees the named tags, raw-text elements and SVG/MathML.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from html.entities import html5 as _ENTITIES

_SEP = "[\t\n\f\r /]*+"
_ATTR = (
    _SEP + r"(?P<name>[^\t\n\f\r />][^\t\n\f\r /=>]*+)"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?P<value>\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >]*+))?"
)
# Possessive quantifiers keep a tag left open at the end of the file linear, not exponential.
_ATTRS = "(?:" + _ATTR.replace("?P<name>", "?:").replace("?P<value>", "?:") + ")*+"
_TAG = re.compile(
    rf"<(?P<close>/?)(?P<tag>[a-zA-Z][^\t\n\f\r />]*+)(?P<attrs>{_ATTRS})(?P<trail>[\t\n\f\r /]*+)>"
)
# _ATTR with every part a group (white space, name, "=" with its spaces, value), for findall.
_ATTR_PARTS = re.compile(
    _ATTR.replace(_SEP, f"({_SEP})", 1)
    .replace("?P<name>", "")
    .replace(r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+", r"(?:([\t\n\f\r ]*+=[\t\n\f\r ]*+)")
    .replace("?P<value>", "")
)
_MARKUP = re.compile(r"<[a-zA-Z/!?]")
# A comment, as the tokenizer ends it: <!--> and <!---> are whole comments; --!> ends one too.
_COMMENT = r"<!--(?:-?>|[\s\S]*?(?:--!?>|\Z))"
_COMMENT_RE = re.compile(_COMMENT)
_SCRIPT = re.compile(r"<!--|-->|<(/?)script[\t\n\f\r />]", re.IGNORECASE)
_IGNORABLE = re.compile(rf"(?:[\t\n\f\r ]+|{_COMMENT}|<[!?][^>]*+>?)*")
_RAW = ("style", "xmp", "iframe", "noembed", "noframes", "textarea", "title")
# Start tags the tokenizer must stop at whatever the caller asks for.
_LOUD = frozenset({"svg", "math", "script", "plaintext", "image", *_RAW})
_RAW_END = {n: re.compile(rf"</{n}[\t\n\f\r />]", re.IGNORECASE) for n in _RAW}
# fmt: off
# Start tags that end SVG/MathML content (HTML spec, "parsing main inforeign").
_BREAKOUT = frozenset({
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em",
    "embed", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing",
    "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike",
    "sub", "sup", "table", "tt", "u", "ul", "var",
})
# fmt: on
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})
# Elements inside SVG/MathML whose children are HTML again.
_INTEGRATION = {
    "svg": frozenset({"foreignobject", "desc", "title"}),
    "math": frozenset({"mi", "mo", "mn", "ms", "mtext"}),
}
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=")
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


@dataclass(slots=True)
class Attr:
    """One attribute: its decoded value and where its value (quotes included) sits. Read
    only, though not frozen: a page of 1,000 images makes ~10,000 of them, twice (scan and
    rewrite), and a frozen dataclass takes 4x as long to make."""

    value: str
    value_start: int  # == value_end == end of the name when the attribute has no value
    value_end: int
    quote: str  # '"', "'" or "" (unquoted or no value)
    bare: bool = False  # no "=value" at all
    start: int = -1  # where the attribute starts, the white space before its name included


@dataclass(slots=True)
class Tag:
    """A real start or end tag: lower-case name, span, and first-wins attributes (read
    only, not frozen, as :class:`Attr`)."""

    name: str
    start: int
    end: int
    closing: bool
    self_closing: bool
    attrs_end: int  # where a new attribute goes: after the last one, before any ``/>``
    attrs: dict[str, Attr]
    broke_out: bool = False  # an <img>, <meta>… that ended SVG/MathML content to be HTML

    def get(self, name: str) -> str | None:
        """The decoded value of attribute ``name``, or None when the tag lacks it."""
        attr = self.attrs.get(name)
        return None if attr is None else attr.value


def unescape_attr(value: str) -> str:
    """An attribute value with character references decoded as the tokenizer does.

    Unlike ``html.unescape``, a legacy reference without ``;`` followed by a letter, digit
    or ``=`` stays as written (``?a=1&copy=2`` keeps its ``&copy``).
    """
    return _CHARREF.sub(_attr_ref, value) if "&" in value else value


def _attr_ref(m: re.Match[str]) -> str:
    ref = m.group(1)
    if ref[0] == "#" or ref in _ENTITIES:
        return unescape(m.group(0))
    for n in range(len(ref) - 1, 1, -1):
        name = ref[:n]
        if name in _ENTITIES:  # only the legacy names are in the table without ";"
            if ref[n] in _ALNUM:
                return m.group(0)
            return _ENTITIES[name] + ref[n:]
    return m.group(0)


def _tag(html: str, m: re.Match[str], name: str, broke_out: bool = False) -> Tag:
    attrs: dict[str, Attr] = {}
    attrs_end = m.end("tag")
    first, last = m.span("attrs")
    if first < last:
        # The attributes follow each other with nothing between (the tag pattern matched
        # them so), so lengths give every offset: no match object per attribute.
        pos = first
        for sep, key, equals, raw in _ATTR_PARTS.findall(html, first, last):
            start = pos
            pos += len(sep) + len(key)
            if equals:
                pos += len(equals) + len(raw)
            key = key.lower()
            if key in attrs:
                continue
            if not equals:
                attrs[key] = Attr("", pos, pos, "", True, start)
                continue
            quote = raw[:1]
            if quote == '"' or quote == "'":
                text = raw[1:-1]
            else:
                quote, text = "", raw
            value = _CHARREF.sub(_attr_ref, text) if "&" in text else text
            attrs[key] = Attr(value, pos - len(raw), pos, quote, False, start)
        attrs_end = pos
    trail = m.group("trail")
    closing = bool(m.group("close"))
    return Tag(name, m.start(), m.end(), closing, trail.endswith("/"), attrs_end, attrs, broke_out)


def _script_end(html: str, pos: int) -> int:
    """Where the ``</script`` closing a script that starts at ``pos`` begins (or -1)."""
    state = 0  # 0 data, 1 escaped (after <!--), 2 double escaped (<!--<script>)
    while m := _SCRIPT.search(html, pos):
        token = m.group()
        if token == "<!--":
            state = state or 1
            pos = m.start() + 2  # its "--" may close again at once: <!-->
        elif token == "-->":
            state, pos = 0, m.end()
        elif m.group(1):  # </script
            if state < 2:
                return m.start()
            state, pos = 1, m.end()
        else:  # <script
            state, pos = (2 if state == 1 else state), m.end()
    return -1


@functools.lru_cache(maxsize=16)
def _quiet(names: frozenset[str]) -> re.Pattern[str]:
    """A run of text, comments and tags that need no decision (none named, none raw text)."""
    loud = "|".join(sorted(names | _LOUD))
    end = "|".join(sorted(names)) or "(?!)"
    body = rf"[^\t\n\f\r />]*+{_ATTRS}[\t\n\f\r /]*+>"
    return re.compile(
        rf"(?:[^<]++|{_COMMENT}|<[!?][^>]*+>?|</>|</[^a-zA-Z>][^>]*+>?"
        rf"|<(?!(?i:{loud})[\t\n\f\r />])[a-zA-Z]{body}"
        rf"|</(?!(?i:{end})[\t\n\f\r />])[a-zA-Z]{body}"
        r"|<(?![a-zA-Z/!?]))*+"
    )


def iter_tags(html: str, names: frozenset[str]) -> Iterator[Tag]:
    """The real HTML tags named in ``names``, start and end, in document order."""
    n = len(html)
    pos = 0
    stack: list[tuple[bool, str, str]] = []  # open SVG/MathML elements: (foreign, name, ns)
    quiet = _quiet(names)
    at_foreign = False  # the current node is an SVG/MathML element (CDATA is honoured)
    while True:
        if not stack:  # plain HTML: let one C-level match step over what needs no decision
            pos = quiet.match(html, pos).end()  # type: ignore[union-attr]  # matches ""
            if pos >= n:
                return
            i = pos
        elif m := _MARKUP.search(html, pos):
            i = m.start()
        else:
            return
        c = html[i + 1] if i + 1 < n else ""
        if c == "":
            return
        foreign = bool(stack) and stack[-1][0]
        if c == "!" or c == "?":
            if html.startswith("<!--", i):
                pos = _COMMENT_RE.match(html, i).end()  # type: ignore[union-attr]
            elif (foreign or at_foreign) and html.startswith("<![CDATA[", i):
                e2 = html.find("]]>", i + 9)
                pos = n if e2 < 0 else e2 + 3
            else:
                e2 = html.find(">", i + 2)
                pos = n if e2 < 0 else e2 + 1
            continue
        t = _TAG.match(html, i)
        if t is None:
            if c != "/" or i + 2 >= n:
                return  # a tag left open at the end of the file: the rest is inside it
            if html[i + 2] == ">":
                pos = i + 3  # "</>" is dropped
                continue
            if html[i + 2].isascii() and html[i + 2].isalpha():
                return
            e2 = html.find(">", i + 2)  # "</ x>" is a bogus comment
            pos = n if e2 < 0 else e2 + 1
            continue
        pos = t.end()
        name = t.group("tag").lower()
        if t.group("close"):
            if stack and name == stack[-1][1]:
                stack.pop()
                at_foreign = bool(stack)
            elif foreign and name in ("p", "br"):
                while stack and stack[-1][0]:
                    stack.pop()  # these two end tags end SVG/MathML content too
            elif foreign:
                for k in range(len(stack) - 1, -1, -1):
                    if stack[k][1] == name:
                        del stack[k:]
                        break
            if name in names:
                yield _tag(html, t, name)
            continue
        if foreign:
            if name in _BREAKOUT or (name == "font" and _font_breaks(html, t)):
                while stack and stack[-1][0]:
                    stack.pop()
            else:
                if not t.group("trail").endswith("/"):
                    stack.append(_foreign(html, t, name, stack[-1]))
                    at_foreign = True
                continue
        if name in ("svg", "math"):
            if not t.group("trail").endswith("/"):
                stack.append((True, name, name))
                at_foreign = True
            continue
        if name not in _VOID:
            at_foreign = False
        if name == "image":
            name = "img"  # the tree builder renames it
        if name in names:
            yield _tag(html, t, name, foreign)
        if name == "script":
            stop = _script_end(html, pos)
        elif name in _RAW_END:
            r = _RAW_END[name].search(html, pos)
            stop = r.start() if r else -1
        elif name == "plaintext":
            return
        else:
            continue
        if stop < 0:
            return  # raw text to the end of the file
        end = _TAG.match(html, stop)
        if end is None:
            return
        pos = end.end()
        if name in names:
            yield _tag(html, end, name)


def _foreign(
    html: str, m: re.Match[str], name: str, parent: tuple[bool, str, str]
) -> tuple[bool, str, str]:
    """The stack entry of an element opened inside SVG/MathML content."""
    ns = "svg" if name == "svg" and parent[1] == "annotation-xml" else parent[2]
    html_inside = name in _INTEGRATION[ns] or (
        name == "annotation-xml"
        and ns == "math"
        and (_tag(html, m, name).get("encoding") or "").strip().lower()
        in ("text/html", "application/xhtml+xml")
    )
    return (not html_inside, name, ns)


def _font_breaks(html: str, m: re.Match[str]) -> bool:
    attrs = _tag(html, m, "font").attrs
    return any(k in attrs for k in ("color", "face", "size"))


def skip_ignorable(html: str, pos: int) -> int:
    """The position after any white space, comments, doctypes and ``<?…>`` at ``pos``."""
    m = _IGNORABLE.match(html, pos)
    return m.end() if m else pos


def tag_at(html: str, pos: int) -> Tag | None:
    """The start or end tag beginning exactly at ``pos``, if one does."""
    m = _TAG.match(html, pos)
    return None if m is None else _tag(html, m, m.group("tag").lower())
