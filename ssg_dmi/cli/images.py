"""``ssg-dmi tag``, ``inspect`` and ``c2pa``: commands on image files."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..build.job import NO_SVG_C2PA
from ..errors import ImageError
from ..fsutil import atomic_write, shown
from ..images.containers import Format
from ..images.facts import inspect_bytes
from ..images.provenance import Signing, load_signing, sign
from ..images.tagging import Tagged, tag_bytes
from ..policy import ImagePolicy
from ..walk import walk_images
from .parser import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, settings_from


@dataclass(frozen=True)
class TagTarget:
    """One image to tag: where it is read, where it goes, its path for the rules."""

    source: Path
    target: Path
    relpath: str


def collect(paths: Sequence[Path], out: Path | None) -> tuple[list[TagTarget], list[str]]:
    """The images named on the command line; problems with the arguments themselves."""
    jobs, problems = [], []
    for arg in paths:
        if arg.is_dir():
            for path in walk_images(arg, skip=out):
                rel = path.relative_to(arg)
                target = out / rel if out else path
                jobs.append(TagTarget(path, target, rel.as_posix()))
        elif arg.exists() or arg.is_symlink():
            target = out / arg.name if out else arg
            jobs.append(TagTarget(arg, target, arg.name))
        else:
            problems.append(f"{shown(arg)}: no such file or folder")
    return jobs, problems


def cmd_tag(args: argparse.Namespace) -> int:
    """Tag every image named; report one line per file."""
    settings = settings_from(args.config).with_overrides(dmi=args.dmi, metadata=args.metadata)
    # Checked once, before any file is touched, as the build does.
    signing = load_signing(settings.c2pa) if settings.c2pa is not None else None
    jobs, problems = collect(args.paths, args.out)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    tagged = failed = noted = 0
    for job in jobs:
        name = shown(job.source)
        try:
            data = job.source.read_bytes()
            policy = settings.policy_for(job.relpath)
            result = tag_bytes(
                data,
                policy,
                name=job.source.name,
                lossless=args.lossless,
                max_pixels=settings.max_pixels,
                quality=settings.quality,
            )
            if signing is not None:  # last: the signature covers the bytes written
                result = _signed(result, data, job.source.name, policy, signing)
            atomic_write(job.target, result.data)
        except ImageError as exc:
            failed += 1
            print(f"error: {name}: {exc}; left untagged", file=sys.stderr)
            continue
        except OSError as exc:
            failed += 1
            print(f"error: {name}: cannot read or write ({exc.strerror or exc})", file=sys.stderr)
            continue
        tagged += 1
        for note in result.notes:
            noted += 1
            print(f"note: {name}: {note}", file=sys.stderr)
        how = "re-encoded" if result.reencoded else "lossless"
        print(
            f"tagged {name} -> {shown(job.target)} [{policy.dmi.key}, {how}, "
            f"{len(data):,} -> {len(result.data):,} bytes]"
        )
    failed += len(problems)
    print(f"{tagged} tagged, {failed} failed", file=sys.stderr)
    return EXIT_FINDINGS if failed or (args.strict and noted) else EXIT_OK


def _signed(
    result: Tagged, source: bytes, name: str, policy: ImagePolicy, signing: Signing
) -> Tagged:
    """``result`` signed with C2PA as the build signs an original (the source file is its
    parent ingredient); SVG, or a file the SDK refuses, stays tagged with a note."""
    if result.format is Format.SVG:
        return dataclasses.replace(result, notes=(*result.notes, NO_SVG_C2PA))
    try:
        signed = sign(
            result.data, result.format, policy, signing, parent=(source, result.format, name)
        )
    except ImageError as exc:
        return dataclasses.replace(
            result, notes=(*result.notes, f"{exc}; left tagged but unsigned")
        )
    return dataclasses.replace(result, data=signed)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print what each file says; exit 1 when a file is untagged, unreadable or leaks."""
    paths: list[Path] = []
    for arg in args.paths:
        if arg.is_dir():
            paths += walk_images(arg)
        else:
            paths.append(arg)
    results = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            results.append({"path": shown(path), "error": f"cannot read ({exc.strerror or exc})"})
            continue
        result = inspect_bytes(data, shown(path)).as_dict()
        if result.get("format"):
            result["c2pa"] = _c2pa_summary(data, result["format"])
        results.append(result)
    bad = [r for r in results if r.get("error") or not r.get("dmi") or r.get("private")]
    if args.json:
        json.dump(results, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        for r in results:
            print(_describe(r))
    return EXIT_FINDINGS if bad else EXIT_OK


def _c2pa_summary(data: bytes, fmt: str) -> dict[str, object] | None:
    """The file's C2PA manifest, read back (None: it has none)."""
    from ..images.provenance_read import read_if_signed, summary

    try:
        facts = read_if_signed(data, Format(fmt))
    except ImportError:
        return {"state": "unread: pip install 'ssg-dmi[c2pa]'"}
    return None if facts is None else summary(facts)


def _describe(r: Mapping[str, object]) -> str:
    if r.get("error"):
        return f"{r['path']}: error: {r['error']}"
    lines = [f"{r['path']} ({r['format']})", f"  DataMining: {r.get('dmi') or 'none (untagged)'}"]
    if r.get("other_constraints"):
        lines.append(f"  other constraints: {r['other_constraints']}")
    rights = r.get("rights")
    if isinstance(rights, dict):
        lines += [f"  {key}: {value}" for key, value in rights.items()]
    private = r.get("private")
    lines.append(f"  private fields: {', '.join(private) if private else 'none'}")  # type: ignore[arg-type]
    c2pa = r.get("c2pa")
    if isinstance(c2pa, dict):
        signer = " (signer untrusted)" if c2pa.get("untrusted_signer") else ""
        failures = f", failures: {', '.join(c2pa['failures'])}" if c2pa.get("failures") else ""
        lines.append(f"  C2PA: {c2pa['state']}{signer}{failures}")
        for label, uses in c2pa.get("training_mining", {}).items():
            said = ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in sorted(uses.items()))
            lines.append(f"    {label}: {said}")
    return "\n".join(lines)


def cmd_c2pa(args: argparse.Namespace) -> int:
    """``c2pa test-cert DIR``: an untrusted chain and key, and the [c2pa] table to use them."""
    try:
        from ..images.untrusted_chain import write_test_chain

        chain, key = write_test_chain(args.dir)
    except ImportError:
        print("ssg-dmi: error: install the extra: pip install 'ssg-dmi[c2pa]'", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"ssg-dmi: error: {shown(args.dir)}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"wrote {shown(chain)} and {shown(key)}: an UNTRUSTED test chain (readers will say the "
        "signer is untrusted); never publish a site signed with it.\nAdd to ssg-dmi.toml:\n"
        f'[c2pa]\ncert = "{shown(chain)}"\nkey = "{shown(key)}"'
    )
    return EXIT_OK
