"""The cache in an object store (``cache_dir = "s3://bucket/prefix"``), against a real S3 API
(moto's server on loopback): same bytes as a local build, a second runner with an empty
folder hits every entry, a damaged blob is found and made again, prune and clear, and a
store that cannot be reached is a warning, not a failed build.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssg_dmi.build.cache import Cache
from ssg_dmi.build.store import ObjectStore, is_remote
from ssg_dmi.errors import ConfigError

from .builds import CACHED, build, copy_site, tree
from .objectstore import BUCKET, S3, needs_s3, run_cli

pytestmark = needs_s3


def _prefix(location: str) -> str:
    return location.removeprefix(f"s3://{BUCKET}/")


def test_s3_cache_build_equals_a_local_build_and_stores_the_layout(
    tmp_path: Path, pristine: Path, s3: S3, s3_cache: str
) -> None:
    local = build(copy_site(pristine, tmp_path / "local"), tmp_path / "cache", **CACHED)
    remote = build(copy_site(pristine, tmp_path / "remote"), s3_cache, **CACHED)  # type: ignore[arg-type]
    assert remote.warnings == [] and remote.errors == {}
    assert tree(tmp_path / "remote") == tree(tmp_path / "local")
    assert remote.summary["cache_hits"] == 0 == local.summary["cache_hits"]
    keys = s3.keys(_prefix(s3_cache))
    entries = [k for k in keys if "/v1/entries/" in k]
    blobs = [k for k in keys if "/v1/objects/" in k]
    assert len(entries) >= remote.summary["sources"] and blobs
    assert any("/v1/builds/" in k for k in keys)
    # Every blob the store holds is named by its content: read back over plain HTTP.
    import hashlib

    for key in blobs:
        assert hashlib.sha256(s3.get(key)).hexdigest() == key.rsplit("/", 1)[-1]


def test_second_runner_with_an_empty_folder_hits_every_entry(
    tmp_path: Path, pristine: Path, s3: S3, s3_cache: str
) -> None:
    """Two CI runners: separate processes, separate checkouts, one store."""
    one = copy_site(pristine, tmp_path / "runner1" / "site")
    two = copy_site(pristine, tmp_path / "runner2" / "site")
    args = ["--cache-dir", s3_cache, "--widths", "100,200", "--formats", "webp,jpeg"]
    first = run_cli("build", str(one), *args, "--report", str(tmp_path / "r1.json"), env=s3.env())
    assert first.returncode == 0, first.stderr
    second = run_cli("build", str(two), *args, "--report", str(tmp_path / "r2.json"), env=s3.env())
    assert second.returncode == 0, second.stderr
    report = json.loads((tmp_path / "r2.json").read_text())
    assert report["summary"]["cache_hits"] == report["summary"]["sources"] > 0
    assert report["summary"]["reencoded"] == 0
    assert tree(two) == tree(one)
    assert not (tmp_path / "runner2" / "site" / ".cache").exists()


def test_damaged_blob_in_the_store_is_detected_and_made_again(
    tmp_path: Path, pristine: Path, s3: S3, s3_cache: str
) -> None:
    first = build(copy_site(pristine, tmp_path / "one"), s3_cache, **CACHED)  # type: ignore[arg-type]
    blobs = [k for k in s3.keys(_prefix(s3_cache)) if "/v1/objects/" in k]
    victim = blobs[0]
    s3.put(victim, b"not the bytes its name promises")
    second = build(copy_site(pristine, tmp_path / "two"), s3_cache, **CACHED)  # type: ignore[arg-type]
    assert second.errors == {} and second.warnings == []
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    # The image that used the damaged blob was redone, the others came from the store...
    assert second.summary["cache_hits"] == first.summary["sources"] - 1
    # ...and the store holds the right bytes again.
    import hashlib

    assert hashlib.sha256(s3.get(victim)).hexdigest() == victim.rsplit("/", 1)[-1]


def test_prune_and_clear_work_on_the_store(
    tmp_path: Path, pristine: Path, s3: S3, s3_cache: str
) -> None:
    site = copy_site(pristine, tmp_path / "site")
    build(site, s3_cache, **CACHED)  # type: ignore[arg-type]
    cache = Cache(s3_cache)
    orphan = f"{_prefix(s3_cache)}/v1/objects/00/" + "0" * 64
    s3.put(orphan, b"left by a build whose entry never landed")
    old_entry = f"{_prefix(s3_cache)}/v1/entries/ff/" + "f" * 64 + ".json"
    s3.put(old_entry, json.dumps({"outputs": [], "extra": {}}).encode())
    removed = cache.prune()
    assert removed["entries"] == 1 and removed["objects"] == 1
    keys = s3.keys(_prefix(s3_cache))
    assert orphan not in keys and old_entry not in keys
    # What the last build used is still there: a rebuild hits everything.
    again = build(copy_site(pristine, tmp_path / "again"), s3_cache, **CACHED)  # type: ignore[arg-type]
    assert again.summary["cache_hits"] == again.summary["sources"]
    cache.clear()
    assert s3.keys(_prefix(s3_cache)) == []


def test_unreachable_store_is_one_warning_and_the_site_is_still_built(
    tmp_path: Path, pristine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("AWS_MAX_RETRIES", "0")
    site = copy_site(pristine, tmp_path / "site")
    report = build(site, "s3://nowhere/prefix", **CACHED)  # type: ignore[arg-type]
    assert report.errors == {} and len(report.warnings) == 1
    assert "s3://nowhere/prefix: the cache cannot be written" in report.warnings[0]
    assert report.summary["images"] == report.summary["sources"] + 1  # the duplicate


def test_s3_location_without_the_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "obstore", None)
    with pytest.raises(ConfigError, match=r"pip install 'ssg-dmi\[s3\]'"):
        ObjectStore("s3://bucket/prefix")
    with pytest.raises(ConfigError, match="no bucket"):
        ObjectStore("s3:///prefix")


def test_only_s3_urls_are_remote() -> None:
    assert is_remote("s3://bucket/x") and is_remote("S3://bucket")
    assert not is_remote(".cache/ssg-dmi") and not is_remote(Path("s3:/bucket"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "../../../../x"),
        ("name", "0123456789/"),
        ("format", "webp/../../x"),
        ("role", "script"),
        ("width", -1),
        ("bytes", "12"),
        ("sha256", "../" + "0" * 61),
    ],
)
def test_a_poisoned_entry_in_a_shared_store_is_a_miss_never_a_path(
    tmp_path: Path, pristine: Path, s3: S3, s3_cache: str, field: str, value: object
) -> None:
    """Anyone who can write the store could plant entries: an entry whose names would make
    a path outside the image's folder is refused (a miss: the image is made again)."""
    site = copy_site(pristine, tmp_path / "one")
    build(site, s3_cache, **CACHED)  # type: ignore[arg-type]
    entries = [k for k in s3.keys(_prefix(s3_cache)) if "/v1/entries/" in k]
    for key in entries:
        entry = json.loads(s3.get(key))
        item = entry["outputs"][-1]  # a variant (or the original when there is none)
        item[field] = value
        s3.put(key, json.dumps(entry).encode())
    again = build(copy_site(pristine, tmp_path / "two"), s3_cache, **CACHED)  # type: ignore[arg-type]
    assert again.errors == {} and again.summary["cache_hits"] == 0
    assert tree(tmp_path / "two") == tree(site)
    assert not list(tmp_path.glob("x")) and not (tmp_path / "two" / "x").exists()


@pytest.mark.parametrize(
    "extra",
    [{"notes": 5}, {"notes": ["\x1b]0;owned\x07"]}, {"reencoded": "yes"}, ["not", "a", "table"]],
)
def test_poisoned_extra_facts_are_a_miss_never_an_untagged_image(
    tmp_path: Path, pristine: Path, s3: S3, s3_cache: str, extra: object
) -> None:
    site = copy_site(pristine, tmp_path / "one")
    build(site, s3_cache, **CACHED)  # type: ignore[arg-type]
    for key in [k for k in s3.keys(_prefix(s3_cache)) if "/v1/entries/" in k]:
        entry = json.loads(s3.get(key))
        entry["extra"] = extra
        s3.put(key, json.dumps(entry).encode())
    again = build(copy_site(pristine, tmp_path / "two"), s3_cache, **CACHED)  # type: ignore[arg-type]
    assert again.errors == {} and again.summary["cache_hits"] == 0
    assert tree(tmp_path / "two") == tree(site)
    assert all("\x1b" not in n for notes in again.notes.values() for n in notes)


def test_cache_commands_on_an_unreachable_store_are_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from .builds import cli

    for name, value in {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for action in ("prune", "clear"):
        code, out, err = cli(capsys, "cache", action, "--cache-dir", "s3://nowhere/p")
        assert code == 2 and out == "", (action, out)
        assert err.startswith("ssg-dmi: error: s3://nowhere/p: the cache cannot be read")
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
