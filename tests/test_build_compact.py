"""Issue 14, the driver's share of a 100,000-image build: per-image records without an
instance dict, strings every image repeats held once, settings made into text once per
build rather than once per image, the warm "in place?" decision without a blob check per
output, and a start-up that imports only what the command needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.build import cache as cache_module
from ssg_dmi.build import spec as spec_module
from ssg_dmi.build.cache import Cache, Output, sha256
from ssg_dmi.build.job import Job, Options
from ssg_dmi.formats import VariantFormat
from ssg_dmi.policy import DMI, ImagePolicy
from ssg_dmi.settings import Originals
from ssg_dmi.settings.watermark import Watermark

from .builds import modules_after


def store(cache: Cache, key: str, data: bytes) -> Output:
    original = Output("original", 4, 3, "jpeg", sha256(data), len(data), "")
    variant = Output("variant", 2, 1, "webp", sha256(data + b"v"), len(data) + 1, "0123456789")
    cache.put(key, [(original, data), (variant, data + b"v")], {"notes": []})
    return variant


def test_an_entry_read_without_its_blob_check(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    variant = store(cache, "k" * 64, b"one")
    (cache.root / "objects" / variant.sha256[:2] / variant.sha256).unlink()
    assert cache.get("k" * 64) is None  # a blob is gone: not a usable hit
    found = cache.get("k" * 64, blobs=False)  # the entry alone still says what was made
    assert found is not None and found[0][1] == variant


def test_output_records_are_slotted_and_share_their_short_strings(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    for n in range(2):
        store(cache, f"{n}" * 64, f"image {n}".encode())
    one, two = (cache.get(f"{n}" * 64) for n in range(2))
    assert one is not None and two is not None
    assert not hasattr(one[0][0], "__dict__")
    # Read from two JSON files, yet one string object each: not one copy per image.
    assert one[0][0].role is two[0][0].role and one[0][1].format is two[0][1].format


def options(**changes: Any) -> Options:
    base = Options((320,), (VariantFormat("webp"),), {"webp": 80}, Originals.TAG, 10**8, False)
    return dataclasses.replace(base, **changes)


def test_the_fingerprint_is_made_once_per_policy_and_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[dict[str, Any]] = []
    real = cache_module.fingerprint

    def counted(parts: dict[str, Any]) -> str:
        made.append(parts)
        return real(parts)

    monkeypatch.setattr(spec_module, "fingerprint", counted)
    shared = options()
    strict = ImagePolicy(dmi=DMI.PROHIBITED)
    jobs = [
        Job("site", (f"i{n}.jpg",), f"{n:064x}", 10, ImagePolicy(), shared, None) for n in range(50)
    ]
    jobs.append(Job("site", ("s.jpg",), "f" * 64, 10, strict, shared, None))
    keys = {j.key for j in jobs}
    assert len(keys) == 51 and len(made) == 2  # one text per distinct policy, 51 keys
    assert jobs[0].fingerprint is jobs[49].fingerprint  # shared, not a copy per job
    assert jobs[0].fingerprint != jobs[50].fingerprint
    marked = dataclasses.replace(shared, watermark=Watermark(text="© me"))
    again = Job("site", ("m.jpg",), "e" * 64, 10, ImagePolicy(), marked, None)
    assert again.fingerprint != jobs[0].fingerprint and len(made) == 3  # a copy starts empty


def test_import_and_a_build_start_without_the_audit_and_image_commands(tmp_path: Path) -> None:
    assert "ssg_dmi.api" not in modules_after("import ssg_dmi")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>t</title>")
    argv = ["build", str(site), "--no-cache", "--no-progress"]
    loaded = modules_after(f"from ssg_dmi.cli import main\nassert main({argv!r}) == 0")
    assert "ssg_dmi.build.site" in loaded
    assert not {m for m in loaded if m.startswith(("ssg_dmi.audit", "ssg_dmi.cli.images"))}
    assert "build_site" in dir(__import__("ssg_dmi"))  # the API is still there on first use
