"""An ``<img>``'s ``width`` and ``height``, made pixels the browser and ``ssg-dmi check``
both read, so the layout reserves the image's aspect ratio before it loads.

Both are added when neither is set; with one set in pixels the other is added at the
image's aspect ratio, which is what the browser renders anyway. A percentage
(``width="50%"``) moves into ``style`` and the attribute gets pixels.
"""

from __future__ import annotations

import re
from enum import Enum

from .context import ImageInfo
from .edits import Edit, set_attr
from .tokens import Attr, Tag

_DIM = re.compile(r"[\t\n\f\r ]*([0-9]+(?:\.[0-9]+)?)(%?)")


class Kind(Enum):
    """How the browser reads a ``width`` or ``height`` attribute."""

    ABSENT = "absent"
    FAIL = "fail"  # "auto", "": ignored, as if absent
    PX = "px"
    PCT = "pct"


def dimension(attr: Attr | None) -> tuple[Kind, float]:
    """An ``<img>`` width or height as the HTML "rules for parsing dimension values" read
    it: its kind and number. "12em" is 12 px, "auto" a failure (ignored)."""
    if attr is None:
        return Kind.ABSENT, 0.0
    m = _DIM.match(attr.value)
    if m is None:
        return Kind.FAIL, 0.0
    return (Kind.PCT if m.group(2) else Kind.PX), float(m.group(1))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def fill_dimensions(
    tag: Tag, info: ImageInfo, add: list[tuple[str, str]], inner: list[Edit]
) -> tuple[float, float]:
    """Make ``width`` and ``height`` both numbers the browser reads as pixels, so the check
    passes and the aspect ratio is reserved; returns them. New attributes go to ``add``,
    changes to existing ones to ``inner`` (edits at page offsets).

    Neither set: the intrinsic size. One in pixels: the other at the image's ratio, which is
    what the browser renders anyway. A percentage ("50%", Markdown ``{: width="50%"}``) is
    kept as CSS (``style="width:50%"``, which wins over the attribute) and the attribute
    becomes pixels; the side we make up then gets ``auto`` so the ratio holds. A value the
    browser ignores ("auto", "") is replaced as if absent.
    """
    wa, ha = tag.attrs.get("width"), tag.attrs.get("height")
    (wk, wv), (hk, hv) = dimension(wa), dimension(ha)
    iw, ih = info.width, info.height
    if wk is Kind.PX and hk is Kind.PX:
        return wv, hv
    if wk is Kind.PX:
        hv = round(wv * ih / iw) if iw > 0 else 0
    elif hk is Kind.PX:
        wv = round(hv * iw / ih) if ih > 0 else 0
    else:
        wv, hv = iw, ih
    style: list[str] = []
    for name, attr, kind, value, other in (
        ("width", wa, wk, wv, hk),
        ("height", ha, hk, hv, wk),
    ):
        if kind is Kind.PX:
            continue
        if kind is Kind.PCT:
            style.append(f"{name}:{_number(dimension(attr)[1])}%")
        elif other is Kind.PCT:
            style.append(f"{name}:auto")
        if attr is None:
            add.append((name, str(int(value))))
        else:
            inner.append(set_attr(tag, str(int(value)), name))
    if style:
        css = ";".join(style)
        existing = tag.attrs.get("style")
        if existing is None:
            add.append(("style", css))
        else:
            rest = existing.value.strip()
            inner.append(set_attr(tag, f"{css};{rest}" if rest else css, "style"))
    return wv, hv
