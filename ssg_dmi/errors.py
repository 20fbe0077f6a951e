"""The package's exceptions: one base class, each error says the file, the cause and the fix."""

from __future__ import annotations

import re


class SsgDmiError(Exception):
    """Base class of every error ssg-dmi raises on purpose."""


class ConfigError(SsgDmiError):
    """A setting is unknown or has a value outside what it allows."""


class ImageError(SsgDmiError):
    """An image could not be read, decoded or tagged; the build goes on without it."""


class ContainerError(ImageError):
    """A file's container structure (segments, chunks, boxes) is malformed."""


class BuildInterrupted(SsgDmiError):
    """Ctrl-C or SIGTERM stopped a build; what is written is consistent, rerun to finish."""

    exitcode = 130  # what shells report for SIGINT; Pelican exits with an error's `exitcode`

    def __init__(self, done: int, total: int, stage: str = "") -> None:
        self.done, self.total = done, total
        where = f" while {stage}" if stage else ""
        count = f": {done} of {total} images done" if total else ""
        super().__init__(f"interrupted{where}{count}; rerun to finish")


class ExecutorLost(SsgDmiError):
    """The cluster running the image jobs went away mid-build (its scheduler stopped
    answering): not the images' fault, so not their errors; rerun to finish."""

    exitcode = 1


class TempTablesFailed(SsgDmiError):
    """The temporary tables of a very large build (``ssg_dmi.build.spool``) could not be
    written (their folder is full): the machine's fault, not an image's; what is written is
    consistent, rerun to finish."""

    exitcode = 1


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message cut to its first line (libraries' messages go on with
    response bodies and debug dumps, which do not belong in a one-line error), or its
    name when it has none."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def describe(exc: BaseException) -> str:
    """Pillow's message, or the exception's name when it has none (a bare KeyError).

    Pillow names the buffer it read ("<_io.BytesIO object at 0x7f...>"): that address
    changes every run, and a report or cache entry must not, so it is cut.
    """
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if isinstance(exc, LookupError) or not text else text
