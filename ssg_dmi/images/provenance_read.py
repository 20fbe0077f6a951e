"""C2PA read back: the active manifest's validation and training-mining assertion, for
``ssg-dmi inspect`` and ``check``. c2pa-python is imported only for a file that may hold a
manifest."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ..formats import Format
from ..policy import DMI
from .provenance import LABELS, MIME, USE_OF, USES


@dataclass(frozen=True)
class ManifestFacts:
    """What a reader finds: the validation state and each label's entries."""

    state: str | None  # "Valid", "Trusted", "Invalid"; None: no manifest
    codes: tuple[str, ...]  # failure codes (signingCredential.untrusted for a test chain)
    assertions: dict[str, dict[str, Any]]  # training-mining label -> entries


def read(data: bytes, fmt: Format) -> ManifestFacts:
    """The active manifest of ``data``, read back with c2pa-python."""
    import c2pa

    try:
        reader = c2pa.Reader(MIME[fmt], io.BytesIO(data))
    except c2pa.C2paError:
        return ManifestFacts(None, (), {})
    with reader:
        active = reader.get_active_manifest() or {}
        found = {
            a["label"]: a.get("data", {}).get("entries", {})
            for a in active.get("assertions", [])
            if a.get("label") in LABELS
        }
        status = [
            s.get("code", "")
            for s in (reader.get_validation_results() or {})
            .get("activeManifest", {})
            .get("failure", [])
        ]
        return ManifestFacts(reader.get_validation_state(), tuple(status), found)


# A chain no trust list holds (a test chain, a private CA): the file itself is intact.
TRUST_CODES = frozenset({"signingCredential.untrusted"})


def read_if_signed(data: bytes, fmt: Format) -> ManifestFacts | None:
    """:func:`read` for a raster file that may hold a manifest; None when it holds none
    (then c2pa-python is not even imported). ImportError when it may and the extra is
    not installed."""
    if fmt not in MIME or b"c2pa" not in data:
        return None
    facts = read(data, fmt)
    return None if facts.state is None else facts


def problems(facts: ManifestFacts, want: DMI) -> list[str]:
    """How a manifest disagrees with the policy ``want``: a failed validation (bytes
    changed after signing) or a training-mining assertion with other uses."""
    out = []
    broken = [code for code in facts.codes if code not in TRUST_CODES]
    if broken:
        out.append(
            f"its C2PA manifest does not validate ({', '.join(broken)}): the bytes changed "
            "after signing; build again"
        )
    uses = USE_OF.get(want)
    for label, prefix in LABELS.items():
        got = facts.assertions.get(label)
        if uses is None:
            if got is not None:
                out.append(f"its C2PA manifest has a {label} assertion; {want.key} claims none")
            continue
        expected = {f"{prefix}.{n}": use for n, use in zip(USES, uses, strict=True)}
        if got is None:
            out.append(f"its C2PA manifest has no {label} assertion; its policy is {want.key}")
            continue
        actual = {key: entry.get("use") for key, entry in got.items()}
        if actual != expected:
            out.append(
                f"its C2PA {label} assertion says {_uses(actual)}; its policy {want.key} "
                f"requires {_uses(expected)}"
            )
    return out


def _uses(found: dict[str, Any]) -> str:
    return ", ".join(f"{key.split('.', 1)[-1]}={use}" for key, use in sorted(found.items()))


def summary(facts: ManifestFacts) -> dict[str, Any]:
    """The manifest as ``ssg-dmi inspect`` shows it."""
    return {
        "state": facts.state,
        "untrusted_signer": "signingCredential.untrusted" in facts.codes,
        "failures": [c for c in facts.codes if c not in TRUST_CODES],
        "training_mining": {
            label: {key: entry.get("use") for key, entry in entries.items()}
            for label, entries in facts.assertions.items()
        },
    }
