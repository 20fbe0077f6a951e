"""The version of ssg-dmi (a part of every cache key)."""

__version__ = "0.1.0"
