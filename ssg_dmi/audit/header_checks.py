"""The opt-out response headers of one served URL, against what
:func:`ssg_dmi.sitefiles.headers.header_values` gives for the value the path requires."""

from __future__ import annotations

import re
from email.message import Message

from ..policy import DMI
from ..sitefiles.headers import HEADERS, header_values
from .findings import Finding, Severity
from .page_facts import directive_set

_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")


def _x_robots(values: list[str]) -> set[str]:
    """The directives of X-Robots-Tag values meant for every crawler (no ``bot:`` token)."""
    out: set[str] = set()
    for value in values:
        head, sep, _ = value.partition(":")
        if sep and _TOKEN.fullmatch(head.strip()) and head.strip() != "unavailable_after":
            continue  # "otherbot: noai" addresses one crawler
        out |= directive_set([value])
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
            need = directive_set([value or ""])
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
