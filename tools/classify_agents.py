"""Regenerate ``ssg_dmi/data/ai-agents.json`` from ai.robots.txt's ``robots.json``.

Usage: ``python tools/classify_agents.py [path/to/ai-robots-txt]`` (default: the copy in
``../shared/data/ai-robots-txt``). The JSON is committed; run this when robots.json changes
and review the diff — the rules below are heuristics over free text, so a new entry can land
in the wrong class until it gets an override.

Every token ends up in exactly one of ``training``, ``ai-search``, ``agent`` (the values of
``ssg_dmi.contract.AgentClass``) or in ``excluded`` with a reason.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "ai-robots-txt"
TARGET = ROOT / "ssg_dmi" / "data" / "ai-agents.json"
UPSTREAM = "https://github.com/ai-robots-txt/ai.robots.txt"

TRAINING, AI_SEARCH, AGENT = "training", "ai-search", "agent"

# Crawlers of ordinary search engines (or of link previews) are never put in robots.txt:
# blocking them would drop the site from search or break shared links, which no DMI value
# asks for. Their AI opt-outs are separate tokens (Applebot-Extended, meta-externalagent…).
EXCLUDED = {
    "Applebot": "Apple's search crawler (Spotlight, Siri and Safari suggestions): an ordinary "
    "search engine; Apple's training opt-out is the separate token Applebot-Extended",
    "Bravebot": "the crawler of Brave Search's own index: an ordinary search engine",
    "PetalBot": "the crawler of Huawei's Petal Search: an ordinary search engine",
    "facebookexternalhit": "Meta's link-preview fetcher: blocking it breaks previews of shared "
    "links; Meta's AI crawlers are the separate tokens meta-externalagent/-fetcher",
}

# Well-known or misread entries, decided by hand from the operators' own documentation.
OVERRIDES = {
    # Model training / dataset collection.
    "GPTBot": TRAINING,
    "CCBot": TRAINING,
    "ClaudeBot": TRAINING,
    "anthropic-ai": TRAINING,
    "Google-Extended": TRAINING,
    "Applebot-Extended": TRAINING,
    "Bytespider": TRAINING,
    "meta-externalagent": TRAINING,
    "Meta-ExternalAgent": TRAINING,
    "Amazonbot": TRAINING,  # Amazon: "may be used to train Amazon AI models"
    "OpenAI": TRAINING,  # purpose undocumented: treat as the strictest class
    "ImagesiftBot": TRAINING,  # bulk image scraper feeding an image index and AI products
    # AI search indexes (answer engines that cite the site).
    "OAI-SearchBot": AI_SEARCH,
    "PerplexityBot": AI_SEARCH,
    "Claude-SearchBot": AI_SEARCH,
    "YouBot": AI_SEARCH,
    "Andibot": AI_SEARCH,
    "iaskspider/2.0": AI_SEARCH,
    # Fetches a user asked for.
    "ChatGPT-User": AGENT,
    "Claude-User": AGENT,
    "Perplexity-User": AGENT,
    "MistralAI-User/1.0": AGENT,
    "BuddyBot": AGENT,
}

_BY_FUNCTION = {
    "AI Agents": AGENT,
    "AI Coding Agents": AGENT,
    "AI Search Crawlers": AI_SEARCH,
    "AI Data Scrapers": TRAINING,
    "AI data scraper": TRAINING,
    # Nothing known about what they do with the data: the strictest class.
    "Undocumented AI Agents": TRAINING,
}
_USER = re.compile(
    r"user[- ]initiated|on behalf of (?:\w+ )?users|in response to user|user prompts?"
    r"|users? requests?|when users ask|user actions|answer user (?:queries|questions)"
)
_TRAIN = re.compile(r"\btrain|dataset|data set|machine learning|\bsold\b")
_SEARCH = re.compile(r"\bsearch|\bindex|\bscans websites")


def classify(token: str, entry: dict[str, str]) -> str:
    """The class of one robots.json entry: override, then its category, then its text."""
    if token in OVERRIDES:
        return OVERRIDES[token]
    function = entry.get("function", "").strip()
    if function in _BY_FUNCTION:
        return _BY_FUNCTION[function]
    # Drop URLs first: knownagents.com/agents/… would read as "agent".
    text = re.sub(r"\S*://\S*", "", f"{function} {entry.get('description', '')}").lower()
    if function == "AI Assistants":
        return AI_SEARCH if _SEARCH.search(text) and not _USER.search(text) else AGENT
    if _USER.search(text):
        return AGENT
    if _TRAIN.search(text):
        return TRAINING
    if _SEARCH.search(text):
        return AI_SEARCH
    return TRAINING  # scrapers and data providers of unknown use: the strictest class


def build(source: Path) -> dict[str, object]:
    """The data file's content from a folder holding robots.json, LICENSE (and README.md)."""
    robots: dict[str, dict[str, str]] = json.loads((source / "robots.json").read_text("utf-8"))
    licence = (source / "LICENSE").read_text("utf-8")
    copyright_line = next(line for line in licence.splitlines() if "Copyright" in line)
    readme = source / "README.md"
    commit = re.search(r"\b[0-9a-f]{40}\b", readme.read_text("utf-8")) if readme.is_file() else None
    agents = {t: classify(t, e) for t, e in robots.items() if t not in EXCLUDED}
    unknown = sorted(set(OVERRIDES) - set(robots)) + sorted(set(EXCLUDED) - set(robots))
    if unknown:
        print(f"note: overrides/exclusions not in robots.json: {', '.join(unknown)}")
    return {
        "provenance": {
            "source": f"{UPSTREAM} robots.json",
            "commit": commit.group(0) if commit else None,
            "licence": "MIT",
            "copyright": copyright_line.strip(),
            "source_agents": len(robots),
            "agents": len(agents),
            "classes": {
                c: sum(v == c for v in agents.values()) for c in (TRAINING, AI_SEARCH, AGENT)
            },
            "method": (
                "Generated by tools/classify_agents.py. An explicit override list for well-known "
                "crawlers comes first; then the robots.json `function` category (AI Agents and AI "
                "Coding Agents: agent; AI Search Crawlers: ai-search; AI Data Scrapers and "
                "Undocumented AI Agents: training); then the `function`/`description` text: "
                "user-triggered wording -> agent, training/dataset wording -> training, "
                "search/index wording -> ai-search, anything else -> training (the strictest "
                "class, for crawlers whose use of the data is unknown)."
            ),
            "overrides": OVERRIDES,
            "excluded": EXCLUDED,
        },
        "agents": agents,
    }


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    data = build(source)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}: {data['provenance']['classes']}")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
