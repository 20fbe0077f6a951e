"""The ``[c2pa]`` table: where the signing certificate and key are, never the key itself.

Signing is opt-in: without the table nothing is signed and ``c2pa-python`` is never
imported. The key is named, not held: ``key`` is a PEM file, ``key_env`` an environment
variable holding the PEM text (a CI secret then never sits in a file). Only a worker that
signs reads it, and only for the moment it signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .parse import http_url, one_of, table, text

C2PA_ALGS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
C2PA_APPLY_TO = ("originals", "all")
C2PA_KEYS = ("cert", "key", "key_env", "alg", "tsa_url", "apply_to")


@dataclass(frozen=True)
class C2paSettings:
    """The validated ``[c2pa]`` table (paths relative to where you run)."""

    cert: str  # PEM certificate chain, signing certificate first
    key: str | None = None  # PEM private key (PKCS#8) file
    key_env: str | None = None  # or the environment variable holding that PEM text
    alg: str = "es256"
    tsa_url: str | None = None  # an RFC 3161 time-stamp authority
    apply_to: str = "originals"  # or "all": variants too


def c2pa_table(key: str, value: Any) -> C2paSettings:
    """The ``[c2pa]`` table: ``cert`` and exactly one of ``key`` / ``key_env`` required."""
    if isinstance(value, C2paSettings):
        return value
    value = table(key, value, C2PA_KEYS, '{cert = "chain.pem", key_env = "C2PA_KEY"}')
    if "cert" not in value:
        raise ConfigError(f"`{key}`: `cert` (the PEM certificate chain file) is required")
    if ("key" in value) == ("key_env" in value):
        raise ConfigError(
            f"`{key}`: set exactly one of `key` (a PEM private key file) or `key_env` (the "
            "environment variable holding the key)"
        )

    def get(name: str) -> str | None:
        return text(f"{key}.{name}", value[name]) if name in value else None

    return C2paSettings(
        cert=text(f"{key}.cert", value["cert"]),
        key=get("key"),
        key_env=get("key_env"),
        alg=one_of(C2PA_ALGS)(f"{key}.alg", str(value.get("alg", "es256")).lower()),
        tsa_url=http_url(f"{key}.tsa_url", value["tsa_url"]) if "tsa_url" in value else None,
        apply_to=one_of(C2PA_APPLY_TO)(f"{key}.apply_to", value.get("apply_to", "originals")),
    )
