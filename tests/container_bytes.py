"""Bytes the container tests build by hand: JPEG segments, PNG chunks, random damage."""

from __future__ import annotations

import random
import zlib

from .images import srgb_icc

ICC = srgb_icc()


def jpeg_segment(marker: int, body: bytes) -> bytes:
    """A JPEG marker segment: 0xFF, ``marker``, a length that counts itself, ``body``."""
    return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    """A PNG chunk with its right CRC, or with ``crc`` to make a damaged one."""
    good = zlib.crc32(kind + body)
    return (
        len(body).to_bytes(4, "big")
        + kind
        + body
        + (good if crc is None else crc).to_bytes(4, "big")
    )


def mutated(
    rng: random.Random,
    data: bytes,
    most: int,
    *,
    within: int | None = None,
    values: bytes | None = None,
) -> bytes:
    """``data`` with 1 to ``most`` bytes overwritten at random: in its first ``within`` bytes
    if given (where a format keeps its structure), with bytes drawn from ``values`` if given."""
    out = bytearray(data)
    for _ in range(rng.randint(1, most)):
        # The new byte is drawn before its place, as the loops this replaced did: the seeds
        # keep giving the same files.
        value = rng.randrange(256) if values is None else rng.choice(values)
        out[rng.randrange(min(len(out), within or len(out)))] = value
    return bytes(out)
