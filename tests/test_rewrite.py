"""Page rewriting: tables of input -> expected bytes."""

from __future__ import annotations

from typing import Any

import pytest

from ssg_dmi.pages.context import PageContext
from ssg_dmi.pages.rewrite import rewrite

from .page_cases import IMAGES, check_srcsets

NO_META: dict[str, Any] = {"robots": (), "tdm_reservation": None}
SIZES = ' sizes="auto, (max-width: 960px) 100vw, 960px"'
TAIL = ' width="1600" height="1200" loading="lazy" decoding="async"'


def a_set(prefix: str) -> str:
    """What the A image gets when its URLs start with ``prefix``."""
    return f' srcset="{prefix}a-480.webp 480w, {prefix}a-960.webp 960w"{SIZES}{TAIL}'


def ctx(page: str = "index.html", **kw: Any) -> PageContext:
    return PageContext(page, images=kw.pop("images", IMAGES), **{**NO_META, **kw})


# (case, page, context options, input, expected)
# fmt: off
IMG_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("double", "index.html", {}, '<img src="img/a.jpg" alt="A">',
     f'<img src="img/a.jpg" alt="A"{a_set("img/")}>'),
    ("single", "index.html", {}, "<img src='img/a.jpg' alt='A'>",
     f"<img src='img/a.jpg' alt='A'{a_set('img/')}>"),
    ("unquoted", "index.html", {}, "<img src=img/a.jpg alt=A>",
     f"<img src=img/a.jpg alt=A{a_set('img/')}>"),
    ("upper", "index.html", {}, '<IMG SRC="img/a.jpg" ALT="A">',
     f'<IMG SRC="img/a.jpg" ALT="A"{a_set("img/")}>'),
    ("self-closing", "index.html", {}, '<img src="img/a.jpg" />',
     f'<img src="img/a.jpg"{a_set("img/")} />'),
    ("self-closing-no-space", "index.html", {}, '<img src="img/a.jpg"/>',
     f'<img src="img/a.jpg"{a_set("img/")}/>'),
    # An unquoted value takes the slash: the browser asks for "img/a.jpg/".
    ("unquoted-slash", "index.html", {}, "<img src=img/a.jpg/>", "<img src=img/a.jpg/>"),
    ("gt-in-value", "index.html", {}, '<img alt="a > b" src="img/a.jpg">',
     f'<img alt="a > b" src="img/a.jpg"{a_set("img/")}>'),
    ("entity-src", "index.html", {}, '<img src="img/a&#46;jpg" alt="Tom &amp; &#39;J&#39;">',
     f'<img src="img/a&#46;jpg" alt="Tom &amp; &#39;J&#39;"{a_set("img/")}>'),
    ("query-fragment", "index.html", {}, '<img src="img/a.jpg?v=2#x">',
     f'<img src="img/a.jpg?v=2#x"{a_set("img/")}>'),
    ("duplicate-attr", "index.html", {}, '<img src="img/a.jpg" src="img/b.png">',
     f'<img src="img/a.jpg" src="img/b.png"{a_set("img/")}>'),
    ("dot-segments", "blog/index.html", {}, '<img src="./../img/./a.jpg">',
     f'<img src="./../img/./a.jpg"{a_set("../img/")}>'),
    ("nested", "blog/index.html", {}, '<img src="../img/b.png">',
     '<img src="../img/b.png" srcset="../img/b-400.webp 400w"'
     f'{SIZES} width="800" height="600" loading="lazy" decoding="async">'),
    ("directory-url", "blog/post/index.html", {}, '<img src="../../img/a.jpg">',
     f'<img src="../../img/a.jpg"{a_set("../../img/")}>'),
    ("root", "blog/post/index.html", {}, '<img src="/img/a.jpg">',
     f'<img src="/img/a.jpg"{a_set("/img/")}>'),
    ("root-base", "blog/post/index.html", {"base_url": "/docs/"}, '<img src="/docs/img/a.jpg">',
     f'<img src="/docs/img/a.jpg"{a_set("/docs/img/")}>'),
    ("relative-base", "blog/post/index.html", {"base_url": "/docs/"},
     '<img src="../../img/a.jpg">', f'<img src="../../img/a.jpg"{a_set("../../img/")}>'),
    ("outside-base", "index.html", {"base_url": "/docs/"}, '<img src="/img/a.jpg">',
     '<img src="/img/a.jpg">'),
    ("base-href", "blog/post/index.html", {}, '<base href="/img/"><img src="a.jpg">',
     f'<base href="/img/"><img src="a.jpg"{a_set("")}>'),
    ("base-href-external", "index.html", {},
     '<base href="https://cdn.example/"><img src="img/a.jpg">',
     '<base href="https://cdn.example/"><img src="img/a.jpg">'),
    ("odd-name", "index.html", {}, "<img src=\"img/a b,c'd é.jpg\">",
     "<img src=\"img/a b,c'd é.jpg\" srcset=\"img/a%20b%2Cc%27d%20%C3%A9-500.webp 500w\""
     f'{SIZES} width="1000" height="500" loading="lazy" decoding="async">'),
    ("odd-name-encoded", "index.html", {}, '<img src="img/a%20b%2Cc\'d%20%C3%A9.jpg">',
     "<img src=\"img/a%20b%2Cc'd%20%C3%A9.jpg\""
     ' srcset="img/a%20b%2Cc%27d%20%C3%A9-500.webp 500w"'
     f'{SIZES} width="1000" height="500" loading="lazy" decoding="async">'),
    ("percent20", "index.html", {}, '<img src="img/my%20photo.jpg">',
     '<img src="img/my%20photo.jpg" srcset="img/my%20photo-500.webp 500w"'
     f'{SIZES} width="1000" height="500" loading="lazy" decoding="async">'),
    ("percent-in-name", "index.html", {}, '<img src="/img/100%25.jpg">',
     '<img src="/img/100%25.jpg" srcset="/img/100%25-500.webp 500w"'
     f'{SIZES} width="1000" height="500" loading="lazy" decoding="async">'),
    ("no-variants", "index.html", {}, '<img src="img/c.gif">',
     '<img src="img/c.gif" width="320" height="200" loading="lazy" decoding="async">'),
    ("external", "index.html", {}, '<img src="https://example.org/img/a.jpg">',
     '<img src="https://example.org/img/a.jpg">'),
    ("protocol-relative", "index.html", {}, '<img src="//example.org/img/a.jpg">',
     '<img src="//example.org/img/a.jpg">'),
    ("data", "index.html", {}, '<img src="data:image/png;base64,AAAA">',
     '<img src="data:image/png;base64,AAAA">'),
    ("unknown", "index.html", {}, '<img src="img/zzz.jpg">', '<img src="img/zzz.jpg">'),
    ("no-src", "index.html", {}, "<img alt=x>", "<img alt=x>"),
    # Browsers stop ".." at the root: this is the site's own /etc/passwd.
    ("clamped-at-root", "blog/post/index.html", {}, '<img src="../../../etc/passwd">',
     f'<img src="../../../etc/passwd"{a_set("../../img/")}>'),
    ("author-srcset", "index.html", {}, '<img src="img/a.jpg" srcset="img/a.jpg 2x">',
     '<img src="img/a.jpg" srcset="img/a.jpg 2x">'),
    ("author-data-srcset", "index.html", {}, '<img src="img/a.jpg" data-srcset="x 1x">',
     '<img src="img/a.jpg" data-srcset="x 1x">'),
    ("author-picture", "index.html", {},
     '<picture><source srcset="img/a.webp"><img src="img/a.jpg"></picture>',
     '<picture><source srcset="img/a.webp"><img src="img/a.jpg"></picture>'),
    ("after-author-picture", "index.html", {},
     '<PICTURE><img src="img/a.jpg"></PICTURE><img src="img/a.jpg">',
     f'<PICTURE><img src="img/a.jpg"></PICTURE><img src="img/a.jpg"{a_set("img/")}>'),
    ("loading-eager", "index.html", {}, '<img src="img/a.jpg" loading=eager>',
     '<img src="img/a.jpg" loading=eager srcset="img/a-480.webp 480w, img/a-960.webp 960w"'
     ' sizes="(max-width: 960px) 100vw, 960px" width="1600" height="1200" decoding="async">'),
    ("lazy-off", "index.html", {"lazy": False}, '<img src="img/a.jpg">',
     '<img src="img/a.jpg" srcset="img/a-480.webp 480w, img/a-960.webp 960w"'
     ' sizes="(max-width: 960px) 100vw, 960px" width="1600" height="1200" decoding="async">'),
    ("width-only", "index.html", {}, '<img src="img/a.jpg" width="800">',
     '<img src="img/a.jpg" width="800" srcset="img/a-480.webp 480w, img/a-960.webp 960w"'
     f'{SIZES} height="600" loading="lazy" decoding="async">'),
    ("height-only", "index.html", {}, '<img src="img/a.jpg" height=300>',
     '<img src="img/a.jpg" height=300 srcset="img/a-480.webp 480w, img/a-960.webp 960w"'
     f'{SIZES} width="400" loading="lazy" decoding="async">'),
    # A percentage stays as CSS; the attributes get pixels so the ratio is reserved.
    ("width-percent", "index.html", {}, '<img src="img/a.jpg" width="50%">',
     '<img src="img/a.jpg" width="1600" srcset="img/a-480.webp 480w, img/a-960.webp 960w"'
     f'{SIZES} height="1200" style="width:50%;height:auto" loading="lazy" decoding="async">'),
    ("both-dims", "index.html", {}, '<img src="img/a.jpg" width=1 height=2 decoding=sync>',
     '<img src="img/a.jpg" width=1 height=2 decoding=sync srcset="img/a-480.webp 480w, '
     f'img/a-960.webp 960w"{SIZES} loading="lazy">'),
    ("author-sizes", "index.html", {}, '<img src="img/a.jpg" sizes="50vw">',
     '<img src="img/a.jpg" sizes="50vw" srcset="img/a-480.webp 480w, img/a-960.webp 960w"'
     f"{TAIL}>"),
    ("data-sizes", "index.html", {}, '<img src="img/a.jpg" data-sizes="(min-width: 40em) 50vw">',
     '<img src="img/a.jpg" data-sizes="(min-width: 40em) 50vw" srcset="img/a-480.webp 480w,'
     ' img/a-960.webp 960w" sizes="auto, (min-width: 40em) 50vw"' + TAIL + ">"),
    ("data-sizes-auto-eager", "index.html", {},
     '<img src="img/a.jpg" data-sizes=auto loading=eager>',
     '<img src="img/a.jpg" data-sizes=auto loading=eager srcset="img/a-480.webp 480w,'
     ' img/a-960.webp 960w" sizes="(max-width: 960px) 100vw, 960px" width="1600" height="1200"'
     ' decoding="async">'),
    ("jpeg-first", "index.html", {"formats": ("jpeg",)}, '<img src="img/a.jpg">',
     '<img src="img/a.jpg" srcset="img/a-480.jpg 480w, img/a-960.jpg 960w, img/a.jpg 1600w"'
     f"{SIZES}{TAIL}>"),
    ("picture", "index.html", {"picture": True}, '<p><img src="img/a.jpg" alt=""></p>',
     '<p><picture><source type="image/webp" srcset="img/a-480.webp 480w, img/a-960.webp 960w"'
     f'{SIZES}><img src="img/a.jpg" alt="" srcset="img/a-480.jpg 480w, img/a-960.jpg 960w, '
     f'img/a.jpg 1600w"{SIZES}{TAIL}></picture></p>'),
    ("picture-no-own-variants", "index.html", {"picture": True},
     '<img src="/img/a%20b%2Cc\'d%20%C3%A9.jpg">',
     '<picture><source type="image/webp" srcset="/img/a%20b%2Cc%27d%20%C3%A9-500.webp 500w"'
     f'{SIZES}><img src="/img/a%20b%2Cc\'d%20%C3%A9.jpg" width="1000" height="500"'
     ' loading="lazy" decoding="async"></picture>'),
    # Inside SVG an <img> ends the SVG; a <picture> would not, so no wrapper there.
    ("picture-in-svg", "index.html", {"picture": True}, '<svg><img src="img/c.gif"></svg>',
     '<svg><img src="img/c.gif" width="320" height="200" loading="lazy" decoding="async"></svg>'),
    ("image-alias", "index.html", {}, '<image src="img/c.gif">',
     '<image src="img/c.gif" width="320" height="200" loading="lazy" decoding="async">'),
]

TEXT_CASES: list[tuple[str, str]] = [
    ("script", '<script>var s = \'<img src="img/a.jpg">\';</script>'),
    ("script-self-closed", '<script src="x.js"/><img src="img/a.jpg"></script>'),
    ("script-escaped", '<script><!--<script></script><img src="img/a.jpg">--></script>'),
    ("style", '<style>a::before{content:"<img src=img/a.jpg>"}</style>'),
    ("textarea", '<TEXTAREA><img src="img/a.jpg"></TEXTAREA>'),
    ("title", '<title><img src="img/a.jpg"></title>'),
    ("xmp", '<xmp><img src="img/a.jpg"></xmp>'),
    ("iframe", '<iframe><img src="img/a.jpg"></iframe>'),
    ("comment", '<!-- <img src="img/a.jpg"> -->'),
    ("comment-dashes", '<!-- a -- b <img src="img/a.jpg"> --!>'),
    ("escaped", "<p>&lt;img src=&quot;img/a.jpg&quot;&gt;</p>"),
    ("in-attribute", "<p title='<img src=\"img/a.jpg\">'>"),
    ("bogus", '<? <img src="img/a.jpg" ?>'),
    ("cdata-svg", '<svg><![CDATA[ a > b <img src="img/a.jpg"> ]]></svg>'),
    ("unclosed-tag", '<p><a href="x" <img src="img/a.jpg">'),
    ("unclosed-quote", '<p title="<img src=img/a.jpg>'),
    ("plaintext", '<plaintext><img src="img/a.jpg">'),
]
# fmt: on


@pytest.mark.parametrize(
    ("page", "opts", "src", "want"), [c[1:] for c in IMG_CASES], ids=[c[0] for c in IMG_CASES]
)
def test_img(page: str, opts: dict[str, Any], src: str, want: str) -> None:
    c = ctx(page, **opts)
    got = rewrite(src, c)
    assert got == want
    assert rewrite(got, c) == got
    check_srcsets(src, got, c)


@pytest.mark.parametrize("src", [c[1] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_text_that_looks_like_img_is_untouched(src: str) -> None:
    assert rewrite(src, ctx()) == src


def test_real_img_in_pre_is_rewritten() -> None:
    src = '<pre>\r\n&lt;img src="x"&gt;\r\n<img src="img/a.jpg">\r\n</pre>'
    want = f'<pre>\r\n&lt;img src="x"&gt;\r\n<img src="img/a.jpg"{a_set("img/")}>\r\n</pre>'
    assert rewrite(src, ctx()) == want


def test_noscript_is_markup() -> None:
    src = '<noscript><img src="img/c.gif"></noscript>'
    assert 'width="320"' in rewrite(src, ctx())


def test_every_other_byte_is_kept() -> None:
    page = (
        '\ufeff<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN">\r\n'
        "<html><head>\r\n<meta charset=utf-8>\r\n<title>T &amp; &copy</title></head>\r\n"
        "<body><p class='x'  id=y>caf&eacute; &#x41;</p><img src=img/c.gif alt='&lt;'>\r\n"
        "<script>if (a<b) {}</script></body></html>"
    )
    out = rewrite(page, ctx(robots=("noai",)))
    want = page.replace(
        "<meta charset=utf-8>", '<meta charset=utf-8><meta name="robots" content="noai">'
    ).replace(
        "alt='&lt;'>", 'alt=\'&lt;\' width="320" height="200" loading="lazy" decoding="async">'
    )
    assert out == want


# -- metas ---------------------------------------------------------------------------------

R = '<meta name="robots" content="noai, noimageai">'
T1 = '<meta name="tdm-reservation" content="1">'

# (case, context options, input, expected)
# fmt: off
META_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("after-head", {}, "<html><head><title>x</title></head></html>",
     f"<html><head>{R}{T1}<title>x</title></head></html>"),
    ("after-charset", {}, '<head>\n  <meta charset="utf-8">\n  <title>x</title>',
     f'<head>\n  <meta charset="utf-8">{R}{T1}\n  <title>x</title>'),
    ("after-http-equiv", {},
     '<HEAD><!-- c --><META HTTP-EQUIV="Content-Type" CONTENT="text/html">',
     f'<HEAD><!-- c --><META HTTP-EQUIV="Content-Type" CONTENT="text/html">{R}{T1}'),
    ("no-head", {}, "<!doctype html>\n<html lang=en>\n<!-- c -->\n<body>x",
     f"<!doctype html>\n<html lang=en>\n<!-- c -->\n{R}{T1}<body>x"),
    ("no-html", {}, "<!DOCTYPE html>\n<title>x</title>",
     f"<!DOCTYPE html>\n{R}{T1}<title>x</title>"),
    ("bare", {}, "hello", f"{R}{T1}hello"),
    ("xhtml", {}, '<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head/>',
     '<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head/>'
     '<meta name="robots" content="noai, noimageai" />'
     '<meta name="tdm-reservation" content="1" />'),
    ("keep-noindex", {}, '<head><meta name="robots" content="noindex, NoAI">',
     f'<head>{T1}<meta name="robots" content="noindex, NoAI, noimageai">'),
    ("dedupe", {}, "<head><meta name=robots content='noindex,noindex'>",
     f"<head>{T1}<meta name=robots content='noindex, noai, noimageai'>"),
    ("two-robots", {"tdm_reservation": None},
     '<head><meta name="robots" content="noindex">\n<meta name="ROBOTS" content="nofollow">',
     '<head><meta name="robots" content="noindex, nofollow, noai, noimageai">\n'),
    ("already-there", {"tdm_reservation": None},
     "<head><meta content='noindex,noai,noimageai' name=robots>",
     "<head><meta content='noindex,noai,noimageai' name=robots>"),
    ("no-content", {"tdm_reservation": None}, "<head><meta name=robots content>",
     '<head><meta name=robots content="noai, noimageai">'),
    ("no-robots-wanted", {"robots": ()}, "<head>", f"<head>{T1}"),
    ("no-robots-wanted-kept", {"robots": (), "tdm_reservation": None},
     '<head><meta name="robots" content="noindex">',
     '<head><meta name="robots" content="noindex">'),
    ("tdm-replaced", {"robots": ()},
     '<head><meta name="tdm-reservation" content="0"><meta name="tdm-reservation" content="1">',
     '<head><meta name="tdm-reservation" content="1">'),
    ("tdm-zero", {"robots": (), "tdm_reservation": 0}, "<head>",
     '<head><meta name="tdm-reservation" content="0">'),
    ("tdm-none-keeps", {"robots": (), "tdm_reservation": None},
     '<head><meta name="tdm-reservation" content="0">',
     '<head><meta name="tdm-reservation" content="0">'),
    ("tdm-policy", {"robots": (), "tdm_policy": "https://example.org/p.json?a=1&b=2"}, "<head>",
     f'<head>{T1}<meta name="tdm-policy" content="https://example.org/p.json?a=1&amp;b=2">'),
    ("meta-in-comment", {}, '<head><!-- <meta name="robots" content="all"> -->',
     f'<head>{R}{T1}<!-- <meta name="robots" content="all"> -->'),
    ("meta-in-script", {}, "<head><script>'<meta name=robots content=all>'</script>",
     f"<head>{R}{T1}<script>'<meta name=robots content=all>'</script>"),
    ("meta-in-template", {"tdm_reservation": None},
     "<head><template><meta name=robots content=all></template>",
     f"<head>{R}<template><meta name=robots content=all></template>"),
]
# fmt: on


@pytest.mark.parametrize(
    ("opts", "src", "want"), [c[1:] for c in META_CASES], ids=[c[0] for c in META_CASES]
)
def test_metas(opts: dict[str, Any], src: str, want: str) -> None:
    c = PageContext("index.html", **opts)
    got = rewrite(src, c)
    assert got == want
    assert rewrite(got, c) == got


def test_tdm_reservation_is_zero_or_one() -> None:
    with pytest.raises(ValueError, match="tdm_reservation must be 1"):
        PageContext("index.html", tdm_reservation=2)
