"""C2PA (Content Credentials): sign a tagged image with a manifest that carries the
training-and-data-mining assertion (:mod:`.provenance_read` reads one back).

The assertion is written under both labels readers use: ``cawg.training-mining`` (CAWG
TDM 1.1, ``cawg.*`` entry keys) and the legacy ``c2pa.training-mining`` (``c2pa.*`` keys),
which is the only one datadiligence 0.1.7 and Adobe's Verify read. The signature covers
the final bytes, so signing is the last thing done to an output.

``c2pa-python`` (the ``c2pa`` extra) is imported inside the functions that need it: a site
without ``[c2pa]`` never loads it. The private key is read from its file or environment
variable only while signing; no key material is kept, cached, logged or reported.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ImageError, first_line
from ..formats import Format
from ..policy import DMI, ImagePolicy
from ..settings.signing import C2paSettings
from ..version import __version__

MIME = {
    Format.JPEG: "image/jpeg",
    Format.PNG: "image/png",
    Format.WEBP: "image/webp",
    Format.AVIF: "image/avif",
    Format.GIF: "image/gif",
    Format.TIFF: "image/tiff",
}
USES = ("ai_generative_training", "ai_training", "ai_inference", "data_mining")
LABELS = {"cawg.training-mining": "cawg", "c2pa.training-mining": "c2pa"}
NOT, YES, CONSTRAINED = "notAllowed", "allowed", "constrained"

# What each PLUS DataMining value says for the four uses, in the order of USES. The
# "see …" values are `constrained` with the constraint (or where the rights expression is)
# as constraint_info; DMI-UNSPECIFIED makes no claim, so the assertion is left out.
USE_OF: dict[DMI, tuple[str, str, str, str]] = {
    DMI.ALLOWED: (YES, YES, YES, YES),
    DMI.PROHIBITED_AIMLTRAINING: (NOT, NOT, YES, YES),
    DMI.PROHIBITED_GENAIMLTRAINING: (NOT, YES, YES, YES),
    # Search indexing is data mining: the one kind PLUS still allows here.
    DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING: (NOT, NOT, NOT, CONSTRAINED),
    DMI.PROHIBITED: (NOT, NOT, NOT, NOT),
    DMI.PROHIBITED_SEECONSTRAINT: (CONSTRAINED,) * 4,
    DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR: (CONSTRAINED,) * 4,
    DMI.PROHIBITED_SEELINKEDRIGHTSEXPR: (CONSTRAINED,) * 4,
}
SEARCH_ONLY = (
    "search engine indexing only (PLUS DataMining DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING)"
)


def constraint_info(policy: ImagePolicy) -> str | None:
    """The ``constraint_info`` of a ``constrained`` use under ``policy``."""
    dmi = policy.dmi
    if dmi is DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING:
        return SEARCH_ONLY
    if dmi is DMI.PROHIBITED_SEECONSTRAINT:
        return policy.other_constraints
    if dmi is DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR:
        return "see the rights expression embedded in this file (XMP iptcExt:EmbdEncRightsExpr)"
    if dmi is DMI.PROHIBITED_SEELINKEDRIGHTSEXPR and policy.linked_rights_expression:
        return f"see {policy.linked_rights_expression.value}"
    return None


def entries(policy: ImagePolicy, prefix: str) -> dict[str, dict[str, str]] | None:
    """The assertion's ``entries`` with ``prefix`` (``cawg`` or ``c2pa``) keys; None for
    ``DMI-UNSPECIFIED`` (no claim)."""
    uses = USE_OF.get(policy.dmi)
    if uses is None:
        return None
    info = constraint_info(policy)
    out: dict[str, dict[str, str]] = {}
    for name, use in zip(USES, uses, strict=True):
        entry = {"use": use}
        if use == CONSTRAINED and info:
            entry["constraint_info"] = info
        out[f"{prefix}.{name}"] = entry
    return out


def manifest(policy: ImagePolicy, second_action: str) -> dict[str, Any]:
    """The manifest definition: ``c2pa.opened`` (the parent ingredient), then
    ``second_action``, then the training-mining assertion under both labels."""
    actions = [
        {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
        {"action": second_action},
    ]
    assertions: list[dict[str, Any]] = [{"label": "c2pa.actions", "data": {"actions": actions}}]
    for label, prefix in LABELS.items():
        found = entries(policy, prefix)
        if found is not None:
            assertions.append({"label": label, "data": {"entries": found}})
    return {
        "claim_generator_info": [{"name": "ssg-dmi", "version": __version__}],
        "assertions": assertions,
    }


@dataclass(frozen=True)
class Signing:
    """What a worker needs to sign: the public chain and where the key is (never the key).

    Made once per build by :func:`load_signing`; travels to the workers in the job."""

    chain: bytes  # PEM, signing certificate first
    fingerprint: str  # SHA-256 of the signing certificate (DER), for the cache key
    alg: str
    key_file: str | None
    key_env: str | None
    tsa_url: str | None
    apply_to: str

    def private_key(self) -> bytes:
        """The PEM private key, read now (and dropped by the caller after use)."""
        if self.key_env:
            value = os.environ.get(self.key_env)
            if not value:
                raise ConfigError(
                    f"`c2pa.key_env`: the environment variable {self.key_env} is not set; set it "
                    "to the PEM private key"
                )
            return value.encode()
        assert self.key_file is not None
        try:
            return Path(self.key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"`c2pa.key`: cannot read {self.key_file} ({exc.strerror or exc})"
            ) from None


def load_signing(settings: C2paSettings) -> Signing:
    """Read the chain, check the key is there and that the pair signs (a 1-pixel PNG), so
    a bad chain is one config error before any image, not the same error on every image."""
    try:
        import c2pa  # noqa: F401 - only to say what is missing, here rather than per image
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding
    except ImportError:
        raise ConfigError(
            "`c2pa`: signing needs the c2pa extra: pip install 'ssg-dmi[c2pa]'"
        ) from None
    try:
        chain = Path(settings.cert).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"`c2pa.cert`: cannot read {settings.cert} ({exc.strerror or exc})"
        ) from None
    try:
        leaf = x509.load_pem_x509_certificates(chain)[0]
    except ValueError as exc:
        raise ConfigError(
            f"`c2pa.cert`: {settings.cert} is not a PEM certificate chain ({exc})"
        ) from None
    signing = Signing(
        chain=chain,
        fingerprint=hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest(),
        alg=settings.alg,
        key_file=settings.key,
        key_env=settings.key_env,
        tsa_url=settings.tsa_url,
        apply_to=settings.apply_to,
    )
    try:
        sign(_ONE_PIXEL_PNG, Format.PNG, DMI_PROBE, signing)
    except ImageError as exc:
        raise ConfigError(f"`c2pa`: {settings.cert} cannot sign: {exc}") from None
    return signing


DMI_PROBE = ImagePolicy(dmi=DMI.PROHIBITED)
_ONE_PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
    "0000000a4944415478da6360000000020001e527defc0000000049454e44ae426082"
)


def sign(
    data: bytes,
    fmt: Format,
    policy: ImagePolicy,
    signing: Signing,
    *,
    parent: tuple[bytes, Format, str] | None = None,
    action: str = "c2pa.edited.metadata",
) -> bytes:
    """``data`` with a signed manifest embedded. Its parent ingredient is ``parent``
    (bytes, format, title), or ``data`` itself as it was before signing."""
    import c2pa

    parent_data, parent_fmt, title = parent or (data, fmt, "source")
    if action != RESIZED and signed_by_us(parent_data, parent_fmt):
        # Our own output built again (no cache): naming it would nest one more manifest
        # (+4 KB) in every such build; the file as tagged says the same without growing.
        parent_data, parent_fmt = data, fmt
    try:
        key = signing.private_key()
        info = c2pa.C2paSignerInfo(signing.alg, signing.chain, key, signing.tsa_url)
        del key
        signer = c2pa.Signer.from_info(info)
        no_thumbnails = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
        with c2pa.Context(no_thumbnails, signer) as context:
            builder = c2pa.Builder(manifest(policy, action), context)
            ingredient = {"title": title, "relationship": "parentOf", "label": "parent"}
            try:
                builder.add_ingredient(ingredient, MIME[parent_fmt], io.BytesIO(parent_data))
            except c2pa.C2paError:  # a source the SDK cannot parse (ours re-encoded it)
                builder.add_ingredient(ingredient, MIME[fmt], io.BytesIO(data))
            out = io.BytesIO()
            builder.sign(MIME[fmt], io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        raise ImageError(f"C2PA signing failed ({first_line(exc, 300)})") from None
    return out.getvalue()


RESIZED = "c2pa.resized"  # a variant's action; its parent is the signed original


def signed_by_us(data: bytes, fmt: Format) -> bool:
    """Whether ``data`` carries a manifest ssg-dmi made (so it is our own output)."""
    if b"c2pa" not in data:  # every embedded manifest store holds its JUMBF label
        return False
    import c2pa

    try:
        with c2pa.Reader(MIME[fmt], io.BytesIO(data)) as reader:
            active = reader.get_active_manifest() or {}
    except c2pa.C2paError:
        return False
    return any(g.get("name") == "ssg-dmi" for g in active.get("claim_generator_info", []))
