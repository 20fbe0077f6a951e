"""The default width ladder keeps the surplus of the srcset candidate a browser picks bounded.

Chromium 156 (measured, tests/test_lighthouse.py and README "Pages") fetches the first
candidate at or above the slot's device pixels, so between two steps the surplus pixel share
is at most 1 − (1 / step)²; the README and the `widths` doc promise ~32 %.
"""

from __future__ import annotations

from ssg_dmi import load_settings
from ssg_dmi.settings.fields import DEFAULT_WIDTHS


def test_default_widths_step_by_at_most_1_21() -> None:
    widths = load_settings({}).widths
    assert tuple(widths) == DEFAULT_WIDTHS
    assert list(widths) == sorted(set(widths)) and widths[0] == 320 and widths[-1] == 1600
    steps = [b / a for a, b in zip(widths, widths[1:], strict=False)]
    assert max(steps) <= 1.21
    assert 1 - 1 / max(steps) ** 2 <= 0.32  # the surplus the docs promise


def test_the_pick_for_every_slot_carries_at_most_32_percent_surplus() -> None:
    """Every slot from 321 to 1600 device pixels, picked as Chromium picks."""
    widths = load_settings({}).widths
    for slot in range(widths[0] + 1, widths[-1] + 1):
        pick = next(w for w in widths if w >= slot)
        assert 1 - (slot / pick) ** 2 < 0.32, (slot, pick)
