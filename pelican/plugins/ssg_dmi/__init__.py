"""Pelican's namespace-plugin form of ssg-dmi: ``PLUGINS = ["ssg_dmi"]``."""

from ssg_dmi.pelican import register

__all__ = ["register"]
