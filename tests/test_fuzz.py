"""A few hundred fuzzed images through the real ``ssg-dmi build`` (see ``tests/fuzz.py``;
``make fuzz`` runs thousands). No exception escapes, exit codes stay 0/1, every output
exiftool can read is tagged or named as an error, no temp file is left, nothing hangs."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest

from . import fuzz
from .images import encode, pattern
from .readers import needs_exiftool

COUNT = 400  # about 10 s on one core; the tall screenshot is mutant 249
SEED = 8


def test_mutants_are_deterministic_and_cover_every_seed() -> None:
    first = [fuzz.mutant(SEED, i) for i in range(COUNT)]
    assert [m.data for m in first[:50]] == [fuzz.mutant(SEED, i).data for i in range(50)]
    seeds = collections.Counter(m.seed for m in first)
    assert set(seeds) == {s.name for s in fuzz.SEEDS}
    assert all(m.data != fuzz.seed_bytes(m.seed) for m in first[:50])
    kinds = {step.split(" ")[0] for m in first for step in m.how.split("; ")}
    assert {"flip", "truncate", "length", "dimension"} <= kinds


@needs_exiftool
def test_fuzzed_images_through_build() -> None:
    findings = fuzz.run_builds(SEED, COUNT, batch_size=100, hang=60, log=False)
    problems = findings.escaped + findings.contained + findings.hangs + findings.untagged
    problems += findings.refused
    assert not problems + findings.temp_files, "\n".join(problems[:20]) + findings.summary()
    assert findings.mutants == COUNT
    # The mutants reach deep: not every one is refused at the first byte.
    assert 0 < findings.errors_reported < COUNT
    assert findings.decodable > COUNT // 10  # and many still decode: they must be tagged


@needs_exiftool
def test_fuzzed_images_through_the_worker_pool_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same checks with 2 workers: the mutants are small, so they go to the workers in
    # batches (build.workers.BATCH_JOBS), and one that kills its worker takes a batch down.
    args = list(fuzz.BUILD_ARGS)
    args[args.index("--jobs") + 1] = "2"
    monkeypatch.setattr(fuzz, "BUILD_ARGS", tuple(args))
    findings = fuzz.run_builds(SEED + 1, 200, batch_size=100, hang=60, log=False)
    problems = findings.escaped + findings.contained + findings.hangs + findings.untagged
    problems += findings.refused
    assert not problems + findings.temp_files, "\n".join(problems[:20]) + findings.summary()
    assert findings.mutants == 200 and 0 < findings.errors_reported < 200


@needs_exiftool
def test_a_mutant_that_hangs_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    batch = [fuzz.mutant(SEED, i) for i in range(5)]
    slow = batch[3]
    real = fuzz._build

    def build(site: Path, report: Path, timeout: float) -> Any:
        if (site / "images" / slow.name).exists():
            return None  # what _build returns when the timeout expires
        return real(site, report, timeout)

    monkeypatch.setattr(fuzz, "_build", build)
    found = fuzz.Findings()
    fuzz.run_batch(batch, tmp_path, 60, found)
    assert found.hangs == [f"{slow.name}: over 60 s ({slow.how})"]
    assert found.batches == 6  # the batch, then each of its mutants on its own


@needs_exiftool
def test_untagged_unreported_outputs_and_contained_crashes_are_found(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "images").mkdir(parents=True)
    (site / "images" / "a.png").write_bytes(encode(pattern(), "PNG"))  # untagged
    (site / "images" / "b.png").write_bytes(encode(pattern(), "PNG"))  # untagged, reported
    (site / "images" / ".ssg-dmi-x.tmp").write_bytes(b"")
    report = tmp_path / "report.json"
    crash = "cannot be processed (KeyError: 3); if it opens in a browser, please report it"
    report.write_text(json.dumps({"errors": {"images/b.png": crash}}))
    found = fuzz.Findings()
    fuzz._check_site(site, report, [], found)
    assert found.untagged == ["images/a.png: untagged and not reported"]
    assert found.contained == [f"images/b.png: {crash}"]
    assert found.temp_files == ["images/.ssg-dmi-x.tmp"]
    assert not found.ok
