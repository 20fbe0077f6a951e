"""The record of pages a rewrite leaves as they are (``build.pagememo``, issue 14): a
rebuild with nothing changed neither scans nor rewrites a page, and every change a page's
rewrite depends on (its text, an image it shows, a setting) still rewrites it, byte for
byte as a build without the record does. A malformed record is ignored."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import ssg_dmi.pages.rewrite as pagehtml
import ssg_dmi.pages.scan as scanning
from ssg_dmi.build.pagememo import PageMemo
from ssg_dmi.build.site import run_site
from ssg_dmi.settings import Settings, load_settings

PAGE = """<!doctype html>
<html><head><title>{title}</title>{meta}</head>
<body><p>{title}</p><img src="{a}" alt="a"> <img src="{b}" alt="b"></body></html>
"""


def conf(folder: Path, **values: Any) -> Settings:
    values.setdefault("jobs", 1)
    values.setdefault("widths", [40, 80])
    values.setdefault("formats", ["jpeg"])
    return load_settings({"cache_dir": str(folder), **values}, "test")


def picture(path: Path, size: tuple[int, int], shade: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.linear_gradient("L").resize(size).point(lambda v: (v + shade) % 256)
    im.convert("RGB").save(path, "JPEG", quality=80)


def make_site(root: Path) -> Path:
    picture(root / "a.jpg", (160, 120))
    picture(root / "sub" / "b.jpg", (200, 100))
    (root / "index.html").write_text(PAGE.format(title="home", meta="", a="a.jpg", b="sub/b.jpg"))
    meta = '<meta name="ssg-dmi" content="DMI-PROHIBITED">'
    (root / "sub" / "page.html").write_text(
        PAGE.format(title="sub", meta=meta, a="../a.jpg", b="b.jpg")
    )
    return root


def pages(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*.html"))}


def files(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in sorted(site.rglob("*"))
        if p.is_file()
    }


class Calls:
    """Counts the pages the build scans and rewrites."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.scans = self.rewrites = 0
        real_scan, real_rewrite = scanning.scan, pagehtml.rewrite

        def scan(*args: Any, **kwargs: Any) -> Any:
            self.scans += 1
            return real_scan(*args, **kwargs)

        def rewrite(*args: Any, **kwargs: Any) -> Any:
            self.rewrites += 1
            return real_rewrite(*args, **kwargs)

        monkeypatch.setattr(scanning, "scan", scan)
        monkeypatch.setattr(pagehtml, "rewrite", rewrite)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    """A site built once with a cache folder (the record written by that cold build)."""
    site, cache = make_site(tmp_path / "site"), tmp_path / "cache"
    report = run_site(site, conf(cache), progress=False)
    assert not report.images.errors and report.pages_changed == 2
    return site, cache


def test_a_rebuild_with_nothing_changed_scans_and_rewrites_no_page(
    built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site, cache = built
    before = files(site)
    calls = Calls(monkeypatch)
    report = run_site(site, conf(cache), progress=False)
    assert (calls.scans, calls.rewrites) == (0, 0)
    assert report.pages_changed == 0 and not report.warnings
    assert files(site) == before
    # Without a cache folder there is no record: every page is read through as before.
    run_site(site, conf(cache, cache=False), progress=False)
    assert calls.rewrites == 2 and files(site) == before


def test_a_record_held_in_sqlite_is_used_as_one_held_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past a twentieth of spool.SPILL_AT pages the record's tables move into SQLite (a
    # 100,000-page site's record is never all in memory): at 20, a table of 2 pages does.
    from ssg_dmi.build import spool

    monkeypatch.setattr(spool, "SPILL_AT", 20)
    site, cache = make_site(tmp_path / "site"), tmp_path / "cache"
    run_site(site, conf(cache), progress=False)
    record = next((cache / "v1" / "pages").iterdir()).read_bytes()
    assert len(record.splitlines()) == 1 + 2 + 2  # the header, 2 pages, 2 scans
    before = files(site)
    memo = PageMemo.for_site(cache, site)
    assert memo._old.spilled and memo._old_scans.spilled
    calls = Calls(monkeypatch)
    report = run_site(site, conf(cache), progress=False)
    assert (calls.scans, calls.rewrites) == (0, 0)
    assert report.pages_changed == 0 and files(site) == before
    assert next((cache / "v1" / "pages").iterdir()).read_bytes() == record


def twin(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the built site and cache without the page record: the reference."""
    site, cache = built
    other_site, other_cache = tmp_path / "ref-site", tmp_path / "ref-cache"
    shutil.copytree(site, other_site)
    shutil.copytree(cache, other_cache)
    shutil.rmtree(other_cache / "v1" / "pages")
    return other_site, other_cache


def both(
    built: tuple[Path, Path], ref: tuple[Path, Path], change: Any, **values: Any
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Apply ``change`` to both sites, rebuild both; their pages."""
    for site, cache in (built, ref):
        change(site)
        report = run_site(site, conf(cache, **values), progress=False)
        assert not report.images.errors
    return pages(built[0]), pages(ref[0])


def test_a_changed_page_is_rewritten(
    built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = twin(built, tmp_path)
    old = pages(built[0])

    def change(site: Path) -> None:
        page = site / "index.html"
        page.write_text(page.read_text().replace("<p>home</p>", '<p>home</p><img src="sub/b.jpg">'))

    change(ref[0])
    run_site(ref[0], conf(ref[1]), progress=False)
    change(built[0])
    calls = Calls(monkeypatch)
    run_site(built[0], conf(built[1]), progress=False)
    mine = pages(built[0])
    assert mine == pages(ref[0]) and mine["index.html"] != old["index.html"]
    assert mine["index.html"].count(b"srcset=") == 3
    # The edited page, read and then written: scanned and rewritten once (the rewrite is
    # idempotent and keeps what the scan reads: what it wrote is recorded as what it
    # gives, with the scan of what it read); the other page neither. The next build takes
    # both from the record.
    assert (calls.scans, calls.rewrites) == (1, 1)
    calls.scans = calls.rewrites = 0
    run_site(built[0], conf(built[1]), progress=False)
    assert (calls.scans, calls.rewrites) == (0, 0) and pages(built[0]) == mine


def test_a_changed_page_value_changes_the_images_it_gives_one(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    ref = twin(built, tmp_path)

    def change(site: Path) -> None:
        page = site / "sub" / "page.html"
        page.write_text(page.read_text().replace("DMI-PROHIBITED", "DMI-ALLOWED"))

    mine, theirs = both(built, ref, change)
    assert mine == theirs
    assert files(built[0]) == files(ref[0])


def test_a_changed_image_rewrites_the_pages_showing_it(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    ref = twin(built, tmp_path)
    old = pages(built[0])
    mine, theirs = both(built, ref, lambda site: picture(site / "a.jpg", (300, 150), shade=40))
    assert mine == theirs
    assert mine["index.html"] != old["index.html"] and b"a.jpg 300w" in mine["index.html"]
    assert files(built[0]) == files(ref[0])


@pytest.mark.parametrize(
    "values",
    [
        {"widths": [40]},  # other variants
        {"formats": ["webp", "jpeg"]},
        {"dmi": "DMI-ALLOWED"},  # the page's robots metas
        {"tdm_policy": "https://example.org/p.json"},
    ],
)
def test_changed_settings_rewrite_the_pages(
    built: tuple[Path, Path], tmp_path: Path, values: dict[str, Any]
) -> None:
    ref = twin(built, tmp_path)
    old = pages(built[0])
    mine, theirs = both(built, ref, lambda site: None, **values)
    assert mine == theirs and mine != old


@pytest.mark.parametrize(
    "record",
    [
        b"not json",
        b"[]",
        b'{"format": 2, "code": 5, "pages": []}',
        b'{"format": 3, "code": 5}\n',  # another code's record
        None,  # the real record with each entry's fields of the wrong type
    ],
)
def test_a_malformed_record_is_ignored(
    built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, record: bytes | None
) -> None:
    site, cache = built
    (path,) = (cache / "v1" / "pages").iterdir()
    if record is None:  # a JSON line per page after the header
        head, *lines = path.read_bytes().splitlines()
        out = [head]
        for line in lines:
            kind, rel, text = json.loads(line)
            if kind == "p":
                text = json.dumps([1, "x", None])
            else:
                text = json.dumps([*json.loads(text)[:2], 3, {}, [], [[1]]])
            out.append(json.dumps([kind, rel, text]).encode())
        out.append(json.dumps(["p", "index.html", ["an entry that is not text"]]).encode())
        out += [b"not json", b'["p", "index.html"]', b'["x", "index.html", "[]"]']
        record = b"\n".join(out) + b"\n"
    path.write_bytes(record)
    before = files(site)
    calls = Calls(monkeypatch)
    report = run_site(site, conf(cache), progress=False)
    assert (calls.scans, calls.rewrites) == (2, 2)  # nothing taken from the record
    assert report.pages_changed == 0 and not report.warnings and files(site) == before
    run_site(site, conf(cache), progress=False)  # the record written anew, and used
    assert (calls.scans, calls.rewrites) == (2, 2)


def test_a_no_work_rebuild_starts_no_pool_and_loads_no_rewriter(built: tuple[Path, Path]) -> None:
    """What a rebuild with nothing to do never imports: the process pool's machinery, the
    scale-out code, the page rewriter (every page is as its rewrite leaves it), Pillow,
    two standard modules only a mistake or a zipped package needs (difflib, zipfile),
    sqlite3 (only a site past spool.SPILL_AT images needs it), and what only a config
    file or a large image needs (tomllib, a thread pool)."""
    site, cache = built
    code = (
        "import sys\n"
        "from ssg_dmi.cli import main\n"
        f"assert main(['build', {str(site)!r}, '--cache-dir', {str(cache)!r}, '--jobs', '2',"
        " '--widths', '40,80', '--formats', 'jpeg', '--no-progress']) == 0\n"
        "unwanted = ('multiprocessing', 'concurrent.futures.process', 'ssg_dmi.build.remote',"
        " 'ssg_dmi.pages.rewrite', 'ssg_dmi.pages.responsive', 'PIL', 'difflib', 'zipfile',"
        " 'sqlite3', 'tomllib', 'concurrent.futures.thread')\n"
        "print(sorted(m for m in sys.modules if m in unwanted))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=site.parent,  # no pyproject.toml to read settings from
    ).stdout
    assert "2/2 from cache" in out and "(0 changed)" in out
    assert out.rstrip().endswith("[]"), out


def test_the_scan_recorded_for_a_written_page_is_the_scan_of_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cold build records, for each page it writes, the scan of the page as it read it,
    # with the adapter's declared value where the page had none (index.html; sub/page.html
    # has its own): what a scan of the written file finds, without scanning it.
    from ssg_dmi.pages.overrides import PageStore

    site, cache = make_site(tmp_path / "site"), tmp_path / "cache"
    declared = {"index.html": "dmi-allowed", "sub/page.html": "DMI-ALLOWED"}
    report = run_site(site, conf(cache), progress=False, page_dmi=declared)
    assert report.pages_changed == 2
    memo, store = PageMemo.for_site(cache, site), PageStore(site, budget=0)
    real_scan, found = scanning.scan, {}
    calls = Calls(monkeypatch)
    for rel in ("index.html", "sub/page.html"):
        page = store.get(rel)
        assert not isinstance(page, str)
        found[rel] = memo.scan(rel, page, "/")
        assert found[rel] == real_scan(page.text, rel, "/")
    assert calls.scans == 0
    assert (
        found["index.html"].dmi == "DMI-ALLOWED" and found["sub/page.html"].dmi == "DMI-PROHIBITED"
    )
