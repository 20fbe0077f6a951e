"""``ssg-dmi build``, ``cache`` and ``check``: commands on a site folder."""

from __future__ import annotations

import argparse
import sys

from ..fsutil import shown
from .parser import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, settings_from


def cmd_build(args: argparse.Namespace) -> int:
    """Process a built site folder; print a summary and one line per problem."""
    from ..build.pipeline import write_report
    from ..build.site import run_site

    settings = settings_from(args.config).with_overrides(
        dmi=args.dmi,
        widths=args.widths,
        formats=args.formats,
        quality=args.quality,
        originals=args.originals,
        jobs=args.jobs,
        cache_dir=args.cache_dir,
        strict=True if args.strict else None,
        cache=False if args.no_cache else None,
        scheduler=args.scheduler,
    )
    shard = None
    if args.shard:
        from ..build.remote import parse_shard

        shard = parse_shard(args.shard)
    if not args.site.is_dir():
        what = "is a file, not a folder" if args.site.exists() else "no such site folder"
        print(
            f"ssg-dmi: error: {shown(args.site)}: {what}; give the generator's output folder",
            file=sys.stderr,
        )
        return EXIT_USAGE
    site_report = run_site(args.site, settings, progress=args.progress, shard=shard)
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
        try:
            write_report(report, args.report)
        except OSError as exc:
            print(
                f"ssg-dmi: error: --report {shown(args.report)}: cannot write it "
                f"({exc.strerror or exc}); the site was built",
                file=sys.stderr,
            )
            return EXIT_USAGE
    print(shown(site_report.summary_line()))
    return EXIT_FINDINGS if settings.strict and report.untagged else EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    """Prune or clear the cache folder."""
    from ..build.cache import Cache

    settings = settings_from(args.config).with_overrides(cache_dir=args.cache_dir)
    if args.max_age is not None and not args.max_age > 0:
        print("ssg-dmi: error: --max-age must be a number of days above 0", file=sys.stderr)
        return EXIT_USAGE
    cache = Cache(settings.cache_dir)
    try:
        if args.action == "clear":
            cache.clear()
            print(f"ssg-dmi: cleared {shown(settings.cache_dir)}")
            return EXIT_OK
        removed = cache.prune() if args.max_age is None else cache.prune(args.max_age)
    except OSError as exc:
        print(
            f"ssg-dmi: error: {shown(settings.cache_dir)}: the cache cannot be read or "
            f"changed ({exc.strerror or exc}); check the path, credentials or endpoint",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(
        f"ssg-dmi: pruned {removed['entries']} entries and {removed['objects']} files "
        f"({removed['bytes'] / 1e6:.1f} MB) not used by any site's last build"
    )
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Audit a built site folder or a served site; exit 0 clean (warnings allowed), 1 with
    errors, 2 on bad usage."""
    from ..audit.folder import check_site
    from ..audit.report_formats import FORMATTERS
    from ..audit.served import check_url

    settings = settings_from(args.config).with_overrides(dmi=args.dmi)

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
