"""Server header configs: a real nginx serves a site with the generated snippet, and the
headers are read the way img2dataset and datadiligence read them. Also `_headers` and
`.htaccess` rendering (a real Apache is used only when one is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPMessage
from pathlib import Path
from typing import Any

import pytest
from datadiligence.rules import TDMRepHeader, XRobotsTagHeader

from ssg_dmi.policy import DMI
from ssg_dmi.settings import load_settings
from ssg_dmi.sitefiles.headers import (
    NGINX_ADD_HEADER,
    NGINX_SNIPPET,
    htaccess,
    netlify_headers,
    nginx_add_header,
    nginx_conf,
)
from ssg_dmi.sitefiles.render import BEGIN, END, SitePolicy, site_policy

from . import servers
from .readers import content_usage, settings_for_every_value
from .servers import free_port, needs_nginx, nginx_config, nginx_syntax, stop

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n"
POLICY_URL = "https://e.org/tdm-policy.json"
GALLERY = [{"path": "gallery/**", "dmi": "DMI-ALLOWED"}]
# The default value's Content-Usage (draft-ietf-aipref-vocab-08), as a parsed dictionary.
EXCEPT_SEARCH = {"train-ai": "n", "ai-use": "n", "search": "y"}


def is_disallowed_by_img2dataset(headers: HTTPMessage, token: str = "img2dataset") -> bool:
    """img2dataset's check (downloader.py, ``is_disallowed``), re-implemented:

        for values in headers.get_all("X-Robots-Tag", []):
            uatoken_directives = values.split(":", 1)
            directives = [x.strip().lower() for x in uatoken_directives[-1].split(",")]
            ua_token = uatoken_directives[0].lower() if len(uatoken_directives) == 2 else None
            if (ua_token is None or ua_token == user_agent_token) and any(
                x in disallowed_header_directives for x in directives
            ):
                return True
        return False

    with ``disallowed_header_directives = ["noai", "noimageai", "noindex", "noimageindex"]``.
    """
    disallowed = {"noai", "noimageai", "noindex", "noimageindex"}
    for values in headers.get_all("X-Robots-Tag", []):
        parts = values.split(":", 1)
        directives = [x.strip().lower() for x in parts[-1].split(",")]
        ua_token = parts[0].lower() if len(parts) == 2 else None
        if (ua_token is None or ua_token == token) and any(x in disallowed for x in directives):
            return True
    return False


def test_img2dataset_rule_reads_the_token_form() -> None:
    def msg(*values: str) -> HTTPMessage:
        m = HTTPMessage()
        for value in values:
            m["X-Robots-Tag"] = value
        return m

    assert is_disallowed_by_img2dataset(msg("noindex"))
    assert is_disallowed_by_img2dataset(msg("nofollow", "img2dataset: noai"))
    assert not is_disallowed_by_img2dataset(msg("otherbot: noai"))
    assert not is_disallowed_by_img2dataset(msg("all"))


def make_site(root: Path) -> Path:
    site = root / "site"
    for rel, data in {
        "a.jpg": JPEG,
        "b.png": PNG,
        "index.html": b"<!doctype html><title>t</title>",
        "gallery/x.jpg": JPEG,
        "cached/c.jpg": JPEG,
    }.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    return site


def with_snippet(tmp: Path, policy: SitePolicy, tdm_policy: str | None) -> str:
    """Write the generated snippet and add_header file to ``tmp``; return the server-block
    lines that include them, as a site's nginx.conf would."""
    tmp.mkdir(parents=True, exist_ok=True)
    snippet, add_header = tmp / NGINX_SNIPPET, tmp / NGINX_ADD_HEADER
    snippet.write_text(nginx_conf(policy, tdm_policy))
    add_header.write_text(nginx_add_header())
    return f"""include {snippet};
    # A location with its own add_header drops the server-level ones (nginx inheritance).
    location /cached/ {{ add_header Cache-Control "max-age=60"; include {add_header}; }}"""


@contextmanager
def nginx(tmp: Path, site: Path, policy: SitePolicy, tdm_policy: str | None) -> Iterator[str]:
    """nginx serving ``site`` with the generated header config; its base URL, without ``/``."""
    with servers.nginx(tmp, site, with_snippet(tmp, policy, tdm_policy)) as url:
        yield url.removesuffix("/")


def get(url: str) -> HTTPMessage:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        headers: HTTPMessage = resp.headers
        return headers


@pytest.fixture
def serve(tmp_path: Path) -> Callable[..., Any]:
    site = make_site(tmp_path)
    runs = iter(range(100))

    def start(**raw: Any) -> Any:
        settings = load_settings(raw)
        return nginx(
            tmp_path / f"nginx{next(runs)}", site, site_policy(settings), raw.get("tdm_policy")
        )

    return start


@needs_nginx
def test_default_policy_headers_refuse_scrapers(serve: Callable[..., Any]) -> None:
    with serve(tdm_policy=POLICY_URL) as url:
        for path in ("/a.jpg", "/b.png", "/index.html", "/", "/gallery/x.jpg", "/cached/c.jpg"):
            headers = get(url + path)
            assert headers.get_all("X-Robots-Tag") == ["noai, noimageai"], path
            assert headers["tdm-reservation"] == "1" and headers["tdm-policy"] == POLICY_URL
            assert content_usage(headers["Content-Usage"]) == EXCEPT_SEARCH
            assert not XRobotsTagHeader().is_allowed(headers=headers)
            assert not TDMRepHeader().is_allowed(headers=headers)
            assert is_disallowed_by_img2dataset(headers)
        assert get(url + "/cached/c.jpg")["Cache-Control"] == "max-age=60"
        assert get(url + "/a.jpg")["Content-Type"] == "image/jpeg"


@needs_nginx
def test_allowed_policy_headers_let_scrapers_in(serve: Callable[..., Any]) -> None:
    with serve(dmi="DMI-ALLOWED", tdm_policy=POLICY_URL) as url:
        for path in ("/a.jpg", "/b.png", "/index.html", "/cached/c.jpg"):
            headers = get(url + path)
            assert "X-Robots-Tag" not in headers and "tdm-policy" not in headers
            assert headers["tdm-reservation"] == "0"
            assert content_usage(headers["Content-Usage"]) == {
                "train-ai": "y",
                "ai-use": "y",
                "search": "y",
            }
            assert XRobotsTagHeader().is_allowed(headers=headers)
            assert TDMRepHeader().is_allowed(headers=headers)
            assert not is_disallowed_by_img2dataset(headers)


@needs_nginx
def test_unspecified_sends_nothing(serve: Callable[..., Any]) -> None:
    with serve(dmi="DMI-UNSPECIFIED") as url:
        headers = get(url + "/a.jpg")
        assert not {"X-Robots-Tag", "tdm-reservation", "Content-Usage"} & set(headers.keys())


@needs_nginx
def test_gallery_override_is_honoured(serve: Callable[..., Any]) -> None:
    rules = [
        {"path": "gallery/**", "dmi": "DMI-ALLOWED"},
        {"path": "*.png", "dmi": "DMI-PROHIBITED"},
    ]
    with serve(rules=rules) as url:
        gallery, top = get(url + "/gallery/x.jpg"), get(url + "/a.jpg")
        assert "X-Robots-Tag" not in gallery and gallery["tdm-reservation"] == "0"
        assert XRobotsTagHeader().is_allowed(headers=gallery)
        assert TDMRepHeader().is_allowed(headers=gallery)
        assert not is_disallowed_by_img2dataset(gallery)
        assert is_disallowed_by_img2dataset(top) and not TDMRepHeader().is_allowed(headers=top)
        assert content_usage(get(url + "/b.png")["Content-Usage"]) == {
            "train-ai": "n",
            "ai-use": "n",
            "search": "n",
        }
        assert content_usage(top["Content-Usage"]) == EXCEPT_SEARCH


@needs_nginx
def test_base_path_limits_the_headers(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    (site / "docs").mkdir()
    (site / "docs/d.jpg").write_bytes(JPEG)
    policy = site_policy(load_settings({"base_url": "/docs/"}))
    with nginx(tmp_path / "n", site, policy, None) as url:
        assert get(url + "/docs/d.jpg")["tdm-reservation"] == "1"
        assert "tdm-reservation" not in get(url + "/a.jpg")


@needs_nginx
@pytest.mark.parametrize("dmi", list(DMI))
def test_nginx_accepts_the_snippet_for_every_value(dmi: DMI, tmp_path: Path) -> None:
    policy = site_policy(load_settings(settings_for_every_value(dmi, GALLERY)))
    server = with_snippet(tmp_path, policy, "https://e.org/p?a=$x")
    snippet = tmp_path / NGINX_SNIPPET
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(tmp_path, make_site(tmp_path), free_port(), server))
    check = nginx_syntax(tmp_path, conf)
    assert check.returncode == 0, check.stderr
    assert "# skipped /a%20b/" in snippet.read_text()  # a space is not put in a server regex


# --- _headers and .htaccess ---------------------------------------------------------------


def policy(**raw: Any) -> SitePolicy:
    return site_policy(load_settings(raw))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"tdm_policy": POLICY_URL},
            "/*\n  X-Robots-Tag: noai, noimageai\n  tdm-reservation: 1\n"
            f"  tdm-policy: {POLICY_URL}\n  Content-Usage: train-ai=n, ai-use=n, search=y\n",
        ),
        (
            {"dmi": "DMI-ALLOWED"},
            "/*\n  tdm-reservation: 0\n  Content-Usage: train-ai=y, ai-use=y, search=y\n",
        ),
        ({"dmi": "DMI-UNSPECIFIED"}, ""),
        (
            {"rules": GALLERY},
            "/*\n  X-Robots-Tag: noai, noimageai\n  tdm-reservation: 1\n"
            "  Content-Usage: train-ai=n, ai-use=n, search=y\n"
            "/gallery/*\n  ! X-Robots-Tag\n  ! tdm-reservation\n  ! Content-Usage\n"
            "  X-Robots-Tag: all\n  tdm-reservation: 0\n"
            "  Content-Usage: train-ai=y, ai-use=y, search=y\n",
        ),
        (
            {"base_url": "/docs/", "rules": [{"path": "a/b.png", "dmi": "DMI-PROHIBITED"}]},
            "/docs/*\n  X-Robots-Tag: noai, noimageai\n  tdm-reservation: 1\n"
            "  Content-Usage: train-ai=n, ai-use=n, search=y\n"
            "/docs/a/b.png\n  ! X-Robots-Tag\n  ! tdm-reservation\n  ! Content-Usage\n"
            "  X-Robots-Tag: noai, noimageai\n  tdm-reservation: 1\n"
            "  Content-Usage: train-ai=n, ai-use=n, search=n\n"
            # its variants (b.png-480w.<hash>.webp) follow the same rule
            "/docs/a/b.png-*\n  ! X-Robots-Tag\n  ! tdm-reservation\n  ! Content-Usage\n"
            "  X-Robots-Tag: noai, noimageai\n  tdm-reservation: 1\n"
            "  Content-Usage: train-ai=n, ai-use=n, search=n\n",
        ),
    ],
)
def test_netlify_headers_table(raw: dict[str, Any], expected: str) -> None:
    text = netlify_headers(None, policy(**raw), raw.get("tdm_policy"))
    rules = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    assert text.startswith(BEGIN) and rules == expected


def test_netlify_headers_merge_is_idempotent() -> None:
    existing = "/*\n  X-Frame-Options: DENY\n"
    once = netlify_headers(existing, policy(rules=GALLERY), None)
    assert once.endswith(END + "\n\n" + existing) and once.startswith(BEGIN)
    assert netlify_headers(once, policy(rules=GALLERY), None) == once
    again = netlify_headers(once, policy(dmi="DMI-ALLOWED"), None)
    assert again.count(BEGIN) == 1 and again.endswith(existing) and "noai" not in again


@pytest.mark.parametrize(
    ("raw", "present", "absent"),
    [
        (
            {"tdm_policy": POLICY_URL},
            [
                "<IfModule mod_headers.c>\n",
                '    Header always set X-Robots-Tag "noai, noimageai"\n',
                '    Header always set tdm-reservation "1"\n',
                f'    Header always set tdm-policy "{POLICY_URL}"\n',
                '    Header always set Content-Usage "train-ai=n, ai-use=n, search=y"\n',
                "</IfModule>\n",
            ],
            ["<If "],
        ),
        (
            {"dmi": "DMI-ALLOWED"},
            ['    Header always set tdm-reservation "0"\n'],
            ["X-Robots-Tag", "unset"],
        ),
        ({"dmi": "DMI-UNSPECIFIED"}, ["<IfModule mod_headers.c>\n</IfModule>\n"], ["Header"]),
        (
            {"rules": [*GALLERY, {"path": "**/*.png", "dmi": "DMI-PROHIBITED"}]},
            [
                '    <If "%{REQUEST_URI} =~ m#^/.*\\.png$#">\n',
                '    <If "%{REQUEST_URI} =~ m#^/gallery/#">\n'
                "        Header always unset X-Robots-Tag\n"
                '        Header always set tdm-reservation "0"\n',
            ],
            [],
        ),
    ],
)
def test_htaccess_table(raw: dict[str, Any], present: list[str], absent: list[str]) -> None:
    text = htaccess(None, policy(**raw), raw.get("tdm_policy"))
    assert all(p in text for p in present) and not any(a in text for a in absent)
    # Less specific first: the later <If> wins in Apache, as the longer pattern in robots.txt.
    if '<If "' in text:
        assert text.index("m#^/.*\\.png$#") < text.index("m#^/gallery/#")


def test_htaccess_merge_is_idempotent() -> None:
    existing = "RewriteEngine On\nRewriteRule ^old$ /new [R=301,L]\n"
    once = htaccess(existing, policy(), None)
    assert once.endswith("\n" + existing) and once.count(BEGIN) == 1
    assert htaccess(once, policy(), None) == once


@pytest.mark.skipif(not os.access(APACHE, os.X_OK), reason="apache2 is not installed (optional)")
def test_htaccess_accepted_by_apache(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    settings = load_settings({"rules": GALLERY, "tdm_policy": POLICY_URL})
    (site / ".htaccess").write_text(htaccess(None, site_policy(settings), POLICY_URL))
    port, mods = free_port(), "/usr/lib/apache2/modules"
    loads = "\n".join(
        f"LoadModule {m}_module {mods}/mod_{m}.so"
        for m in ("mpm_event", "authz_core", "dir", "mime", "headers")
    )
    conf = tmp_path / "httpd.conf"
    conf.write_text(
        f"{loads}\nServerName localhost\nListen 127.0.0.1:{port}\nPidFile {tmp_path}/httpd.pid\n"
        f"ErrorLog {tmp_path}/error.log\nTypesConfig /etc/mime.types\nDocumentRoot {site}\n"
        f'<Directory "{site}">\n  AllowOverride All\n  Require all granted\n</Directory>\n'
    )
    proc = subprocess.Popen(
        [APACHE, "-f", str(conf), "-DFOREGROUND"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                top = get(f"http://127.0.0.1:{port}/a.jpg")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert top["X-Robots-Tag"] == "noai, noimageai" and top["tdm-reservation"] == "1"
        assert top["tdm-policy"] == POLICY_URL
        gallery = get(f"http://127.0.0.1:{port}/gallery/x.jpg")
        assert "X-Robots-Tag" not in gallery and gallery["tdm-reservation"] == "0"
        assert "tdm-policy" not in gallery
    finally:
        stop(proc)
