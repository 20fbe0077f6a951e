"""Settings: defaults, loading from TOML and pyproject, rules, and the exact errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssg_dmi.errors import ConfigError
from ssg_dmi.policy import DMI, MetadataMode
from ssg_dmi.settings import (
    Settings,
    discover_settings,
    glob_to_regex,
    load_config_file,
    load_settings,
    load_with_file,
    markdown_table,
)


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


# Issue 8, item 13: every config mistake is one ConfigError naming the key, the value and the
# fix, raised when the settings are loaded (never mid-build, never a silent no-op).
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # A bad range made glob_to_regex raise re.error (mid-build for include/exclude).
        ({"include": ["img/[z-a].jpg"]}, "`include`: glob 'img/[z-a].jpg' is not valid (bad"),
        ({"exclude": ["[z-a]*"]}, "`exclude`: glob '[z-a]*' is not valid (bad character range"),
        (
            {"rules": [{"path": "[z-a]/**", "dmi": "DMI-ALLOWED"}]},
            "rule 1: `path`: glob '[z-a]/**' is not valid (bad character range z-a)",
        ),
        # Globs that can never match a site-relative path selected nothing without a word.
        ({"include": ["**/../**"]}, "glob '**/../**' never matches: globs are matched against"),
        (
            {"rules": [{"path": "../../etc/**", "dmi": "DMI-ALLOWED"}]},
            "rule 1: `path`: glob '../../etc/**' never matches: globs are matched against "
            "site-relative paths (like `images/photo.jpg`); `..` can never match; "
            "write 'etc/**' instead",
        ),
        ({"exclude": ["/etc/**"]}, "a leading `/` is not allowed; write 'etc/**' instead"),
        ({"exclude": ["./img/*.jpg"]}, "`.` can never match; write 'img/*.jpg' instead"),
        ({"exclude": ["a/../b/*.jpg"]}, "write 'b/*.jpg' instead"),
        ({"exclude": ["drafts/"]}, "a trailing `/` matches no file; write 'drafts/**' instead"),
        ({"include": ["img//a.jpg"]}, "(`//`) can never match; write 'img/a.jpg' instead"),
        ({"include": [""]}, "`include`: expected a non-empty string, got ''"),
        ({"include": 3}, "`include`: expected a list of globs, got 3"),
        # Text that goes into XMP/EXIF: XML 1.0 cannot carry C0 controls (tab, LF, CR aside).
        ({"copyright": "© Ana\x07"}, "`copyright`: '© Ana\\x07' holds the character U+0007"),
        ({"creator": ["Ana", "B\x00b"]}, "`creator`: 'B\\x00b' holds the character U+0000"),
        ({"credit": "a\x1bb"}, "`credit`: 'a\\x1bb' holds the character U+001B at position 2"),
        (
            {"dmi": "DMI-PROHIBITED-SEECONSTRAINT", "other_constraints": "no\x0c"},
            "`other_constraints`: 'no\\x0c' holds the character U+000C",
        ),
        (
            {"embedded_rights_expression": "{}\x01"},
            "`embedded_rights_expression`: '{}\\x01' holds the character U+0001",
        ),
        ({"web_statement": "https://e.org/\x1f"}, "`web_statement`: 'https://e.org/\\x1f' holds"),
        ({"licensor_url": "https://e.org/\x08"}, "`licensor_url`: 'https://e.org/\\x08' holds"),
        ({"copyright": "\ud800"}, "`copyright`: '\\ud800' holds the character U+D800"),
        (
            {"rules": [{"path": "a/**", "copyright": "x\x07"}]},
            "rule 1: `copyright`: 'x\\x07' holds the character U+0007",
        ),
        # int() turned 1.5 and true into 1, and the message said "got 1".
        ({"widths": [1.5]}, "`widths`: expected a whole number from 16 to 16384, got 1.5 (a dec"),
        ({"widths": [True]}, "`widths`: expected a whole number from 16 to 16384, got true (a b"),
        ({"widths": [480, 960.0]}, "got 960.0 (a decimal number)"),
        ({"widths": 7}, "`widths`: expected a list of pixel widths like [480, 960, 1600], got 7"),
        ({"jobs": True}, "`jobs`: expected a whole number from 1 to 256, got true (a boolean)"),
        ({"jobs": 2.5}, "`jobs`: expected a whole number from 1 to 256, got 2.5 (a decimal"),
        ({"scheduler": "10.0.0.5"}, "`scheduler`: expected a Dask scheduler address like tcp://"),
        ({"scheduler": "ucx://h:8786"}, "`scheduler`: expected a Dask scheduler address"),
        ({"scheduler": 8786}, "`scheduler`: expected a non-empty string, got 8786"),
        ({"max_pixels": 1e6}, "got 1000000.0 (a decimal number)"),
        (
            {"max_pixels": False},
            "`max_pixels`: expected a whole number from 1 to 10000000000, got false (a b",
        ),
        ({"quality": True}, "`quality`: expected a whole number from 1 to 100 or a table"),
        ({"quality": 80.5}, "got 80.5 (a decimal number)"),
        (
            {"quality": {"jpeg": True}},
            "`quality.jpeg`: expected a whole number from 1 to 100, got true (a boolean)",
        ),
    ],
)
def test_config_mistakes_are_one_line_naming_key_value_and_fix(
    raw: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(raw, "ssg-dmi.toml")
    text = str(err.value)
    assert text.startswith("ssg-dmi.toml: ") and message in text
    assert "\n" not in text


def test_bool_and_float_values_are_shown_as_written() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"widths": [True]})
    assert "got true (a boolean)" in str(err.value) and "got 1" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_settings({"quality": True})
    assert str(err.value).endswith("got true (a boolean)")


def test_text_xml_allows_is_kept_and_globs_that_can_match_pass() -> None:
    """What XML 1.0 carries (tab, LF, CR, DEL, C1) passes; so do ordinary globs."""
    settings = load_settings(
        {
            "copyright": "© Ana\tExample\r\nAll rights \x7f\x85reserved",
            "widths": "480, 960",  # the command line's --widths
            "include": ["**/*.jpg", "[[]draft]*.png", "img/[a-z]?.webp"],
            "exclude": "theme/**",
            "rules": [{"path": " gallery/** ", "dmi": "DMI-ALLOWED"}],
        }
    )
    assert settings.widths == (480, 960)
    assert settings.exclude == ("theme/**",)
    assert settings.rules[0].path == "gallery/**"
    assert settings.policy_for("gallery/a.jpg").dmi is DMI.ALLOWED
    assert settings.matches("a/b/[draft]x.png") and settings.matches("img/ab.webp")
    assert not settings.matches("img/abc.webp")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tool = 1\n", "`tool` must be a table, got 1 (a number); write the settings under"),
        ('tool = "x"\n', "`tool` must be a table, got 'x' (a string)"),
        ("[tool]\nssg-dmi = 5\n", "`tool.ssg-dmi` must be a table of settings, got 5 (a number)"),
        ('[tool]\nssg-dmi = ["a"]\n', "`tool.ssg-dmi` must be a table of settings, got ['a']"),
        ("[project\nname = 1\n", "not valid TOML (Expected ']' at the end of a table"),
        ("[tool.ssg-dmi]\nwidths = [1.5]\n", "`widths`: expected a whole number from 16"),
    ],
)
def test_pyproject_mistakes_found_automatically_or_named(
    tmp_path: Path, text: str, message: str
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(text)
    for load in (discover_settings, lambda _: load_config_file(pyproject)):
        with pytest.raises(ConfigError) as err:
            load(tmp_path)
        assert str(err.value).startswith(f"{pyproject}: ") and message in str(err.value)


def test_malformed_config_found_automatically_is_an_error(tmp_path: Path) -> None:
    """A broken file was skipped in silence: the site was built with the default policy."""
    (tmp_path / "pyproject.toml").write_bytes(b"\xff\xfe[tool.ssg-dmi]\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml: not valid TOML \('utf-8' codec"):
        discover_settings(tmp_path)
    (tmp_path / "ssg-dmi.toml").write_text('dmi = "DMI-ALLOWED\n')
    with pytest.raises(ConfigError, match=r"ssg-dmi.toml: not valid TOML \(.*line 1"):
        discover_settings(tmp_path)  # ssg-dmi.toml is read first, and named


def test_pyproject_named_without_a_table_is_an_error(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    assert discover_settings(tmp_path) == Settings()  # not ours: the defaults
    with pytest.raises(ConfigError, match=r"has no \[tool.ssg-dmi\] table; add one"):
        load_config_file(pyproject)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('include = ["**/../**"]\n', "`include`: glob '**/../**' never matches"),
        ('exclude = ["[z-a]"]\n', "`exclude`: glob '[z-a]' is not valid"),
        ('copyright = "\\u0007 Ana"\n', "`copyright`: '\\x07 Ana' holds the character U+0007"),
        ("widths = [1.5]\n", "`widths`: expected a whole number from 16 to 16384, got 1.5"),
        ("widths = [true]\n", "`widths`: expected a whole number from 16 to 16384, got true"),
        ("[[rules]]\npath = '../../etc/**'\ndmi = 'DMI-ALLOWED'\n", "rule 1: `path`: glob"),
        ("tool = 1\n", "`tool` must be a table, got 1"),
    ],
)
def test_cli_config_mistake_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str
) -> None:
    from ssg_dmi.cli import main

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html><head></head><body></body></html>")
    bad = tmp_path / ("pyproject.toml" if toml.startswith("tool") else "bad.toml")
    bad.write_text(toml)
    assert main(["build", str(site), "--config", str(bad), "--no-cache"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"ssg-dmi: config error: {bad}: {message}"), err
    assert err.count("\n") == 1
    assert (site / "index.html").read_text() == "<html><head></head><body></body></html>"
    assert not (site / "robots.txt").exists()


# Issue 9: every key is declared once, in the field table; the README, the Settings
# attributes and the MkDocs options are checked against it (or made from it).
def test_readme_prints_the_settings_table() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme


def test_settings_attributes_are_the_field_table() -> None:
    from dataclasses import fields

    from ssg_dmi.policy import ImagePolicy
    from ssg_dmi.settings import DEFAULT, FIELDS, build_policy

    own = {"policy", "rules", "origin", "source"}  # not keys, or parsed against the policy
    attributes = {f.name for f in fields(Settings)} - own
    assert attributes == {f.name for f in FIELDS if not f.per_path} - {"rules"}
    defaults = Settings()
    assert {name: getattr(defaults, name) for name in attributes} == {
        name: DEFAULT[name] for name in attributes
    }
    assert build_policy({}) == ImagePolicy()  # the per-path keys' defaults are the policy's


def test_every_default_and_choice_passes_its_own_parser() -> None:
    from enum import Enum

    from ssg_dmi.settings import FIELDS

    for f in FIELDS:
        values = [f.default, *f.shape.choices] if f.default is not None else [*f.shape.choices]
        for value in values:
            raw = value.key if isinstance(value, DMI) else value
            raw = raw.value if isinstance(raw, Enum) else raw
            raw = list(raw) if isinstance(raw, tuple) else raw
            parsed = f.parse(f.name, raw)
            if value is f.default and f.name != "rules":
                assert parsed == f.default, f.name


def test_mkdocs_options_are_the_field_table() -> None:
    """MkDocs checks the YAML types with its own messages, from the table's shapes."""
    from mkdocs.config.base import ValidationError

    from ssg_dmi.mkdocs_plugin import DmiConfig
    from ssg_dmi.settings import FIELDS, SITE_KEYS

    schema = dict(DmiConfig._schema)
    adapter = {"enabled", "config_file", "theme_images"}
    assert set(schema) == adapter | set(SITE_KEYS) - {"base_url"}  # base_url: site_url
    assert schema["cache_dir"].default == Settings().cache_dir
    for f in FIELDS:
        if f.name == "base_url":
            continue
        option = schema[f.name]
        sample = f.shape.choices[0] if f.shape.choices else f.shape.types[0]()
        good = [sample] if f.shape.many else sample
        assert option.validate(good) == good, f.name
        with pytest.raises(ValidationError):
            option.validate(object())


def test_theme_globs_are_added_after_the_config_file_exclude(tmp_path: Path) -> None:
    (tmp_path / "ssg-dmi.toml").write_text('exclude = ["drafts/**"]\njobs = 1\n')
    raw = {"config_file": "ssg-dmi.toml", "dmi": "DMI-ALLOWED"}
    got = load_with_file(raw, tmp_path, "mkdocs.yml", also_exclude=["assets/logo.png"])
    assert got.exclude == ("drafts/**", "assets/logo.png")
    assert got.source == f"mkdocs.yml + {tmp_path / 'ssg-dmi.toml'}"
    assert load_with_file({"exclude": "a/**"}, tmp_path, "x", also_exclude=["b"]).exclude == (
        "a/**",
        "b",
    )
    with pytest.raises(ConfigError, match="x: `exclude`: expected a list of globs, got 3"):
        load_with_file({"exclude": 3}, tmp_path, "x", also_exclude=["b"])


def test_mkdocs_plugin_loads_the_settings_once_complete(tmp_path: Path) -> None:
    """The theme's files are excluded by loading the settings again with them, not by
    changing a validated Settings; the pool is sized by the settings (config_file too)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n")
    (tmp_path / "ssg-dmi.toml").write_text('exclude = ["drafts/**"]\njobs = 1\n')
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: T\nplugins:\n  - ssg-dmi:\n      config_file: ssg-dmi.toml\n"
        f"      cache_dir: {tmp_path / 'cache'}\n"
    )
    config = load_config(str(tmp_path / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
    config.plugins.on_startup(command="build", dirty=False)
    plugin = config.plugins["ssg-dmi"]
    try:
        build(config)
        assert plugin.executor is None  # jobs = 1 in the config file: no pool
        assert plugin.settings.exclude[0] == "drafts/**"
        assert "img/favicon.ico" in plugin.settings.exclude  # the mkdocs theme's own
    finally:
        config.plugins.on_shutdown()
