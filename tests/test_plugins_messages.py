"""What the plugins print in a real `pelican` / `mkdocs build` run (issue 8, item 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .images import camera_file


def run_tool(tool: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The tool's own command line, as a user runs it: default log level, no TTY."""
    env = {**os.environ, "COLUMNS": "80", "SOURCE_DATE_EPOCH": "1700000000"}
    return subprocess.run(
        [sys.executable, "-m", tool, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_pelican_default_run_shows_one_summary_line(tmp_path: Path) -> None:
    """The summary was logged at INFO, which Pelican hides unless --verbose: a site owner
    saw no sign that ssg-dmi ran. It is printed like Pelican's own "Done:" line."""
    content = tmp_path / "content"
    (content / "images").mkdir(parents=True)
    (content / "images" / "photo.jpg").write_bytes(camera_file("JPEG"))
    (content / "post.md").write_text(
        "Title: Post\nDate: 2026-01-01\n\n![A photo]({static}/images/photo.jpg)\n"
    )
    (tmp_path / "pelicanconf.py").write_text(
        'SITENAME = "T"\nPATH = "content"\nSTATIC_PATHS = ["images"]\nTIMEZONE = "UTC"\n'
        'PLUGINS = ["ssg_dmi.pelican"]\nCACHE_CONTENT = False\nFEED_ALL_ATOM = None\n'
        f'SSG_DMI = {{"jobs": 1, "cache_dir": "{tmp_path / "cache"}"}}\n'
    )
    done = run_tool("pelican", tmp_path, "content", "-s", "pelicanconf.py", "-o", "output")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ours = [line for line in lines if line.startswith("ssg-dmi: ")]
    assert len(ours) == 1, done.stdout
    # one line however narrow the console, before Pelican's own closing line
    assert ours[0].startswith("ssg-dmi: 1 images tagged") and "site files written: " in ours[0]
    assert lines.index(ours[0]) < next(i for i, s in enumerate(lines) if s.startswith("Done:"))
    assert "ssg-dmi" not in done.stderr  # nothing went wrong, so no warning


def mkdocs_project(tmp: Path, options: str) -> Path:
    (tmp / "docs" / "img").mkdir(parents=True, exist_ok=True)
    (tmp / "docs" / "img" / "photo.jpg").write_bytes(camera_file("JPEG"))
    (tmp / "docs" / "index.md").write_text("# Home\n\n![A photo](img/photo.jpg)\n")
    config = tmp / "other.yml"  # not mkdocs.yml: the messages must name the real file
    config.write_text(f"site_name: T\nplugins:\n  - ssg-dmi:\n      jobs: 1\n{options}")
    return config


def test_mkdocs_log_line_has_one_prefix(tmp_path: Path) -> None:
    """get_plugin_logger prefixes "ssg_dmi: " and the summary began with "ssg-dmi: " too."""
    mkdocs_project(tmp_path, f"      cache_dir: {tmp_path / 'cache'}\n")
    done = run_tool("mkdocs", tmp_path, "build", "-f", "other.yml")
    assert done.returncode == 0, done.stderr
    ours = [line for line in done.stderr.splitlines() if "images tagged" in line]
    assert len(ours) == 1, done.stderr
    assert ours[0].startswith("INFO    -  ssg_dmi: 1 images tagged")
    assert "ssg-dmi:" not in ours[0]


def test_mkdocs_config_error_names_the_config_file_given(tmp_path: Path) -> None:
    """The error always said `mkdocs.yml`, even for `mkdocs build -f other.yml`."""
    mkdocs_project(tmp_path, '      exclude: ["../drafts/**"]\n')
    done = run_tool("mkdocs", tmp_path, "build", "-f", "other.yml")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [
        "ERROR   -  other.yml: plugins.ssg-dmi: `exclude`: glob '../drafts/**' never matches: "
        "globs are matched against site-relative paths (like `images/photo.jpg`); `..` can "
        "never match; write 'drafts/**' instead"
    ], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "site" / "robots.txt").exists()


def test_pelican_keeps_a_config_files_exclude_beside_the_theme(tmp_path: Path) -> None:
    from ssg_dmi.pelican import settings_from_pelican

    (tmp_path / "ssg-dmi.toml").write_text('exclude = ["drafts/**"]\n', encoding="utf-8")
    settings = settings_from_pelican(
        {"PATH": str(tmp_path / "content"), "SSG_DMI": {"config_file": "ssg-dmi.toml"}}
    )
    assert not settings.matches("drafts/a.jpg")  # the file's exclude is kept
    assert not settings.matches("theme/img/logo.png")  # and the theme is left alone
    assert settings.matches("images/a.jpg")
