"""The ``ssg-dmi`` command line: the third adapter over the same core.

``ssg_dmi.cli:main`` is the console script.
"""

from __future__ import annotations

import logging
import sys
from argparse import Namespace
from collections.abc import Callable, Sequence

from ..errors import BuildInterrupted, ConfigError, ExecutorLost, TempTablesFailed
from .parser import EXIT_USAGE, build_parser

__all__ = ["build_parser", "main"]


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
        return command(args.command)(args)
    except ConfigError as exc:
        print(f"ssg-dmi: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ExecutorLost, TempTablesFailed) as exc:
        print(f"ssg-dmi: error: {exc}", file=sys.stderr)
        return ExecutorLost.exitcode
    except BuildInterrupted as exc:
        print(f"ssg-dmi: {exc}", file=sys.stderr)
        return BuildInterrupted.exitcode
    except KeyboardInterrupt:
        print("ssg-dmi: interrupted", file=sys.stderr)
        return BuildInterrupted.exitcode


def command(name: str) -> Callable[[Namespace], int]:
    """The function of a sub-command, its module imported only now: ``build`` never
    waits for the image-file commands' imports, nor ``tag`` for the site's."""
    if name in ("build", "cache", "check"):
        from . import site

        return {"build": site.cmd_build, "cache": site.cmd_cache, "check": site.cmd_check}[name]
    from . import images

    return {"tag": images.cmd_tag, "c2pa": images.cmd_c2pa}.get(name, images.cmd_inspect)
