"""Page rewriting: properties of generated pages, checked by html5lib."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import html5lib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssg_dmi.build.pagememo import Lookups
from ssg_dmi.build.site import _rewrite_page
from ssg_dmi.pages.context import PageContext
from ssg_dmi.pages.rewrite import rewrite
from ssg_dmi.pages.scan import scan
from ssg_dmi.pages.tokens import iter_tags
from ssg_dmi.pages.urls import resolve

from .page_cases import IMAGES, check_srcsets

OUR_METAS = frozenset({"robots", "tdm-reservation", "tdm-policy"})
ADDED = frozenset({"srcset", "sizes", "width", "height", "loading", "decoding", "style"})
_DIMENSION = re.compile(r"[\t\n\f\r ]*[0-9]+(?:\.[0-9]+)?(%?)")


def is_px(value: str) -> bool:
    """Whether the HTML dimension rules read ``value`` as pixels ("12em" is 12 px)."""
    m = _DIMENSION.match(value)
    return m is not None and not m.group(1)


_PARSER = html5lib.HTMLParser(
    tree=html5lib.getTreeBuilder("etree", fullTree=True), namespaceHTMLElements=False
)
_WRAPPER = re.compile(r'<picture>(?:<source type="image/[a-z+]+" srcset="[^"]*" sizes="[^"]*">)+')


def cut(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the given spans."""
    out, pos = [], 0
    for start, end in sorted(spans):
        out.append(text[pos:start])
        pos = end
    return "".join(out) + text[pos:]


def our_spans(out: str) -> list[tuple[int, int]]:
    """Spans of every real ``<img>`` (with the ``<picture>`` we wrapped it in) and our metas."""
    spans = []
    template = 0
    for tag in iter_tags(out, frozenset({"img", "meta", "template"})):
        if tag.name == "template":
            template += -1 if tag.closing else 1
        elif tag.closing:
            continue
        elif tag.name == "img":
            start, end = tag.start, tag.end
            wrap = out.rfind("<picture>", 0, start)
            if (
                wrap >= 0
                and _WRAPPER.fullmatch(out, wrap, start)
                and out.startswith("</picture>", end)
            ):
                start, end = wrap, end + len("</picture>")
            spans.append((start, end))
        elif (tag.get("name") or "").strip().lower() in OUR_METAS and not template:
            spans.append((tag.start, tag.end))
    return spans


def tree(doc: str) -> tuple[list[tuple[Any, ...]], list[dict[str, str]]]:
    """html5lib's tree as flat tokens without images and our metas, and the images' attributes."""
    tokens: list[tuple[Any, ...]] = []
    images: list[dict[str, str]] = []

    def text(t: str | None) -> None:
        if t:
            if tokens and tokens[-1][0] == "text":
                tokens[-1] = ("text", tokens[-1][1] + t)
            else:
                tokens.append(("text", t))

    def ours(el: Any) -> bool:
        kids = list(el)
        return (
            el.tag == "picture"
            and not el.attrib
            and not el.text
            and len(kids) >= 2
            and all(k.tag == "source" and not k.tail for k in kids[:-1])
            and kids[-1].tag == "img"
            and not kids[-1].tail
        )

    def walk(el: Any) -> None:
        tag = el.tag
        if not isinstance(tag, str):
            tokens.append(("comment", el.text))
        elif tag == "meta" and (el.get("name") or "").strip().lower() in OUR_METAS:
            pass
        elif tag == "img":
            images.append(dict(el.attrib))
        elif ours(el):
            images.append(dict(list(el)[-1].attrib))
        else:
            tokens.append(("start", tag, sorted(el.attrib.items())))
            text(el.text)
            for child in el:
                walk(child)
            tokens.append(("end", tag))
        text(el.tail)

    walk(_PARSER.parse(doc))
    return tokens, images


PAGES = ("index.html", "blog/post/index.html", "docs/page.html")
EXTRAS = [
    ("alt", "a & b"),
    ("alt", "say \"hi\" > 'bye'"),
    ("class", "x y"),
    ("ID", "i1"),
    ("title", "<img src=img/a.jpg>"),
    ("data-x", ""),
    ("width", "300"),
    ("height", "200"),
    ("width", "50%"),
    ("loading", "eager"),
    ("loading", "lazy"),
    ("decoding", "sync"),
    ("srcset", "img/a.jpg 2x"),
    ("sizes", "50vw"),
    ("data-sizes", "auto"),
    ("data-dmi", "DMI-ALLOWED"),
]
TEXTS = [
    "hello",
    " ",
    "\n",
    "\r\n",
    "a &amp; b",
    "&lt;img src=&quot;img/a.jpg&quot;&gt;",
    "x < y",
    "1 > 0",
    "&copy caf\u00e9",
    '<!-- <img src="img/a.jpg"> -->',
    "<!-->",
    "<!-- a -- b --!>",
    "<script>var s = '<img src=\"img/a.jpg\">';</script>",
    '<script><!--<script></script><img src="img/a.jpg">--></script>',
    '<script type="module">if (a<b && c>d) {}</script>',
    "<style>p::after { content: '<img src=img/a.jpg>' }</style>",
    '<textarea><img src="img/a.jpg"></textarea>',
    '<title><meta name="robots" content="all"></title>',
    '<xmp><img src="img/a.jpg"></xmp>',
    "<svg><title>t</title><circle r='1'/><![CDATA[ <img src=x> ]]></svg>",
    "<div class=x>",
    "</div>",
    "<p>",
    "</p>",
    "<span title='a > <img src=\"img/a.jpg\">'>",
    "</span>",
    '<a href="#x">',
    "</a>",
    "<br/>",
    "<? php <img src=img/a.jpg> ?>",
]
HEADS = [
    '<meta charset="utf-8">',
    "<title>T &amp; t</title>",
    '<link rel="stylesheet" href="a.css">',
    "<style>body{}</style>",
    "<script src='a.js'></script>",
    "\n  ",
]
# Real images in places a tokenizer can get wrong.
AROUND = [
    ("<pre>&lt;img&gt;\n", "</pre>"),
    ('<picture>\n<source srcset="img/a-480.webp" type="image/webp">\n', "\n</picture>"),
    ("<noscript>", "</noscript>"),
    ("<script><!--><script></script>", "</script>"),
    ("<script><!--<script></script>--></script>", ""),
    ("<![CDATA[ a > b ", " ]]>"),
    ("<svg><g>", "</g></svg>"),
    ("<svg><foreignObject>", "</foreignObject></svg>"),
    ("<math><mi>", "</mi></math>"),
    ("<table>", "</table>"),
    ("<table><tr><td>", "</td></tr></table>"),
    ("<a href='#'>", "</a>"),
    ("<template>", "</template>"),
]
ROBOTS_CONTENT = ["noindex", "NOAI, nofollow", "", "noai, noimageai", "noindex,noindex"]


def spell(path: str, page: str, base: str, how: str) -> str:
    """A URL for site path ``path`` from ``page``, written one of the ways authors do."""
    segments = path.split("/")
    if how.endswith("encoded"):
        segments = [quote(s, safe="") for s in segments]
    if how.startswith("root"):
        return base + "/".join(segments)
    up = page.count("/")
    return "../" * up + "/".join(segments)


@st.composite
def image_src(draw: st.DrawFn, page: str, base: str) -> str | None:
    kind = draw(st.sampled_from(["known", "known", "known", "other", "none"]))
    if kind == "none":
        return None
    if kind == "other":
        return draw(
            st.sampled_from(
                [
                    "img/zzz.jpg",
                    "https://example.org/img/a.jpg",
                    "//example.org/img/a.jpg",
                    "data:image/gif;base64,R0lGOD",
                    "../../../../../etc/passwd",
                    "",
                ]
            )
        )
    path = draw(st.sampled_from(sorted(IMAGES)))
    how = draw(st.sampled_from(["rel", "root", "rel-encoded", "root-encoded"]))
    return spell(path, page, base, how) + draw(st.sampled_from(["", "?v=2", "#x", "?a=1&b=2#y"]))


def attr(draw: st.DrawFn, name: str, value: str) -> str:
    name = name.upper() if draw(st.booleans()) else name
    sep = draw(st.sampled_from([" ", "\n", "  "]))
    quote_char = draw(st.sampled_from(['"', "'", ""]))
    if quote_char == "" and value == "" and draw(st.booleans()):
        return sep + name
    if quote_char == "" and (value == "" or re.search("[\\s>\"'`=<]", value)):
        quote_char = '"'
    encoded = value.replace("&", "&amp;")
    encoded = (
        encoded.replace(quote_char, "&quot;" if quote_char == '"' else "&#39;")
        if quote_char
        else encoded
    )
    return f"{sep}{name}={quote_char}{encoded}{quote_char}"


@st.composite
def img(draw: st.DrawFn, page: str, base: str) -> tuple[str, str | None]:
    """An ``<img>`` tag and the ``src`` a browser reads from it."""
    src = draw(image_src(page, base))
    attrs = [("src", src)] if src is not None else []
    attrs += draw(st.lists(st.sampled_from(EXTRAS), max_size=4, unique_by=lambda a: a[0].lower()))
    attrs = draw(st.permutations(attrs))
    if src is not None and draw(st.integers(0, 5)) == 0:
        attrs.append(("src", "img/zzz.jpg"))  # duplicate: the first one wins
    body = "".join(attr(draw, k, v) for k, v in attrs)
    end = draw(st.sampled_from([">", " />", "/>"]))
    if end == "/>" and not body.endswith(("'", '"')):
        end = " />"  # "src=a.jpg/>" would make the slash part of the value
    return f"<{draw(st.sampled_from(['img', 'IMG', 'Img']))}{body}{end}", src


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, PageContext, list[tuple[int, int]], list[str | None]]:
    """A page, its context, the spans of its real images and our metas, and their sources."""
    page = draw(st.sampled_from(PAGES))
    base = draw(st.sampled_from(["/", "/docs/"]))
    parts: list[tuple[str, bool]] = []  # (text, is one of ours)
    sources: list[str | None] = []

    def add_img() -> None:
        tag, src = draw(img(page, base))
        parts.append((tag, True))
        sources.append(src)

    if draw(st.booleans()):
        parts.append(("<!DOCTYPE html>\n", False))
    has_html = draw(st.booleans())
    if has_html:
        parts.append((draw(st.sampled_from(["<html>", '<html lang="en">', "<HTML>\n"])), False))
    has_head = draw(st.booleans())
    if has_head:
        parts.append(("<head>", False))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["head", "head", "robots", "tdm"]))
        if kind == "head":
            parts.append((draw(st.sampled_from(HEADS)), False))
        elif kind == "robots":
            content = draw(st.sampled_from(ROBOTS_CONTENT))
            parts.append(
                (
                    f'<meta name="{draw(st.sampled_from(["robots", "Robots"]))}"'
                    f' content="{content}">',
                    True,
                )
            )
        else:
            parts.append(
                (f"<meta name=tdm-reservation content={draw(st.sampled_from('01'))}>", True)
            )
    if has_head:
        parts.append(("</head>\n", False))
    if draw(st.booleans()):
        parts.append(("<body>", False))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["text", "text", "text", "img", "img", "around"]))
        if kind == "text":
            parts.append((draw(st.sampled_from(TEXTS)), False))
        elif kind == "img":
            add_img()
        else:
            before, after = draw(st.sampled_from(AROUND))
            parts.append((before, False))
            add_img()
            parts.append((after, False))
    if has_html and draw(st.booleans()):
        parts.append(("</body></html>\n", False))
    doc, spans, pos = "", [], 0
    for text, mine in parts:
        if mine:
            spans.append((pos, pos + len(text)))
        doc += text
        pos += len(text)
    c = PageContext(
        page,
        base_url=base,
        images=IMAGES,
        robots=draw(st.sampled_from([(), ("noai", "noimageai"), ("NoAI", "noindex")])),
        tdm_reservation=draw(st.sampled_from([None, 0, 1])),
        tdm_policy=draw(st.sampled_from([None, "https://example.org/tdm?a=1&b=2"])),
        picture=draw(st.booleans()),
        lazy=draw(st.booleans()),
        formats=tuple(
            draw(st.permutations(["avif", "webp", "jpeg", "png"]))[: draw(st.integers(1, 4))]
        ),
    )
    return doc, c, spans, sources


def check_properties(
    doc: str, c: PageContext, spans: list[tuple[int, int]], sources: list[str | None]
) -> None:
    """What must hold for any page: see the three asserts below."""
    out = rewrite(doc, c)
    # (a) Byte for byte, everything but the images and our metas is the same.
    assert cut(out, our_spans(out)) == cut(doc, spans)
    # (b) A spec parser sees the same tree, and each image keeps its attributes.
    before, before_images = tree(doc)
    after, after_images = tree(out)
    assert after == before
    assert len(after_images) == len(before_images)
    for old, new in zip(before_images, after_images, strict=True):
        # A width/height the browser does not read as pixels ("50%", "auto") becomes pixels,
        # its percentage moving into style (in front of the author's own declarations).
        moved = {
            k for k in ("width", "height") if k in old and not is_px(old[k]) and new[k] != old[k]
        }
        if moved and "%" in old.get("width", "") + old.get("height", ""):
            assert new["style"].endswith(old.get("style", "").strip()), (old, new)
        keep = {k: v for k, v in old.items() if k not in moved and (k != "style" or not moved)}
        assert keep.items() <= new.items()
        assert set(new) - set(old) <= ADDED
    # (c) Idempotent, asking for the same images: the page record (build.pagememo) keeps
    # a written page as unchanged under the lookups that made it, without rewriting it.
    first, again = Lookups(c.images, repr), Lookups(c.images, repr)
    assert rewrite(doc, replace(c, images=first)) == out
    assert rewrite(out, replace(c, images=again)) == out
    assert again.asked == first.asked
    # So is the whole page step the build runs (the adapter's declared value, the ratio CSS).
    page = _rewrite_page(doc, c, "DMI-PROHIBITED", c.base_url, [])
    assert _rewrite_page(page, c, "DMI-PROHIBITED", c.base_url, []) == page
    # What the scan finds is the same before and after (the page record keeps the read
    # page's scan for the written one), unless a declared value was written in.
    found = scan(doc, c.page_path, c.base_url)
    assert scan(out, c.page_path, c.base_url) == found
    if found.dmi is not None:
        assert scan(page, c.page_path, c.base_url) == found
    # Every candidate is a real file at its real width; scan sees the images we wrote.
    check_srcsets(doc, out, c)
    local = [resolve(s, c.page_path, c.base_url) for s in sources if s is not None]
    assert [p for p, _ in scan(doc, c.page_path, c.base_url).images] == [p for p in local if p]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(documents())
def test_rewrite_touches_only_images_and_metas(
    case: tuple[str, PageContext, list[tuple[int, int]], list[str | None]],
) -> None:
    check_properties(*case)


@pytest.mark.parametrize("picture", [False, True])
@pytest.mark.parametrize(("before", "after"), AROUND, ids=[a[0] for a in AROUND])
def test_every_tricky_place(before: str, after: str, picture: bool) -> None:
    for path in sorted(IMAGES):
        src = spell(path, "blog/post/index.html", "/", "rel-encoded")
        tag = f'x<img src="{src}">'
        doc = f"<!doctype html><html><head></head><body>{before}{tag}{after}</body></html>"
        c = PageContext("blog/post/index.html", images=IMAGES, picture=picture)
        start = doc.index("<img")
        check_properties(doc, c, [(start, start + len(tag) - 1)], [src])
