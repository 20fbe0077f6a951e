"""The checks of the site files (robots.txt, ai.txt, tdmrep.json, the hosts' header files),
read twice: compared with what :mod:`ssg_dmi.sitefiles` renders for the same policy, and
asked, as a crawler asks them, what they say about each path of the site."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from ..contract import CONTRACT, AgentClass
from ..policy import DMI
from ..settings import Settings
from ..sitefiles.headers import host_files
from ..sitefiles.render import (
    BEGIN,
    END,
    TDMREP_PATH,
    SitePolicy,
    ai_agents,
    ai_txt,
    quote_path,
    robots_txt,
    tdmrep_json,
)
from .findings import Finding
from .robots_rules import path_pattern, robots_reader

SITE_FILES = ("robots.txt", "ai.txt", TDMREP_PATH)
# One crawler per class stands for the class on every path; every crawler of a class is
# asked once, for the site's root.
_SAMPLE = {
    AgentClass.TRAINING: "GPTBot",
    AgentClass.AI_SEARCH: "OAI-SearchBot",
    AgentClass.AGENT: "ChatGPT-User",
}


def url_path(rel: str, base: str) -> str:
    """The percent-encoded URL path of a site path, as robots.txt patterns spell it."""
    return base + quote_path(rel)


# -- site files against what the build renders ---------------------------------------------


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
    texts = {name: read(name) for name in ("ai.txt", "robots.txt", TDMREP_PATH)}
    for name, text in texts.items():
        if text is None:
            out.append(Finding("site-file-missing", name, f"{name} is missing (site_files is on)"))
    if (text := texts["ai.txt"]) is not None:
        out += filter(None, [_differs("ai.txt", _lines(text), _lines(ai_txt(policy)), "ai.txt")])
    if (text := texts["robots.txt"]) is not None:
        expected = robots_txt(
            text,
            policy,
            settings.block_search_engines,
            content_usage=settings.robots_content_usage,
        )
        out += _compare_section("robots.txt", text, expected)
    if (text := texts[TDMREP_PATH]) is not None:
        try:
            data = json.loads(text)
        except ValueError as exc:
            out.append(Finding("site-file-inconsistent", TDMREP_PATH, f"not valid JSON ({exc})"))
        else:
            want = json.loads(tdmrep_json(policy, settings.tdm_policy))
            if data != want:
                message = (
                    f"its rules {json.dumps(data)} differ from the settings' {json.dumps(want)}"
                )
                out.append(Finding("site-file-inconsistent", TDMREP_PATH, message))
    for name, expected in host_files(policy, settings, read).items():
        text = read(name)
        if text is None:
            message = f"{name} is missing (hosts = {[h.value for h in settings.hosts]})"
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


def _tdmrep_value(rules: list[dict[str, object]], path: str) -> dict[str, object] | None:
    for rule in rules:
        location = rule.get("location")
        if isinstance(location, str) and path_pattern(location).match(path):
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
    if (text := texts.get(TDMREP_PATH)) is not None:
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
                    note(TDMREP_PATH, "does not reserve (tdm-reservation 1)", path)
                elif (
                    want == 1
                    and settings.tdm_policy
                    and rule
                    and rule.get("tdm-policy") != settings.tdm_policy
                ):
                    note(TDMREP_PATH, f"gives no tdm-policy {settings.tdm_policy} for", path)
                elif want == 0 and got == 1:
                    note(TDMREP_PATH, "reserves", path)
    out = []
    for (name, what), found in problems.items():
        values = sorted({paths[p].key for p in found if p in paths})
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        policies = ", ".join(values)
        message = f"{what} {len(found)} path(s) whose policy ({policies}) says otherwise: {shown}"
        out.append(Finding("site-file-inconsistent", where(name), message))
    return out
