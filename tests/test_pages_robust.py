"""Pages on real sites: percent widths, ``..`` at the root, encodings, links and special
files, unwritable pages, our srcsets refreshed after a rebuild, and output that passes its
own audit (issue 8, items 2-4, 9-11)."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ssg_dmi.audit.folder import check_site
from ssg_dmi.audit.page_checks import check_candidate, check_img_size, check_page_metas
from ssg_dmi.audit.page_facts import parse_srcset, read_page
from ssg_dmi.build.pipeline import run
from ssg_dmi.build.site import rewrite_pages
from ssg_dmi.contract import signals as signals_of
from ssg_dmi.fsutil import atomic_write
from ssg_dmi.pages.context import ImageInfo, PageContext, Unprocessed, Variant
from ssg_dmi.pages.encoding import decode_page
from ssg_dmi.pages.overrides import collect_overrides
from ssg_dmi.pages.rewrite import rewrite
from ssg_dmi.pages.tokens import iter_tags
from ssg_dmi.pages.urls import document_dir, page_dir, resolve_url, site_path
from ssg_dmi.policy import DMI
from ssg_dmi.settings import Settings, load_settings
from ssg_dmi.walk import VARIANT_NAME, find_pages, walk_images

from .conftest import EXAMPLE, ExampleSites

# -- helpers -------------------------------------------------------------------------------


def conf(**values: Any) -> Settings:
    values.setdefault("jobs", 1)
    values.setdefault("cache", False)
    values.setdefault("widths", [200, 400])
    return load_settings(values, "test")


def photo(path: Path, size: tuple[int, int] = (800, 600)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.linear_gradient("L").resize(size).convert("RGB").save(path, "JPEG", quality=85)


def build_pages(site: Path, s: Settings) -> tuple[int, list[str]]:
    """Images, then pages, as ``run_site`` does them; (pages changed, notes)."""
    notes: list[str] = []
    pages = find_pages(site, notes)
    page_values, _, _ = collect_overrides(site, pages, None, s.base_url)
    report = run(site, s, progress=False)
    changed, more = rewrite_pages(site, pages, s, report, page_values)
    return changed, notes + more


def page_errors(site: Path, s: Settings) -> list[str]:
    """``ssg-dmi check``'s page findings that are errors (not the site files)."""
    codes = {"img-missing-size", "srcset-missing-file", "srcset-wrong-width"}
    report = check_site(site, s)
    return [f"{f.code}: {f.message}" for f in report.findings if f.code in codes]


def img_attrs(html: str, src: str) -> dict[str, str]:
    for tag in iter_tags(html, frozenset({"img"})):
        if tag.get("src") == src:
            return {k: a.value for k, a in tag.attrs.items()}
    raise AssertionError(f"no <img src={src!r}> in {html!r}")


HEAD = '<!doctype html><html><head><meta charset="utf-8"><title>t</title></head><body>'


# -- item 3: percent and other non-integer sizes ---------------------------------------------

A = ImageInfo(
    1600,
    1200,
    "jpeg",
    (
        Variant("img/a.jpg-480w.0123456789.webp", 480, 360, "webp"),
        Variant("img/a.jpg-960w.0123456789.webp", 960, 720, "webp"),
    ),
)
IMAGES = {"img/a.jpg": A}
SET = "img/a.jpg-480w.0123456789.webp 480w, img/a.jpg-960w.0123456789.webp 960w"


def ctx(**kw: Any) -> PageContext:
    kw.setdefault("robots", ())
    kw.setdefault("tdm_reservation", None)
    kw.setdefault("variant_name", VARIANT_NAME)
    return PageContext(kw.pop("page", "index.html"), images=kw.pop("images", IMAGES), **kw)


# (case, the <img> attributes written by the author, what they become: width, height, style)
# fmt: off
SIZE_CASES = [
    ("percent-width", 'width="50%"', ("1600", "1200", "width:50%;height:auto")),
    ("percent-height", "height='30%'", ("1600", "1200", "width:auto;height:30%")),
    ("both-percent", 'width="50%" height="25%"', ("1600", "1200", "width:50%;height:25%")),
    ("percent-and-px", 'width="50%" height="300"', ("400", "300", "width:50%")),
    ("decimal-percent", 'width=" 12.5% "', ("1600", "1200", "width:12.5%;height:auto")),
    ("auto", 'width="auto"', ("1600", "1200", None)),
    ("empty", "width", ("1600", "1200", None)),
    ("auto-and-px", 'width="auto" height="300"', ("400", "300", None)),
    ("em-is-px", 'width="12em"', ("12em", "9", None)),
    ("decimal-px", 'height="150.4"', ("201", "150.4", None)),
    ("style-kept", 'width="50%" style="border: 0"',
     ("1600", "1200", "width:50%;height:auto;border: 0")),
]
# fmt: on


@pytest.mark.parametrize(
    ("attrs", "want"), [c[1:] for c in SIZE_CASES], ids=[c[0] for c in SIZE_CASES]
)
def test_non_pixel_sizes_become_pixels_and_css(
    attrs: str, want: tuple[str, str, str | None]
) -> None:
    c = ctx()
    out = rewrite(f'<img src="img/a.jpg" {attrs}>', c)
    got = img_attrs(out, "img/a.jpg")
    assert (got["width"], got["height"], got.get("style")) == want
    assert got["srcset"] == SET
    assert rewrite(out, c) == out
    assert not check_img_size(read_page(out).images[0], "index.html")


def test_percent_width_site_passes_check(tmp_path: Path) -> None:
    # Markdown attr_list `![x](a.jpg){: width="50%"}` as MkDocs writes it.
    site = tmp_path / "site"
    photo(site / "a.jpg")
    (site / "index.html").write_text(f'{HEAD}<p><img alt="x" src="a.jpg" width="50%" /></p>')
    s = conf()
    build_pages(site, s)
    assert page_errors(site, s) == []
    got = img_attrs((site / "index.html").read_text(), "a.jpg")
    assert got["style"] == "width:50%;height:auto"
    assert (got["width"], got["height"]) == ("800", "600")


# -- item 4: ".." at the root, and images that get no srcset ---------------------------------


def test_dot_dot_at_the_site_root_is_clamped_like_a_browser(tmp_path: Path) -> None:
    # A Pelican page at the root using ../images/x.jpg: browsers fetch /images/x.jpg.
    site = tmp_path / "site"
    photo(site / "images" / "x.jpg")
    (site / "index.html").write_text(f'{HEAD}<img src="../images/x.jpg">')
    s = conf()
    changed, notes = build_pages(site, s)
    got = img_attrs((site / "index.html").read_text(), "../images/x.jpg")
    assert "srcset" in got and (got["width"], got["height"]) == ("800", "600")
    for url, _ in parse_srcset(got["srcset"]):
        assert (site / site_path(resolve_url(url, []), [])).is_file()  # type: ignore[operator]
    assert notes == []
    assert page_errors(site, s) == []


def test_dot_dot_above_base_url_leaves_the_site_with_a_warning(tmp_path: Path) -> None:
    # Served under /blog/: from /blog/index.html, ../images/x.jpg is /images/x.jpg, which is
    # not this site; /blog/../blog/images/x.jpg is.
    site = tmp_path / "site"
    photo(site / "images" / "x.jpg")
    page = f'{HEAD}<img src="../images/x.jpg"><img src="../../blog/images/x.jpg">'
    (site / "index.html").write_text(page)
    _, notes = build_pages(site, conf(base_url="/blog/"))
    out = (site / "index.html").read_text()
    assert "srcset" not in img_attrs(out, "../images/x.jpg")
    assert "srcset" in img_attrs(out, "../../blog/images/x.jpg")
    assert notes == [
        'index.html: <img src="../images/x.jpg"> leads outside base_url /blog/; no srcset'
        " (write the URL under base_url)"
    ]


def test_local_images_without_srcset_are_warnings_naming_page_and_reason(tmp_path: Path) -> None:
    site = tmp_path / "site"
    photo(site / "ok.jpg")
    photo(site / "skipped" / "s.jpg")
    (site / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (site / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    os.symlink("/etc/hostname", site / "out.jpg")
    body = "".join(
        f'<img src="/{src}">'
        for src in ("ok.jpg", "gone.jpg", "bad.jpg", "logo.svg", "skipped/s.jpg", "out.jpg")
    )
    (site / "blog").mkdir()
    (site / "blog" / "p.html").write_text(HEAD + body)
    _, notes = build_pages(site, conf(exclude=["skipped/**"]))
    assert len(notes) == 3, notes
    gone, bad, out = notes
    assert (
        gone
        == 'blog/p.html: <img src="/gone.jpg"> names gone.jpg, which is not in the site; no srcset'
    )
    assert bad.startswith('blog/p.html: <img src="/bad.jpg"> bad.jpg is untagged (')
    assert out.startswith('blog/p.html: <img src="/out.jpg"> names out.jpg: a link leading outside')
    # SVG (no raster size) and an excluded image are deliberate: no word.


def test_author_srcset_and_picture_are_not_warnings() -> None:
    misses: list[Unprocessed] = []
    page = (
        '<img src="img/zzz.jpg" srcset="img/zzz.jpg 2x">'
        '<picture><source srcset="x.webp"><img src="img/zzz.jpg"></picture>'
        '<img src="img/zzz.jpg">'
    )
    rewrite(page, ctx(), misses)
    assert misses == [Unprocessed("img/zzz.jpg", "img/zzz.jpg")]


# -- item 10: encodings ------------------------------------------------------------------------


@pytest.mark.parametrize(("bom", "codec"), [(b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
def test_utf16_pages_keep_their_encoding(tmp_path: Path, bom: bytes, codec: str) -> None:
    site = tmp_path / "site"
    photo(site / "a.jpg")
    text = '<!doctype html><html><head><title>café</title></head><body><img src="a.jpg"></body>'
    (site / "index.html").write_bytes(bom + text.encode(codec))
    build_pages(site, conf())
    data = (site / "index.html").read_bytes()
    assert data.startswith(bom)
    out = data[2:].decode(codec)
    assert out.startswith('<!doctype html><html><head><style id="ssg-dmi">')
    assert '<meta name="robots" content="noai, noimageai">' in out
    assert "<title>café</title>" in out
    assert "srcset" in img_attrs(out, "a.jpg")


def test_legacy_encoding_round_trips_every_byte_outside_the_edits(tmp_path: Path) -> None:
    site = tmp_path / "site"
    photo(site / "a.jpg")
    before = (
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
        b"</head><body><p>caf\xe9 \x93quoted\x94 \x80 \xff \x81\x8d</p>"
        b'<img src="a.jpg"></body></html>'
    )
    (site / "index.html").write_bytes(before)
    build_pages(site, conf())
    after = (site / "index.html").read_bytes()
    assert after != before
    assert b"<p>caf\xe9 \x93quoted\x94 \x80 \xff \x81\x8d</p>" in after
    # Only insertions: removing our metas, style and the img's new attributes gives the input.
    stripped = re.sub(
        rb'<meta name="[a-z-]+" content="[^"]*">|<style id="ssg-dmi">.*?</style>', b"", after
    )
    stripped = re.sub(rb'<img src="a.jpg"[^>]*>', b'<img src="a.jpg">', stripped)
    assert stripped == before


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<meta charset=x-klingon><img src=a.jpg>", 'declares charset "x-klingon"'),
        (b"<meta charset=euc-jp><p>\xff\xfe\xff</p><img src=a.jpg>", "not valid euc-jp"),
        (b"\xff\xfe<\x00p\x00\x00\xd8", "not valid UTF-16-LE"),
        ("<p>x<img src=a.jpg>".encode("utf-16-le"), "UTF-16 without a byte order mark"),
    ],
    ids=["unknown-charset", "invalid-bytes", "lone-surrogate", "utf16-no-bom"],
)
def test_undecodable_pages_are_left_alone_with_a_warning(
    tmp_path: Path, data: bytes, why: str
) -> None:
    site = tmp_path / "site"
    photo(site / "a.jpg")
    (site / "index.html").write_bytes(data)
    changed, notes = build_pages(site, conf())
    assert (site / "index.html").read_bytes() == data
    assert changed == 0
    assert len(notes) == 1 and notes[0].startswith("index.html: cannot decode the page: ")
    assert why in notes[0] and notes[0].endswith("; left unchanged")


def test_decode_page_follows_the_browser_order() -> None:
    # BOM first, then <meta charset> in the first 1024 bytes, then UTF-8.
    page = decode_page(b"\xef\xbb\xbf<meta charset=windows-1252>\xc3\xa9")
    assert not isinstance(page, str) and page.text.endswith("é") and page.bom
    page = decode_page(b"<meta charset=ISO-8859-1>\x93")  # browsers read latin1 as cp1252
    assert not isinstance(page, str) and page.text.endswith("\u201c")
    late = b"<p>" + b"x" * 1100 + b"<meta charset=windows-1252>\xe9"
    page = decode_page(late)
    assert not isinstance(page, str) and page.encoding == "utf-8"
    assert page.encode(page.text) == late


# -- item 11: links and special files -------------------------------------------------------


def test_a_page_linking_outside_the_site_is_not_read_nor_replaced(tmp_path: Path) -> None:
    outside = tmp_path / "secret.html"
    outside.write_text(f'{HEAD}<img src="a.jpg">')
    site = tmp_path / "site"
    photo(site / "a.jpg")
    os.symlink(outside, site / "linked.html")
    os.symlink(site / "a.jpg", site / "inside-link.jpg")
    before = outside.read_bytes()
    _, notes = build_pages(site, conf())
    assert (site / "linked.html").is_symlink()
    assert outside.read_bytes() == before
    assert notes == ["linked.html: a link leading outside the site folder; skipped"]


def test_fifos_named_like_pages_and_images_never_block(tmp_path: Path) -> None:
    site = tmp_path / "site"
    photo(site / "a.jpg")
    (site / "index.html").write_text(f'{HEAD}<img src="a.jpg">')
    os.mkfifo(site / "pipe.html")
    os.mkfifo(site / "pipe.jpg")
    result: dict[str, Any] = {}

    def work() -> None:
        notes: list[str] = []
        result["pages"] = find_pages(site, notes)
        result["notes"] = notes
        result["images"] = [p.name for p in walk_images(site)]

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock it: a writer opening the FIFO lets the reader go on
        for name in ("pipe.html", "pipe.jpg"):
            fd = os.open(site / name, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        pytest.fail("a FIFO was opened")
    assert result["pages"] == ["index.html"]
    assert result["notes"] == ["pipe.html: not a regular file (FIFO, device or socket); skipped"]
    assert result["images"] == ["a.jpg"]


# -- item 9: unwritable pages ---------------------------------------------------------------


def test_a_page_that_cannot_be_written_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root writes through chmod, so the read-only file system is injected at the write.
    site = tmp_path / "site"
    photo(site / "a.jpg")
    for name in ("a.html", "b.html"):
        (site / name).write_text(f'{HEAD}<img src="a.jpg">')
    real = atomic_write

    def read_only(path: Path, data: bytes) -> bool:
        if path.name == "a.html":
            raise PermissionError(13, "Permission denied")
        return real(path, data)

    monkeypatch.setattr("ssg_dmi.build.site.atomic_write", read_only)
    changed, notes = build_pages(site, conf())
    assert changed == 1
    assert notes == ["a.html: cannot write (Permission denied); left unchanged"]
    assert "srcset" in (site / "b.html").read_text()


# -- item 2: our srcsets are refreshed, the author's are not -------------------------------

STALE = "img/a.jpg-300w.ffffffffff.webp 300w, img/a.jpg 1600w"


def test_a_stale_srcset_of_ours_is_refreshed() -> None:
    c = ctx()
    page = f'<img src="img/a.jpg" srcset="{STALE}" sizes="50vw" width="1600" height="1200">'
    out = rewrite(page, c)
    assert out == (
        f'<img src="img/a.jpg" srcset="{SET}" sizes="50vw" width="1600" height="1200"'
        ' loading="lazy" decoding="async">'
    )
    assert rewrite(out, c) == out


def test_our_srcset_is_dropped_when_no_variant_is_left() -> None:
    c = ctx(images={"img/a.jpg": ImageInfo(1600, 1200, "jpeg", ())})
    page = f'<img src="img/a.jpg" srcset="{STALE}" width="1600" height="1200">'
    out = rewrite(page, c)
    assert out == '<img src="img/a.jpg" width="1600" height="1200" loading="lazy" decoding="async">'


@pytest.mark.parametrize(
    "srcset",
    [
        "img/a.jpg 2x",  # density descriptor
        "img/a.jpg-300w.ffffffffff.webp 300w, img/other.jpg 800w",  # another file
        "img/b.jpg-300w.ffffffffff.webp 300w",  # another image's variant
        "other/a.jpg-300w.ffffffffff.webp 300w",  # another folder
        "https://cdn.example/a.jpg-300w.ffffffffff.webp 300w",
        "",
        "img/a.jpg 1600w",  # only the image itself: nothing of ours
    ],
)
def test_an_author_srcset_stays_byte_identical(srcset: str) -> None:
    page = f'<img src="img/a.jpg" srcset="{srcset}">'
    assert rewrite(page, ctx()) == page


def test_our_picture_is_refreshed_and_an_author_picture_is_not() -> None:
    c = ctx(picture=True)
    fresh = rewrite('<img src="img/a.jpg">', c)
    assert fresh.startswith("<picture><source") and rewrite(fresh, c) == fresh
    stale = fresh.replace("img/a.jpg-480w.0123456789.webp", "img/a.jpg-500w.ffffffffff.webp")
    assert rewrite(stale, c) == fresh
    # Picture mode switched off: our wrapper goes, the <img> gets the srcset.
    plain = rewrite(fresh, ctx())
    assert not plain.startswith("<picture>")
    assert img_attrs(plain, "img/a.jpg") == img_attrs(
        rewrite('<img src="img/a.jpg">', ctx()), "img/a.jpg"
    )
    assert rewrite(plain, ctx()) == plain
    author = (
        '<picture><source media="(min-width: 800px)" srcset="img/a.jpg-960w.0123456789.webp 960w">'
        '<img src="img/a.jpg"></picture>'
    )
    assert rewrite(author, c) == author


def test_urls_on_the_sites_own_origin_keep_their_form_and_are_refreshed() -> None:
    # Pelican without RELATIVE_URLS, served under /blog/.
    c = ctx(origin="https://example.org", base_url="/blog/")
    page = '<img src="https://example.org/blog/img/a.jpg" width=800>'
    out = rewrite(page, c)
    want = ", ".join(
        f"https://example.org/blog/img/a.jpg-{w}w.0123456789.webp {w}w" for w in (480, 960)
    )
    assert img_attrs(out, "https://example.org/blog/img/a.jpg")["srcset"] == want
    stale = out.replace("-480w.0123456789", "-300w.ffffffffff").replace(" 480w", " 300w")
    assert stale != out and rewrite(stale, c) == out


def test_rebuild_with_other_widths_leaves_no_stale_srcset(tmp_path: Path) -> None:
    site = tmp_path / "site"
    photo(site / "a.jpg")
    (site / "index.html").write_text(
        f'{HEAD}<img src="a.jpg"><img src="a.jpg" srcset="a.jpg 1x" width=8 height=6>'
    )
    build_pages(site, conf(widths=[200, 400]))
    first = (site / "index.html").read_text()
    assert "-200w." in first
    build_pages(site, conf(widths=[300]))
    second = (site / "index.html").read_text()
    assert "-200w." not in second and "-300w." in second
    assert 'srcset="a.jpg 1x"' in second
    assert page_errors(site, conf(widths=[300])) == []
    changed, _ = build_pages(site, conf(widths=[300]))
    assert changed == 0


# -- the output passes its own audit ------------------------------------------------------

VARIANTS = {
    "img/a.jpg": ImageInfo(
        1600,
        1200,
        "jpeg",
        tuple(
            Variant(f"img/a.jpg-{w}w.0123456789.{ext}", w, w * 3 // 4, fmt)
            for w in (480, 960)
            for fmt, ext in (("webp", "webp"), ("jpeg", "jpg"))
        ),
    ),
    "photos/b c.png": ImageInfo(
        800, 600, "png", (Variant("photos/b c.png-400w.0123456789.webp", 400, 300, "webp"),)
    ),
    "img/tiny.gif": ImageInfo(40, 30, "gif", ()),
}
WIDTHS = {p: i.width for p, i in VARIANTS.items()} | {
    v.path: v.width for i in VARIANTS.values() for v in i.variants
}
SRCS = {
    "img/a.jpg": [
        "img/a.jpg",
        "/img/a.jpg",
        "../img/a.jpg",
        "./img/./a.jpg",
        "https://example.org/img/a.jpg",
    ],
    "photos/b c.png": ["photos/b%20c.png", "/photos/b%20c.png"],
    "img/tiny.gif": ["img/tiny.gif"],
}
SIZE_ATTRS = ["", ' width="50%"', " width=300", " height=200", ' width="auto"', " height='40%'",
              ' width="50%" height="120"', " width=10 height=10", ' width="12em"']  # fmt: skip
OTHER_ATTRS = ["", " loading=lazy", ' loading="eager"', ' sizes="50vw"', " data-sizes=auto",
               ' style="border:0"', " decoding=sync", ' alt="x"']  # fmt: skip


@st.composite
def author_img(draw: st.DrawFn, up: str) -> str:
    path = draw(st.sampled_from(sorted(VARIANTS)))
    src = draw(st.sampled_from(SRCS[path]))
    src = src if src.startswith(("/", "https:")) else up + src
    attrs = draw(st.sampled_from(SIZE_ATTRS)) + "".join(
        draw(st.lists(st.sampled_from(OTHER_ATTRS), max_size=3, unique=True))
    )
    kind = draw(st.sampled_from(["plain", "plain", "stale", "ours", "picture", "author"]))
    name = path.rpartition("/")[2]
    here = src.rsplit("/", 1)[0] + "/" if "/" in src else ""
    if kind == "stale":
        stale = f"{here}{quote(name)}-111w.abcdefabcd.webp 111w"
        attrs += f' srcset="{stale}, {src} {VARIANTS[path].width}w"'
    elif kind == "ours":
        v = VARIANTS[path].variants
        if v:
            attrs += f' srcset="{here}{quote(v[0].path.rsplit("/", 1)[1])} {v[0].width}w"'
    elif kind == "author":
        attrs += f' srcset="{src} 2x"'
    tag = f"<img src={src!r}{attrs}>".replace("'", '"')
    if kind == "picture":
        return f'<picture><source srcset="{src} 1x" media="(min-width: 9em)">{tag}</picture>'
    return tag


@st.composite
def author_pages(draw: st.DrawFn) -> tuple[str, PageContext, DMI]:
    page = "index.html" if draw(st.booleans()) else "sub/index.html"
    imgs = draw(st.lists(author_img("../" if "/" in page else ""), min_size=1, max_size=6))
    head = draw(st.sampled_from(["<head>", '<head><meta charset="utf-8">', ""]))
    doc = f"<!doctype html><html>{head}<title>t</title><body>{''.join(imgs)}</body></html>"
    dmi = draw(st.sampled_from(list(DMI)))
    sig = signals_of(dmi)
    c = PageContext(
        page,
        images=VARIANTS,
        robots=sig.robots_meta,
        tdm_reservation=sig.tdm_reservation,
        tdm_policy="https://example.org/tdm.json" if sig.tdm_reservation == 1 else None,
        picture=draw(st.booleans()),
        lazy=draw(st.booleans()),
        formats=draw(st.sampled_from([("webp", "jpeg"), ("jpeg",), ("avif", "webp")])),
        variant_name=VARIANT_NAME,
        origin="https://example.org",
    )
    return doc, c, dmi


@settings(derandomize=True, max_examples=300, deadline=None)
@given(author_pages())
def test_rewritten_pages_pass_the_page_rules_of_check(case: tuple[str, PageContext, DMI]) -> None:
    doc, c, dmi = case
    out = rewrite(doc, c)
    assert rewrite(out, c) == out
    facts = read_page(out)
    findings = check_page_metas(facts, c.page_path, dmi, c.tdm_policy)
    directory = document_dir(out, page_dir(c.page_path, []))
    assert directory is not None
    author = {t.srcset for t in read_page(doc).images if t.srcset and "2x" in t.srcset or
              (t.srcset and "1x" in t.srcset)}  # fmt: skip
    for ref in facts.images:
        if ref.srcset in author:
            continue  # the author's own: build leaves it byte for byte alone
        findings += check_img_size(ref, c.page_path)
        for url, descriptors in parse_srcset(ref.srcset or ""):
            # Resolved independently, as a browser does (urljoin clamps ".." at the root).
            parts = urlsplit(urljoin(f"https://example.org/{c.page_path}", url))
            path = unquote(parts.path)[1:] if parts.netloc == "example.org" else None
            exists = path in WIDTHS
            width = WIDTHS.get(path or "")
            findings += check_candidate(c.page_path, ref, url, descriptors, width, exists)
    assert findings == [], (out, findings)


# -- the example sites' real-world-shaped pages ----------------------------------------------


def test_example_pages_with_root_dot_dot_and_percent_width(example_sites: ExampleSites) -> None:
    from ssg_dmi.settings import load_config_file

    colophon = (example_sites.pelican.site / "colophon.html").read_text(encoding="utf-8")
    cups = img_attrs(colophon, "../images/cups.jpg")
    assert "srcset" in cups and (cups["width"], cups["height"]) == ("1200", "750")
    half = (example_sites.mkdocs.site / "half/index.html").read_text(encoding="utf-8")
    autumn = img_attrs(half, "../images/autumn-sideways.jpg")
    assert "srcset" in autumn and autumn["style"] == "width:50%;height:auto"
    s = load_config_file(EXAMPLE / "ssg-dmi.toml")
    for build in (example_sites.pelican, example_sites.mkdocs):
        assert page_errors(build.site, s) == []
