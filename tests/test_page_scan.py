"""URL resolution and the pre-build page scan: tables of input -> expected."""

from __future__ import annotations

import pytest

from ssg_dmi.pages.scan import scan
from ssg_dmi.pages.urls import resolve

RESOLVE_CASES = [
    ("a.jpg", "index.html", "/", "a.jpg"),
    ("a.jpg?v=2#x", "index.html", "/", "a.jpg"),
    ("../img/a.png", "blog/index.html", "/", "img/a.png"),
    ("../../img/a.png", "blog/post/index.html", "/", "img/a.png"),
    ("/docs/img/a.png", "blog/post/index.html", "/docs/", "img/a.png"),
    ("../../img/a.png", "blog/post/index.html", "/docs/", "img/a.png"),
    ("/img/a.png", "index.html", "/docs/", None),
    ("../img/a.png", "index.html", "/docs/", None),
    ("../../../etc/passwd", "blog/post/index.html", "/", "etc/passwd"),
    ("../images/x.jpg", "index.html", "/", "images/x.jpg"),
    ("/../../images/x.jpg", "a/index.html", "/", "images/x.jpg"),
    ("../../img/a.png", "index.html", "/docs/", None),
    ("../../docs/img/a.png", "index.html", "/docs/", "img/a.png"),
    ("my%20photo.jpg", "index.html", "/", "my photo.jpg"),
    ("caf%C3%A9.jpg", "index.html", "/", "café.jpg"),
    ("  img\\a.jpg\n", "index.html", "/", "img/a.jpg"),
    ("%2e%2E/a.jpg", "x/index.html", "/", "a.jpg"),
    ("a%2Fb.jpg", "index.html", "/", None),
    ("https://example.org/a.jpg", "index.html", "/", None),
    ("HTTP://example.org/a.jpg", "index.html", "/", None),
    ("//example.org/a.jpg", "index.html", "/", None),
    ("\\\\example.org/a.jpg", "index.html", "/", None),
    ("data:image/png;base64,AA", "index.html", "/", None),
    ("blob:https://e.org/x", "index.html", "/", None),
    ("javascript:alert(1)", "index.html", "/", None),
    ("mailto:a@b.c", "index.html", "/", None),
    ("", "index.html", "/", None),
    ("#top", "index.html", "/", None),
    ("img/", "index.html", "/", None),
]


@pytest.mark.parametrize(("src", "page", "base", "want"), RESOLVE_CASES)
def test_resolve(src: str, page: str, base: str, want: str | None) -> None:
    assert resolve(src, page, base) == want


def test_scan() -> None:
    page = (
        '<head><meta name="ssg-dmi" content=" DMI-PROHIBITED "></head>'
        '<!-- <img src="x.jpg"> --><img src="../a.jpg" data-dmi="DMI-ALLOWED">'
        '<picture><img src="/docs/b%20c.png"></picture><img src="https://e.org/x.jpg">'
        "<script>'<img src=\"y.jpg\">'</script>"
    )
    got = scan(page, "blog/index.html", "/docs/")
    assert got.dmi == "DMI-PROHIBITED"
    assert got.images == (("a.jpg", "DMI-ALLOWED"), ("b c.png", None))
    assert scan("<p>", "index.html").dmi is None
