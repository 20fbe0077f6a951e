"""The package's exceptions: one base class, each error says the file, the cause and the fix."""

from __future__ import annotations


class SsgDmiError(Exception):
    """Base class of every error ssg-dmi raises on purpose."""


class ConfigError(SsgDmiError):
    """A setting is unknown or has a value outside what it allows."""


class ImageError(SsgDmiError):
    """An image could not be read, decoded or tagged; the build goes on without it."""


class ContainerError(ImageError):
    """A file's container structure (segments, chunks, boxes) is malformed."""
