"""Web-server configs that send the opt-out as HTTP response headers.

The tools that build training sets read response headers, not ai.txt or HTML meta:
img2dataset refuses an image whose ``X-Robots-Tag`` says ``noai``/``noimageai``, Spawning's
datadiligence reads ``X-Robots-Tag`` and ``tdm-reservation``. A static generator cannot send
headers itself, so this module writes each host's config: ``_headers`` (Netlify, Cloudflare
Pages), ``.htaccess`` (Apache ``mod_headers``), an nginx snippet and a Caddyfile snippet.
Every response (images, pages, everything else) gets the headers of the most specific
matching rule, as in robots.txt: ``X-Robots-Tag``, ``tdm-reservation``, ``tdm-policy``
(when reserved and configured) and ``Content-Usage``, per :mod:`ssg_dmi.contract`.

GitHub Pages cannot send custom headers at all. A site hosted there still carries the
opt-out in the files themselves (the XMP ``plus:DataMining`` value in every image), in the
pages' ``<meta name="robots">`` and ``<meta name="tdm-reservation">`` tags, in ``robots.txt``
and ``ai.txt``, and in ``/.well-known/tdmrep.json`` — but not in the response headers that
img2dataset and datadiligence check before downloading an image. Put a CDN that can add
headers (Cloudflare, Netlify) in front of it when that matters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from ..contract import CONTRACT
from ..policy import DMI
from ..settings import Settings
from .hotlink import (
    CLOUDFLARE_RULE,
    NETLIFY_EDGE_FUNCTION,
    caddy_hotlink,
    cloudflare_rule,
    htaccess_hotlink,
    netlify_edge_function,
    nginx_hotlink,
    nginx_hotlink_headers,
)
from .render import SitePolicy, merge_section

HEADERS = ("X-Robots-Tag", "tdm-reservation", "tdm-policy", "Content-Usage")
NGINX_SNIPPET = "ssg-dmi.nginx.conf"
NGINX_ADD_HEADER = "ssg-dmi.add_header.nginx.conf"
CADDY_SNIPPET = "ssg-dmi.caddy"
# Values that restrict nothing, to replace a broader rule's value where a host cannot unset.
_NEUTRAL = {"X-Robots-Tag": "all", "tdm-reservation": "0"}
_VARS = {name: "$ssg_dmi_" + name.lower().replace("-", "_") for name in HEADERS}
# Characters that would need escaping inside a quoted nginx/Apache regex: paths holding them
# are left out of the server configs (with a comment) rather than risk a config that fails.
_UNSAFE = re.compile(r"[\"'\\;{}#$%\s\x00-\x1f]")


def header_values(dmi: DMI, tdm_policy: str | None) -> dict[str, str | None]:
    """The response headers of one DMI value; None means the header is not sent."""
    signals = CONTRACT[dmi]
    reserved = signals.tdm_reservation
    return {
        "X-Robots-Tag": signals.x_robots_tag,
        "tdm-reservation": None if reserved is None else str(reserved),
        # nginx would read `$` as a variable: %24 is the same URL.
        "tdm-policy": tdm_policy.replace("$", "%24") if reserved == 1 and tdm_policy else None,
        "Content-Usage": signals.content_usage,
    }


def _regex(pattern: str) -> str | None:
    """A robots.txt pattern as a regex over the decoded request path (nginx ``$uri``, Apache
    ``%{REQUEST_URI}``), or None when the path holds characters we will not quote."""
    exact = pattern.endswith("$")
    parts = [unquote(part) for part in (pattern[:-1] if exact else pattern).split("*")]
    if any(_UNSAFE.search(part) for part in parts):
        return None
    return "^" + ".*".join(re.escape(part) for part in parts) + ("$" if exact else "")


def _headers_path(pattern: str) -> str | None:
    """A robots.txt pattern as a ``_headers`` path (one ``*`` splat at most, as Cloudflare
    requires; both hosts match the whole path)."""
    path = pattern[:-1] if pattern.endswith("$") else pattern + "*"
    return path if path.count("*") <= 1 and not re.search(r"\s", path) else None


def _comment(site: SitePolicy, what: str) -> list[str]:
    return [
        f"# {what} by ssg-dmi. Site-wide data-mining policy: {site.dmi.key};",
        "# overrides follow, the most specific last (later rules win).",
        *(f"# {pattern}: {dmi.key}" for pattern, dmi in site.overrides),
    ]


def netlify_headers(existing: str | None, site: SitePolicy, tdm_policy: str | None) -> str:
    """``existing`` ``_headers`` with the ssg-dmi section (put first, so rules the owner
    writes later refine ours).

    Both hosts apply every matching rule. Cloudflare Pages goes in file order and joins a
    repeated header with a comma, so an override first detaches (``! Name``) what a broader
    rule set. Netlify's parser skips those colon-less lines and cannot remove a header, so an
    override that lifts a restriction also sends a neutral value (``X-Robots-Tag: all``,
    Google's "no restrictions", and ``tdm-reservation: 0``) that replaces the broader one.
    """
    lines = _comment(site, "Response headers (Netlify, Cloudflare Pages)")
    sent: set[str] = set()
    for pattern, dmi in site.layers():
        path = _headers_path(pattern)
        values = header_values(dmi, tdm_policy)
        if path is None:
            lines.append(f"# skipped {pattern}: not expressible as a _headers path")
            continue
        for name, neutral in _NEUTRAL.items():
            if name in sent and not values[name]:
                values[name] = neutral
        body = [f"  ! {name}" for name in HEADERS if name in sent]
        body += [f"  {name}: {value}" for name, value in values.items() if value]
        if body:
            lines += [path, *body]
        sent |= {name for name, value in values.items() if value}
    return merge_section(existing, "\n".join(lines) + "\n", at_start=True)


def htaccess(
    existing: str | None, site: SitePolicy, tdm_policy: str | None, extra: str = ""
) -> str:
    """``existing`` ``.htaccess`` with the ssg-dmi ``mod_headers`` section (put first).

    ``<If>`` sections are applied after the other directives of the file, in order, so the
    site-wide lines come first and each override (least specific first) re-sets or unsets.
    The ``always`` table keeps our headers apart from the owner's ``Header set`` lines.
    """
    lines = [*_comment(site, "Apache mod_headers rules"), "<IfModule mod_headers.c>"]
    sent: set[str] = set()
    for pattern, dmi in site.layers():
        values = header_values(dmi, tdm_policy)
        body = [
            f'Header always set {name} "{value}"' if value else f"Header always unset {name}"
            for name, value in values.items()
            if value or name in sent
        ]
        sent |= {name for name, value in values.items() if value}
        if pattern == "/":
            lines += [f"    {line}" for line in body]
        elif (rx := _regex(pattern)) is None:
            lines.append(f"    # skipped {pattern}: path characters not supported here")
        elif body:
            lines += [f'    <If "%{{REQUEST_URI}} =~ m#{rx}#">', *(f"        {b}" for b in body)]
            lines.append("    </If>")
    lines.append("</IfModule>")
    return merge_section(existing, "\n".join(lines) + "\n" + extra, at_start=True)


def nginx_add_header() -> str:
    """The ``add_header`` lines alone, for a ``location`` that has its own ``add_header``
    (nginx then ignores the server-level ones); they read the variables the snippet sets."""
    lines = [
        "# ssg-dmi: include in any location {} that has its own add_header lines; nginx",
        f"# drops inherited add_header there. Needs {NGINX_SNIPPET} in the server {{}} block.",
    ]
    lines += [f"add_header {name} {var} always;" for name, var in _VARS.items()]
    return "\n".join(lines) + "\n"


def nginx_conf(site: SitePolicy, tdm_policy: str | None) -> str:
    """An nginx snippet to ``include`` inside ``server {}``.

    It sets one variable per header at server level (``if`` + ``set`` there is safe, unlike
    ``if`` inside a location; every ``if`` runs, so the most specific rule comes last) and adds
    the headers with them; nginx omits a header whose value is empty. Unlike a
    ``location ~* \\.(jpe?g|png)$`` block, this takes over no request handling from the
    server's own locations. nginx ignores server-level ``add_header`` in a location that has
    its own: include ``ssg-dmi.add_header.nginx.conf`` there too.
    """
    lines = _comment(site, "nginx headers")
    lines.append(f"# Use: server {{ ... include /path/to/{NGINX_SNIPPET}; }}")
    if site.layers()[0][0] != "/":
        lines += [f'set {var} "";' for var in _VARS.values()]
    for pattern, dmi in site.layers():
        values = header_values(dmi, tdm_policy)
        sets = [f'set {_VARS[name]} "{value or ""}";' for name, value in values.items()]
        if pattern == "/":
            lines += sets
        elif (rx := _regex(pattern)) is None:
            lines.append(f"# skipped {pattern}: path characters not supported here")
        else:
            lines += [f'if ($uri ~ "{rx}") {{', *(f"    {line}" for line in sets), "}"]
    lines += nginx_add_header().splitlines()[2:]
    return "\n".join(lines) + "\n"


def _caddy_value(value: str) -> str:
    """A header value as a quoted Caddyfile token. ``{`` would start a Caddy placeholder and
    ``"``/``\\`` end or escape the token: percent-encoded, as the one free-form value (the
    ``tdm-policy`` URL) means the same URL that way; the contract's values hold none of them."""
    for char in '\\"{}':
        value = value.replace(char, f"%{ord(char):02X}")
    return f'"{value}"'


def _may_overlap(a: str, b: str) -> bool:
    """Whether two robots.txt patterns can match one path (False only when provably not)."""
    if "*" in a or "*" in b:
        return True
    a, b = a.removesuffix("$"), b.removesuffix("$")
    return a.startswith(b) or b.startswith(a)


def caddy_conf(site: SitePolicy, tdm_policy: str | None) -> str:
    """A Caddyfile snippet to ``import`` inside a site block.

    Caddy runs every ``header`` directive whose matcher matches, in an order of its own (it
    sorts directives), so the most specific rule cannot simply come last as in nginx.
    Instead each rule gets a named matcher that excludes every more specific rule with other
    values (``not path_regexp``): at most one set of values applies to a request, whatever
    the order. ``path_regexp`` matches the decoded, cleaned path, case-sensitively, as nginx's
    ``$uri ~``. The headers are set when the request arrives, so they are on every response
    of the site block (errors included, as nginx's ``always``) and take over no request
    handling.
    """
    lines = [
        f"# Caddy headers by ssg-dmi. Site-wide data-mining policy: {site.dmi.key}.",
        "# Each rule applies only where no more specific rule with other values does, so the",
        "# order Caddy puts the header directives in does not matter. Use, in a site block:",
        "#   example.com {",
        "#       root * /srv/site",
        f"#       import /srv/site/{CADDY_SNIPPET}",
        "#       file_server",
        "#   }",
    ]
    layers = []
    for pattern, dmi in site.layers():
        rx = "" if pattern == "/" else _regex(pattern)
        if rx is None:
            lines.append(f"# skipped {pattern}: path characters not supported here")
        else:
            layers.append((pattern, rx, dmi))
    for i, (pattern, rx, dmi) in enumerate(layers):
        values = header_values(dmi, tdm_policy)
        body = [f"\t{name} {_caddy_value(value)}" for name, value in values.items() if value]
        if not body:  # nothing to send on these paths (the more specific rules still apply)
            continue
        matcher = [f"\tpath_regexp {rx}"] if rx else []
        matcher += [
            f"\tnot path_regexp {other_rx}"
            for other, other_rx, other_dmi in layers[i + 1 :]
            if header_values(other_dmi, tdm_policy) != values and _may_overlap(pattern, other)
        ]
        header = "header {"
        if matcher:
            name = f"@ssg_dmi_{i}"
            lines += [f"# {pattern}: {dmi.key}", f"{name} {{", *matcher, "}"]
            header = f"header {name} {{"
        lines += [header, *body, "}"]
    return "\n".join(lines) + "\n"


def host_files(
    site: SitePolicy, settings: Settings, read: Callable[[str], str | None]
) -> dict[str, str]:
    """The header config files for ``settings.hosts``: site-relative name -> text. ``read``
    gives the current text of a file in the site (None if absent), to merge into."""
    out: dict[str, str] = {}
    hosts = set(settings.hosts)
    if hosts & {"netlify", "cloudflare"}:
        out["_headers"] = netlify_headers(read("_headers"), site, settings.tdm_policy)
    hot, origin = settings.hotlink, settings.origin  # hotlink protection: opt-in
    if "apache" in hosts:
        extra = htaccess_hotlink(hot, origin, site.base) if hot else ""
        out[".htaccess"] = htaccess(read(".htaccess"), site, settings.tdm_policy, extra)
    if "nginx" in hosts:
        out[NGINX_SNIPPET] = nginx_conf(site, settings.tdm_policy)
        out[NGINX_ADD_HEADER] = nginx_add_header()
        if hot:
            out[NGINX_SNIPPET] += nginx_hotlink(hot, origin, site.base)
            out[NGINX_ADD_HEADER] += "\n".join(nginx_hotlink_headers()) + "\n"
    if "caddy" in hosts:
        out[CADDY_SNIPPET] = caddy_conf(site, settings.tdm_policy)
        if hot:
            out[CADDY_SNIPPET] += caddy_hotlink(hot, origin, site.base)
    if hot and "cloudflare" in hosts:
        out[CLOUDFLARE_RULE] = cloudflare_rule(hot, origin, site.base)
    if hot and "netlify" in hosts:
        out[NETLIFY_EDGE_FUNCTION] = netlify_edge_function(hot, origin, site.base)
    return out
