"""The policy → signals contract: what each DMI value means for every signal ssg-dmi writes.

One table, read by the HTML rewriter (page meta), the site-file renderers (ai.txt,
robots.txt, tdmrep.json) and the server-header renderers. The README prints it.
``DMI-ALLOWED`` and ``DMI-UNSPECIFIED`` block nothing; ordinary search engines are never
blocked by any value (``block_search_engines`` is the user's explicit ask for that).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .policy import DMI


class AgentClass(enum.Enum):
    """Classes of AI crawlers robots.txt can address (see ``data/ai-agents.json``)."""

    TRAINING = "training"  # collect data to train models (GPTBot, CCBot, Google-Extended…)
    AI_SEARCH = "ai-search"  # index content for AI answers/search (OAI-SearchBot, PerplexityBot…)
    AGENT = "agent"  # fetch on a user's request (ChatGPT-User, Claude-User…)


@dataclass(frozen=True)
class Signals:
    """Every signal one DMI value decides."""

    robots_meta: tuple[str, ...]  # directives merged into <meta name="robots">
    tdm_reservation: int | None  # <meta name="tdm-reservation"> / header / tdmrep.json; None: omit
    ai_txt_disallow: bool | None  # ai.txt: True Disallow /, False Allow /, None no rule
    blocked: frozenset[AgentClass]  # robots.txt agent classes given Disallow: /
    content_signal: str | None  # Cloudflare Content-Signal value
    # IETF aipref Content-Usage value (draft-ietf-aipref-vocab-08: only the labels train-ai,
    # ai-use and search, each y/n): the response header, and robots.txt lines when asked.
    content_usage: str | None
    x_robots_tag: str | None  # X-Robots-Tag header value

    @property
    def restricts(self) -> bool:
        """Whether this value asks for anything to be withheld."""
        return bool(self.robots_meta or self.blocked or self.tdm_reservation == 1)


_NOAI = ("noai", "noimageai")
_ALL_AI = frozenset(AgentClass)
_EXCEPT_SEARCH = Signals(
    robots_meta=_NOAI,
    tdm_reservation=1,
    ai_txt_disallow=True,
    blocked=_ALL_AI,
    content_signal="search=yes, ai-input=no, ai-train=no",
    content_usage="train-ai=n, ai-use=n, search=y",
    x_robots_tag="noai, noimageai",
)
# Training is out; answering users (AI search, agents) is not restricted.
_TRAINING_ONLY = Signals(
    robots_meta=_NOAI,
    tdm_reservation=1,
    ai_txt_disallow=True,
    blocked=frozenset({AgentClass.TRAINING}),
    content_signal="search=yes, ai-train=no",
    content_usage="train-ai=n",
    x_robots_tag="noai, noimageai",
)

CONTRACT: dict[DMI, Signals] = {
    DMI.UNSPECIFIED: Signals((), None, None, frozenset(), None, None, None),
    DMI.ALLOWED: Signals(
        robots_meta=(),
        tdm_reservation=0,
        ai_txt_disallow=False,
        blocked=frozenset(),
        content_signal="search=yes, ai-input=yes, ai-train=yes",
        content_usage="train-ai=y, ai-use=y, search=y",
        x_robots_tag=None,
    ),
    DMI.PROHIBITED_AIMLTRAINING: _TRAINING_ONLY,
    # aipref's train-ai is the training of generative models; for the broader "AI/ML training"
    # it is the nearest label, and both leave ai-use (generative input) unrestricted.
    DMI.PROHIBITED_GENAIMLTRAINING: _TRAINING_ONLY,
    DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING: _EXCEPT_SEARCH,
    # Search engines are still not blocked in robots.txt (only an explicit
    # block_search_engines does that), but the preference signals say search=no.
    DMI.PROHIBITED: Signals(
        robots_meta=_NOAI,
        tdm_reservation=1,
        ai_txt_disallow=True,
        blocked=_ALL_AI,
        content_signal="search=no, ai-input=no, ai-train=no",
        content_usage="train-ai=n, ai-use=n, search=n",
        x_robots_tag="noai, noimageai",
    ),
    # "Prohibited, see …": withheld like the default; the constraint or rights expression
    # (and tdm-policy, when configured) says what may be licensed.
    DMI.PROHIBITED_SEECONSTRAINT: _EXCEPT_SEARCH,
    DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR: _EXCEPT_SEARCH,
    DMI.PROHIBITED_SEELINKEDRIGHTSEXPR: _EXCEPT_SEARCH,
}


def signals(dmi: DMI) -> Signals:
    """The signals of one DMI value."""
    return CONTRACT[dmi]


def markdown_table() -> str:
    """The contract as the Markdown table printed in the README (a test keeps them equal)."""
    head = (
        "| DMI value | robots meta | tdm-reservation | ai.txt | robots.txt blocks "
        "| Content-Signal | Content-Usage | X-Robots-Tag |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for dmi, sig in CONTRACT.items():
        ai = {True: "Disallow: /", False: "Allow: /", None: "—"}[sig.ai_txt_disallow]
        blocked = ", ".join(c.value for c in AgentClass if c in sig.blocked) or "nothing"
        cells = [
            f"`{dmi.key}`",
            ", ".join(sig.robots_meta) or "—",
            "—" if sig.tdm_reservation is None else str(sig.tdm_reservation),
            ai,
            blocked,
            sig.content_signal or "—",
            sig.content_usage or "—",
            sig.x_robots_tag or "—",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"
