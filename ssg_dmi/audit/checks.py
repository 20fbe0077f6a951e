"""The checks behind ``ssg-dmi check``, each on bytes or text it was handed.

Nothing here trusts the build's report: the DataMining value and the private fields come
from the file's own XMP and EXIF (:func:`ssg_dmi.images.facts.inspect_bytes`), widths from the
image header, page signals from the page's own tags, and the site files are read twice:
compared with what :mod:`.signals` and :mod:`.headers` render for the same policy, and
asked, as a crawler asks them, what they say about each path of the site.
:mod:`.check` walks a folder or crawls a served site and feeds these functions.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Literal
from urllib.parse import quote

from PIL import Image

from ..build.job import VARIANT_NAME
from ..contract import CONTRACT, AgentClass
from ..images import containers
from ..images.containers import Format
from ..images.facts import inspect_bytes
from ..images.pixels import exif_orientation, pixel_limit
from ..pages import scan as htmlscan
from ..policy import DMI
from ..settings import Settings
from ..sitefiles.headers import HEADERS, header_values, host_files
from ..sitefiles.render import (
    BEGIN,
    END,
    SitePolicy,
    ai_agents,
    ai_txt,
    robots_txt,
    site_policy,
    tdmrep_json,
)

Severity = Literal["error", "warning"]
# Every finding code, with what it means (the README lists these).
CODES = {
    "image-untagged": "an image or variant has no plus:DataMining value",
    "image-wrong-dmi": "its plus:DataMining differs from what its path/page policy requires",
    "image-private-metadata": "GPS, serials, owner, maker notes or a thumbnail survived",
    "image-unreadable": "the file's container or metadata cannot be read",
    "page-dmi-invalid": '<meta name="ssg-dmi"> or data-dmi holds no DataMining value',
    "page-robots-meta": '<meta name="robots"> missing, doubled or without the directives',
    "page-tdm-meta": '<meta name="tdm-reservation"> / "tdm-policy" missing or wrong',
    "img-missing-size": "an <img> with srcset lacks width or height",
    "src-missing-file": "an <img src> names a file the site does not have (warning)",
    "srcset-missing-file": "a srcset candidate names a file the site does not have",
    "srcset-wrong-width": "a srcset w descriptor differs from the file's pixel width",
    "site-file-missing": "ai.txt, robots.txt, tdmrep.json or a host's header file is absent",
    "site-file-inconsistent": "a site file says something other than the policy",
    "header-missing": "a response lacks a header the policy calls for",
    "header-wrong": "a response header has another value than the policy calls for",
    "fetch-failed": "a URL could not be fetched, or a page read",
    "crawl-truncated": "the crawl stopped at a page, image or time limit (warning)",
}
TDMREP = ".well-known/tdmrep.json"
_WS = "\t\n\f\r "
_W_DESCRIPTOR = re.compile(r"([0-9]+)w")
_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")
# One crawler per class stands for the class on every path; every crawler of a class is
# asked once, for the site's root.
_SAMPLE = {
    AgentClass.TRAINING: "GPTBot",
    AgentClass.AI_SEARCH: "OAI-SearchBot",
    AgentClass.AGENT: "ChatGPT-User",
}


@dataclass(frozen=True)
class Finding:
    """One problem: a stable ``code``, the site path or URL, and what is wrong."""

    code: str
    path: str
    message: str
    severity: Severity = "error"


# -- what each path must say ---------------------------------------------------------------


@dataclass(frozen=True)
class Expectations:
    """The settings plus the page and image overrides found in the pages (as the build
    collects them): the DataMining value each site path requires."""

    settings: Settings
    pages: Mapping[str, DMI] = field(default_factory=dict)
    images: Mapping[str, DMI] = field(default_factory=dict)

    @staticmethod
    def source_of(rel: str) -> str:
        """The image a variant was made from (``a/p.jpg-960w.0123456789.webp`` -> ``a/p.jpg``);
        any other path is its own source."""
        folder, _, name = rel.rpartition("/")
        m = VARIANT_NAME.match(name)
        return rel if m is None else f"{folder}/{m['source']}" if folder else m["source"]

    def image(self, rel: str) -> DMI:
        """The value an image, or a variant of it, must carry."""
        source = self.source_of(rel)
        given = self.images.get(source)
        return given if given is not None else self.settings.policy_for(source).dmi

    def page(self, rel: str) -> DMI:
        """The value a page's metas say: its own override, else its path's policy."""
        given = self.pages.get(rel)
        return given if given is not None else self.settings.policy_for(rel).dmi

    def site_policy(self) -> SitePolicy:
        """The :class:`SitePolicy` the build renders the site files from."""
        return site_policy(self.settings, {**self.images, **self.pages})


def page_overrides(
    text: str, rel: str, base_url: str
) -> tuple[DMI | None, list[tuple[str, DMI]], Finding | None]:
    """One page's own value and the (site path, value) of each image it gives one, as
    :func:`ssg_dmi.build.site.collect_overrides` reads them; a bad value is a finding, and then
    the page gives none."""
    scan = htmlscan.scan(text, rel, base_url)
    try:
        page = DMI.parse(scan.dmi) if scan.dmi else None
        values = [(img, DMI.parse(attr) if attr else page) for img, attr in scan.images]
    except ValueError as exc:
        allowed = ", ".join(m.key for m in DMI)
        message = f"{exc.args[0]!r} is not a DataMining value; use one of {allowed}"
        return None, [], Finding("page-dmi-invalid", rel, message)
    return page, [(img, value) for img, value in values if value is not None], None


# -- images --------------------------------------------------------------------------------


def check_image(data: bytes, path: str, want: DMI) -> list[Finding]:
    """The file's own DataMining value and private fields."""
    found = inspect_bytes(data, path)
    if found.error:
        return [Finding("image-unreadable", path, f"cannot read its metadata: {found.error}")]
    out = []
    if found.dmi is None:
        message = f"no plus:DataMining in its XMP; its policy requires {want.key}"
        out.append(Finding("image-untagged", path, message))
    elif found.dmi != want.key:
        message = f"plus:DataMining is {found.dmi}; its policy requires {want.key}"
        out.append(Finding("image-wrong-dmi", path, message))
    if found.private:
        message = f"still carries private metadata: {', '.join(found.private)}"
        out.append(Finding("image-private-metadata", path, message))
    return out


def pixel_width(source: bytes | str) -> int | None:
    """The displayed pixel width (EXIF orientation applied) from the image header alone;
    None for SVG or anything Pillow cannot open."""
    try:
        if isinstance(source, bytes):
            if containers.sniff(source[:64]) is Format.SVG:
                return None
            opened = Image.open(io.BytesIO(source))
        else:
            opened = Image.open(source)
        with pixel_limit(1 << 62), opened as im:
            w, h = im.size
            return int(h if exif_orientation(im) > 4 else w)
    except Exception:  # noqa: BLE001 - any reader error just means "no width to compare"
        return None


# -- pages ---------------------------------------------------------------------------------


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


_PAGE_TAGS = frozenset({"meta", "img", "source", "a", "base", "template"})


def read_page(html: str, deadline: float | None = None) -> PageFacts:
    """The metas, images and links of a page (real tags only, as :mod:`.htmlscan` finds);
    reading stops, ``complete`` False, once ``time.monotonic()`` passes ``deadline``."""
    facts = PageFacts()
    template = 0
    for count, tag in enumerate(htmlscan.iter_tags(html, _PAGE_TAGS)):
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


def _directives(contents: Iterable[str]) -> set[str]:
    return {d.strip().lower() for c in contents for d in c.split(",") if d.strip()}


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
    lacking = [d for d in sig.robots_meta if d not in _directives(robots)]
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


# -- response headers ----------------------------------------------------------------------


def _x_robots(values: list[str]) -> set[str]:
    """The directives of X-Robots-Tag values meant for every crawler (no ``bot:`` token)."""
    out: set[str] = set()
    for value in values:
        head, sep, _ = value.partition(":")
        if sep and _TOKEN.fullmatch(head.strip()) and head.strip() != "unavailable_after":
            continue  # "otherbot: noai" addresses one crawler
        out |= _directives([value])
    return out


def check_headers(
    headers: Message, url: str, want: DMI, tdm_policy: str | None, severity: Severity = "error"
) -> list[Finding]:
    """The opt-out headers of one response, per :func:`ssg_dmi.sitefiles.headers.header_values`."""
    expected = header_values(want, tdm_policy)
    out: list[Finding] = []

    def bad(code: str, name: str, text: str) -> None:
        out.append(Finding(code, url, f"{name}: {text}", severity))

    for name in HEADERS:
        got = [v.strip() for v in headers.get_all(name) or []]
        value = expected[name]
        if name == "X-Robots-Tag":
            need = _directives([value or ""])
            have = _x_robots(got)
            if need and not got:
                bad("header-missing", name, f'missing; {want.key} calls for "{value}"')
            elif need - have:
                bad("header-wrong", name, f'is "{", ".join(got)}"; {want.key} calls for "{value}"')
            elif not need and have & {"noai", "noimageai"}:
                bad("header-wrong", name, f'is "{", ".join(got)}"; {want.key} restricts nothing')
            continue
        if value is None:
            if name == "tdm-reservation" and "1" in got:
                bad("header-wrong", name, f'is "1"; {want.key} reserves nothing')
            continue
        if not got:
            bad("header-missing", name, f'missing; {want.key} calls for "{value}"')
        elif [_norm_value(v) for v in got] != [_norm_value(value)] and got != [tdm_policy]:
            bad("header-wrong", name, f'is "{", ".join(got)}"; {want.key} calls for "{value}"')
    return out


def _norm_value(value: str) -> str:
    return ", ".join(part.strip() for part in value.split(","))


# -- site files ----------------------------------------------------------------------------


def url_path(rel: str, base: str) -> str:
    """The percent-encoded URL path of a site path, as robots.txt patterns spell it."""
    return base + quote(rel, safe="/!&'()+,;=:@")


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _section(text: str) -> list[str] | None:
    lines = _lines(text)
    starts = [i for i, line in enumerate(lines) if line.strip().startswith("# BEGIN ssg-dmi")]
    if not starts:
        return None
    rest = lines[starts[0] :]
    return rest[: rest.index(END) + 1] if END in rest else rest


def _differs(name: str, found: list[str], expected: list[str], what: str) -> Finding | None:
    if found == expected:
        return None
    for n, (a, b) in enumerate(zip(found, expected, strict=False), 1):
        if a != b:
            detail = f'line {n} of {what} is "{a}"; the settings give "{b}"'
            break
    else:
        n = min(len(found), len(expected)) + 1
        extra = found[n - 1] if len(found) > len(expected) else expected[n - 1]
        verb = "has an extra" if len(found) > len(expected) else "lacks the"
        detail = f'{what} {verb} line {n}: "{extra}"'
    return Finding(
        "site-file-inconsistent", name, f"{detail} (rebuild, or check the settings used)"
    )


def compare_site_files(
    read: Callable[[str], str | None], settings: Settings, policy: SitePolicy
) -> list[Finding]:
    """Each site file against what the build renders for ``policy``: ai.txt and the
    nginx snippets whole, the ssg-dmi section of robots.txt, _headers and .htaccess,
    tdmrep.json as JSON."""
    out: list[Finding] = []
    texts = {name: read(name) for name in ("ai.txt", "robots.txt", TDMREP)}
    for name, text in texts.items():
        if text is None:
            out.append(Finding("site-file-missing", name, f"{name} is missing (site_files is on)"))
    if (text := texts["ai.txt"]) is not None:
        out += filter(None, [_differs("ai.txt", _lines(text), _lines(ai_txt(policy)), "ai.txt")])
    if (text := texts["robots.txt"]) is not None:
        out += _compare_section(
            "robots.txt", text, robots_txt(text, policy, settings.block_search_engines)
        )
    if (text := texts[TDMREP]) is not None:
        try:
            data = json.loads(text)
        except ValueError as exc:
            out.append(Finding("site-file-inconsistent", TDMREP, f"not valid JSON ({exc})"))
        else:
            want = json.loads(tdmrep_json(policy, settings.tdm_policy))
            if data != want:
                message = (
                    f"its rules {json.dumps(data)} differ from the settings' {json.dumps(want)}"
                )
                out.append(Finding("site-file-inconsistent", TDMREP, message))
    for name, expected in host_files(policy, settings, read).items():
        text = read(name)
        if text is None:
            message = f"{name} is missing (hosts = {list(settings.hosts)})"
            out.append(Finding("site-file-missing", name, message))
        elif BEGIN in expected:
            out += _compare_section(name, text, expected)
        else:
            out += filter(None, [_differs(name, _lines(text), _lines(expected), name)])
    return out


def _compare_section(name: str, text: str, expected: str) -> list[Finding]:
    found = _section(text)
    if found is None:
        return [Finding("site-file-inconsistent", name, f"{name} has no ssg-dmi section ({BEGIN})")]
    return list(
        filter(None, [_differs(name, found, _section(expected) or [], "the ssg-dmi section")])
    )


# -- site files, read as crawlers read them ------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    exact = pattern.endswith("$")
    body = ".*".join(re.escape(p) for p in (pattern[:-1] if exact else pattern).split("*"))
    return re.compile(body + ("$" if exact else ""))


class SimpleRobots:
    """A small RFC 9309 reader, used when protego is not installed: the groups naming the
    agent (else ``*``), the longest matching rule, Allow on a tie."""

    def __init__(self, text: str) -> None:
        self.groups: list[tuple[list[str], list[tuple[bool, str]]]] = []
        after_agent = False
        for raw in text.splitlines():
            key, _, value = raw.split("#", 1)[0].partition(":")
            key, value = key.strip().lower(), value.strip()
            if key in ("user-agent", "useragent"):
                if not after_agent:
                    self.groups.append(([], []))
                self.groups[-1][0].append(value.lower())
            elif key in ("allow", "disallow") and self.groups and value:
                self.groups[-1][1].append((key == "allow", value))
            after_agent = key in ("user-agent", "useragent")

    def can_fetch(self, path: str, agent: str) -> bool:
        """Whether ``agent`` may fetch ``path`` (percent-encoded, starting with ``/``)."""
        rules = [r for agents, rs in self.groups if agent.lower() in agents for r in rs]
        if not any(agent.lower() in agents for agents, _ in self.groups):
            rules = [r for agents, rs in self.groups if "*" in agents for r in rs]
        best: tuple[int, bool] = (-1, True)
        for allow, pattern in rules:
            if _pattern(pattern).match(path):
                best = max(best, (len(pattern), allow))
        return best[1]


def robots_reader(text: str) -> Callable[[str, str], bool]:
    """``can_fetch(path, agent)`` of a robots.txt-grammar file: protego's when installed."""
    try:
        from protego import Protego
    except ImportError:
        return SimpleRobots(text).can_fetch
    parsed = Protego.parse(text)
    return lambda path, agent: bool(parsed.can_fetch("http://site.invalid" + path, agent))


def _tdmrep_value(rules: list[dict[str, object]], path: str) -> dict[str, object] | None:
    for rule in rules:
        location = rule.get("location")
        if isinstance(location, str) and _pattern(location).match(path):
            return rule
    return None


def read_site_files(
    texts: Mapping[str, str | None],
    paths: Mapping[str, DMI],
    settings: Settings,
    where: Callable[[str], str],
) -> list[Finding]:
    """What robots.txt, ai.txt and tdmrep.json say about each URL path in ``paths``, read by
    an independent parser, against the value the path requires. One finding per file and
    kind of problem, naming the first paths."""
    problems: dict[tuple[str, str], list[str]] = {}

    def note(name: str, what: str, path: str) -> None:
        problems.setdefault((name, what), []).append(path)

    if (text := texts.get("robots.txt")) is not None:
        can = robots_reader(text)
        agents = ai_agents()
        root = settings.base_url
        if root in paths:  # every crawler the data file names, once, at the site's root
            for token, cls in sorted(agents.items()):
                if cls in CONTRACT[paths[root]].blocked and can(root, token):
                    note("robots.txt", f"lets {token} ({cls.value} crawlers) fetch", root)
        sample = {k: a for a, k in sorted(agents.items(), reverse=True)}  # first of each class
        sample.update({c: a for c, a in _SAMPLE.items() if agents.get(a) is c})
        for path, dmi in paths.items():
            for cls in CONTRACT[dmi].blocked & sample.keys():
                if can(path, token := sample[cls]):
                    note("robots.txt", f"lets {token} ({cls.value} crawlers) fetch", path)
            if settings.block_search_engines and can(path, "Googlebot"):
                note("robots.txt", "lets Googlebot fetch (block_search_engines is on)", path)
    if (text := texts.get("ai.txt")) is not None:
        can = robots_reader(text)
        for path, dmi in paths.items():
            if CONTRACT[dmi].ai_txt_disallow and can(path, "img2dataset"):
                note("ai.txt", "allows", path)
    if (text := texts.get(TDMREP)) is not None:
        try:
            rules = json.loads(text)
        except ValueError:
            rules = None  # compare_site_files or the missing check says so
        if isinstance(rules, list):
            rules = [r for r in rules if isinstance(r, dict)]
            for path, dmi in paths.items():
                want = CONTRACT[dmi].tdm_reservation
                rule = _tdmrep_value(rules, path)
                got = rule.get("tdm-reservation") if rule else None
                if want == 1 and got != 1:
                    note(TDMREP, "does not reserve (tdm-reservation 1)", path)
                elif (
                    want == 1
                    and settings.tdm_policy
                    and rule
                    and rule.get("tdm-policy") != settings.tdm_policy
                ):
                    note(TDMREP, f"gives no tdm-policy {settings.tdm_policy} for", path)
                elif want == 0 and got == 1:
                    note(TDMREP, "reserves", path)
    out = []
    for (name, what), found in problems.items():
        values = sorted({paths[p].key for p in found if p in paths})
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        policies = ", ".join(values)
        message = f"{what} {len(found)} path(s) whose policy ({policies}) says otherwise: {shown}"
        out.append(Finding("site-file-inconsistent", where(name), message))
    return out
