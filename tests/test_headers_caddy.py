"""The Caddyfile snippet: a real Caddy serves a site with it imported, and the headers are
read the way img2dataset and datadiligence read them; per path they equal what nginx sends
with its snippet, including where rules nest (Caddy sorts its directives; the most specific
rule must still win)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPMessage
from pathlib import Path
from typing import Any

import pytest
from datadiligence.rules import TDMRepHeader, XRobotsTagHeader

from ssg_dmi.contract import CONTRACT
from ssg_dmi.policy import DMI
from ssg_dmi.settings import load_settings
from ssg_dmi.sitefiles.headers import CADDY_SNIPPET, HEADERS, caddy_conf, host_files
from ssg_dmi.sitefiles.render import SitePolicy, site_policy
from ssg_dmi.sitefiles.writer import write_site_files

from . import servers
from .readers import content_usage, settings_for_every_value
from .servers import caddy_config, caddy_validate, free_port, needs_caddy, needs_nginx
from .test_headers_nginx import (
    JPEG,
    POLICY_URL,
    is_disallowed_by_img2dataset,
    make_site,
    with_snippet,
)

ALLOWED = CONTRACT[DMI.ALLOWED].content_usage
# The site owner's own header line, beside the imported snippet.
OWN_HEADER = 'header /cached/* Cache-Control "max-age=60"'


def with_import(tmp: Path, policy: SitePolicy, tdm_policy: str | None) -> str:
    """Write the generated snippet to ``tmp``; the site-block lines that import it."""
    tmp.mkdir(parents=True, exist_ok=True)
    snippet = tmp / CADDY_SNIPPET
    snippet.write_text(caddy_conf(policy, tdm_policy))
    return f"import {snippet}\n\t{OWN_HEADER}"


@contextmanager
def caddy(tmp: Path, site: Path, policy: SitePolicy, tdm_policy: str | None) -> Iterator[str]:
    """Caddy serving ``site`` with the generated snippet imported; its base URL, without ``/``."""
    with servers.caddy(tmp, site, with_import(tmp, policy, tdm_policy)) as url:
        yield url.removesuffix("/")


def get(url: str, status: int = 200) -> HTTPMessage:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == status
            headers: HTTPMessage = resp.headers
            return headers
    except urllib.error.HTTPError as err:
        assert err.code == status, url
        assert isinstance(err.headers, HTTPMessage)
        return err.headers


@pytest.fixture
def serve(tmp_path: Path) -> Callable[..., Any]:
    site = make_site(tmp_path)
    runs = iter(range(100))

    def start(**raw: Any) -> Any:
        policy = site_policy(load_settings(raw))
        return caddy(tmp_path / f"caddy{next(runs)}", site, policy, raw.get("tdm_policy"))

    return start


@needs_caddy
def test_default_policy_headers_refuse_scrapers(serve: Callable[..., Any]) -> None:
    with serve(tdm_policy=POLICY_URL) as url:
        for path in ("/a.jpg", "/b.png", "/index.html", "/", "/gallery/x.jpg", "/cached/c.jpg"):
            headers = get(url + path)
            assert headers.get_all("X-Robots-Tag") == ["noai, noimageai"], path
            assert headers["tdm-reservation"] == "1" and headers["tdm-policy"] == POLICY_URL
            assert content_usage(headers["Content-Usage"]) == {
                "train-ai": "n",
                "ai-use": "n",
                "search": "y",
            }
            assert not XRobotsTagHeader().is_allowed(headers=headers)
            assert not TDMRepHeader().is_allowed(headers=headers)
            assert is_disallowed_by_img2dataset(headers)
        assert get(url + "/cached/c.jpg")["Cache-Control"] == "max-age=60"
        assert get(url + "/a.jpg")["Content-Type"] == "image/jpeg"
        # Errors too, as nginx's `always`: a scraper probing a missing file is still told.
        missing = get(url + "/nope.jpg", 404)
        assert missing["tdm-reservation"] == "1" and is_disallowed_by_img2dataset(missing)


# DMI-ALLOWED, DMI-UNSPECIFIED and per-path overrides on Caddy are the cases of
# test_caddy_sends_what_nginx_sends below: the same headers as nginx, whose verdicts
# (datadiligence, img2dataset) tests/test_headers_nginx.py asserts.


@needs_caddy
def test_base_path_limits_the_headers(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    (site / "docs").mkdir()
    (site / "docs/d.jpg").write_bytes(JPEG)
    policy = site_policy(load_settings({"base_url": "/docs/"}))
    with caddy(tmp_path / "c", site, policy, None) as url:
        assert get(url + "/docs/d.jpg")["tdm-reservation"] == "1"
        assert "tdm-reservation" not in get(url + "/a.jpg")


# Rules that nest three deep, lift and re-impose, and name single files and their variants.
NESTED = [
    {"path": "gallery/**", "dmi": "DMI-ALLOWED"},
    {"path": "gallery/private/**", "dmi": "DMI-PROHIBITED"},
    {"path": "gallery/private/ok.jpg", "dmi": "DMI-ALLOWED"},
    {"path": "*.png", "dmi": "DMI-PROHIBITED-AIMLTRAINING"},
    {"path": "gallery/**/*.png", "dmi": "DMI-UNSPECIFIED"},
    {"path": "misc/**", "dmi": "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"},
]
NESTED_FILES = (
    "a.jpg",
    "b.png",
    "b.png-480w.1234.webp",
    "gallery/x.jpg",
    "gallery/y.png",
    "gallery/private/p.jpg",
    "gallery/private/p.png",
    "gallery/private/ok.jpg",
    "gallery/private/ok.jpg-480w.1234.webp",
    "gallery/private/ok.jpgs",
    "misc/m.jpg",
    "misc/m.png",
    "Gallery/x.jpg",
)


def served_headers(url: str, paths: list[str]) -> dict[str, dict[str, str | None]]:
    """Our headers on each path (404s included), as one comparable table."""
    out = {}
    for path in paths:
        try:
            with urllib.request.urlopen(url + path, timeout=5) as resp:
                headers = resp.headers
        except urllib.error.HTTPError as err:
            headers = err.headers
        out[path] = {name: headers.get(name) for name in HEADERS}
    return out


@needs_caddy
@needs_nginx
@pytest.mark.parametrize(
    "raw",
    [
        {"rules": NESTED, "tdm_policy": POLICY_URL},
        {"dmi": "DMI-ALLOWED", "rules": NESTED},
        {"dmi": "DMI-UNSPECIFIED", "rules": NESTED},
        {"base_url": "/gallery/", "rules": [{"path": "private/**", "dmi": "DMI-ALLOWED"}]},
    ],
    ids=["prohibited", "allowed", "unspecified", "base-path"],
)
def test_caddy_sends_what_nginx_sends(raw: dict[str, Any], tmp_path: Path) -> None:
    site = make_site(tmp_path)
    for rel in NESTED_FILES:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(JPEG)
    paths = [f"/{rel}" for rel in NESTED_FILES]
    paths += ["/", "/gallery/", "/gallery//private/p.jpg", "/gallery/private/gone.jpg"]
    paths += ["//gallery//x.jpg", "/b.png?x=1"]
    policy = site_policy(load_settings(raw))
    tdm_policy = raw.get("tdm_policy")
    with caddy(tmp_path / "c", site, policy, tdm_policy) as url:
        from_caddy = served_headers(url, paths)
    with servers.nginx(tmp_path / "n", site, with_snippet(tmp_path / "n", policy, tdm_policy)) as n:
        from_nginx = served_headers(n.removesuffix("/"), paths)
    assert from_caddy == from_nginx
    # Not vacuous: the rules do give different paths different headers.
    assert len({str(h) for h in from_caddy.values()}) >= 2


def test_snippet_matchers_exclude_more_specific_rules() -> None:
    text = caddy_conf(site_policy(load_settings({"rules": NESTED})), None)
    # The gallery rule yields to the more specific rules with other values (its PNGs, the
    # private folder), not to the private folder's one file, which sends its own values.
    gallery = (
        "# /gallery/: DMI-ALLOWED\n@ssg_dmi_4 {\n\tpath_regexp ^/gallery/\n"
        "\tnot path_regexp ^/gallery/.*\\.png$\n\tnot path_regexp ^/gallery/.*\\.png\\-\n"
        "\tnot path_regexp ^/gallery/private/\n}\n"
        f'header @ssg_dmi_4 {{\n\ttdm-reservation "0"\n\tContent-Usage "{ALLOWED}"\n}}\n'
    )
    assert gallery in text
    # The site-wide rule has no path of its own, only exclusions; DMI-UNSPECIFIED (the
    # gallery's PNGs, layers 5 and 6) sends nothing, so it has no header block.
    assert "@ssg_dmi_0 {\n\tnot path_regexp ^/.*\\.png$\n" in text
    assert "@ssg_dmi_5" not in text and "@ssg_dmi_6" not in text
    assert text.count("\tpath_regexp ") == 7 and text.count("\nheader @ssg_dmi_") == 8


@needs_caddy
@pytest.mark.parametrize("dmi", list(DMI))
def test_caddy_accepts_the_snippet_for_every_value(dmi: DMI, tmp_path: Path) -> None:
    policy = site_policy(load_settings(settings_for_every_value(dmi, NESTED)))
    site_block = with_import(tmp_path, policy, 'https://e.org/p?a=$x&b={path}"')
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(caddy_config(make_site(tmp_path), free_port(), site_block))
    check = caddy_validate(tmp_path, caddyfile)
    assert check.returncode == 0, check.stderr
    snippet = (tmp_path / CADDY_SNIPPET).read_text()
    assert "# skipped /a%20b/" in snippet  # a space is not put in a Caddyfile regex


@needs_caddy
def test_placeholders_in_the_policy_url_are_not_expanded(serve: Callable[..., Any]) -> None:
    odd = 'https://e.org/p?a=$x&b={path}"'
    with serve(tdm_policy=odd) as url:
        assert get(url + "/a.jpg")["tdm-policy"] == "https://e.org/p?a=%24x&b=%7Bpath%7D%22"


def test_hosts_caddy_writes_the_snippet(tmp_path: Path) -> None:
    settings = load_settings({"hosts": ["caddy"], "tdm_policy": POLICY_URL})
    policy = site_policy(settings)
    assert set(host_files(policy, settings, lambda name: None)) == {CADDY_SNIPPET}
    written = write_site_files(tmp_path, policy, settings)
    assert CADDY_SNIPPET in written
    assert (tmp_path / CADDY_SNIPPET).read_text() == caddy_conf(policy, POLICY_URL)
    netlify = load_settings({})
    assert CADDY_SNIPPET not in host_files(site_policy(netlify), netlify, lambda name: None)
