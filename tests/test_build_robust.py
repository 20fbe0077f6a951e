"""Issue 8: a build never ships a broken site, never dies of one image, stops cleanly.

Faults are injected where they really happen: in the per-image work (``process.render``,
inherited by forked workers), in worker processes that die, in the cache folder, and by
signals sent to a real ``ssg-dmi build`` process.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from ssg_dmi.build import job as process
from ssg_dmi.build.cache import Cache
from ssg_dmi.build.workers import WORKER_DIED
from ssg_dmi.cli import main
from ssg_dmi.policy import ImagePolicy

VARIANT = re.compile(r"-\d+w\.[0-9a-f]{10}\.(webp|jpg|png|avif)$")
TEMP = re.compile(r"^\.ssg-dmi-.*\.tmp$")


def photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    grad = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 4 + seed % 5)
    return Image.merge("RGB", (grad, noise, grad.rotate(90).resize(size)))


def jpeg(size: tuple[int, int], quality: int = 95, seed: int = 0) -> bytes:
    out = io.BytesIO()
    photo(size, seed).save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_site(root: Path, names: list[str], size: tuple[int, int] = (1200, 800)) -> Path:
    """A site with one page showing every image (named ``names``, in ``img/``)."""
    (root / "img").mkdir(parents=True)
    imgs = []
    for i, name in enumerate(names):
        (root / "img" / name).write_bytes(jpeg(size, seed=i))
        imgs.append(f'<p><img src="img/{name}" alt="{name}"></p>')
    page = "<!doctype html><html><head><title>t</title></head><body>" + "".join(imgs)
    (root / "index.html").write_text(page + "</body></html>", encoding="utf-8")
    return root


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def build_args(site: Path, *more: str) -> list[str]:
    return ["build", str(site), "--widths", "300,600", "--formats", "webp", *more]


def check(capsys: pytest.CaptureFixture[str], site: Path, cache: Path) -> tuple[int, str]:
    code, out, err = cli(capsys, "check", str(site), "--format", "json")
    return code, out + err


def srcset_files(site: Path) -> list[str]:
    """Every srcset candidate of every page, as a site-relative path."""
    found = []
    for page in site.rglob("*.html"):
        for srcset in re.findall(r'srcset="([^"]*)"', page.read_text(encoding="utf-8")):
            for candidate in srcset.split(","):
                url = candidate.strip().split()[0]
                found.append((page.parent / url).resolve().relative_to(site.resolve()).as_posix())
    return found


def temp_files(*folders: Path) -> list[Path]:
    return [p for f in folders if f.exists() for p in f.rglob("*") if TEMP.match(p.name)]


# --- containment: whatever one image raises is its own error ------------------------------

REAL_RENDER = process.render


def failing_render(exc: BaseException):  # type: ignore[no-untyped-def]
    def render(data, name, policy, options):  # type: ignore[no-untyped-def]
        if "bad" in name:
            raise exc
        return REAL_RENDER(data, name, policy, options)

    return render


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize(
    "exc",
    [
        ValueError("image has wrong mode"),
        SyntaxError("broken PNG file"),
        RuntimeError("ERROR adding frame. WebPEncodingError"),
        UnboundLocalError("cannot access local variable 'x'"),
        TypeError("unsupported operand"),
        Image.DecompressionBombError("Image size exceeds limit"),
        MemoryError(),
        KeyError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_any_exception_from_one_image_is_that_images_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    jobs: str,
) -> None:
    monkeypatch.setattr(process, "render", failing_render(exc))
    site = make_site(tmp_path / "site", ["a.jpg", "bad.jpg", "c.jpg"], (400, 300))
    before = (site / "img" / "bad.jpg").read_bytes()
    cache = tmp_path / "cache"
    code, out, err = cli(capsys, *build_args(site, "--jobs", jobs, "--cache-dir", str(cache)))
    assert code == 0, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: img/bad.jpg: ")
    assert lines[0].endswith("; left unchanged and untagged")
    assert "2 images tagged" in out and "1 untagged" in out
    assert (site / "img" / "bad.jpg").read_bytes() == before  # nothing lost
    assert (site / "robots.txt").is_file() and (site / "ai.txt").is_file()
    made = {p.name.split("-")[0] for p in (site / "img").iterdir() if VARIANT.search(p.name)}
    assert made == {"a.jpg", "c.jpg"}
    strict, _, _ = cli(capsys, *build_args(site, "--jobs", jobs, "--strict", "--no-cache"))
    assert strict == 1


# Module level, so forked workers run them: each dies a different way on "bad" images.
def _exit(data, name, policy, options):  # type: ignore[no-untyped-def]
    if "bad" in name:
        os._exit(3)
    return REAL_RENDER(data, name, policy, options)


def _sigkill(data, name, policy, options):  # type: ignore[no-untyped-def]
    if "bad" in name:
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer does
    return REAL_RENDER(data, name, policy, options)


def _segfault(data, name, policy, options):  # type: ignore[no-untyped-def]
    if "bad" in name:
        ctypes.string_at(0)  # a crash inside native code
    return REAL_RENDER(data, name, policy, options)


@pytest.mark.parametrize("render", [_exit, _sigkill, _segfault], ids=["exit", "kill", "segv"])
def test_a_dying_worker_is_that_images_error_and_the_rest_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], render
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(process, "render", render)
    names = [f"p{i}.jpg" for i in range(6)] + ["bad.jpg"] + [f"q{i}.jpg" for i in range(5)]
    site = make_site(tmp_path / "site", names, (640, 480))
    code, out, err = cli(capsys, *build_args(site, "--jobs", "2", "--no-cache"))
    assert code == 0, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: img/bad.jpg: {WORKER_DIED}; left unchanged and untagged"]
    assert f"{len(names) - 1} images tagged" in out and "1 untagged" in out
    assert all(Path(site / f).is_file() for f in srcset_files(site))
    assert len(srcset_files(site)) == 2 * (len(names) - 1)


def _dies_once(data, name, policy, options):  # type: ignore[no-untyped-def]
    marker = Path(os.environ["SSG_DMI_TEST_MARKER"])
    if "flaky" in name and not marker.exists():
        marker.write_text("died once")
        os._exit(9)
    return REAL_RENDER(data, name, policy, options)


def test_a_worker_that_died_once_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(process, "render", _dies_once)
    monkeypatch.setenv("SSG_DMI_TEST_MARKER", str(tmp_path / "marker"))
    site = make_site(tmp_path / "site", ["a.jpg", "flaky.jpg", "c.jpg", "d.jpg"], (300, 200))
    code, out, err = cli(capsys, *build_args(site, "--jobs", "2", "--no-cache"))
    assert (tmp_path / "marker").is_file()  # it did die
    assert code == 0 and "error:" not in err, err
    assert "4 images tagged" in out


def test_a_retried_job_whose_first_try_placed_its_files_still_succeeds(tmp_path: Path) -> None:
    # A worker that dies breaks the pool: a job beside it may have placed its files (the
    # source replaced by its tagged original) and lost its result. Its retry, with no
    # cache to answer, finds our output where the source was: that is no change by the
    # user, and rendering it gives the same files. A foreign change stays an error.
    from ssg_dmi.build.spec import Job

    from .test_watermark import options

    site = make_site(tmp_path / "site", ["d.jpg"], (300, 200))
    source = (site / "img" / "d.jpg").read_bytes()
    job = Job(
        str(site),
        ("img/d.jpg",),
        process.sha256(source),
        len(source),
        ImagePolicy(),
        options(None),
        None,
    )
    first = process.run_job(job)
    assert first.error is None and first.written
    placed = sorted(p.name for p in (site / "img").iterdir())
    again = process.run_job(job)  # the retry: the file is now our tagged original
    assert again.error is None, again.error
    assert [o.name for o in again.outputs] == [o.name for o in first.outputs]
    assert sorted(p.name for p in (site / "img").iterdir()) == placed
    (site / "img" / "d.jpg").write_bytes(jpeg((300, 200), seed=9))  # changed by the user
    changed = process.run_job(job)
    assert changed.error is not None and "changed while the build ran" in changed.error


# --- pages agree with the files after any sequence of builds -------------------------------


@pytest.mark.parametrize("second", ["other-cache", "no-cache", "other-folder"])
def test_rebuild_with_another_cache_keeps_every_srcset_working(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    second: str,
) -> None:
    # quality 95 sources: `optimize` re-encodes them, so a rebuild starts from our output
    site = make_site(tmp_path / "site", ["a.jpg", "b.jpg", "c.jpg"])
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, *build_args(site, "--jobs", "1", "--cache-dir", "A"))
    assert code == 0, err
    first = sorted(p.name for p in (site / "img").iterdir())
    report = tmp_path / "report.json"
    more = {
        "other-cache": ["--cache-dir", "B"],
        "no-cache": ["--no-cache"],
        "other-folder": [],
    }[second]
    if second == "other-folder":
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
    code, out, err = cli(capsys, *build_args(site, "--jobs", "1", "--report", str(report), *more))
    assert code == 0, err
    assert "0 from cache" in out or "0/3 from cache" in out
    assert all(
        e["original"]["reencoded"] is False
        for e in json.loads(report.read_text())["images"].values()
    )
    # re-encoded originals are recognised as our output: their variants keep their names
    assert sorted(p.name for p in (site / "img").iterdir()) == first
    files = srcset_files(site)
    assert len(files) == 6 and all((site / f).is_file() for f in files)
    code, text = check(capsys, site, tmp_path / "A")
    assert code == 0, text


def test_changed_widths_refresh_our_srcsets_and_remove_old_variants_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path / "site", ["a.jpg"])
    assert cli(capsys, *build_args(site, "--jobs", "1", "--no-cache"))[0] == 0
    code, _, err = cli(
        capsys, "build", str(site), "--widths", "200,500", "--formats", "webp", "--no-cache"
    )
    assert code == 0, err
    names = sorted(p.name for p in (site / "img").iterdir())
    assert [n for n in names if "-300w." in n or "-600w." in n] == []  # old ones gone
    assert len(srcset_files(site)) == 2 and all((site / f).is_file() for f in srcset_files(site))
    assert check(capsys, site, tmp_path)[0] == 0


# --- interrupts ---------------------------------------------------------------------------

SLOW_BUILD = """
import sys, time
from ssg_dmi.build import job as process
real = process.render
def render(data, name, policy, options):
    time.sleep(0.4)
    return real(data, name, policy, options)
process.render = render
from ssg_dmi.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_an_interrupt_stops_the_build_in_two_seconds_and_leaves_a_working_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signum: int
) -> None:
    names = [f"p{i:02}.jpg" for i in range(40)]
    site = make_site(tmp_path / "site", names, (320, 240))
    cache = tmp_path / "cache"
    # A finished build with other widths first: its pages must keep working after the stop.
    assert cli(capsys, "build", str(site), "--widths", "100", "--no-cache")[0] == 0
    script = tmp_path / "slow.py"
    script.write_text(SLOW_BUILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), *build_args(site, "--jobs", "2", "--cache-dir", str(cache))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a signal to this process only, as `kill` sends it
    )
    time.sleep(3.0)
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    took = time.monotonic() - sent
    assert took < 2.0, took
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert re.fullmatch(
        r"ssg-dmi: interrupted: \d+ of 40 images done; rerun to finish", lines[-1]
    ), err
    assert "Traceback" not in err
    assert temp_files(site, cache) == []
    files = srcset_files(site)
    assert files and all((site / f).is_file() for f in files)  # old pages still work
    assert check(capsys, site, cache)[0] == 0
    code, out, err = cli(capsys, *build_args(site, "--jobs", "2", "--cache-dir", str(cache)))
    assert code == 0 and "40 images tagged" in out, err
    assert check(capsys, site, cache)[0] == 0


PELICAN_INTERRUPT = """
import sys
import ssg_dmi.build.site
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt
ssg_dmi.build.site.run = interrupted
from pelican import main
main(sys.argv[1:])
"""


def test_pelican_fails_when_the_build_is_interrupted(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "a.md").write_text("Title: A\nDate: 2026-01-01\n\nHello\n", encoding="utf-8")
    conf = tmp_path / "pelicanconf.py"
    conf.write_text(
        f"PATH = {str(content)!r}\nPLUGINS = ['ssg_dmi.pelican']\nSITEURL = ''\n"
        "SSG_DMI = {'cache': False}\n",
        encoding="utf-8",
    )
    script = tmp_path / "run.py"
    script.write_text(PELICAN_INTERRUPT)
    done = subprocess.run(
        [sys.executable, str(script), str(content), "-s", str(conf), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 130, done.stdout + done.stderr
    assert "interrupted" in done.stdout + done.stderr


# --- the cache is an optimisation ---------------------------------------------------------


@pytest.mark.parametrize("where", ["proc", "file"])
def test_a_cache_that_cannot_be_written_warns_once_and_the_build_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    site = make_site(tmp_path / "site", ["a.jpg", "b.jpg"], (300, 200))
    cache = Path("/proc/self/ssg-dmi-cache") if where == "proc" else tmp_path / "a-file"
    if where == "file":
        cache.write_text("not a folder")
    code, out, err = cli(capsys, *build_args(site, "--jobs", "1", "--cache-dir", str(cache)))
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cache" in warnings[0] and "building without" in warnings[0]
    assert "error:" not in err and "Traceback" not in err
    assert "2 images tagged" in out and "0 untagged" in out


def test_cache_prune_keeps_what_another_sites_last_build_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    one = make_site(tmp_path / "one", ["a.jpg", "b.jpg"], (300, 200))
    two = make_site(tmp_path / "two", ["c.jpg"], (300, 200))
    one_again = shutil.copytree(one, tmp_path / "one-again")
    assert cli(capsys, *build_args(one, "--jobs", "1", "--cache-dir", str(cache)))[0] == 0
    assert cli(capsys, *build_args(two, "--jobs", "1", "--cache-dir", str(cache)))[0] == 0
    code, out, _ = cli(capsys, "cache", "prune", "--cache-dir", str(cache))
    assert code == 0 and "pruned 0 entries" in out
    code, out, _ = cli(capsys, *build_args(one_again, "--jobs", "1", "--cache-dir", str(cache)))
    assert "2/2 from cache" in out
    # A site whose last build is older than --max-age no longer protects its entries.
    for record in (cache / "v1" / "builds").glob("*.json"):
        data = json.loads(record.read_text())
        if data["site"] == str(two.resolve()):
            data["time"] -= 10 * 86400
            record.write_text(json.dumps(data))
    code, out, _ = cli(capsys, "cache", "prune", "--cache-dir", str(cache), "--max-age", "5")
    assert code == 0 and "pruned 0 entries" not in out
    assert Cache(cache).used_keys() is not None


# --- special files and arguments ----------------------------------------------------------


def test_a_fifo_named_like_an_image_is_skipped_not_waited_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path / "site", ["a.jpg"], (300, 200))
    os.mkfifo(site / "img" / "x.jpg")
    code, out, err = cli(capsys, *build_args(site, "--jobs", "1", "--no-cache"))
    assert code == 0
    assert "note: img/x.jpg: not a regular file (FIFO, device or socket); skipped" in err
    assert "link leading outside" not in err
    assert "1 images tagged" in out


def test_build_of_a_file_says_it_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "index.html"
    page.write_text("<p>hi</p>")
    code, _, err = cli(capsys, "build", str(page))
    assert code == 2
    assert err.strip() == (
        f"ssg-dmi: error: {page}: is a file, not a folder; give the generator's output folder"
    )


def test_a_warm_rebuild_reencodes_nothing_in_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    site = make_site(tmp_path / "site", ["a.jpg", "b.jpg"])
    fresh = shutil.copytree(site, tmp_path / "fresh")
    _, out, _ = cli(capsys, *build_args(site, "--jobs", "1", "--cache-dir", str(cache)))
    assert "(2 re-encoded)" in out
    _, out, _ = cli(capsys, *build_args(fresh, "--jobs", "1", "--cache-dir", str(cache)))
    assert "(0 re-encoded)" in out and "2/2 from cache" in out


MKDOCS_INTERRUPT = """
import sys
import ssg_dmi.build.site
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt
ssg_dmi.build.site.run = interrupted
from mkdocs.__main__ import cli
cli(["build", "-f", sys.argv[1], "-q"])
"""


def test_mkdocs_fails_when_the_build_is_interrupted(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Hi\n", encoding="utf-8")
    conf = tmp_path / "mkdocs.yml"
    conf.write_text("site_name: t\nplugins:\n  - ssg-dmi:\n      cache: false\n", encoding="utf-8")
    script = tmp_path / "run.py"
    script.write_text(MKDOCS_INTERRUPT)
    done = subprocess.run(
        [sys.executable, str(script), str(conf)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "interrupted" in done.stderr and "rerun to finish" in done.stderr


def test_a_read_only_site_is_one_line_per_file_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tests run as root, where chmod does not stop writes: fail every write as EROFS does.
    import errno

    from ssg_dmi.build import site as build
    from ssg_dmi.build import spec  # where a job places its outputs
    from ssg_dmi.sitefiles import writer as signals

    def read_only(path: Path, data: bytes) -> bool:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    for module in (spec, signals, build):
        monkeypatch.setattr(module, "atomic_write", read_only)
    site = make_site(tmp_path / "site", ["a.jpg", "b.jpg"], (300, 200))
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    code, out, err = cli(capsys, *build_args(site, "--jobs", "1", "--no-cache"))
    assert code == 0, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert (
        "error: img/a.jpg: cannot read or write it (Read-only file system); "
        "left unchanged and untagged"
    ) in lines
    assert any(line.startswith("warning: index.html: cannot write") for line in lines), err
    assert any(line.startswith("warning: robots.txt: cannot write") for line in lines), err
    assert "2 untagged" in out
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before


def test_each_page_is_read_once_per_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ssg_dmi.pages import overrides

    reads: list[str] = []
    real = overrides.read_page

    def counting(site: Path, rel: str):  # type: ignore[no-untyped-def]
        reads.append(rel)
        return real(site, rel)

    monkeypatch.setattr(overrides, "read_page", counting)
    site = make_site(tmp_path / "site", ["a.jpg"], (300, 200))
    for i in range(3):
        (site / f"p{i}.html").write_text(f'<p><img src="img/a.jpg" data-dmi="DMI-ALLOWED">{i}</p>')
    assert cli(capsys, *build_args(site, "--jobs", "1", "--no-cache"))[0] == 0
    assert sorted(reads) == ["index.html", "p0.html", "p1.html", "p2.html"]
