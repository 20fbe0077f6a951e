"""The MkDocs and Pelican adapters: config errors in each tool's style, and real builds."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from .images import camera_file, encode, pattern
from .readers import PLUS, pyexiv2_xmp


def mkdocs_project(tmp: Path, plugin: str, **mkdocs: str) -> Path:
    docs = tmp / "docs"
    (docs / "img").mkdir(parents=True)
    (docs / "img" / "photo.jpg").write_bytes(camera_file("JPEG"))
    (docs / "index.md").write_text("# Home\n\n![A photo](img/photo.jpg)\n")
    (docs / "open.md").write_text("---\ndmi: DMI-ALLOWED\n---\n# Open\n\n![Open](img/open.jpg)\n")
    (docs / "img" / "open.jpg").write_bytes(camera_file("JPEG")[:-2] + b"\xff\xd9")
    extra = "".join(f"{k}: {v}\n" for k, v in mkdocs.items())
    (tmp / "mkdocs.yml").write_text(
        f"site_name: T\nsite_url: https://example.org/sub/\n{extra}plugins:\n{plugin}"
    )
    return tmp / "mkdocs.yml"


def mkdocs_build(config_file: Path, site: Path) -> None:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(config_file), site_dir=str(site))
    config.plugins.on_startup(command="build", dirty=False)
    try:
        build(config)
    finally:
        config.plugins.on_shutdown()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("      widths: many\n", "Expected a list of items, but a <class 'str'> was given."),
        (
            "      originals: always\n",
            "Expected one of: ('optimize', 'tag') but received: 'always'",
        ),
        ("      dmi: DMI-NOPE\n", "`dmi`: 'DMI-NOPE' is not a PLUS DataMining value"),
        ("      colour: red\n", "Unrecognised configuration name: colour"),
    ],
)
def test_mkdocs_config_errors_in_mkdocs_style(
    tmp_path: Path, options: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError, PluginError

    config_file = mkdocs_project(tmp_path, "  - ssg-dmi:\n" + options)
    seen: list[str] = []
    with caplog.at_level(logging.WARNING):
        try:
            config = load_config(str(config_file))
            config.plugins.on_config(config)
        except (Abort, ConfigurationError, PluginError) as exc:
            seen.append(str(exc))
    seen += caplog.messages
    assert any(message in m for m in seen), seen


def test_mkdocs_real_build_front_matter_and_subpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # MkDocs stamps the build date
    config_file = mkdocs_project(
        tmp_path, "  - ssg-dmi:\n      jobs: 1\n", use_directory_urls="false"
    )
    site = tmp_path / "site"
    mkdocs_build(config_file, site)
    home = (site / "index.html").read_text()
    assert home.count('<meta name="robots"') == 1
    assert 'content="noai, noimageai"' in home
    assert re.search(r'srcset="img/photo\.jpg-\d+w\.[0-9a-f]{10}\.webp \d+w', home)
    opened = (site / "open.html").read_text()
    assert '<meta name="tdm-reservation" content="0"' in opened and "noai" not in opened
    photo = pyexiv2_xmp((site / "img" / "photo.jpg").read_bytes())
    assert photo["Xmp.plus.DataMining"] == PLUS + "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"
    assert pyexiv2_xmp((site / "img" / "open.jpg").read_bytes())["Xmp.plus.DataMining"] == (
        PLUS + "DMI-ALLOWED"
    )
    robots = (site / "robots.txt").read_text()
    assert "User-agent: GPTBot" in robots
    # A rebuild (what `mkdocs serve` does) leaves no duplicated meta and the same bytes.
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    mkdocs_build(config_file, site)
    after = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert after == before


def test_pelican_real_build_metadata_override(tmp_path: Path) -> None:
    from pelican import Pelican
    from pelican.settings import read_settings

    content = tmp_path / "content"
    (content / "images").mkdir(parents=True)
    (content / "pages").mkdir()
    (content / "images" / "photo.jpg").write_bytes(camera_file("JPEG"))
    (content / "images" / "open.jpg").write_bytes(camera_file("PNG"))
    (content / "post.md").write_text(
        "Title: Post\nDate: 2026-01-01\n\n![A photo]({static}/images/photo.jpg)\n"
    )
    (content / "pages" / "open.md").write_text(
        "Title: Open\nDMI: DMI-ALLOWED\n\n![Open]({static}/images/open.jpg)\n"
    )
    output = tmp_path / "output"
    settings = read_settings(
        override={
            "PATH": str(content),
            "OUTPUT_PATH": str(output),
            "STATIC_PATHS": ["images"],
            "PLUGINS": ["ssg_dmi.pelican"],
            "SSG_DMI": {"jobs": 1, "cache_dir": str(tmp_path / "cache")},
            "RELATIVE_URLS": True,
            "FEED_ALL_ATOM": "feeds/all.atom.xml",
            "SITEURL": "https://example.org",
            "CACHE_CONTENT": False,
        }
    )
    Pelican(settings).run()
    post = (output / "post.html").read_text()
    assert post.count('<meta name="robots"') == 1 and "noai, noimageai" in post
    assert re.search(r'srcset="[^"]*photo\.jpg-\d+w\.[0-9a-f]{10}\.webp', post)
    assert pyexiv2_xmp((output / "images" / "open.jpg").read_bytes())["Xmp.plus.DataMining"] == (
        PLUS + "DMI-ALLOWED"
    )
    assert "tdm-reservation" in (output / "pages" / "open.html").read_text()
    assert (output / "ai.txt").is_file() and (output / "_headers").is_file()
    feed = (output / "feeds" / "all.atom.xml").read_text()
    assert "srcset" not in feed  # feeds are left alone


def test_pelican_bad_settings_name_the_key(tmp_path: Path) -> None:
    from ssg_dmi.errors import ConfigError
    from ssg_dmi.pelican import settings_from_pelican

    with pytest.raises(ConfigError, match=r"pelicanconf.py: SSG_DMI: unknown key `dmii`"):
        settings_from_pelican({"SSG_DMI": {"dmii": "x"}, "PATH": str(tmp_path)})
    got = settings_from_pelican({"SSG_DMI": {}, "SITEURL": "https://e.org/blog", "PATH": "x"})
    assert got.base_url == "/blog/"
    assert "theme/**" in got.exclude


def test_mkdocs_strict_fails_on_an_untagged_image(tmp_path: Path) -> None:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    config_file = mkdocs_project(tmp_path, "  - ssg-dmi:\n      jobs: 1\n")
    (tmp_path / "docs" / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    config = load_config(str(config_file), site_dir=str(tmp_path / "site"), strict=True)
    config.plugins.on_startup(command="build", dirty=False)
    try:
        with pytest.raises(Abort, match="warning"):
            build(config)
    finally:
        config.plugins.on_shutdown()
    # Not strict: the same site builds, the broken file is left as it was.
    mkdocs_build(config_file, tmp_path / "site2")
    assert (tmp_path / "site2" / "img" / "broken.png").read_bytes().endswith(b"\0" * 40)


def test_mkdocs_serve_style_rebuilds_reuse_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like `mkdocs serve`: one config and plugin object, several builds after edits."""
    import time

    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    config_file = mkdocs_project(tmp_path, "  - ssg-dmi:\n      jobs: 2\n")
    site = tmp_path / "site"
    config = load_config(str(config_file), site_dir=str(site))
    config.plugins.on_startup(command="serve", dirty=False)
    plugin = config.plugins["ssg-dmi"]
    try:
        build(config)
        pool = plugin.executor
        first = {p: p.stat().st_mtime_ns for p in (site / "img").iterdir()}
        for n in range(3):
            (tmp_path / "docs" / "index.md").write_text(
                f"# Home {n}\n\n![A photo](img/photo.jpg)\n"
            )
            started = time.perf_counter()
            build(config)  # what serve does after an edit: the same config and plugin
            assert time.perf_counter() - started < 30
        # images were copied afresh by MkDocs and restored from the cache, not re-encoded
        assert set(first) == {p for p in (site / "img").iterdir()}
        assert plugin.executor is pool  # the worker pool lived across rebuilds
        home = (site / "index.html").read_text()
        assert "Home 2" in home and home.count('<meta name="robots"') == 1
        assert home.count('<meta name="tdm-reservation"') == 1
    finally:
        config.plugins.on_shutdown()


def pelican_site(tmp_path: Path, **overrides: object) -> Path:
    from pelican import Pelican
    from pelican.settings import read_settings

    content = tmp_path / "content"
    (content / "images").mkdir(parents=True, exist_ok=True)
    (content / "images" / "photo.jpg").write_bytes(camera_file("JPEG"))
    (content / "post.md").write_text(
        "Title: Post\nDate: 2026-01-01\nSlug: post\n\n![A photo]({static}/images/photo.jpg)\n"
        "\n![Attached]({attach}extra/attached.png)\n"
    )
    (content / "extra").mkdir(exist_ok=True)
    (content / "extra" / "attached.png").write_bytes(camera_file("PNG"))
    output = tmp_path / "output"
    settings = read_settings(
        override={
            "PATH": str(content),
            "OUTPUT_PATH": str(output),
            "STATIC_PATHS": ["images", "extra"],
            "PLUGINS": ["ssg_dmi.pelican"],
            "SSG_DMI": {"jobs": 1, "cache_dir": str(tmp_path / "cache")},
            "CACHE_CONTENT": False,
            **overrides,
        }
    )
    Pelican(settings).run()
    return output


def test_pelican_absolute_urls_under_a_sub_path_and_attached_images(tmp_path: Path) -> None:
    output = pelican_site(
        tmp_path, RELATIVE_URLS=False, SITEURL="https://example.org/blog", FEED_ALL_ATOM=None
    )
    post = (output / "post.html").read_text()
    # Pelican writes absolute URLs on SITEURL: they are local, and srcset keeps their form.
    site = "https://example.org/blog/"
    assert re.search(rf'srcset="{site}images/photo\.jpg-\d+w\.[0-9a-f]{{10}}\.webp \d+w', post)
    attached = re.search(r'<img alt="Attached" src="([^"]+)"[^>]*srcset="([^"]+)"', post)
    assert attached, post
    assert attached.group(1).startswith(site)
    for candidate in attached.group(2).split(", "):
        url = candidate.split(" ")[0]
        assert url.startswith(site) and (output / url.removeprefix(site)).is_file(), url


def test_pelican_autoreload_runs_start_clean(tmp_path: Path) -> None:
    from ssg_dmi.pelican import STATE

    pelican_site(tmp_path, RELATIVE_URLS=True)
    assert STATE.page_dmi == {} and STATE.settings is None  # reset at finalized
    output = pelican_site(tmp_path, RELATIVE_URLS=True)  # the next autoreload run
    assert (output / "post.html").read_text().count('<meta name="robots"') == 1


def test_mkdocs_material_optimize_compresses_and_ssg_dmi_only_tags(tmp_path: Path) -> None:
    """Both enabled: material's optimize plugin re-encodes the original, ssg-dmi tags it
    losslessly and makes the variants, so nothing is encoded twice."""
    pytest.importorskip("material")
    docs = tmp_path / "docs"
    (docs / "img").mkdir(parents=True)
    big = encode(pattern((1200, 800)), "JPEG", quality=95)
    (docs / "img" / "big.jpg").write_bytes(big)
    (docs / "index.md").write_text("# Home\n\n![Big](img/big.jpg)\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: T\ntheme:\n  name: material\n  font: false\nplugins:\n"
        "  - optimize:\n      optimize_png: false\n      cache: false\n"
        "  - ssg-dmi:\n      jobs: 1\n"
    )
    site = tmp_path / "site"
    mkdocs_build(tmp_path / "mkdocs.yml", site)
    out = (site / "img" / "big.jpg").read_bytes()
    assert len(out) < len(big)  # material's optimize compressed it
    assert (
        pyexiv2_xmp(out)["Xmp.plus.DataMining"]
        == PLUS + "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"
    )
    import io

    from PIL import Image

    from ssg_dmi.images.optimize import jpeg_quality

    assert jpeg_quality(Image.open(io.BytesIO(out))) == 60  # material's quality, not ours
    assert list((site / "img").glob("big.jpg-*w.*.webp"))
