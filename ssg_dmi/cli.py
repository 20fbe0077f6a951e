"""The ``ssg-dmi`` command line: the third adapter over the same core."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import BuildInterrupted, ConfigError, ImageError
from .fsutil import atomic_write, shown
from .images.facts import inspect_bytes
from .images.tagging import tag_bytes
from .settings import Settings, discover_settings, load_config_file
from .version import __version__
from .walk import walk_images

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


@dataclass(frozen=True)
class TagTarget:
    """One image to tag: where it is read, where it goes, its path for the rules."""

    source: Path
    target: Path
    relpath: str


def collect(paths: Sequence[Path], out: Path | None) -> tuple[list[TagTarget], list[str]]:
    """The images named on the command line; problems with the arguments themselves."""
    jobs, problems = [], []
    for arg in paths:
        if arg.is_dir():
            for path in walk_images(arg, skip=out):
                rel = path.relative_to(arg)
                target = out / rel if out else path
                jobs.append(TagTarget(path, target, rel.as_posix()))
        elif arg.exists() or arg.is_symlink():
            target = out / arg.name if out else arg
            jobs.append(TagTarget(arg, target, arg.name))
        else:
            problems.append(f"{shown(arg)}: no such file or folder")
    return jobs, problems


def _settings(config: Path | None) -> Settings:
    return load_config_file(config) if config else discover_settings(Path.cwd())


def cmd_tag(args: argparse.Namespace) -> int:
    """Tag every image named; report one line per file."""
    settings = _settings(args.config).with_overrides(dmi=args.dmi, metadata=args.metadata)
    jobs, problems = collect(args.paths, args.out)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    tagged = failed = noted = 0
    for job in jobs:
        name = shown(job.source)
        try:
            data = job.source.read_bytes()
            policy = settings.policy_for(job.relpath)
            result = tag_bytes(
                data,
                policy,
                name=job.source.name,
                lossless=args.lossless,
                max_pixels=settings.max_pixels,
                quality=settings.quality,
            )
            atomic_write(job.target, result.data)
        except ImageError as exc:
            failed += 1
            print(f"error: {name}: {exc}; left untagged", file=sys.stderr)
            continue
        except OSError as exc:
            failed += 1
            print(f"error: {name}: cannot read or write ({exc.strerror or exc})", file=sys.stderr)
            continue
        tagged += 1
        for note in result.notes:
            noted += 1
            print(f"note: {name}: {note}", file=sys.stderr)
        how = "re-encoded" if result.reencoded else "lossless"
        print(
            f"tagged {name} -> {shown(job.target)} [{policy.dmi.key}, {how}, "
            f"{len(data):,} -> {len(result.data):,} bytes]"
        )
    failed += len(problems)
    print(f"{tagged} tagged, {failed} failed", file=sys.stderr)
    return EXIT_FINDINGS if failed or (args.strict and noted) else EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    """Process a built site folder; print a summary and one line per problem."""
    from .build.pipeline import write_report
    from .build.site import run_site

    settings = _settings(args.config).with_overrides(
        dmi=args.dmi,
        widths=args.widths,
        formats=args.formats,
        quality=args.quality,
        originals=args.originals,
        jobs=args.jobs,
        cache_dir=args.cache_dir,
        strict=True if args.strict else None,
        cache=False if args.no_cache else None,
    )
    if not args.site.is_dir():
        what = "is a file, not a folder" if args.site.exists() else "no such site folder"
        print(
            f"ssg-dmi: error: {shown(args.site)}: {what}; give the generator's output folder",
            file=sys.stderr,
        )
        return EXIT_USAGE
    site_report = run_site(args.site, settings, progress=args.progress)
    report = site_report.images
    for warning in site_report.warnings:
        print(f"warning: {shown(warning)}", file=sys.stderr)
    for rel, notes in report.notes.items():
        for note in notes:
            print(f"note: {shown(rel)}: {note}", file=sys.stderr)
    for note in site_report.notes:
        print(f"note: {shown(note)}", file=sys.stderr)
    for rel, error in report.errors.items():
        print(f"error: {shown(rel)}: {error}; left unchanged and untagged", file=sys.stderr)
    if args.report:
        write_report(report, args.report)
    print(shown(site_report.summary_line()))
    return EXIT_FINDINGS if settings.strict and report.untagged else EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    """Prune or clear the cache folder."""
    from .build.cache import Cache

    settings = _settings(args.config).with_overrides(cache_dir=args.cache_dir)
    cache = Cache(Path(settings.cache_dir))
    if args.action == "clear":
        cache.clear()
        print(f"ssg-dmi: cleared {shown(settings.cache_dir)}")
        return EXIT_OK
    if args.max_age is not None and not args.max_age > 0:
        print("ssg-dmi: error: --max-age must be a number of days above 0", file=sys.stderr)
        return EXIT_USAGE
    removed = cache.prune() if args.max_age is None else cache.prune(args.max_age)
    print(
        f"ssg-dmi: pruned {removed['entries']} entries and {removed['objects']} files "
        f"({removed['bytes'] / 1e6:.1f} MB) not used by any site's last build"
    )
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print what each file says; exit 1 when a file is untagged, unreadable or leaks."""
    paths: list[Path] = []
    for arg in args.paths:
        if arg.is_dir():
            paths += walk_images(arg)
        else:
            paths.append(arg)
    results = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            results.append({"path": shown(path), "error": f"cannot read ({exc.strerror or exc})"})
            continue
        result = inspect_bytes(data, shown(path)).as_dict()
        if result.get("format"):
            result["c2pa"] = _c2pa_summary(data, result["format"])
        results.append(result)
    bad = [r for r in results if r.get("error") or not r.get("dmi") or r.get("private")]
    if args.json:
        json.dump(results, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        for r in results:
            print(_describe(r))
    return EXIT_FINDINGS if bad else EXIT_OK


def _c2pa_summary(data: bytes, fmt: str) -> dict[str, object] | None:
    """The file's C2PA manifest, read back (None: it has none)."""
    from .images.containers import Format
    from .images.provenance_read import read_if_signed, summary

    try:
        facts = read_if_signed(data, Format(fmt))
    except ImportError:
        return {"state": "unread: pip install 'ssg-dmi[c2pa]'"}
    return None if facts is None else summary(facts)


def _describe(r: Mapping[str, object]) -> str:
    if r.get("error"):
        return f"{r['path']}: error: {r['error']}"
    lines = [f"{r['path']} ({r['format']})", f"  DataMining: {r.get('dmi') or 'none (untagged)'}"]
    if r.get("other_constraints"):
        lines.append(f"  other constraints: {r['other_constraints']}")
    rights = r.get("rights")
    if isinstance(rights, dict):
        lines += [f"  {key}: {value}" for key, value in rights.items()]
    private = r.get("private")
    lines.append(f"  private fields: {', '.join(private) if private else 'none'}")  # type: ignore[arg-type]
    c2pa = r.get("c2pa")
    if isinstance(c2pa, dict):
        signer = " (signer untrusted)" if c2pa.get("untrusted_signer") else ""
        failures = f", failures: {', '.join(c2pa['failures'])}" if c2pa.get("failures") else ""
        lines.append(f"  C2PA: {c2pa['state']}{signer}{failures}")
        for label, uses in c2pa.get("training_mining", {}).items():
            said = ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in sorted(uses.items()))
            lines.append(f"    {label}: {said}")
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    """Audit a built site folder or a served site; exit 0 clean (warnings allowed), 1 with
    errors, 2 on bad usage."""
    from .audit.folder import check_site
    from .audit.report_formats import FORMATTERS
    from .audit.served import check_url

    settings = _settings(args.config).with_overrides(dmi=args.dmi)

    def usage(message: str) -> int:
        print(f"ssg-dmi: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    if (args.site is None) == (args.url is None):
        return usage("check takes a SITE_DIR or --url BASE_URL (one of them)")
    for flag in ("max_pages", "max_images"):
        if getattr(args, flag) < 1:
            return usage(f"--{flag.replace('_', '-')} must be 1 or more")
    if not args.time_limit > 0:
        return usage("--time-limit must be more than 0 seconds")
    if args.url is not None:
        try:
            report = check_url(
                args.url,
                settings,
                max_pages=args.max_pages,
                max_images=args.max_images,
                time_limit=args.time_limit,
            )
        except ValueError as exc:
            return usage(f"--url: {exc}")
    elif not args.site.is_dir():
        return usage(f"{shown(args.site)}: no such site folder")
    else:
        report = check_site(args.site, settings, theme_images=args.theme_images)
    # Names and page text read with surrogateescape print as \\xNN escapes, never raise.
    sys.stdout.write(shown(FORMATTERS[args.format](report)))
    return EXIT_FINDINGS if report.errors else EXIT_OK


def cmd_c2pa(args: argparse.Namespace) -> int:
    """``c2pa test-cert DIR``: an untrusted chain and key, and the [c2pa] table to use them."""
    try:
        from .images.untrusted_chain import write_test_chain

        chain, key = write_test_chain(args.dir)
    except ImportError:
        print("ssg-dmi: error: install the extra: pip install 'ssg-dmi[c2pa]'", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"ssg-dmi: error: {shown(args.dir)}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"wrote {shown(chain)} and {shown(key)}: an UNTRUSTED test chain (readers will say the "
        "signer is untrusted); never publish a site signed with it.\nAdd to ssg-dmi.toml:\n"
        f'[c2pa]\ncert = "{shown(chain)}"\nkey = "{shown(key)}"'
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ssg-dmi`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s: %(name)s: %(message)s",
    )
    # Pillow logs what it found wrong in a file before raising; the raise becomes that
    # image's one-line error, so its log lines would only say the same thing twice.
    if not args.verbose:
        logging.getLogger("PIL").setLevel(logging.CRITICAL)
    try:
        commands = {
            "tag": cmd_tag,
            "build": cmd_build,
            "cache": cmd_cache,
            "check": cmd_check,
            "c2pa": cmd_c2pa,
        }
        return commands.get(args.command, cmd_inspect)(args)
    except ConfigError as exc:
        print(f"ssg-dmi: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BuildInterrupted as exc:
        print(f"ssg-dmi: {exc}", file=sys.stderr)
        return BuildInterrupted.exitcode
    except KeyboardInterrupt:
        print("ssg-dmi: interrupted", file=sys.stderr)
        return BuildInterrupted.exitcode


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
