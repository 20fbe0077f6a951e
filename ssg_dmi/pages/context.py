"""What :func:`.rewrite.rewrite` is told about a page and the images the build made, and
what it tells back about the images it could not make responsive."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    """One resized/re-encoded copy of an image."""

    path: str  # site-relative POSIX
    width: int
    height: int
    format: str


@dataclass(frozen=True)
class ImageInfo:
    """An original image: its intrinsic size, format and variants."""

    width: int
    height: int
    format: str
    variants: tuple[Variant, ...] = ()


@dataclass(frozen=True)
class Unprocessed:
    """A local ``<img>`` that got no srcset: ``path`` is its site path, or None when the
    URL leads outside ``base_url``. Why (missing, untagged, excluded) is the caller's to say."""

    src: str
    path: str | None


@dataclass(frozen=True)
class PageContext:
    """Everything :func:`.rewrite.rewrite` needs to know about one page."""

    page_path: str  # site-relative POSIX, e.g. "blog/post/index.html"
    base_url: str = "/"  # URL path the site is served under: "/" or "/docs/"
    images: Mapping[str, ImageInfo] = field(default_factory=dict)
    robots: tuple[str, ...] = ("noai", "noimageai")
    tdm_reservation: int | None = 1
    tdm_policy: str | None = None
    sizes: str = "(max-width: 960px) 100vw, 960px"
    picture: bool = False
    lazy: bool = True
    formats: tuple[str, ...] = ("avif", "webp", "jpeg", "png")
    origin: str | None = None  # "https://example.org": absolute URLs on it are local too
    # How our variant files are named (ssg_dmi.walk.VARIANT_NAME, with a "source" group):
    # a srcset of only such names beside the image is ours to refresh after a rebuild.
    variant_name: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if self.tdm_reservation not in (None, 0, 1):
            raise ValueError(
                f"tdm_reservation must be 1 (reserved), 0 (not reserved) or None (omit), "
                f"not {self.tdm_reservation!r}"
            )
