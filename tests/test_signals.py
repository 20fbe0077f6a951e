"""ai.txt, robots.txt and tdmrep.json, read back with protego (Scrapy's robots.txt parser)."""

from __future__ import annotations

import json
import urllib.robotparser
from pathlib import Path
from typing import Any

import pytest
from protego import Protego

from ssg_dmi.audit.site_files import compare_site_files
from ssg_dmi.contract import CONTRACT, AgentClass
from ssg_dmi.policy import DMI
from ssg_dmi.settings import load_settings
from ssg_dmi.sitefiles.headers import header_values
from ssg_dmi.sitefiles.render import (
    BEGIN,
    END,
    SitePolicy,
    ai_agents,
    ai_txt,
    glob_to_pattern,
    merge_section,
    robots_txt,
    site_policy,
    tdmrep_json,
)
from ssg_dmi.sitefiles.writer import write_site_files

from .readers import content_usage

ROBOTS_JSON = Path(__file__).resolve().parents[2] / "shared/data/ai-robots-txt/robots.json"
DATA = Path(__file__).resolve().parents[1] / "ssg_dmi/data/ai-agents.json"
URL = "https://example.org"
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT_UA = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
SEARCH_ENGINES = ("Googlebot", "Googlebot-Image", "Bingbot", "Applebot", "DuckDuckBot", "YandexBot")
EXTRA = {  # the keys the "see …" values require
    DMI.PROHIBITED_SEECONSTRAINT: {"other_constraints": "Ask first"},
    DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR: {"embedded_rights_expression": "{}"},
    DMI.PROHIBITED_SEELINKEDRIGHTSEXPR: {"linked_rights_expression": "https://e.org/r"},
}


def policy(**raw: Any) -> SitePolicy:
    return site_policy(load_settings(raw))


def can(text: str, path: str, agent: str) -> bool:
    return Protego.parse(text).can_fetch(URL + path, agent)


def training_agents() -> list[str]:
    return [a for a, c in ai_agents().items() if c is AgentClass.TRAINING]


# --- the crawler data file -------------------------------------------------------------------


def test_data_file_classifies_every_token_once_with_provenance() -> None:
    data = json.loads(DATA.read_text("utf-8"))
    prov, agents = data["provenance"], data["agents"]
    assert prov["licence"] == "MIT" and prov["copyright"].startswith("Copyright (c) 2024")
    assert "ai.robots.txt" in prov["source"] and prov["method"]
    assert set(agents.values()) <= {c.value for c in AgentClass}
    assert prov["agents"] == len(agents)
    assert not set(agents) & set(prov["excluded"])
    assert prov["source_agents"] == len(agents) + len(prov["excluded"])
    for name in ("GPTBot", "CCBot", "ClaudeBot", "Google-Extended", "Applebot-Extended"):
        assert agents[name] == "training"
    assert agents["OAI-SearchBot"] == agents["PerplexityBot"] == "ai-search"
    assert agents["ChatGPT-User"] == agents["Claude-User"] == agents["Perplexity-User"] == "agent"
    assert not {a.lower() for a in agents} & {s.lower() for s in SEARCH_ENGINES}
    if ROBOTS_JSON.is_file():  # the upstream copy lives beside the repository
        tokens = list(json.loads(ROBOTS_JSON.read_text("utf-8")))
        assert sorted(tokens) == sorted([*agents, *prov["excluded"]])
        assert len(tokens) == len(set(tokens))


# --- site policy from settings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "pattern"),
    [
        ("gallery/**", "/gallery/"),
        ("/gallery/**/", "/gallery/"),
        ("gallery/**/*", "/gallery/"),
        ("**/*.png", "/*.png$"),
        ("*.png", "/*.png$"),
        ("gallery/**/*.jpg", "/gallery/*.jpg$"),
        ("a/b.jpg", "/a/b.jpg$"),
        ("a b/c$.jpg", "/a%20b/c%24.jpg$"),
        ("**", "/"),
        ("gallery/*", None),  # `*` stays in one folder; robots.txt `*` does not
        ("gallery/*.jpg", None),
        ("photo-*.jpg", None),
        ("logo.png", None),  # a file name anywhere
        ("a/**/b.jpg", None),
        ("a/[ab].jpg", None),
    ],
)
def test_glob_to_pattern(glob: str, pattern: str | None) -> None:
    assert glob_to_pattern(glob) == pattern


def test_site_policy_rules_pages_base_and_notes() -> None:
    settings = load_settings(
        {
            "base_url": "https://e.org/docs/",
            "rules": [
                {"path": "gallery/**", "dmi": "DMI-ALLOWED"},
                {"path": "gallery/*", "dmi": "DMI-PROHIBITED"},
                {"path": "press/**", "copyright": "Press"},  # no dmi: no site-file rule
            ],
        }
    )
    site = site_policy(settings, {"blog/post/index.html": DMI.PROHIBITED})
    assert site.base == "/docs/" and site.dmi is DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING
    assert dict(site.overrides) == {
        "/docs/gallery/": DMI.ALLOWED,
        "/docs/blog/post/index.html$": DMI.PROHIBITED,
        "/docs/blog/post/$": DMI.PROHIBITED,
    }
    assert len(site.notes) == 1 and "`gallery/*`" in site.notes[0]
    assert policy(rules=[{"path": "**", "dmi": "DMI-ALLOWED"}]).dmi is DMI.ALLOWED


# --- ai.txt ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dmi", "present", "absent"),
    [
        (
            "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING",
            ["User-Agent: *", "Disallow: /\n"],
            ["Allow"],
        ),
        ("DMI-PROHIBITED", ["Disallow: /\n", "Disallow: *.jpg\n", "Disallow: *.png\n"], []),
        ("DMI-ALLOWED", ["User-Agent: *\nAllow: /\n"], ["Disallow"]),
        ("DMI-UNSPECIFIED", ["Nothing is restricted"], ["User-Agent", "Allow", "Disallow"]),
    ],
)
def test_ai_txt_table(dmi: str, present: list[str], absent: list[str]) -> None:
    text = ai_txt(policy(dmi=dmi))
    assert text.startswith("# ai.txt") and "ssg-dmi" in text.splitlines()[0] and dmi in text
    assert all(p in text for p in present) and not any(a in text for a in absent)


@pytest.mark.parametrize("agent", ["*", "img2dataset"])
def test_ai_txt_read_by_protego(agent: str) -> None:
    default = ai_txt(policy())
    assert not can(default, "/x.jpg", agent) and not can(default, "/", agent)
    allowed = ai_txt(policy(dmi="DMI-ALLOWED"))
    assert can(allowed, "/x.jpg", agent)
    assert can(ai_txt(policy(dmi="DMI-UNSPECIFIED")), "/x.jpg", agent)
    mixed = ai_txt(policy(rules=[{"path": "gallery/**", "dmi": "DMI-ALLOWED"}]))
    assert can(mixed, "/gallery/x.jpg", agent) and not can(mixed, "/x.jpg", agent)
    # An unspecified path under a prohibiting site is not restricted (Allow), as its XMP says.
    loose = ai_txt(policy(rules=[{"path": "free/**", "dmi": "DMI-UNSPECIFIED"}]))
    assert can(loose, "/free/x.png", agent) and not can(loose, "/x.png", agent)


def test_ai_txt_base_path() -> None:
    text = ai_txt(policy(base_url="/docs/"))
    assert "Disallow: /docs/\n" in text and "Disallow: /docs/*.jpg\n" in text


# --- tdmrep.json -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, [{"location": "/", "tdm-reservation": 1}]),
        (
            {"tdm_policy": "https://e.org/tdm"},
            [{"location": "/", "tdm-reservation": 1, "tdm-policy": "https://e.org/tdm"}],
        ),
        (
            {"dmi": "DMI-ALLOWED", "tdm_policy": "https://e.org/tdm"},
            [{"location": "/", "tdm-reservation": 0}],
        ),
        ({"dmi": "DMI-UNSPECIFIED"}, []),
        (
            {"dmi": "DMI-UNSPECIFIED", "rules": [{"path": "art/**", "dmi": "DMI-PROHIBITED"}]},
            [{"location": "/art/", "tdm-reservation": 1}, {"location": "/", "tdm-reservation": 0}],
        ),
        (
            {
                "rules": [
                    {"path": "gallery/**", "dmi": "DMI-ALLOWED"},
                    {"path": "gallery/private/**", "dmi": "DMI-PROHIBITED"},
                ]
            },
            [
                {"location": "/gallery/private/", "tdm-reservation": 1},
                {"location": "/gallery/", "tdm-reservation": 0},
                {"location": "/", "tdm-reservation": 1},
            ],
        ),
    ],
)
def test_tdmrep_json_table(raw: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    settings = load_settings(raw)
    text = tdmrep_json(site_policy(settings), settings.tdm_policy)
    assert json.loads(text) == expected and text.endswith("\n")


# --- robots.txt ------------------------------------------------------------------------------


def test_default_blocks_training_agents_and_no_search_engine() -> None:
    text = robots_txt(None, policy(), False)
    assert text.startswith(BEGIN + "\n") and text.endswith(END + "\n")
    named = ["GPTBot", "CCBot", "Google-Extended", "ClaudeBot", "Bytespider", "Applebot-Extended"]
    for agent in [*named, *training_agents()]:
        for path in ("/", "/img/a.jpg"):
            assert not can(text, path, agent), (agent, path)
    for agent in (*SEARCH_ENGINES, GOOGLEBOT_UA, BINGBOT_UA):
        assert can(text, "/img/a.jpg", agent) and can(text, "/", agent), agent
    assert "User-agent: *\nContent-Signal: search=yes, ai-input=no, ai-train=no\n" in text
    # Lighthouse fails robots.txt on any Content-Usage line: it goes in the headers only.
    assert "Content-Usage" not in text


def test_aimltraining_blocks_only_training() -> None:
    text = robots_txt(None, policy(dmi="DMI-PROHIBITED-AIMLTRAINING"), False)
    assert not can(text, "/a.jpg", "GPTBot") and not can(text, "/a.jpg", "Google-Extended")
    for agent in ("PerplexityBot", "OAI-SearchBot", "ChatGPT-User", "Claude-User", "Googlebot"):
        assert can(text, "/a.jpg", agent), agent


@pytest.mark.parametrize("dmi", ["DMI-ALLOWED", "DMI-UNSPECIFIED"])
def test_allowed_and_unspecified_block_nothing(dmi: str) -> None:
    text = robots_txt("User-agent: *\nDisallow: /private/\n", policy(dmi=dmi), False)
    assert "User-agent: GPTBot" not in text
    assert can(text, "/a.jpg", "GPTBot") and not can(text, "/private/a", "GPTBot")


def test_gallery_override_lets_gptbot_in_there_only() -> None:
    text = robots_txt(None, policy(rules=[{"path": "gallery/**", "dmi": "DMI-ALLOWED"}]), False)
    assert can(text, "/gallery/x.jpg", "GPTBot") and not can(text, "/x.jpg", "GPTBot")
    assert "Content-Usage" not in text


def usage_rules(text: str) -> list[tuple[str | None, dict[str, str]]]:
    """The ``Content-Usage: [path] usage-pref`` rules of a robots.txt
    (draft-ietf-aipref-attach-05), each preference read by a Structured Fields parser."""
    rules = []
    for line in text.splitlines():
        field, _, value = line.split("#")[0].partition(":")
        if field.strip().lower() == "content-usage":
            path, _, pref = value.strip().partition(" ")
            if not path.startswith("/"):  # no path: the preference is the whole value
                path, pref = "", value.strip()
            rules.append((path or None, content_usage(pref)))
    return rules


def test_robots_content_usage_is_opt_in() -> None:
    site = policy(rules=[{"path": "gallery/**", "dmi": "DMI-ALLOWED"}])
    text = robots_txt(None, site, False, content_usage=True)
    # Inside our `User-agent: *` group, most specific path first.
    assert "User-agent: *\nContent-Signal: search=yes, ai-input=no, ai-train=no\n" in text
    assert usage_rules(text) == [
        ("/gallery/", {"train-ai": "y", "ai-use": "y", "search": "y"}),
        (None, {"train-ai": "n", "ai-use": "n", "search": "y"}),
    ]
    assert can(text, "/gallery/x.jpg", "GPTBot") and not can(text, "/x.jpg", "GPTBot")
    assert usage_rules(robots_txt(None, site, False)) == []


@pytest.mark.parametrize("flag", [False, True])
def test_robots_content_usage_setting_is_written_and_checked(flag: bool, tmp_path: Path) -> None:
    settings = load_settings({"robots_content_usage": flag})
    assert settings.robots_content_usage is flag
    write_site_files(tmp_path, site_policy(settings), settings)

    def read(name: str) -> str | None:
        path = tmp_path / name
        return path.read_text("utf-8") if path.is_file() else None

    assert bool(usage_rules(read("robots.txt") or "")) is flag
    assert compare_site_files(read, settings, site_policy(settings)) == []
    other = load_settings({"robots_content_usage": not flag})
    findings = compare_site_files(read, other, site_policy(other))
    assert [(f.code, f.path) for f in findings] == [("site-file-inconsistent", "robots.txt")]


def test_override_that_blocks_more_adds_a_group() -> None:
    site = policy(
        dmi="DMI-PROHIBITED-AIMLTRAINING", rules=[{"path": "art/**", "dmi": "DMI-PROHIBITED"}]
    )
    text = robots_txt("User-agent: *\nDisallow: /private/\n", site, False)
    assert not can(text, "/art/a.jpg", "PerplexityBot") and can(text, "/a.jpg", "PerplexityBot")
    # PerplexityBot now has a group of its own, so it would ignore the `*` group: the owner's
    # Disallow lines are repeated there.
    assert not can(text, "/private/a", "PerplexityBot")
    assert not can(text, "/a.jpg", "GPTBot") and can(text, "/a.jpg", "Googlebot")


def test_existing_robots_txt_is_kept_and_still_effective() -> None:
    existing = "Sitemap: https://e.org/sitemap.xml\nUser-agent: *\nDisallow: /private/\n"
    text = robots_txt(existing, policy(), False)
    assert text.startswith(existing + "\n" + BEGIN)
    for agent in ("Googlebot", GOOGLEBOT_UA, "GPTBot", "PerplexityBot"):
        assert not can(text, "/private/x.html", agent), agent
    assert can(text, "/public.html", "Googlebot")
    # A parser that reads only the first `*` group (Python's) still gets the owner's.
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(text.splitlines())
    assert not parser.can_fetch("Googlebot", URL + "/private/x")
    assert parser.can_fetch("Googlebot", URL + "/x") and not parser.can_fetch("GPTBot", URL + "/x")


def test_an_owners_explicit_allow_for_an_ai_agent_wins() -> None:
    # protego and Google merge groups of one agent; an Allow as specific as a Disallow wins.
    text = robots_txt("User-agent: GPTBot\nAllow: /\n", policy(), False)
    assert can(text, "/img/a.jpg", "GPTBot")
    assert "# Also named above, merged with these rules: GPTBot" in text
    assert not can(text, "/img/a.jpg", "CCBot")
    # A narrower owner rule only adds to ours.
    text = robots_txt("User-agent: GPTBot\nDisallow: /x/\n", policy(dmi="DMI-ALLOWED"), False)
    assert not can(text, "/x/a", "GPTBot") and can(text, "/a", "GPTBot")


@pytest.mark.parametrize(
    "existing",
    [None, "", "User-agent: *\nDisallow: /p/", "# mine\r\nUser-agent: *\r\nAllow: /\r\n"],
)
def test_robots_txt_is_idempotent(existing: str | None) -> None:
    site = policy(rules=[{"path": "gallery/**", "dmi": "DMI-ALLOWED"}])
    once = robots_txt(existing, site, False)
    assert robots_txt(once, site, False) == once
    assert once.count(BEGIN) == once.count(END) == 1
    if existing:
        assert once.startswith(existing)
    changed = robots_txt(once, policy(dmi="DMI-ALLOWED"), True)
    assert changed.count(BEGIN) == 1 and "User-agent: GPTBot" not in changed
    assert robots_txt(changed, site, False) == once


def test_block_search_engines() -> None:
    text = robots_txt(None, policy(), True)
    assert not can(text, "/", "Googlebot") and not can(text, "/a.jpg", BINGBOT_UA)


def test_merge_section_edge_cases() -> None:
    two = f"a\n{BEGIN}\nold\n{END}\nb\n{BEGIN}\nold2\n{END}\nc\n"
    assert merge_section(two, "new\n") == f"a\n{BEGIN}\nnew\n{END}\nb\nc\n"
    assert merge_section(f"a\n{BEGIN}\nlost end\n", "n") == f"a\n{BEGIN}\nn\n{END}\n"
    assert merge_section("x", "n\n", at_start=True) == f"{BEGIN}\nn\n{END}\n\nx"
    assert merge_section("x", "n\n") == f"x\n\n{BEGIN}\nn\n{END}\n"


# --- every value --------------------------------------------------------------------------

TRAINING_PROHIBITED = {d for d in DMI if d.key.startswith("DMI-PROHIBITED")}
_TRAINING_VALUES = {DMI.PROHIBITED_AIMLTRAINING, DMI.PROHIBITED_GENAIMLTRAINING}
GENERATIVE_INPUT_PROHIBITED = {
    DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING,
    DMI.PROHIBITED,
    DMI.PROHIBITED_SEECONSTRAINT,
    DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR,
    DMI.PROHIBITED_SEELINKEDRIGHTSEXPR,
}


@pytest.mark.parametrize("dmi", list(DMI))
def test_content_usage_is_aipref_vocab_08(dmi: DMI) -> None:
    """Each value's Content-Usage, read by a Structured Fields parser: only the labels
    train-ai, ai-use and search, each y/n; agreeing with Content-Signal where both speak."""
    signals = CONTRACT[dmi]
    header = header_values(dmi, None)["Content-Usage"]
    assert header == signals.content_usage
    if dmi is DMI.UNSPECIFIED:
        assert header is None and signals.content_signal is None
        return
    assert header is not None and signals.content_signal is not None
    usage = content_usage(header)
    assert usage.get("train-ai") == ("n" if dmi in TRAINING_PROHIBITED else "y")
    assert usage.get("ai-use") == (
        "n" if dmi in GENERATIVE_INPUT_PROHIBITED else "y" if dmi is DMI.ALLOWED else None
    )
    cloudflare = dict(p.strip().split("=") for p in signals.content_signal.split(","))
    same = {"train-ai": "ai-train", "ai-use": "ai-input", "search": "search"}
    for label, value in usage.items():
        assert cloudflare[same[label]] == {"y": "yes", "n": "no"}[value], label
    assert usage.get("search") == (
        "n" if dmi is DMI.PROHIBITED else None if dmi in _TRAINING_VALUES else "y"
    )


@pytest.mark.parametrize("dmi", list(DMI))
def test_every_value_gives_valid_files(dmi: DMI, tmp_path: Path) -> None:
    raw = {"dmi": dmi.key, **EXTRA.get(dmi, {}), "tdm_policy": "https://e.org/tdm"}
    raw["hosts"] = ["netlify", "apache", "nginx"]
    settings = load_settings(raw)
    site = site_policy(settings)
    signals = CONTRACT[dmi]
    tdm = json.loads(tdmrep_json(site, settings.tdm_policy))
    assert [r.get("tdm-reservation") for r in tdm] == (
        [] if signals.tdm_reservation is None else [signals.tdm_reservation]
    )
    robots = robots_txt("User-agent: *\nDisallow: /private/\n", site, False)
    parsed = Protego.parse(robots)
    assert parsed.can_fetch(URL + "/a.jpg", "Googlebot")
    assert not parsed.can_fetch(URL + "/private/a", "Googlebot")
    assert parsed.can_fetch(URL + "/a.jpg", "GPTBot") is (
        AgentClass.TRAINING not in signals.blocked
    )
    assert can(ai_txt(site), "/a.jpg", "img2dataset") is (signals.ai_txt_disallow is not True)
    for text in (robots, ai_txt(site)):  # every line is a comment or a known field
        for line in filter(
            None, (raw_line.split("#")[0].strip() for raw_line in text.splitlines())
        ):
            field = line.split(":", 1)[0].lower()
            # Only directives Lighthouse's robots-txt audit knows (no Content-Usage by default).
            assert field in {"user-agent", "allow", "disallow", "content-signal"}
    written = write_site_files(tmp_path, site, settings)
    assert {"ai.txt", "robots.txt", ".well-known/tdmrep.json", "_headers", ".htaccess"} <= set(
        written
    )
    assert write_site_files(tmp_path, site, settings) == []  # nothing changes the second time


def test_write_site_files_merges_existing(tmp_path: Path) -> None:
    (tmp_path / "robots.txt").write_bytes(b"User-agent: *\nDisallow: /caf\xc3\xa9/\n")
    (tmp_path / "_headers").write_text("/*\n  X-Frame-Options: DENY\n")
    settings = load_settings({"hosts": ["cloudflare"]})
    written = write_site_files(tmp_path, site_policy(settings), settings)
    assert sorted(written) == [".well-known/tdmrep.json", "_headers", "ai.txt", "robots.txt"]
    assert (tmp_path / "robots.txt").read_bytes().startswith(b"User-agent: *\nDisallow: /caf\xc3")
    assert (tmp_path / "_headers").read_text().endswith("\n/*\n  X-Frame-Options: DENY\n")
    assert not (tmp_path / ".htaccess").exists()
