"""``Settings.policy_for`` makes one policy per set of matching rules (issue 14): the plan
of a large site does not build and hash a policy per image; what each path gets is as
before."""

from __future__ import annotations

from ssg_dmi.policy import DMI
from ssg_dmi.settings import load_settings


def test_one_policy_per_set_of_matching_rules() -> None:
    s = load_settings(
        {
            "dmi": "DMI-PROHIBITED",
            "rules": [
                {"path": "a/*.jpg", "dmi": "DMI-ALLOWED"},
                {"path": "*.png", "credit": "Studio"},
            ],
        },
        "test",
    )
    first, second = s.policy_for("a/1.jpg"), s.policy_for("a/2.jpg")
    assert first is second and first.dmi is DMI.ALLOWED
    plain = s.policy_for("b/1.jpg")
    assert plain is s.policy_for("c/2.jpg") and plain.dmi is DMI.PROHIBITED
    both = s.policy_for("a/x.png")
    assert both.dmi is DMI.PROHIBITED and both.rights.credit == "Studio"
    # Overrides are per path: never shared, never stored.
    given = s.policy_for("a/1.jpg", {"dmi": "DMI-PROHIBITED-AIMLTRAINING"})
    assert given.dmi is DMI.PROHIBITED_AIMLTRAINING and s.policy_for("a/1.jpg") is first
