"""The ``ssg-dmi`` argument parser, its exit codes, and where settings come from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..settings import Settings, discover_settings, load_config_file
from ..version import __version__

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"ssg-dmi: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = _Parser(prog="ssg-dmi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ssg-dmi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tag = sub.add_parser("tag", help="write tagged, stripped copies of images")
    tag.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    where = tag.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, metavar="DIR", help="folder for the tagged copies")
    where.add_argument("--in-place", action="store_true", help="overwrite the sources")
    tag.add_argument("--dmi", metavar="VALUE", help="DataMining value (key or URI)")
    tag.add_argument("--metadata", choices=["strip", "copyright", "keep"])
    tag.add_argument("--config", type=Path, metavar="FILE", help="ssg-dmi.toml or pyproject.toml")
    tag.add_argument(
        "--lossless", action="store_true", help="rewrite metadata only; pixels untouched"
    )
    tag.add_argument("--strict", action="store_true", help="exit 1 on any note, not only errors")

    build = sub.add_parser("build", help="tag every image of a built site and add variants")
    build.add_argument("site", type=Path, metavar="SITE_DIR", help="the generator's output folder")
    build.add_argument("--config", type=Path, metavar="FILE", help="ssg-dmi.toml or pyproject.toml")
    build.add_argument("--dmi", metavar="VALUE", help="site-wide DataMining value")
    build.add_argument("--widths", metavar="W,W,...", help="variant widths, e.g. 480,960,1600")
    build.add_argument("--formats", metavar="F,F,...", help="variant formats: avif,webp,jpeg,png")
    build.add_argument("--quality", type=int, metavar="Q", help="quality 1-100 for every format")
    build.add_argument(
        "--originals", choices=["optimize", "tag"], help="re-encode where it pays, or only tag"
    )
    build.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: cores)")
    build.add_argument("--cache-dir", metavar="DIR", help="cache folder (default .cache/ssg-dmi)")
    build.add_argument("--no-cache", action="store_true", help="process everything afresh")
    build.add_argument(
        "--shard",
        metavar="K/N",
        help="CI sharding: process shard K of N of the images into the (shared) cache only; "
        "then build without --shard to assemble the site",
    )
    build.add_argument(
        "--scheduler", metavar="ADDR", help="run the image jobs on a Dask cluster (tcp://host:8786)"
    )
    build.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report here")
    build.add_argument("--strict", action="store_true", help="exit 1 when any image is untagged")
    build.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal)",
    )

    cache = sub.add_parser("cache", help="manage the cache folder")
    cache.add_argument("action", choices=["prune", "clear"])
    cache.add_argument("--config", type=Path, metavar="FILE")
    cache.add_argument("--cache-dir", metavar="DIR")
    cache.add_argument(
        "--max-age",
        type=float,
        default=None,
        metavar="DAYS",
        help="prune keeps what any site's last build within DAYS used (default 30)",
    )

    inspect = sub.add_parser("inspect", help="show the DMI value, rights and private fields")
    inspect.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    inspect.add_argument("--json", action="store_true", help="one JSON document on stdout")

    check = sub.add_parser("check", help="audit a built or served site; exit 1 on findings")
    check.add_argument("site", nargs="?", type=Path, metavar="SITE_DIR", help="a built site")
    check.add_argument("--url", metavar="BASE_URL", help="crawl this served site instead")
    check.add_argument("--config", type=Path, metavar="FILE", help="ssg-dmi.toml or pyproject.toml")
    check.add_argument("--dmi", metavar="VALUE", help="site-wide DataMining value (as for build)")
    check.add_argument("--format", choices=["text", "json", "junit", "github"], default="text")
    check.add_argument("--max-pages", type=int, default=500, metavar="N", help="default 500")
    check.add_argument("--max-images", type=int, default=2000, metavar="N", help="default 2000")
    check.add_argument("--time-limit", type=float, default=120.0, metavar="SECONDS")
    check.add_argument(
        "--theme-images",
        action="store_true",
        help="also check a MkDocs/Pelican theme's own images, which the plugins leave alone",
    )

    c2pa = sub.add_parser("c2pa", help="C2PA signing helpers")
    c2pa_sub = c2pa.add_subparsers(dest="c2pa_command", required=True, parser_class=_Parser)
    test_cert = c2pa_sub.add_parser(
        "test-cert", help="write an UNTRUSTED ES256 test chain and key, for trying [c2pa] out"
    )
    test_cert.add_argument("dir", type=Path, metavar="DIR", help="folder to write them into")
    return parser


def settings_from(config: Path | None) -> Settings:
    """The settings of `--config FILE`, else of the current folder's config file."""
    return load_config_file(config) if config else discover_settings(Path.cwd())
