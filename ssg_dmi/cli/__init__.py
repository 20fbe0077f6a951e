"""The ``ssg-dmi`` command line: the third adapter over the same core.

``ssg_dmi.cli:main`` is the console script.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ..errors import BuildInterrupted, ConfigError
from .images import cmd_c2pa, cmd_inspect, cmd_tag
from .parser import EXIT_USAGE, build_parser
from .site import cmd_build, cmd_cache, cmd_check

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
