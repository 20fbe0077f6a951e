"""Hotlink protection in the host configs: image requests whose ``Referer`` names another
site are answered 403.

Allowed: an empty Referer (direct visits, feed readers, ``no-referrer`` policies; unless
``allow_empty_referer = false``), the site's own host (``base_url`` when a full URL), the
``allow`` hosts and, unless ``allow_search_engines = false``, the search and social hosts
of :data:`~ssg_dmi.settings.hotlink.SEARCH_ENGINE_HOSTS`. Image responses carry
``Vary: Referer`` and a refusal ``Cache-Control: private, no-store``, so a CDN in front does
not serve one visitor's 403 to everyone.

nginx: ``valid_referers`` and two server-level ``if`` blocks appended to the header snippet
(``if`` + ``set``/``return`` at server level is safe, unlike ``if`` in a location, and the
owner's locations keep their request handling). Apache: mod_rewrite ``[F]`` in the
``.htaccess`` section. Caddy: a named matcher and ``respond 403`` in the Caddy snippet.
Cloudflare: a WAF custom-rule expression in a text file (the dashboard's Hotlink
Protection toggle covers gif/ico/jpg/jpeg/png only, not WebP or AVIF). Netlify's
``_headers``/``_redirects`` cannot match a Referer: an Edge Function does, written into the
output folder (ssg-dmi writes nothing outside it) for the owner to copy into
``netlify/edge-functions/`` (the README gives the step; the build summary says it).
Referers are forgeable: this limits embedding, it does not stop scrapers.
"""

from __future__ import annotations

import json
import re

from ..settings import Settings
from ..settings.globs import glob_to_regex
from ..settings.hotlink import SEARCH_ENGINE_HOSTS, HotlinkSettings

CLOUDFLARE_RULE = "ssg-dmi.cloudflare-hotlink.txt"
NETLIFY_EDGE_FUNCTION = "ssg-dmi.netlify-hotlink.js"
NETLIFY_DESTINATION = "netlify/edge-functions/ssg-dmi-hotlink.js"
NO_STORE = "private, no-store"
# Globs holding anything else are left out of the server configs (with a comment).
_SAFE_GLOB = re.compile(r"^[A-Za-z0-9._*?/\-\[\]!]+$")


def allowed_hosts(hotlink: HotlinkSettings, origin: str | None) -> list[str]:
    """Host patterns whose Referer may fetch images: the site's own, ``allow``, search."""
    hosts = []
    if origin:
        hosts.append(re.sub(r"^https?://|:\d+$", "", origin).lower())
    hosts += hotlink.allow
    if hotlink.allow_search_engines:
        hosts += SEARCH_ENGINE_HOSTS
    return list(dict.fromkeys(hosts))


def _host_rx(pattern: str) -> str:
    """A host pattern as a regex: ``*.`` = the host and any subdomain, ``.*`` = any TLD."""
    sub = pattern.startswith("*.")
    tld = pattern.endswith(".*")
    core = pattern[2 if sub else 0 : -2 if tld else None]
    rx = re.escape(core).replace(r"\-", "-")
    return ("(?:[a-z0-9-]+\\.)*" if sub else "") + rx + ("\\.[a-z.]+" if tld else "")


def referer_host_rx(hotlink: HotlinkSettings, origin: str | None) -> str:
    """The allowed hosts as one alternation (no anchors, no scheme)."""
    return "(?:" + "|".join(_host_rx(h) for h in allowed_hosts(hotlink, origin)) + ")"


def referer_rx(hotlink: HotlinkSettings, origin: str | None) -> str:
    """A regex a whole allowed ``Referer`` value matches (case-insensitively)."""
    return f"^https?://{referer_host_rx(hotlink, origin)}(?::[0-9]+)?(?:/|$)"


def paths_rx(hotlink: HotlinkSettings, base: str) -> tuple[str | None, list[str]]:
    """The ``paths`` globs as one regex over the decoded request path (under ``base``), and
    the globs left out; None when none is left."""
    parts, skipped = [], []
    for glob in hotlink.paths:
        if _SAFE_GLOB.match(glob):
            rx = glob_to_regex(glob).pattern
            parts.append(rx if "/" in glob.strip("/") else "(?:.*/)?" + rx)
        else:
            skipped.append(glob)
    if not parts:
        return None, skipped
    return "^" + re.escape(base) + "(?:" + "|".join(parts) + ")$", skipped


def _intro(what: str, hotlink: HotlinkSettings, skipped: list[str]) -> list[str]:
    return [
        f"# Hotlink protection by ssg-dmi ({what}): image requests whose Referer names another",
        "# site get 403. Allowed: "
        + ("an empty Referer, " if hotlink.allow_empty_referer else "")
        + "the site's own host, `allow`"
        + (", search and social hosts." if hotlink.allow_search_engines else "."),
        "# Referers are forgeable: this limits embedding, it does not stop scrapers.",
        *(f"# skipped path glob {g}: characters not supported here" for g in skipped),
    ]


def nginx_hotlink(hotlink: HotlinkSettings, origin: str | None, base: str) -> str:
    """Lines for the server-level nginx snippet, after the header lines."""
    rx, skipped = paths_rx(hotlink, base)
    lines = _intro("nginx", hotlink, skipped)
    if rx is None:
        return "\n".join(lines) + "\n"
    # valid_referers matches regexes against the text after "http://" or "https://".
    hosts = f"~^{referer_host_rx(hotlink, origin)}(?::[0-9]+)?(?:/|\\z)"
    empty = "none blocked " if hotlink.allow_empty_referer else ""
    lines += [
        f'valid_referers {empty}server_names "{hosts}";',
        'set $ssg_dmi_hotlink "";',
        'set $ssg_dmi_vary "";',
        'set $ssg_dmi_no_store "";',
        f'if ($uri ~* "{rx}") {{',
        "    set $ssg_dmi_hotlink $invalid_referer;",
        '    set $ssg_dmi_vary "Referer";',
        "}",
        "if ($ssg_dmi_hotlink) {",
        f'    set $ssg_dmi_no_store "{NO_STORE}";',
        "    return 403;",
        "}",
        *nginx_hotlink_headers(),
    ]
    return "\n".join(lines) + "\n"


def nginx_hotlink_headers() -> list[str]:
    """The ``add_header`` lines of hotlink protection (also needed in a location that has
    its own ``add_header``)."""
    return [
        "add_header Vary $ssg_dmi_vary always;",
        "add_header Cache-Control $ssg_dmi_no_store always;",
    ]


def htaccess_hotlink(hotlink: HotlinkSettings, origin: str | None, base: str) -> str:
    """Lines for the ssg-dmi section of ``.htaccess``."""
    rx, skipped = paths_rx(hotlink, base)
    lines = _intro("Apache", hotlink, skipped)
    if rx is None:
        return "\n".join(lines) + "\n"
    lines += [
        "<IfModule mod_rewrite.c>",
        "    RewriteEngine On",
        f'    RewriteCond %{{REQUEST_URI}} "{rx}" [NC]',
        *(["    RewriteCond %{HTTP_REFERER} !^$"] if hotlink.allow_empty_referer else []),
        f'    RewriteCond %{{HTTP_REFERER}} "!{referer_rx(hotlink, origin)}" [NC]',
        "    RewriteRule ^ - [F]",
        "</IfModule>",
        "<IfModule mod_headers.c>",
        f'    <If "%{{REQUEST_URI}} =~ m#{rx}#i">',
        "        Header always merge Vary Referer",
        f'        Header always set Cache-Control "{NO_STORE}" "expr=%{{REQUEST_STATUS}} == 403"',
        "    </If>",
        "</IfModule>",
    ]
    return "\n".join(lines) + "\n"


def caddy_hotlink(hotlink: HotlinkSettings, origin: str | None, base: str) -> str:
    """Lines for the Caddy snippet (imported in a site block)."""
    rx, skipped = paths_rx(hotlink, base)
    lines = _intro("Caddy", hotlink, skipped)
    if rx is None:
        return "\n".join(lines) + "\n"
    path = f'path_regexp "(?i){rx}"'
    lines += [
        f"@ssg_dmi_images {path}",
        "header @ssg_dmi_images +Vary Referer",
        "@ssg_dmi_hotlink {",
        f"\t{path}",
        *(["\theader Referer *"] if hotlink.allow_empty_referer else []),
        f'\tnot header_regexp Referer "(?i){referer_rx(hotlink, origin)}"',
        "}",
        f'header @ssg_dmi_hotlink Cache-Control "{NO_STORE}"',
        "respond @ssg_dmi_hotlink 403",
    ]
    return "\n".join(lines) + "\n"


def _cf_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cf_wildcard(glob: str, base: str) -> str:
    """A path glob as a Cloudflare ``wildcard`` pattern (``*`` crosses ``/`` there, and
    ``?``/``[...]`` become ``*``: the rule may cover a little more than the glob)."""
    glob = glob.strip("/")
    if "/" not in glob:
        glob = "**/" + glob
    pattern = re.sub(r"\[[^\]]*\]|\?", "*", glob).replace("**/", "*")
    return re.sub(r"\*+", "*", base + pattern)


def cloudflare_rule(hotlink: HotlinkSettings, origin: str | None, base: str) -> str:
    """A ready-to-paste WAF custom-rule expression, with the steps to add it."""
    paths = " or ".join(
        f"http.request.uri.path wildcard {_cf_string(_cf_wildcard(g, base))}" for g in hotlink.paths
    )
    hosts = []
    for host in allowed_hosts(hotlink, origin):
        body = host[2:] if host.startswith("*.") else host
        hosts.append(f"http.referer wildcard {_cf_string(f'http*://{body}/*')}")
        if host.startswith("*."):
            hosts.append(f"http.referer wildcard {_cf_string(f'http*://*.{body}/*')}")
    expression = f"({paths})"
    if hotlink.allow_empty_referer:
        expression += ' and http.referer ne ""'
    expression += " and not (" + " or ".join(hosts) + ")"
    return (
        "# Cloudflare hotlink protection by ssg-dmi. Cloudflare's Scrape Shield toggle covers\n"
        "# only gif/ico/jpg/jpeg/png, not the WebP and AVIF files ssg-dmi serves; this rule\n"
        "# covers them all. Dashboard: Security > WAF > Custom rules > Create rule > Edit\n"
        "# expression, paste the line below, action Block (a 403 that is not cached).\n"
        "# Referers are forgeable: this limits embedding, it does not stop scrapers.\n"
        f"{expression}\n"
    )


def netlify_edge_function(hotlink: HotlinkSettings, origin: str | None, base: str) -> str:
    """A Netlify Edge Function (JavaScript, Deno) that refuses hotlinked images by the same
    rules as the server configs; every other request goes on with ``context.next()``.

    It runs on every path (``path: "/*"``) and tests the decoded path itself: URLPattern
    paths are case-sensitive, the server configs' path match is not (``C.JPG``)."""
    rx, skipped = paths_rx(hotlink, base)
    intro = [line.replace("# ", "// ", 1) for line in _intro("Netlify", hotlink, skipped)]
    lines = [
        *intro,
        f"// Copy this file to {NETLIFY_DESTINATION} in the site's repository (or copy it",
        "// there in the build command, after the site is built); ssg-dmi rewrites it on",
        "// each build and never writes outside the output folder.",
        "",
        f"const IMAGES = {'null' if rx is None else _js_regex(rx)};",
        f"const ALLOWED = {_js_regex(referer_rx(hotlink, origin))};",
        f"const ALLOW_EMPTY = {'true' if hotlink.allow_empty_referer else 'false'};",
        "",
        "function decodedPath(url) {",
        "  const path = new URL(url).pathname;",
        "  try {",
        "    return decodeURIComponent(path);",
        "  } catch {",
        "    return path;",
        "  }",
        "}",
        "",
        "export default async (request, context) => {",
        "  if (IMAGES === null || !IMAGES.test(decodedPath(request.url))) {",
        "    return context.next();",
        "  }",
        '  const referer = request.headers.get("referer") ?? "";',
        '  if ((referer === "" && ALLOW_EMPTY) || (referer !== "" && ALLOWED.test(referer))) {',
        "    const response = await context.next();",
        "    const out = new Response(response.body, response);",
        '    out.headers.append("Vary", "Referer");',
        "    return out;",
        "  }",
        '  return new Response("Forbidden: this image may not be embedded here.\\n", {',
        "    status: 403,",
        "    headers: {",
        f'      "Cache-Control": "{NO_STORE}",',
        '      "Content-Type": "text/plain; charset=utf-8",',
        '      "Vary": "Referer",',
        "    },",
        "  });",
        "};",
        "",
        'export const config = { path: "/*" };',
    ]
    return "\n".join(lines) + "\n"


def _js_regex(rx: str) -> str:
    """A Python regex of :func:`referer_rx`/:func:`paths_rx` as a JavaScript one
    (case-insensitive; the syntax they use is common to both)."""
    return f'new RegExp({json.dumps(rx)}, "i")'


NETLIFY_NOTE = (
    f"hotlink protection: copy the Edge Function {NETLIFY_EDGE_FUNCTION} to "
    f"{NETLIFY_DESTINATION} in the site's repository (Netlify's _headers and _redirects "
    "cannot match a Referer)"
)


def hotlink_notes(settings: Settings) -> list[str]:
    """Lines for the build summary about hosts that need a step by hand."""
    if settings.hotlink is None or not settings.site_files:
        return []
    notes = []
    if "cloudflare" in settings.hosts:
        notes.append(
            f"hotlink protection: paste the WAF custom rule in {CLOUDFLARE_RULE} into "
            "Cloudflare (Security > WAF > Custom rules); its Hotlink Protection toggle does "
            "not cover WebP or AVIF"
        )
    if "netlify" in settings.hosts:
        notes.append(NETLIFY_NOTE)
    return notes
