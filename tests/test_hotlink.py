"""Hotlink protection: real nginx, Caddy and Apache serve a site with the configs ssg-dmi
wrote, and answer image requests by their Referer (403 for another site's, 200 for the
site's own, the allowed hosts, search engines and none), while pages stay 200 and the
opt-out headers are still sent on allowed images."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http.client import HTTPMessage
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.audit.folder import check_site
from ssg_dmi.audit.served import check_url
from ssg_dmi.errors import ConfigError
from ssg_dmi.settings import load_settings
from ssg_dmi.settings.hotlink import HOTLINK_PATHS
from ssg_dmi.sitefiles.headers import CADDY_SNIPPET, NGINX_ADD_HEADER, NGINX_SNIPPET
from ssg_dmi.sitefiles.hotlink import (
    CLOUDFLARE_RULE,
    NETLIFY_DESTINATION,
    NETLIFY_EDGE_FUNCTION,
    hotlink_notes,
)
from ssg_dmi.sitefiles.render import site_policy
from ssg_dmi.sitefiles.writer import write_site_files

from . import servers
from .servers import needs_apache, needs_caddy, needs_nginx

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
OWN = "https://photos.example/gallery/"
FOREIGN = "https://evil.example/page.html"
IMAGES = ("a.jpg", "b.png", "img/a-480.webp", "img/a-960.avif", "deep/er/C.JPG", "cached/c.jpg")
PAGES = ("", "index.html", "about/index.html")
HOTLINK = {"allow": ["friend.example", "*.partner.example"]}


def make_site(root: Path, **hotlink: Any) -> Path:
    site = root / "site"
    for rel in IMAGES:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(JPEG)
    for rel in PAGES[1:]:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text("<!doctype html><title>t</title>")
    settings = load_settings(
        {
            "base_url": "https://photos.example/",
            "hosts": ["nginx", "caddy", "apache", "cloudflare"],
            "hotlink": {**HOTLINK, **hotlink},
        }
    )
    write_site_files(site, site_policy(settings), settings)
    return site


def fetch(url: str, referer: str | None) -> tuple[int, HTTPMessage]:
    request = urllib.request.Request(url, headers={"Referer": referer} if referer else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


def nginx(tmp: Path, site: Path) -> AbstractContextManager[str]:
    own = f'add_header Cache-Control "max-age=60"; include {site / NGINX_ADD_HEADER};'
    # A location with its own add_header: the refusal and Vary must still apply there.
    server = f"include {site / NGINX_SNIPPET};\n    location /cached/ {{ {own} }}"
    return servers.nginx(tmp, site, server)


def caddy(tmp: Path, site: Path) -> AbstractContextManager[str]:
    return servers.caddy(tmp, site, f"import {site / CADDY_SNIPPET}")


SERVERS: dict[str, Callable[[Path, Path], AbstractContextManager[str]]] = {
    "nginx": nginx,
    "caddy": caddy,
    "apache": lambda tmp, site: servers.apache(tmp, site),
}
MARKS = {"nginx": needs_nginx, "caddy": needs_caddy, "apache": needs_apache}


@contextmanager
def served(name: str, **hotlink: Any) -> Iterator[str]:
    """The named server serving a fresh site built with ``hotlink`` settings (in a folder
    every worker may read, as Apache's run as nobody under root)."""
    with servers.public_dir() as root:
        site = make_site(root, **hotlink)
        with SERVERS[name](root / "server", site) as url:
            yield url


def each_server() -> list[Any]:
    return [pytest.param(name, marks=MARKS[name]) for name in SERVERS]


ALLOWED = [
    None,
    OWN,
    "http://photos.example:8080/x",
    "https://friend.example/post",
    "https://partner.example/",
    "https://a.b.partner.example/",
    "https://www.google.de/",
    "https://www.bing.com/images/search?q=x",
]
REFUSED = [
    FOREIGN,
    "https://photos.example.evil.example/",
    "https://evil.example/?https://photos.example/",
    "https://notfriend.example/",
    "https://friend.example.evil/",
]


@pytest.mark.parametrize("server", each_server())
def test_referers_decide_image_requests(server: str) -> None:
    allowed, refused = ALLOWED, REFUSED
    with served(server) as url:
        for rel in IMAGES:
            for referer in allowed:
                status, headers = fetch(url + rel, referer)
                assert status == 200, (rel, referer)
                assert "Referer" in headers.get_all("Vary", []), (rel, referer)
                assert headers["X-Robots-Tag"] == "noai, noimageai", (rel, referer)
            for referer in refused:
                status, headers = fetch(url + rel, referer)
                assert status == 403, (rel, referer)
                assert headers["Cache-Control"] == "private, no-store", rel
                assert "Referer" in headers.get_all("Vary", []), (rel, referer)
        for rel in PAGES:
            for referer in [None, OWN, FOREIGN]:
                status, headers = fetch(url + rel, referer)
                assert status == 200, (rel, referer)
                assert headers["X-Robots-Tag"] == "noai, noimageai"
                assert "Referer" not in headers.get_all("Vary", [])


@pytest.mark.parametrize("server", each_server())
def test_empty_referer_and_search_engines_can_be_refused(server: str) -> None:
    with served(server, allow_empty_referer=False, allow_search_engines=False) as url:
        for rel in ("a.jpg", "img/a-480.webp", "img/a-960.avif"):
            assert fetch(url + rel, None)[0] == 403, rel
            assert fetch(url + rel, "https://www.google.com/")[0] == 403, rel
            assert fetch(url + rel, OWN)[0] == 200, rel
        assert fetch(url + "index.html", None)[0] == 200


@pytest.mark.parametrize("server", each_server())
def test_paths_limit_what_is_protected(server: str) -> None:
    with served(server, paths=["img/**"]) as url:
        assert fetch(url + "img/a-480.webp", FOREIGN)[0] == 403
        assert fetch(url + "a.jpg", FOREIGN)[0] == 200


def test_off_unless_configured(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    settings = load_settings({"hosts": ["nginx", "caddy", "apache", "cloudflare"]})
    assert settings.hotlink is None and hotlink_notes(settings) == []
    write_site_files(site, site_policy(settings), settings)
    for name in (NGINX_SNIPPET, CADDY_SNIPPET, ".htaccess"):
        text = (site / name).read_text()
        assert "valid_referers" not in text and "403" not in text and "HTTP_REFERER" not in text
    assert not (site / CLOUDFLARE_RULE).exists()


def test_settings_defaults_and_errors() -> None:
    hotlink = load_settings({"hotlink": {}}).hotlink
    assert hotlink is not None and hotlink.paths == HOTLINK_PATHS
    assert hotlink.allow_empty_referer and hotlink.allow_search_engines
    for bad, message in [
        ({"allow": ["https://x.org/"]}, "host name"),
        ({"alow": []}, "did you mean `allow`"),
        ({"allow_empty_referer": "yes"}, "allow_empty_referer"),
        ({"paths": ["/a.jpg"]}, "leading `/`"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_settings({"hotlink": bad})
    with pytest.raises(ConfigError, match="expected a table"):
        load_settings({"hotlink": True})


def test_cloudflare_rule_and_notes(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    rule = (site / CLOUDFLARE_RULE).read_text().splitlines()[-1]
    for needed in ('"/*.webp"', '"/*.avif"', 'http.referer ne ""', '"http*://photos.example/*"'):
        assert needed in rule
    assert rule.count("(") == rule.count(")") and len(rule) < 4096  # Cloudflare's limit
    settings = load_settings({"hosts": ["netlify", "cloudflare"], "hotlink": {}})
    notes = " ".join(hotlink_notes(settings))
    assert CLOUDFLARE_RULE in notes and "Edge Function" in notes
    assert NETLIFY_EDGE_FUNCTION in notes and NETLIFY_DESTINATION in notes


@needs_nginx
def test_check_url_reports_whether_hotlink_protection_is_active(tmp_path: Path) -> None:
    with servers.public_dir() as root:
        site = make_site(root)
        (site / "index.html").write_text('<!doctype html><title>t</title><img src="a.jpg">')
        settings = load_settings({"hosts": ["nginx"], "hotlink": HOTLINK})
        with nginx(root / "on", site) as url:
            report = check_url(url, settings, time_limit=20)
        assert not [f for f in report.findings if f.code == "hotlink-off"]
        assert any("hotlink protection is active" in n for n in report.notes), report.notes
        with servers.nginx(root / "off", site) as url:  # the snippet not included
            report = check_url(url, settings, time_limit=20)
        (off,) = [f for f in report.findings if f.code == "hotlink-off"]
        assert off.severity == "warning" and off.path == url + "a.jpg"
        with servers.nginx(root / "unset", site) as url:  # not configured: no request
            report = check_url(url, load_settings({"hosts": ["nginx"]}), time_limit=20)
        assert not [f for f in report.findings if f.code == "hotlink-off"]
        assert not any("hotlink" in n for n in report.notes)


def test_check_folder_finds_configs_without_the_rules(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    settings = load_settings(
        {
            "base_url": "https://photos.example/",
            "hosts": ["nginx", "caddy", "apache", "cloudflare"],
            "hotlink": HOTLINK,
        }
    )

    def config_findings() -> set[tuple[str, str]]:
        return {
            (f.code, f.path)
            for f in check_site(site, settings).findings
            if f.code.startswith("site-file")
        }

    assert config_findings() == set()
    plain = load_settings({"base_url": "https://photos.example/", "hosts": ["nginx", "caddy"]})
    write_site_files(site, site_policy(plain), plain)  # configs without the rules
    (site / CLOUDFLARE_RULE).unlink()
    assert config_findings() == {
        ("site-file-inconsistent", NGINX_SNIPPET),
        ("site-file-inconsistent", NGINX_ADD_HEADER),
        ("site-file-inconsistent", CADDY_SNIPPET),
        ("site-file-missing", CLOUDFLARE_RULE),
    }


# Runs the generated Edge Function as Netlify would call it: a Request, and a context whose
# next() stands for the static file (200, with the opt-out header the _headers file adds).
NODE_HARNESS = """
import { readFileSync } from "node:fs";
const { default: edge, config } = await import(process.argv[2]);
const cases = JSON.parse(readFileSync(process.argv[3], "utf8"));
const out = [];
for (const [url, referer] of cases) {
  let passed = 0;
  const context = {
    next: async () => {
      passed += 1;
      return new Response("file", { status: 200, headers: { "X-Robots-Tag": "noai, noimageai" } });
    },
  };
  const headers = referer === null ? {} : { Referer: referer };
  const response = await edge(new Request(url, { headers }), context);
  out.push({
    status: response.status,
    passed,
    vary: response.headers.get("vary"),
    cache: response.headers.get("cache-control"),
    robots: response.headers.get("x-robots-tag"),
  });
}
console.log(JSON.stringify({ config, out }));
"""


def run_edge(tmp: Path, cases: list[tuple[str, str | None]], **hotlink: Any) -> list[Any]:
    """The generated Edge Function's answer to each (URL, Referer), run under Node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    site = tmp / "site"
    site.mkdir(parents=True, exist_ok=True)
    settings = load_settings(
        {
            "base_url": "https://photos.example/",
            "hosts": ["netlify"],
            "hotlink": {**HOTLINK, **hotlink},
        }
    )
    write_site_files(site, site_policy(settings), settings)
    function = tmp / "edge.mjs"
    function.write_text((site / NETLIFY_EDGE_FUNCTION).read_text(), encoding="utf-8")
    harness = tmp / "harness.mjs"
    harness.write_text(NODE_HARNESS, encoding="utf-8")
    (tmp / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
    done = subprocess.run(
        [node, str(harness), function.as_uri(), str(tmp / "cases.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["config"] == {"path": "/*"}
    return list(result["out"])


def test_netlify_edge_function_decides_like_the_servers(tmp_path: Path) -> None:
    base = "https://photos.example/"
    cases: list[tuple[str, str | None]] = []
    for rel in IMAGES:
        cases += [(base + rel, r) for r in ALLOWED] + [(base + rel, r) for r in REFUSED]
    cases += [(base + rel, r) for rel in PAGES for r in (None, OWN, FOREIGN)]
    cases += [(base + "a%2Ejpg", FOREIGN), (base + "%E0%A4%A.jpg", FOREIGN)]  # encoded paths
    answers = run_edge(tmp_path, cases)
    for (url, referer), answer in zip(cases, answers, strict=True):
        page = not url.rsplit("/", 1)[-1] or url.endswith(".html")
        if page:
            assert answer == {
                "status": 200,
                "passed": 1,
                "vary": None,
                "cache": None,
                "robots": "noai, noimageai",
            }, (url, referer)
        elif referer in REFUSED or referer == FOREIGN:
            assert answer == {
                "status": 403,
                "passed": 0,
                "vary": "Referer",
                "cache": "private, no-store",
                "robots": None,
            }, (url, referer)
        else:
            assert answer == {
                "status": 200,
                "passed": 1,
                "vary": "Referer",
                "cache": None,
                "robots": "noai, noimageai",
            }, (url, referer)


def test_netlify_edge_function_follows_the_settings(tmp_path: Path) -> None:
    base = "https://photos.example/"
    cases: list[tuple[str, str | None]] = [
        (base + rel, referer)
        for rel in ("a.jpg", "img/a-480.webp", "img/a-960.avif")
        for referer in (None, "https://www.google.com/", OWN)
    ]
    answers = run_edge(
        tmp_path / "strict", cases, allow_empty_referer=False, allow_search_engines=False
    )
    assert [a["status"] for a in answers] == [403, 403, 200] * 3
    cases = [(base + "img/a-480.webp", FOREIGN), (base + "a.jpg", FOREIGN)]
    answers = run_edge(tmp_path / "paths", cases, paths=["img/**"])
    assert [a["status"] for a in answers] == [403, 200]
