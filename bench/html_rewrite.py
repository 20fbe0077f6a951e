"""Time ssg_dmi.pages.rewrite.rewrite against a BeautifulSoup parse-and-reserialise doing the same work.

Usage: python bench/html_rewrite.py [PAGES=2000] [IMAGES_PER_PAGE=20]
A benchmark, not a test: it prints figures, it asserts nothing. The peer is what
pelican's image-process does: ``BeautifulSoup(html, "html.parser")``, edit, ``str(soup)``.
Both add the same srcset/sizes/width/height/loading/decoding and robots/tdm metas.
"""

# ruff: noqa: E501  (the page template keeps MkDocs' long lines, as real pages have them)
from __future__ import annotations

import random
import sys
import time

from bs4 import BeautifulSoup

from ssg_dmi.pages.rewrite import ImageInfo, PageContext, Variant, resolve, rewrite

WIDTHS = (480, 960, 1440)


def images(n: int = 60) -> dict[str, ImageInfo]:
    out = {}
    for k in range(n):
        stem = f"assets/photos/photo-{k:02d}"
        variants = tuple(
            Variant(f"{stem}-{w}.{ext}", w, w * 2 // 3, fmt)
            for fmt, ext in (("webp", "webp"), ("jpeg", "jpg"))
            for w in WIDTHS
        )
        out[f"{stem}.jpg"] = ImageInfo(2400, 1600, "jpeg", variants)
    return out


NAV = "".join(
    f'<li class="md-nav__item"><a href="../section-{k}/" class="md-nav__link">'
    f'<span class="md-ellipsis">Section {k}</span></a></li>\n'
    for k in range(90)
)
HEAD = """<!doctype html>
<html lang="en" class="no-js">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width,initial-scale=1">
    <meta name="description" content="A page of the example documentation">
    <link rel="canonical" href="https://example.org/blog/post-{n}/">
    <link rel="icon" href="../../assets/images/favicon.png">
    <meta name="generator" content="mkdocs-1.6.1, mkdocs-material-9.5.40">
    <title>Post {n} - Example</title>
    <link rel="stylesheet" href="../../assets/stylesheets/main.6f8fc17f.min.css">
    <link rel="stylesheet" href="../../assets/stylesheets/palette.06af60db.min.css">
    <script>__md_scope=new URL("../..",location),__md_hash=e=>[...e].reduce((e,_)=>(e<<5)-e+_.charCodeAt(0),0),__md_get=(e,_=localStorage,t=__md_scope)=>JSON.parse(_.getItem(t.pathname+"."+e))</script>
  </head>
  <body dir="ltr" data-md-color-scheme="default">
    <input class="md-toggle" data-md-toggle="drawer" type="checkbox" id="__drawer" autocomplete="off">
    <header class="md-header" data-md-component="header"><nav class="md-header__inner md-grid" aria-label="Header">
      <a href="../.." title="Example" class="md-header__button md-logo" aria-label="Example"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M12 8a3 3 0 0 0 3-3 3 3 0 0 0-3-3 3 3 0 0 0-3 3 3 3 0 0 0 3 3m0 3.54C9.64 9.35 6.5 8 3 8v11c3.5 0 6.64 1.35 9 3.54 2.36-2.19 5.5-3.54 9-3.54V8c-3.5 0-6.64 1.35-9 3.54"/></svg></a>
    </nav></header>
    <div class="md-container" data-md-component="container"><main class="md-main" data-md-component="main"><div class="md-main__inner md-grid">
    <div class="md-sidebar md-sidebar--primary" data-md-component="sidebar" data-md-type="navigation"><nav class="md-nav md-nav--primary"><ul class="md-nav__list" data-md-scrollfix>
"""
SECTION = """<h2 id="part-{k}">Part {k}<a class="headerlink" href="#part-{k}" title="Permanent link">&para;</a></h2>
<p>Lorem ipsum dolor sit amet, <strong>consectetur</strong> adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua &amp; more. See <a href="../other/#x">the other page</a> and <code>config.yml</code>.</p>
<figure><img src="{src}" alt="Photo {k} &mdash; a view" title='Photo "{k}"'><figcaption>Photo {k}</figcaption></figure>
<div class="highlight"><pre><span></span><code><span class="k">def</span> <span class="nf">f</span><span class="p">(</span><span class="n">x</span><span class="p">):</span>
    <span class="k">return</span> <span class="n">x</span> <span class="o">&lt;</span> <span class="mi">3</span>  <span class="c1"># &lt;img src=&quot;no.jpg&quot;&gt;</span>
</code></pre></div>
"""
FOOT = """</article></div></div></main>
<footer class="md-footer"><div class="md-copyright">Made with <a href="https://squidfunk.github.io/mkdocs-material/" target="_blank" rel="noopener">Material for MkDocs</a></div></footer></div>
<script id="__config" type="application/json">{"base": "../..", "features": [], "search": "../../assets/javascripts/workers/search.b8dbb3d2.min.js"}</script>
<script src="../../assets/javascripts/bundle.fe8b6f2b.min.js"></script>
</body>
</html>
"""


def page(n: int, per_page: int, names: list[str], rng: random.Random) -> str:
    parts = [HEAD.format(n=n), NAV, "</ul></nav></div>\n"]
    parts.append(
        '<div class="md-content" data-md-component="content"><article class="md-content__inner md-typeset">\n'
    )
    parts.append(f"<h1>Post {n}</h1>\n")
    for k in range(per_page):
        name = rng.choice(names)
        src = "../../" + name if k % 2 else "/" + name
        parts.append(SECTION.format(k=k, src=src))
    parts.append(FOOT)
    return "".join(parts)


def soup_rewrite(html: str, ctx: PageContext) -> str:
    """The same change, done the parse-and-reserialise way."""
    soup = BeautifulSoup(html, "html.parser")
    for img in soup.find_all("img"):
        if img.has_attr("srcset") or img.find_parent("picture") is not None:
            continue
        src = str(img.get("src", ""))
        path = resolve(src, ctx.page_path, ctx.base_url)
        info = ctx.images.get(path) if path else None
        if info is None:
            continue
        rooted = src.startswith("/")
        fmt = next(f for f in ctx.formats if any(v.format == f for v in info.variants))
        cands = []
        for v in sorted((v for v in info.variants if v.format == fmt), key=lambda v: v.width):
            url = "/" + v.path if rooted else "../" * ctx.page_path.count("/") + v.path
            cands.append(f"{url} {v.width}w")
        img["srcset"] = ", ".join(cands)
        img["sizes"] = "auto, " + ctx.sizes
        img["width"], img["height"] = str(info.width), str(info.height)
        img["loading"], img["decoding"] = "lazy", "async"
    head = soup.head
    assert head is not None
    robots = soup.find("meta", attrs={"name": "robots"})
    if robots is None:
        head.insert(
            0, soup.new_tag("meta", attrs={"name": "robots", "content": ", ".join(ctx.robots)})
        )
    head.insert(1, soup.new_tag("meta", attrs={"name": "tdm-reservation", "content": "1"}))
    return str(soup)


def main() -> None:
    n_pages = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    per_page = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    rng = random.Random(1)
    known = images()
    names = sorted(known)
    pages = [(f"blog/post-{n}/index.html", page(n, per_page, names, rng)) for n in range(n_pages)]
    total = sum(len(p) for _, p in pages)
    print(
        f"{n_pages} pages x {per_page} images, {total / n_pages / 1024:.1f} KB a page, {total / 2**20:.1f} MB"
    )

    start = time.perf_counter()
    ours = [rewrite(html, PageContext(path, images=known)) for path, html in pages]
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [soup_rewrite(html, PageContext(path, images=known)) for path, html in pages]
    t_soup = time.perf_counter() - start

    srcsets = sum(p.count(" srcset=") for p in ours)
    assert srcsets == sum(p.count(" srcset=") for p in theirs) == n_pages * per_page
    print(
        f"ssg_dmi.pages.rewrite.rewrite      {t_ours:7.2f} s  {t_ours / n_pages * 1000:6.2f} ms/page  {total / 2**20 / t_ours:6.1f} MB/s"
    )
    print(
        f"BeautifulSoup html.parser {t_soup:7.2f} s  {t_soup / n_pages * 1000:6.2f} ms/page  {total / 2**20 / t_soup:6.1f} MB/s"
    )
    print(f"ratio: rewrite is {t_soup / t_ours:.1f}x faster ({srcsets} srcsets each)")
    entities = sum(p.count("&mdash;") + p.count("&para;") for _, p in pages)
    kept_ours = sum(p.count("&mdash;") + p.count("&para;") for p in ours)
    kept_soup = sum(p.count("&mdash;") + p.count("&para;") for p in theirs)
    print(
        f"entity spelling kept (&mdash; &para;): rewrite {kept_ours}/{entities}, soup {kept_soup}/{entities}"
    )
    added = sum(len(a) - len(b) for a, (_, b) in zip(ours, pages, strict=True)) / n_pages
    print(f"rewrite adds {added:.0f} bytes a page and changes no other byte")


if __name__ == "__main__":
    main()
