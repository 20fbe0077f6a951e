"""The checks of one page: its opt-out metas, and each ``<img>``'s size and srcset."""

from __future__ import annotations

from ..contract import CONTRACT
from ..policy import DMI
from .findings import Finding
from .page_facts import ImageRef, PageFacts, directive_set, width_descriptor


def check_page_metas(
    facts: PageFacts, path: str, want: DMI, tdm_policy: str | None
) -> list[Finding]:
    """Exactly one robots meta with the contract's directives; the TDMRep metas."""
    sig = CONTRACT[want]
    out: list[Finding] = []
    robots = facts.metas.get("robots", [])
    if len(robots) > 1:
        out.append(
            Finding(
                "page-robots-meta",
                path,
                f'{len(robots)} <meta name="robots"> tags; exactly one is expected',
            )
        )
    lacking = [d for d in sig.robots_meta if d not in directive_set(robots)]
    if lacking and not robots:
        need = ", ".join(sig.robots_meta)
        message = f'no <meta name="robots">; its policy {want.key} requires "{need}"'
        out.append(Finding("page-robots-meta", path, message))
    elif lacking:
        message = (
            f'<meta name="robots" content="{", ".join(robots)}"> lacks {", ".join(lacking)}, '
            f"which its policy {want.key} requires"
        )
        out.append(Finding("page-robots-meta", path, message))
    wanted = {"tdm-reservation": None if sig.tdm_reservation is None else str(sig.tdm_reservation)}
    if sig.tdm_reservation == 1 and tdm_policy:
        wanted["tdm-policy"] = tdm_policy
    for name, value in wanted.items():
        found = facts.metas.get(name, [])
        if value is None:
            continue
        if not found:
            message = f'no <meta name="{name}">; its policy {want.key} requires content="{value}"'
        elif len(found) > 1:
            message = f'{len(found)} <meta name="{name}"> tags; exactly one is expected'
        elif found[0].strip() != value:
            said = found[0].strip()
            message = (
                f'<meta name="{name}"> says "{said}"; its policy {want.key} requires "{value}"'
            )
        else:
            continue
        out.append(Finding("page-tdm-meta", path, message))
    return out


def check_img_size(ref: ImageRef, path: str) -> list[Finding]:
    """An ``<img>`` with srcset needs width and height (or the layout shifts, and
    ``sizes=auto`` renders it at 300x150)."""
    if ref.element != "img" or ref.srcset is None:
        return []
    missing = [
        a for a, v in (("width", ref.width), ("height", ref.height)) if not (v or "").strip()
    ]
    if not missing:
        return []
    message = f'<img src="{ref.src or ""}"> has a srcset but no {" or ".join(missing)}'
    return [Finding("img-missing-size", path, message)]


def check_candidate(
    page: str, ref: ImageRef, url: str, descriptors: str, width: int | None, exists: bool
) -> list[Finding]:
    """One srcset candidate: the file exists, and its ``w`` descriptor is its width."""
    where = f"srcset of <{ref.element}{f' src={ref.src!r}' if ref.src else ''}>"
    if not exists:
        return [
            Finding("srcset-missing-file", page, f"{where} names {url}, which is not in the site")
        ]
    said = width_descriptor(descriptors)
    if said is None or width is None or said == width:
        return []
    return [
        Finding(
            "srcset-wrong-width", page, f"{where} says {said}w for {url}, which is {width} px wide"
        )
    ]
