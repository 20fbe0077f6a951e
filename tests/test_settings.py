"""Settings: defaults, loading from TOML and pyproject, rules, and the exact errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssg_dmi.errors import ConfigError
from ssg_dmi.policy import DMI, MetadataMode
from ssg_dmi.settings import discover_settings, glob_to_regex, load_config_file, load_settings


def test_defaults() -> None:
    policy = load_settings({}).policy_for("a.jpg")
    assert policy.dmi is DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING
    assert policy.metadata is MetadataMode.COPYRIGHT
    assert policy.rights.copyright is None


@pytest.mark.parametrize("member", list(DMI))
def test_dmi_accepts_key_and_uri(member: DMI) -> None:
    extra = {
        DMI.PROHIBITED_SEECONSTRAINT: {"other_constraints": "ask"},
        DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR: {"embedded_rights_expression": "{}"},
        DMI.PROHIBITED_SEELINKEDRIGHTSEXPR: {"linked_rights_expression": "https://e.org/r"},
    }.get(member, {})
    for text in (member.key, member.uri, member.key.lower()):
        assert load_settings({"dmi": text, **extra}).policy_for("x.png").dmi is member


def test_vocabulary_is_the_final_nine() -> None:
    assert len(DMI) == 9
    assert "DMI-SEE-CONSTRAINT" not in {m.key for m in DMI}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"dmi": "DMI-SEE-CONSTRAINT"}, "`dmi`: 'DMI-SEE-CONSTRAINT' is not a PLUS DataMining"),
        ({"dmii": "DMI-ALLOWED"}, "unknown key `dmii` (did you mean `dmi`?)"),
        ({"dmi": "DMI-PROHIBITED-SEECONSTRAINT"}, "requires `other_constraints`"),
        ({"dmi": "DMI-PROHIBITED-SEEEMBEDDEDRIGHTSEXPR"}, "requires `embedded_rights_expression`"),
        ({"dmi": "DMI-PROHIBITED-SEELINKEDRIGHTSEXPR"}, "requires `linked_rights_expression`"),
        ({"metadata": "all"}, "`metadata`: 'all' is not a metadata mode; use one of strip"),
        ({"web_statement": "example.org"}, "`web_statement`: expected an http(s) URL"),
        ({"creator": []}, "`creator`: expected a name or a list of names"),
        ({"copyright": 5}, "`copyright`: expected a non-empty string, got 5"),
        ({"max_pixels": 0}, "`max_pixels`: expected a whole number from 1"),
        ({"quality": {"jpg": 80}}, "unknown key `jpg` (did you mean `jpeg`?)"),
        ({"quality": 101}, "`quality`: expected a whole number from 1 to 100, got 101"),
        ({"rules": {"path": "x"}}, "`rules`: expected a list of tables"),
        ({"rules": [{"dmi": "DMI-ALLOWED"}]}, "rule 1: expected a table with a `path` glob"),
        ({"rules": [{"path": "a/*", "dmi": "NO"}]}, "rule 1: `dmi`: 'NO' is not"),
        ({"rules": [{"path": "a/*", "colour": 1}]}, "rule 1: unknown key `colour`"),
    ],
)
def test_errors_name_key_value_and_fix(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(raw, "ssg-dmi.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("ssg-dmi.toml: ")


def test_rules_last_match_wins_and_merge() -> None:
    settings = load_settings(
        {
            "dmi": "DMI-PROHIBITED",
            "copyright": "© Site",
            "rules": [
                {"path": "gallery/**", "dmi": "DMI-ALLOWED", "credit": "Gallery"},
                {"path": "gallery/press/*.jpg", "dmi": "DMI-PROHIBITED-AIMLTRAINING"},
                {"path": "*.svg", "metadata": "strip"},
            ],
        }
    )
    assert settings.policy_for("index.jpg").dmi is DMI.PROHIBITED
    assert settings.policy_for("gallery/a/b.png").dmi is DMI.ALLOWED
    press = settings.policy_for("gallery/press/x.jpg")
    assert press.dmi is DMI.PROHIBITED_AIMLTRAINING
    assert press.rights.credit == "Gallery"  # from the earlier matching rule
    assert press.rights.copyright == "© Site"  # site-wide
    assert settings.policy_for("deep/down/logo.svg").metadata is MetadataMode.STRIP


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("gallery/**", "gallery/a.jpg", True),
        ("gallery/**", "gallery/x/y/a.jpg", True),
        ("gallery/*", "gallery/x/a.jpg", False),
        ("**/thumbs/*.png", "a/b/thumbs/c.png", True),
        ("**/thumbs/*.png", "thumbs/c.png", True),
        ("img/photo-?.jpg", "img/photo-1.jpg", True),
        ("img/[ab].jpg", "img/c.jpg", False),
        ("img/[!ab].jpg", "img/c.jpg", True),
        ("/img/a.jpg", "img/a.jpg", True),
        ("a+b (1).jpg", "a+b (1).jpg", True),
    ],
)
def test_glob(glob: str, path: str, hit: bool) -> None:
    assert (glob_to_regex(glob).fullmatch(path) is not None) is hit


def test_overrides_flow_through_the_same_validation() -> None:
    settings = load_settings({"dmi": "DMI-PROHIBITED"})
    assert settings.policy_for("a.jpg", {"dmi": "DMI-ALLOWED"}).dmi is DMI.ALLOWED
    with pytest.raises(ConfigError, match="a.jpg: `dmi`: 'maybe'"):
        settings.policy_for("a.jpg", {"dmi": "maybe"})
    cli = settings.with_overrides(dmi="DMI-PROHIBITED-AIMLTRAINING", metadata=None)
    assert cli.policy_for("a.jpg").dmi is DMI.PROHIBITED_AIMLTRAINING


def test_toml_and_pyproject(tmp_path: Path) -> None:
    (tmp_path / "ssg-dmi.toml").write_text('dmi = "DMI-PROHIBITED"\ncreator = ["Ana", "Bo"]\n')
    assert discover_settings(tmp_path).policy_for("a.jpg").rights.creators == ("Ana", "Bo")
    (tmp_path / "ssg-dmi.toml").unlink()
    (tmp_path / "pyproject.toml").write_text('[tool.ssg-dmi]\ndmi = "DMI-ALLOWED"\n')
    assert discover_settings(tmp_path).policy_for("a.jpg").dmi is DMI.ALLOWED
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert (
        discover_settings(tmp_path).policy_for("a.jpg").dmi
        is DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING
    )


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "ssg-dmi.toml"
    bad.write_text("dmi = \n")
    with pytest.raises(ConfigError, match=r"ssg-dmi.toml: not valid TOML"):
        load_config_file(bad)
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config_file(tmp_path / "missing.toml")


def test_readme_prints_the_contract_table() -> None:
    from ssg_dmi.contract import markdown_table

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme
