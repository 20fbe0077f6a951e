"""SVG watermark logos: checked once, then rasterised by resvg at the size the mark is drawn.

The SVG is untrusted input, and resvg (through the optional ``resvg-py`` wheel, extra
``ssg-dmi[svg]``) is a renderer, not a sandbox: it reads files named by ``href``s and
aborts the whole process when an allocation fails. So before it sees the file:

- it is parsed with defusedxml: a DTD, entity declarations (billion laughs, external
  entities) are refused;
- every ``href`` must point inside the document (``#id``), and ``url(...)`` in attributes
  and style sheets too: no file, network or ``data:`` resource is ever loaded;
- ``<image>`` and ``<pattern>`` are refused (a pattern's tile is allocated at its own size,
  whatever the canvas is: a huge one aborts the process);
- the document expanded through its references (``<use>``, ``url(#id)``) must stay under
  :data:`MAX_NODES` elements (a billion laughs made of ``<use>``);
- the file must be at most :data:`MAX_BYTES`, and its shape (from ``viewBox``, else
  ``width``/``height``) at most 4 times taller than wide and 50 times wider than tall.

The canvas size is then written into the root element by ssg-dmi (``width``/``height`` in
pixels, the ``viewBox`` kept or made from the original size), so resvg never sizes anything
from the file's own numbers: a huge ``viewBox`` only scales the drawing down.
"""

from __future__ import annotations

import functools
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import defusedxml
import defusedxml.ElementTree as DET
from PIL import Image

EXTRA = "pip install 'ssg-dmi[svg]'"
MAX_BYTES = 1 << 20
MAX_NODES = 20_000
MAX_DEPTH = 200
MAX_TALL = 4.0  # height / width
MAX_WIDE = 50.0  # width / height
_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
_LENGTH = re.compile(r"\s*([+]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(px|pt|pc|mm|cm|in)?\s*")
_URL = re.compile(r"url\(\s*['\"]?\s*([^)'\"\s]*)", re.IGNORECASE)
_IMPORT = re.compile(r"@import", re.IGNORECASE)
_NAME = rb"[^\s/>=]+"
_START_TAG = re.compile(
    rb"<(" + _NAME + rb")((?:\s+" + _NAME + rb"\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>"
)
_SIZE_ATTRIBUTE = re.compile(rb"\s+(?:width|height)\s*=\s*(?:\"[^\"]*\"|'[^']*')")
_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_REFUSED = {"image": "an <image>", "pattern": "a <pattern>"}


class SvgLogoError(ValueError):
    """Why an SVG logo is refused (one line)."""


@dataclass(frozen=True)
class SvgLogo:
    """A checked SVG logo: its bytes with the root's size taken out, ready to be sized."""

    head: bytes  # up to the end of the root's attributes (width/height removed)
    tail: bytes  # from the root start tag's closing ">" on
    view_box: str  # the viewBox the sized document gets
    ratio: float  # height / width
    has_text: bool  # <text> needs the system fonts loaded


def is_svg(data: bytes) -> bool:
    """Whether a logo file is (meant to be) SVG: no raster format starts with "<"."""
    return data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _length(value: str | None) -> float | None:
    match = _LENGTH.fullmatch(value or "")
    if match is None:
        return None
    number = float(match.group(1)) * _UNITS[match.group(2) or ""]
    return number if 0 < number < 1e9 else None


def _view_box(root: ET.Element) -> tuple[str, float]:
    """The viewBox to render with, and its height / width."""
    given = root.get("viewBox")
    if given is not None:
        try:
            x, y, w, h = (float(v) for v in given.replace(",", " ").split())
        except ValueError:
            raise SvgLogoError(f"its viewBox {given[:40]!r} is not four numbers") from None
        if not all(abs(v) < 1e30 for v in (x, y, w, h)) or w <= 0 or h <= 0:
            raise SvgLogoError(f"its viewBox {given[:40]!r} has no positive finite size")
        return given, h / w
    width, height = _length(root.get("width")), _length(root.get("height"))
    if width is None or height is None:
        raise SvgLogoError(
            "it has no viewBox and no width and height in absolute units; add a viewBox"
        )
    return f"0 0 {width:g} {height:g}", height / width


def _refs(element: ET.Element, where: str) -> list[str]:
    """The ids ``element`` references; SvgLogoError for any reference leaving the file."""
    out = []
    for name, value in element.attrib.items():
        if _local(name) == "href":
            if not value.strip().startswith("#"):
                raise SvgLogoError(f"{where} links to {value[:60]!r}; only #id links are allowed")
            out.append(value.strip()[1:])
        out += _urls(value, where)
    if _local(element.tag) == "style":
        out += _urls(element.text or "", where)
        if _IMPORT.search(element.text or ""):
            raise SvgLogoError(f"{where} has a style sheet @import")
    return out


def _urls(value: str, where: str) -> list[str]:
    out = []
    for target in _URL.findall(value):
        if not target.startswith("#"):
            raise SvgLogoError(f"{where} refers to url({target[:60]}); only url(#id) is allowed")
        out.append(target[1:])
    return out


def check(data: bytes) -> SvgLogo:
    """The checked logo, or SvgLogoError saying why it is refused."""
    if len(data) > MAX_BYTES:
        raise SvgLogoError(f"it is {len(data)} bytes, more than the {MAX_BYTES} allowed")
    if data[:2] == b"\x1f\x8b":
        raise SvgLogoError("it is gzip-compressed (.svgz); save it uncompressed")
    try:
        root = DET.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException:
        raise SvgLogoError("it has a DTD or entity declarations, which are refused") from None
    except ET.ParseError as exc:
        raise SvgLogoError(f"it is not well-formed XML ({exc})") from None
    if _local(root.tag) != "svg":
        raise SvgLogoError("its root element is not <svg>")
    view_box, ratio = _view_box(root)
    if ratio > MAX_TALL or 1 / ratio > MAX_WIDE:
        raise SvgLogoError(
            f"its shape ({1 / ratio:.3g}:1) is more than {MAX_TALL:g} times taller than wide "
            f"or {MAX_WIDE:g} times wider than tall"
        )
    ids: dict[str, ET.Element] = {}
    refs: dict[int, list[str]] = {}
    depth = {id(root): 0}
    has_text = False
    for element in root.iter():
        name = _local(element.tag)
        if name in _REFUSED:
            raise SvgLogoError(f"it has {_REFUSED[name]}, which is refused; flatten it")
        has_text = has_text or name in ("text", "textPath", "tspan")
        where = f"its <{name}>"
        refs[id(element)] = _refs(element, where)
        if element.get("id"):
            ids.setdefault(str(element.get("id")), element)
        for child in element:
            depth[id(child)] = depth[id(element)] + 1
            if depth[id(child)] > MAX_DEPTH:
                raise SvgLogoError(f"its elements nest more than {MAX_DEPTH} deep")
    if _expanded(root, ids, refs) > MAX_NODES:
        raise SvgLogoError(
            f"it expands to more than {MAX_NODES} elements through its <use> and url(#id) "
            "references"
        )
    start = _PROLOG.match(data)
    tag = _START_TAG.match(data, start.end() if start else 0)
    if tag is None or tag.group(3):
        raise SvgLogoError("its <svg> start tag could not be located")
    attributes = _SIZE_ATTRIBUTE.sub(b"", tag.group(2))
    attributes = re.sub(rb"\s+viewBox\s*=\s*(?:\"[^\"]*\"|'[^']*')", b"", attributes)
    head = data[: tag.start()] + b"<" + tag.group(1) + attributes
    return SvgLogo(head, data[tag.end() - 1 :], view_box, ratio, has_text)


def _expanded(root: ET.Element, ids: dict[str, ET.Element], refs: dict[int, list[str]]) -> int:
    """How many elements the document holds once every reference is expanded, counted up
    to just past :data:`MAX_NODES` (a reference back to an element being expanded counts
    nothing: renderers drop such cycles). Iterative: a long chain cannot overflow a stack."""
    sizes: dict[int, int] = {}
    busy = {id(root)}

    def frame(element: ET.Element) -> list[Any]:
        targets = [ids[t] for t in refs.get(id(element), []) if t in ids]
        return [element, iter([*element, *targets]), 1]

    stack = [frame(root)]
    while stack:
        top = stack[-1]
        following = next(top[1], None)
        if following is None:
            stack.pop()
            busy.discard(id(top[0]))
            sizes[id(top[0])] = top[2]
            if stack:
                stack[-1][2] += top[2]
        elif id(following) in sizes:
            top[2] += sizes[id(following)]
        elif id(following) not in busy:
            busy.add(id(following))
            stack.append(frame(following))
        if top[2] > MAX_NODES:
            return int(top[2])
    return sizes[id(root)]


def height_for(logo: SvgLogo, width: int) -> int:
    """The mark's height in pixels when it is ``width`` pixels wide."""
    return max(1, round(width * logo.ratio))


def sized(logo: SvgLogo, width: int, height: int) -> bytes:
    """The SVG with ssg-dmi's canvas size in its root element."""
    size = f' width="{width}" height="{height}" viewBox="{logo.view_box}"'
    return logo.head + size.encode("ascii") + logo.tail


def render(logo: SvgLogo, width: int) -> Image.Image:
    """The logo rasterised ``width`` pixels wide, RGBA (ImportError without resvg-py)."""
    import resvg_py  # the optional extra, imported only when an SVG logo is drawn

    height = height_for(logo, width)
    text = sized(logo, width, height).decode("utf-8")
    png = resvg_py.svg_to_bytes(svg_string=text, skip_system_fonts=not logo.has_text)
    with Image.open(io.BytesIO(bytes(png))) as im:
        out = im.convert("RGBA")
    if out.size != (width, height):  # resvg sized it from the root: it never differs
        out = out.resize((width, height), Image.Resampling.LANCZOS)
    return out


@functools.lru_cache(maxsize=4)
def checked(data: bytes) -> SvgLogo:
    """:func:`check`, once per logo per process."""
    return check(data)


def available() -> bool:
    """Whether the optional renderer is installed."""
    try:
        import resvg_py  # noqa: F401
    except ImportError:
        return False
    return True
