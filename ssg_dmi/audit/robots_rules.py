"""robots.txt-grammar files (robots.txt, ai.txt) read as a crawler reads them: may this
agent fetch this path? protego answers when it is installed, else a small RFC 9309 reader."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..sitefiles.render import robots_groups


def path_pattern(pattern: str) -> re.Pattern[str]:
    """A robots.txt (or TDMRep ``location``) pattern as a regex over the percent-encoded
    URL path: ``*`` any run of characters, a final ``$`` the end of the path."""
    exact = pattern.endswith("$")
    body = ".*".join(re.escape(p) for p in (pattern[:-1] if exact else pattern).split("*"))
    return re.compile(body + ("$" if exact else ""))


class SimpleRobots:
    """A small RFC 9309 reader, used when protego is not installed: the groups naming the
    agent (else ``*``), the longest matching rule, Allow on a tie. Groups are read as the
    robots.txt writer reads them (:func:`ssg_dmi.sitefiles.render.robots_groups`)."""

    def __init__(self, text: str) -> None:
        self.groups = [
            ([a.lower() for a in agents], [(field == "Allow", value) for field, value in rules])
            for agents, rules in robots_groups(text)
        ]

    def can_fetch(self, path: str, agent: str) -> bool:
        """Whether ``agent`` may fetch ``path`` (percent-encoded, starting with ``/``)."""
        rules = [r for agents, rs in self.groups if agent.lower() in agents for r in rs]
        if not any(agent.lower() in agents for agents, _ in self.groups):
            rules = [r for agents, rs in self.groups if "*" in agents for r in rs]
        best: tuple[int, bool] = (-1, True)
        for allow, pattern in rules:
            if path_pattern(pattern).match(path):
                best = max(best, (len(pattern), allow))
        return best[1]


def robots_reader(text: str) -> Callable[[str, str], bool]:
    """``can_fetch(path, agent)`` of a robots.txt-grammar file: protego's when installed."""
    try:
        from protego import Protego  # optional: an independent reader, when installed
    except ImportError:
        return SimpleRobots(text).can_fetch
    parsed = Protego.parse(text)
    return lambda path, agent: bool(parsed.can_fetch("http://site.invalid" + path, agent))
