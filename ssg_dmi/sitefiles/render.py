"""Site files that carry the opt-out: ``ai.txt``, ``robots.txt`` and ``tdmrep.json``.

All renderers are pure text-in/text-out functions of a :class:`SitePolicy` (the site-wide
DMI value plus path overrides in robots.txt pattern syntax) and the table in
:mod:`ssg_dmi.contract`; :func:`write_site_files` is the one place that touches the disk.
"""

from __future__ import annotations

import functools
import json
import pkgutil
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from ..contract import CONTRACT, AgentClass
from ..policy import DMI, ImagePolicy
from ..settings import Settings

BEGIN = "# BEGIN ssg-dmi (generated; edits inside are replaced)"
END = "# END ssg-dmi"
# Token-only agents that must be blocked with training even if the data file drops them.
ALWAYS_TRAINING = ("Google-Extended", "Applebot-Extended")
# Spawning's generator lists file types besides `Disallow: /`; some readers only match those.
AI_TXT_TYPES = ("jpg", "jpeg", "png", "gif", "webp", "avif", "svg", "tif", "tiff", "heic")
_GLOB_SPECIAL = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SitePolicy:
    """The site-wide DMI value and path overrides, as robots.txt patterns (``/gallery/``,
    ``/*.png$``, ``/a/b.jpg$``) that already carry the site's base path."""

    dmi: DMI
    overrides: tuple[tuple[str, DMI], ...] = ()
    base: str = "/"
    notes: tuple[str, ...] = ()

    def layers(self) -> list[tuple[str, DMI]]:
        """Site-wide first, then overrides from least to most specific (longest pattern last:
        the robots.txt rule that protego, Google and RFC 9309 apply)."""
        return [(self.base, self.dmi), *sorted(self.overrides, key=lambda o: (len(o[0]), o[0]))]


def glob_to_pattern(glob: str) -> str | None:
    """A settings path glob as an equivalent robots.txt pattern (without the base path), or
    None when robots.txt syntax cannot say exactly the same (``*`` there crosses folders)."""
    g = glob.strip().strip("/")
    if g in ("", "*", "**"):
        return "/"
    if "/" not in g:  # settings match a slash-less glob against the file name only
        tail = g[1:]
        ok = g.startswith("*") and tail and not _GLOB_SPECIAL.search(tail)
        return f"/*{quote_path(tail)}$" if ok else None
    segs = g.split("/")
    n = next((i for i, s in enumerate(segs) if _GLOB_SPECIAL.search(s)), len(segs))
    prefix = "/" + "".join(quote_path(s) + "/" for s in segs[:n])
    rest = segs[n:]
    if not rest:
        return prefix[:-1] + "$"
    if rest in (["**"], ["**", "*"]):
        return prefix
    last = rest[-1][1:]
    if len(rest) == 2 and rest[0] == "**" and rest[1].startswith("*") and last:
        return None if _GLOB_SPECIAL.search(last) else f"{prefix}*{quote_path(last)}$"
    return None


# Where TDMRep's site-wide file lives (TDMRep 1.0, section 3.1).
TDMREP_PATH = ".well-known/tdmrep.json"


def quote_path(text: str) -> str:
    """A site path percent-encoded as robots.txt patterns and URL paths spell it."""
    # `$` and `#` mean end-of-URL and comment in robots.txt: percent-encode them with the rest.
    return quote(text, safe="/!&'()+,;=:@")


def site_policy(settings: Settings, page_overrides: Mapping[str, DMI] | None = None) -> SitePolicy:
    """The :class:`SitePolicy` of ``settings``: its rules that set ``dmi`` (globs translated
    to robots.txt patterns; untranslatable ones skipped with a note), then ``page_overrides``
    (exact site-relative paths, e.g. from front matter), which win."""
    base = settings.base_url if settings.base_url.startswith("/") else "/"
    site_dmi = settings.policy.get("dmi", ImagePolicy().dmi)
    found: dict[str, DMI] = {}
    notes: list[str] = []
    ruled: list[tuple[str, DMI]] = []
    for rule in settings.rules:
        dmi = rule.values.get("dmi")
        if not isinstance(dmi, DMI):
            continue
        pattern = glob_to_pattern(rule.path)
        if pattern is None:
            notes.append(
                f"rule `{rule.path}`: no robots.txt pattern says exactly this, so ai.txt, "
                "robots.txt, tdmrep.json and server headers leave it out (image metadata "
                "still carries it); use `dir/**`, `*.png`, `dir/**/*.png` or an exact path"
            )
            continue
        ruled.append((pattern, dmi))
        found[base + pattern[1:]] = dmi
        if pattern.endswith("$"):  # the file's variants: `photo.png-480w.<hash>.webp`
            found[base + pattern[1:-1] + "-"] = dmi
    for i, (a, dmi_a) in enumerate(ruled):
        for b, dmi_b in ruled[i + 1 :]:
            if dmi_a != dmi_b and len(a) > len(b) and _may_overlap(a, b):
                notes.append(
                    f"rules `{a}` and `{b}` overlap: image metadata takes the later rule, "
                    "robots.txt and the other site files the longer pattern"
                )
    for relpath, dmi in (page_overrides or {}).items():
        path = quote_path(relpath.strip("/"))
        found[f"{base}{path}$"] = dmi
        if not path.lower().endswith((".html", ".htm")):  # an image: its variants too
            found[f"{base}{path}-"] = dmi
        if path == "index.html" or path.endswith("/index.html"):
            found[f"{base}{path[: -len('index.html')]}$"] = dmi  # the URL the page is served at
    if base in found:  # a rule for everything changes the site-wide value
        site_dmi = found.pop(base)
    return SitePolicy(site_dmi, tuple(found.items()), base, tuple(notes))


def _may_overlap(a: str, b: str) -> bool:
    if "*" in a or "*" in b:
        return True
    a, b = a.rstrip("$"), b.rstrip("$")
    return a.startswith(b) or b.startswith(a)


@functools.cache
def ai_agents() -> dict[str, AgentClass]:
    """The AI crawler tokens of ``data/ai-agents.json`` and their classes."""
    # pkgutil, not importlib.resources: that one imports zipfile, a cost on every build.
    data = pkgutil.get_data("ssg_dmi", "data/ai-agents.json")
    if data is None:
        raise FileNotFoundError("ssg_dmi/data/ai-agents.json: the package is incomplete")
    raw = json.loads(data.decode("utf-8"))
    agents = {token: AgentClass(value) for token, value in raw["agents"].items()}
    for token in ALWAYS_TRAINING:
        agents[token] = AgentClass.TRAINING
    return agents


def _header(kind: str, site: SitePolicy) -> list[str]:
    lines = [f"# {kind} written by ssg-dmi. Site-wide data-mining policy: {site.dmi.key}"]
    if site.base != "/":  # crawlers never look for these files below the host root
        lines.append(f"# The site lives under {site.base}: copy these lines to the host's root.")
    return lines + [f"# {pattern}: {dmi.key}" for pattern, dmi in site.overrides]


def ai_txt(site: SitePolicy) -> str:
    """Spawning's ``/ai.txt`` (robots.txt grammar, read when media is fetched for training)."""
    layers = [(p, CONTRACT[d].ai_txt_disallow) for p, d in site.layers()]
    # A "no rule" value can only be said as Allow once something else disallows.
    if not any(block for _, block in layers):
        layers = [(p, block) for p, block in layers if block is not None]
    lines = _header("ai.txt (Spawning AI opt-out)", site)
    if not layers:
        return "\n".join([*lines, "# Nothing is restricted.", ""])
    lines.append("User-Agent: *")
    for i, (pattern, block) in enumerate(reversed(layers)):  # most specific first
        lines.append(f"{'Disallow' if block else 'Allow'}: {pattern}")
        if block and i == len(layers) - 1:
            stem = "" if site.base == "/" else site.base
            lines += [f"Disallow: {stem}*.{ext}" for ext in AI_TXT_TYPES]
    return "\n".join([*lines, ""])


def tdmrep_json(site: SitePolicy, tdm_policy: str | None) -> str:
    """``/.well-known/tdmrep.json``: TDMRep rules, the first matching one applies, so the
    most specific comes first. An unset value under a reserving rule becomes 0 (not reserved),
    since leaving it out would let the broader reservation apply."""
    layers = [(p, CONTRACT[d].tdm_reservation) for p, d in site.layers()]
    reserves = any(value == 1 for _, value in layers)
    rules: list[dict[str, str | int]] = []
    for pattern, value in reversed(layers):
        if value is None and not reserves:
            continue
        rule: dict[str, str | int] = {"location": pattern, "tdm-reservation": value or 0}
        if value == 1 and tdm_policy:
            rule["tdm-policy"] = tdm_policy
        rules.append(rule)
    return json.dumps(rules, indent=2) + "\n"


def _split(existing: str) -> tuple[str, int | None]:
    """``existing`` without its ssg-dmi section(s), and where the first one began."""
    out: list[str] = []
    at: int | None = None
    inside = False
    for line in existing.splitlines(keepends=True):
        key = line.strip()
        if not inside and key.startswith("# BEGIN ssg-dmi"):
            inside = True
            at = sum(map(len, out)) if at is None else at
        elif inside:
            inside = key != END
        else:
            out.append(line)
    return "".join(out), at


def merge_section(existing: str | None, body: str, *, at_start: bool = False) -> str:
    """``existing`` with the ssg-dmi section replaced by ``body`` (every other byte kept).

    A file without a section gets one appended (or prepended with ``at_start``); a file with
    several keeps one, where the first was. A BEGIN line without END runs to the end of file.
    """
    section = f"{BEGIN}\n{body}{END}\n" if not body or body.endswith("\n") else ""
    section = section or f"{BEGIN}\n{body}\n{END}\n"
    if not existing:
        return section
    rest, at = _split(existing)
    if at is not None:
        return rest[:at] + section + rest[at:]
    if at_start:
        return section + ("\n" if rest.strip() else "") + rest
    gap = ("" if rest.endswith("\n") else "\n") + ("\n" if rest.strip() else "")
    return rest + gap + section


def robots_groups(text: str) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """The (agents, Allow/Disallow rules) groups of a robots.txt, grouped as protego does."""
    groups: list[tuple[list[str], list[tuple[str, str]]]] = []
    after_agent = False
    for raw in text.splitlines():
        field, _, value = raw.split("#", 1)[0].partition(":")
        field, value = field.strip().lower(), value.strip()
        if not value or field in ("sitemap", "host"):
            continue
        if field in ("user-agent", "useragent"):
            if not after_agent:
                groups.append(([], []))
            groups[-1][0].append(value)
        elif groups and field in ("allow", "disallow"):
            groups[-1][1].append((field.capitalize(), value))
        after_agent = field in ("user-agent", "useragent")
    return groups


def robots_txt(
    existing: str | None,
    site: SitePolicy,
    block_search_engines: bool,
    content_usage: bool = False,
) -> str:
    """``existing`` robots.txt (kept byte for byte) with the ssg-dmi section appended/replaced.

    The section names the AI crawlers of the classes the value blocks, with ``Disallow:`` for
    the site and per-path Allow/Disallow lines for overrides. A crawler obeys only its most
    specific group (RFC 9309), so the Disallow lines of an existing ``User-agent: *`` group are
    repeated in ours. Groups naming the same agent are merged by protego and Google; where an
    existing group Allows a path as specific as our Disallow, the Allow wins (the site owner's
    explicit rule). Our ``User-agent: *`` group holds only Content-Signal (and ``Disallow:``
    for ``block_search_engines``); it comes after any existing one, so parsers that read just
    the first ``*`` group (Python's urllib.robotparser) still see the owner's.

    aipref's ``Content-Usage: [path] usage-pref`` lines join that group only with
    ``content_usage``: Lighthouse (13) calls them "Unknown directive" and fails its
    ``robots-txt`` audit, so by default they travel in the response headers alone.
    """
    outside_groups = robots_groups(_split(existing)[0] if existing else "")
    star_rules = (r for agents, rules in outside_groups if "*" in agents for r in rules)
    inherited = list(dict.fromkeys(r for r in star_rules if r[0] == "Disallow"))
    named = {a.lower() for agents, _ in outside_groups for a in agents}
    lines = _header("robots.txt section", site)
    lines.append("# Ordinary search engines are not blocked by any DMI value.")
    by_class: dict[tuple[tuple[str, str], ...], list[AgentClass]] = {}
    for cls in AgentClass:
        kinds = [
            ("Disallow" if cls in CONTRACT[d].blocked else "Allow", p) for p, d in site.layers()
        ]
        # Allow is the default: the site line is only needed when it disallows.
        rules = kinds[:1] if kinds[0][0] == "Disallow" else []
        # An Allow equal to an owner's `*` Disallow would tie, and ties go to Allow: drop it.
        rules += [r for r in reversed(kinds[1:]) if ("Disallow", r[1]) not in inherited]
        if any(kind == "Disallow" for kind, _ in rules):
            by_class.setdefault(tuple(dict.fromkeys(rules + inherited)), []).append(cls)
    for group_rules, classes in by_class.items():
        agents = sorted((a for a, c in ai_agents().items() if c in classes), key=str.casefold)
        lines += ["", f"# AI crawlers, {', '.join(c.value for c in classes)} (ai.robots.txt, MIT)"]
        also = [a for a in agents if a.lower() in named]
        if also:
            lines.append(f"# Also named above, merged with these rules: {', '.join(also)}")
        lines += [f"User-agent: {a}" for a in agents]
        lines += [f"{kind}: {pattern}" for kind, pattern in group_rules]
    star: list[str] = []
    if block_search_engines:
        star.append(f"Disallow: {site.base}")
    if signal := CONTRACT[site.dmi].content_signal:
        star.append(f"Content-Signal: {signal}")
    for pattern, dmi in reversed(site.layers() if content_usage else []):
        if usage := CONTRACT[dmi].content_usage:
            star.append(f"Content-Usage: {'' if pattern == '/' else pattern + ' '}{usage}")
    if star:
        lines += ["", "User-agent: *", *star]
    return merge_section(existing, "\n".join(lines) + "\n")
