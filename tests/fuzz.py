"""A deterministic mutation fuzzer for the image pipeline.

Valid seed images of every format and mode ssg-dmi supports are mutated (bit flips, byte
pokes, truncation, chunk/segment/box length and dimension corruption, range splices), and
the mutants are run through the real ``ssg-dmi build`` in batches (many mutants per site
folder, one subprocess per batch, each under a timeout). It asserts, per batch:

- no exception escapes (no traceback on stderr) and the exit code is 0 or 1;
- every output image exiftool can read carries our DataMining tag, or its path is named as
  an error in the JSON report (an untagged file nobody was told about is the failure);
- no temp file (``.ssg-dmi-*.tmp``) is left behind.

A batch that times out is re-run one mutant at a time to name the mutant that hangs (over
``--hang`` seconds). The same ``--seed`` always produces the same mutants: mutant ``i`` is
made by ``random.Random(f"{seed}:{i}")``, so one mutant can be reproduced on its own with
``--only i``. ``--mode render`` calls :func:`ssg_dmi.build.job.render` in this process
instead (no subprocess, no driver): for finding crashers in the pixel code.

    python -m tests.fuzz --count 5000 --seed 1            # what `make fuzz` runs
    python -m tests.fuzz --count 1 --seed 1 --only 1234 --keep out/  # one mutant, kept
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from PIL import Image, ImageSequence, PngImagePlugin

from tests.images import camera_file, encode, pattern, srgb_icc

ROOT = Path(__file__).resolve().parent.parent
CRASH = "please report it"  # in the driver's message for an exception it contained
IMAGE_SUFFIXES = {".jpg", ".png", ".webp", ".avif", ".gif", ".tif", ".svg"}
# Options for every build: several widths so the resize chain runs even on small seeds, and
# every variant format so each encoder's limits are met.
BUILD_ARGS = (
    "--no-cache",
    "--jobs",
    "1",
    "--widths",
    "24,48,480,960",
    "--formats",
    "webp,avif,jpeg",
)


# -- seeds ------------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _tall_png() -> bytes:
    """An ordinary full-page screenshot: 1200 × 20000, flat bands of colour (cheap to decode
    and compress, yet taller than WebP's 16383-pixel limit)."""
    im = Image.new("RGB", (1200, 20000), (250, 250, 250))
    for top in range(0, 20000, 1000):
        im.paste((30 + top % 200, 60, 120), (100, top + 100, 1100, top + 400))
    return encode(im, "PNG", compress_level=1)


def _palette_trns_png() -> bytes:
    im = pattern((40, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return encode(im, "PNG", transparency=bytes([0, 128, 255, 255]))


def _be16_tiff() -> bytes:
    im = Image.new("I;16B", (40, 30))
    im.putdata([(x * 1500 + y * 700) % 65536 for y in range(30) for x in range(40)])
    return encode(im, "TIFF")


def _multipage_tiff() -> bytes:
    pages = [pattern((40, 30)).convert("L"), pattern((20, 20)).convert("CMYK")]
    return encode(pattern((40, 30)), "TIFF", save_all=True, append_images=pages)


def _apng() -> bytes:
    frames = [pattern((40, 30), "RGBA"), pattern((40, 30), "RGBA").rotate(180)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=80, loop=0)


def _animated_webp() -> bytes:
    frames = [pattern((40, 30)), pattern((40, 30)).rotate(180), pattern((40, 30)).rotate(90)]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=70)


def _animated_gif() -> bytes:
    frames = [pattern((40, 30)).convert("P"), pattern((40, 30)).rotate(180).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0, duration=90)


def _cmyk_jpeg() -> bytes:
    return encode(pattern((40, 30)).convert("CMYK"), "JPEG", quality=95)


def _grey_jpeg() -> bytes:
    return encode(pattern((40, 30)).convert("L"), "JPEG", quality=95, exif=Image.Exif())


def _png_itxt() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "a comment")
    return encode(pattern((40, 30)), "PNG", pnginfo=info, icc_profile=srgb_icc())


def _grey16_png() -> bytes:
    im = Image.new("I;16", (40, 30))
    im.putdata([(x * 1600 + y * 90) % 65536 for y in range(30) for x in range(40)])
    return encode(im, "PNG")


def _lossless_alpha_webp() -> bytes:
    return encode(pattern((40, 30), "RGBA"), "WEBP", lossless=True)


# What a C2PA manifest store looks like to a parser that only skips it (not a valid store):
# the tagger drops these containers, so mutants of them exercise that path.
FAKE_STORE = b"\x00\x00\x00\x1ejumb\x00\x00\x00\x16jumdc2pa\x00\x11\x00\x10" + bytes(16)


def _c2pa_png() -> bytes:
    """A PNG with a caBX manifest store before its pixels and an eXIf chunk after them
    (orientation is then read from the late chunk)."""
    data = camera_file("PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    at = data.index(b"IDAT") - 4
    end = data.rindex(b"IEND") - 4
    late = _png_chunk(b"eXIf", exif.tobytes()[6:])
    return data[:at] + _png_chunk(b"caBX", FAKE_STORE) + data[at:end] + late + data[end:]


def _c2pa_webp() -> bytes:
    """A WebP with a C2PA chunk at the end of its RIFF form."""
    data = camera_file("WEBP")
    chunk = b"C2PA" + struct.pack("<I", len(FAKE_STORE)) + FAKE_STORE
    body = data[12:] + chunk
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def _c2pa_gif() -> bytes:
    """A GIF with a C2PA_GIF application extension before its trailer."""
    data = encode(pattern((40, 30)).convert("P"), "GIF")
    blocks = b"".join(
        bytes([len(FAKE_STORE[i : i + 255])]) + FAKE_STORE[i : i + 255]
        for i in range(0, len(FAKE_STORE), 255)
    )
    ext = b"\x21\xff\x0bC2PA_GIF\x01\x00\x00" + blocks + b"\x00"
    return data[:-1] + ext + data[-1:]


def _c2pa_avif() -> bytes:
    """An AVIF with a top-level C2PA uuid box after its other boxes."""
    uuid = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
    body = uuid + FAKE_STORE
    return camera_file("AVIF") + struct.pack(">I", 8 + len(body)) + b"uuid" + body


@dataclass(frozen=True)
class Seed:
    name: str
    suffix: str
    make: Callable[[], bytes]
    weight: int  # relative share of the mutants


SEEDS = (
    Seed("camera-jpeg", ".jpg", lambda: camera_file("JPEG", orientation=6), 8),
    Seed("cmyk-jpeg", ".jpg", _cmyk_jpeg, 5),
    Seed("grey-jpeg", ".jpg", _grey_jpeg, 4),
    Seed("camera-png", ".png", lambda: camera_file("PNG"), 6),
    Seed("palette-trns-png", ".png", _palette_trns_png, 5),
    Seed("itxt-png", ".png", _png_itxt, 3),
    Seed("apng", ".png", _apng, 6),
    Seed("grey16-png", ".png", _grey16_png, 3),
    Seed("camera-webp", ".webp", lambda: camera_file("WEBP"), 5),
    Seed("lossless-alpha-webp", ".webp", _lossless_alpha_webp, 3),
    Seed("animated-webp", ".webp", _animated_webp, 5),
    Seed("camera-avif", ".avif", lambda: camera_file("AVIF"), 5),
    Seed("animated-gif", ".gif", _animated_gif, 6),
    Seed("camera-tiff", ".tif", lambda: camera_file("TIFF", orientation=3), 4),
    Seed("be16-tiff", ".tif", _be16_tiff, 5),
    Seed("multipage-tiff", ".tif", _multipage_tiff, 5),
    Seed("svg", ".svg", lambda: camera_file("SVG"), 3),
    Seed("c2pa-png", ".png", _c2pa_png, 3),
    Seed("c2pa-webp", ".webp", _c2pa_webp, 2),
    Seed("c2pa-gif", ".gif", _c2pa_gif, 2),
    Seed("c2pa-avif", ".avif", _c2pa_avif, 2),
    # Expensive (24 MP to decode): a small share, and only mutations that keep it decodable
    # often enough to reach the encoders are worth its time.
    Seed("tall-png", ".png", _tall_png, 0),
)
STARTUP = 15.0  # seconds for a build subprocess to start and write its site files
TALL_EVERY = 250  # one mutant in this many is of the tall screenshot


@functools.cache
def seed_bytes(name: str) -> bytes:
    """A seed's bytes (made once per process)."""
    return next(s for s in SEEDS if s.name == name).make()


# -- structure: where the length and dimension fields of each format are ----------------


@dataclass(frozen=True)
class Field:
    """A number stored in the file: ``offset``, ``size`` bytes, ``fmt`` for struct."""

    offset: int
    size: int
    big: bool

    def put(self, data: bytearray, value: int) -> None:
        value &= (1 << (8 * self.size)) - 1
        data[self.offset : self.offset + self.size] = value.to_bytes(
            self.size, "big" if self.big else "little"
        )

    def get(self, data: bytes | bytearray) -> int:
        return int.from_bytes(
            data[self.offset : self.offset + self.size], "big" if self.big else "little"
        )


@dataclass
class Fields:
    lengths: list[Field] = field(default_factory=list)
    dims: list[Field] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)  # chunks/segments, whole


def _png_fields(d: bytes, out: Fields) -> None:
    i = 8
    while i + 8 <= len(d):
        n = struct.unpack(">I", d[i : i + 4])[0]
        kind = d[i + 4 : i + 8]
        out.lengths.append(Field(i, 4, True))
        out.ranges.append((i, min(len(d), i + 12 + n)))
        body = i + 8
        if kind == b"IHDR":
            out.dims += [Field(body, 4, True), Field(body + 4, 4, True)]
        elif kind == b"fcTL":
            out.lengths.append(Field(body, 4, True))  # sequence number
            out.dims += [Field(body + o, 4, True) for o in (4, 8, 12, 16)]
        elif kind == b"fdAT":
            out.lengths.append(Field(body, 4, True))
        elif kind == b"acTL":
            out.lengths.append(Field(body, 4, True))  # frame count
        i += 12 + n


def _jpeg_fields(d: bytes, out: Fields) -> None:
    i = 2
    while i + 4 <= len(d) and d[i] == 0xFF:
        marker = d[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        n = struct.unpack(">H", d[i + 2 : i + 4])[0]
        out.lengths.append(Field(i + 2, 2, True))
        out.ranges.append((i, min(len(d), i + 2 + n)))
        if marker in (0xC0, 0xC1, 0xC2):
            out.dims += [Field(i + 5, 2, True), Field(i + 7, 2, True)]
            out.lengths.append(Field(i + 9, 1, True))  # component count
        if marker == 0xDA:
            break
        i += 2 + n


def _gif_fields(d: bytes, out: Fields) -> None:
    out.dims += [Field(6, 2, False), Field(8, 2, False)]
    i = 13
    if d[10] & 0x80 if len(d) > 10 else 0:
        i += 3 << ((d[10] & 7) + 1)
    while i < len(d):
        start = i
        if d[i] == 0x21 and i + 2 < len(d):
            i += 2
        elif d[i] == 0x2C and i + 10 < len(d):
            out.dims += [Field(i + o, 2, False) for o in (1, 3, 5, 7)]
            flags = d[i + 9]
            i += 10
            if flags & 0x80:
                i += 3 << ((flags & 7) + 1)
            i += 1  # LZW minimum code size
        else:
            return
        while i < len(d) and d[i]:  # sub-blocks
            out.lengths.append(Field(i, 1, False))
            i += 1 + d[i]
        i += 1
        out.ranges.append((start, min(i, len(d))))


def _riff_fields(d: bytes, out: Fields) -> None:
    out.lengths.append(Field(4, 4, False))
    i = 12
    while i + 8 <= len(d):
        kind = d[i : i + 4]
        n = struct.unpack("<I", d[i + 4 : i + 8])[0]
        out.lengths.append(Field(i + 4, 4, False))
        out.ranges.append((i, min(len(d), i + 8 + n + (n & 1))))
        body = i + 8
        if kind == b"VP8X":
            out.dims += [Field(body + 4, 3, False), Field(body + 7, 3, False)]
        elif kind == b"ANMF":
            out.dims += [Field(body + o, 3, False) for o in (0, 3, 6, 9)]
            _riff_sub(d, body + 16, min(len(d), body + n), out)
        elif kind == b"VP8 ":
            out.dims += [Field(body + 6, 2, False), Field(body + 8, 2, False)]
        elif kind == b"VP8L":
            out.dims += [Field(body + 1, 2, False), Field(body + 2, 2, False)]
        i += 8 + n + (n & 1)


def _riff_sub(d: bytes, i: int, end: int, out: Fields) -> None:
    while i + 8 <= end:
        n = struct.unpack("<I", d[i + 4 : i + 8])[0]
        out.lengths.append(Field(i + 4, 4, False))
        i += 8 + n + (n & 1)


_BMFF_CONTAINERS = {b"meta", b"iprp", b"ipco", b"moov", b"trak", b"mdia", b"minf", b"dinf", b"iinf"}


def _bmff_fields(d: bytes, out: Fields, i: int = 0, end: int | None = None, depth: int = 0) -> None:
    end = len(d) if end is None else end
    while i + 8 <= end and depth < 6:
        n = struct.unpack(">I", d[i : i + 4])[0]
        kind = d[i + 4 : i + 8]
        out.lengths.append(Field(i, 4, True))
        out.ranges.append((i, min(end, i + max(n, 8))))
        if n < 8:
            return
        if kind == b"ispe":
            out.dims += [Field(i + 12, 4, True), Field(i + 16, 4, True)]
        elif kind in (b"iloc", b"pitm", b"iref"):
            out.lengths += [Field(i + o, 2, True) for o in (12, 14, 16) if i + o + 2 <= end]
        if kind in _BMFF_CONTAINERS:
            skip = 12 if kind in (b"meta", b"iinf") else 8
            if kind == b"iinf":
                skip += 2
            _bmff_fields(d, out, i + skip, min(end, i + n), depth + 1)
        i += n


def _tiff_fields(d: bytes, out: Fields) -> None:
    big = d[:2] == b"MM"
    fmt = ">" if big else "<"
    out.lengths.append(Field(4, 4, big))  # first IFD offset
    offset = struct.unpack(fmt + "I", d[4:8])[0]
    for _ in range(8):
        if not 8 <= offset < len(d) - 2:
            return
        count = struct.unpack(fmt + "H", d[offset : offset + 2])[0]
        out.lengths.append(Field(offset, 2, big))
        for k in range(min(count, 64)):
            entry = offset + 2 + 12 * k
            if entry + 12 > len(d):
                return
            tag = struct.unpack(fmt + "H", d[entry : entry + 2])[0]
            out.lengths += [Field(entry + 4, 4, big), Field(entry + 8, 4, big)]  # count, value
            if tag in (256, 257):
                out.dims.append(Field(entry + 8, 4, big))
            elif tag in (258, 262, 277, 284, 339):  # bits, photometric, samples, planar, format
                out.dims.append(Field(entry + 8, 2, big))
        next_at = offset + 2 + 12 * count
        if next_at + 4 > len(d):
            return
        out.lengths.append(Field(next_at, 4, big))
        offset = struct.unpack(fmt + "I", d[next_at : next_at + 4])[0]


def fields_of(data: bytes, suffix: str) -> Fields:
    """The length and dimension fields of a (possibly already mutated) file."""
    out = Fields()
    walk = {
        ".png": _png_fields,
        ".jpg": _jpeg_fields,
        ".gif": _gif_fields,
        ".webp": _riff_fields,
        ".avif": _bmff_fields,
        ".tif": _tiff_fields,
    }.get(suffix)
    try:
        if walk is not None:
            walk(data, out)
    except (IndexError, struct.error):
        pass  # a walk over a mutant's broken structure stops where it breaks
    return out


# -- mutations --------------------------------------------------------------------------

INTERESTING = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xFFFF,
               0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)  # fmt: skip


def _bit_flips(d: bytearray, rng: random.Random, _: Fields) -> str:
    n = rng.choice((1, 1, 2, 4, 8, 16))
    for _i in range(n):
        pos = rng.randrange(len(d))
        d[pos] ^= 1 << rng.randrange(8)
    return f"flip {n} bits"


def _byte_pokes(d: bytearray, rng: random.Random, _: Fields) -> str:
    n = rng.choice((1, 2, 4))
    for _i in range(n):
        d[rng.randrange(len(d))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return f"poke {n} bytes"


def _truncate(d: bytearray, rng: random.Random, _: Fields) -> str:
    # Biased towards the end: most of a file's structure must survive to reach deep code.
    keep = int(len(d) * (1 - rng.random() ** 3))
    del d[max(1, keep) :]
    return f"truncate to {len(d)}"


def _set_field(d: bytearray, rng: random.Random, fields: list[Field], what: str) -> str:
    f = rng.choice(fields)
    old = f.get(d)
    choice = rng.randrange(4)
    if choice == 0:
        value = rng.choice(INTERESTING)
    elif choice == 1:
        value = old + rng.choice((-2, -1, 1, 2, 16, -16))
    elif choice == 2:
        value = old * rng.choice((2, 16, 256)) + rng.randrange(4)
    else:
        value = rng.randrange(1 << (8 * f.size))
    f.put(d, value)
    return f"{what} at {f.offset}: {old} -> {f.get(d)}"


def _chunk_length(d: bytearray, rng: random.Random, fields: Fields) -> str:
    if not fields.lengths:
        return _bit_flips(d, rng, fields)
    return _set_field(d, rng, fields.lengths, "length")


def _dimension(d: bytearray, rng: random.Random, fields: Fields) -> str:
    if not fields.dims:
        return _bit_flips(d, rng, fields)
    return _set_field(d, rng, fields.dims, "dimension")


def _splice(d: bytearray, rng: random.Random, fields: Fields) -> str:
    """Drop, duplicate or swap whole chunks/segments/boxes, or insert junk between them."""
    if not fields.ranges:
        return _truncate(d, rng, fields)
    start, end = rng.choice(fields.ranges)
    choice = rng.randrange(4)
    if choice == 0:
        del d[start:end]
        return f"drop {start}:{end}"
    if choice == 1:
        d[end:end] = d[start:end]
        return f"duplicate {start}:{end}"
    if choice == 2:
        junk = bytes(rng.randrange(256) for _ in range(rng.choice((1, 3, 16))))
        d[start:start] = junk
        return f"insert {len(junk)} junk bytes at {start}"
    other = rng.choice(fields.ranges)
    if other[0] >= end:
        moved = d[other[0] : other[1]]
        del d[other[0] : other[1]]
        d[start:start] = moved
        return f"move {other[0]}:{other[1]} before {start}"
    return _bit_flips(d, rng, fields)


def _svg_text(d: bytearray, rng: random.Random, fields: Fields) -> str:
    text = d.decode("utf-8", "replace")
    choice = rng.randrange(4)
    if choice == 0:
        new = re.sub(r'(width|height)="\d+"', lambda m: f'{m[1]}="{rng.choice(INTERESTING)}"', text)
        how = "svg dimensions"
    elif choice == 1:
        tags = [m.start() for m in re.finditer("<", text)]
        at = rng.choice(tags) if tags else 0
        new = text[:at] + text[at + 1 :]
        how = f"svg: drop '<' at {at}"
    elif choice == 2:
        new = text.replace(
            "<svg", rng.choice(("<svg", "<!DOCTYPE x [<!ENTITY a 'b'>]><svg", "<svg><svg")), 1
        )
        how = "svg prologue"
    else:
        return _bit_flips(d, rng, fields)
    d[:] = new.encode()
    return how


MUTATORS = (
    (_bit_flips, 4),
    (_byte_pokes, 2),
    (_truncate, 2),
    (_chunk_length, 4),
    (_dimension, 4),
    (_splice, 2),
)


@dataclass(frozen=True)
class Mutant:
    index: int
    seed: str
    suffix: str
    data: bytes
    how: str

    @property
    def name(self) -> str:
        return f"m{self.index:05d}-{self.seed}{self.suffix}"


def mutant(seed: int, index: int) -> Mutant:
    """Mutant ``index`` of run ``seed``: the same arguments always give the same bytes."""
    rng = random.Random(f"{seed}:{index}")
    if index % TALL_EVERY == TALL_EVERY - 1:
        chosen = next(s for s in SEEDS if s.name == "tall-png")
    else:
        chosen = rng.choices(SEEDS, weights=[s.weight for s in SEEDS])[0]
    data = bytearray(seed_bytes(chosen.name))
    steps = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if not data:
            break
        fields = fields_of(bytes(data), chosen.suffix)
        if chosen.suffix == ".svg" and rng.random() < 0.5:
            steps.append(_svg_text(data, rng, fields))
            continue
        mutate = rng.choices([m for m, _ in MUTATORS], weights=[w for _, w in MUTATORS])[0]
        steps.append(mutate(data, rng, fields))
    return Mutant(index, chosen.name, chosen.suffix, bytes(data), "; ".join(steps))


def mutants(seed: int, count: int, start: int = 0) -> Iterator[Mutant]:
    for index in range(start, start + count):
        yield mutant(seed, index)


# -- running ----------------------------------------------------------------------------


@dataclass
class Findings:
    """What a run found; empty lists mean the run passed."""

    mutants: int = 0
    batches: int = 0  # builds run (a batch that fails is re-run one mutant a build)
    escaped: list[str] = field(default_factory=list)  # tracebacks, wrong exit codes
    hangs: list[str] = field(default_factory=list)
    untagged: list[str] = field(default_factory=list)  # untagged and not reported
    # Exceptions the driver contained (reported as "cannot be processed (...); ... please
    # report it"): not escaped, but each is a bug of ours or Pillow's to root-cause.
    contained: list[str] = field(default_factory=list)
    # Web images Pillow decodes whole within max_pixels, yet reported untagged (issue 8:
    # "a web image that Pillow decodes whole must come out tagged").
    refused: list[str] = field(default_factory=list)
    decodable: int = 0  # how many mutants Pillow decodes whole
    temp_files: list[str] = field(default_factory=list)
    errors_reported: int = 0
    seconds: float = 0.0
    slowest: tuple[float, str] = (0.0, "")

    @property
    def ok(self) -> bool:
        return not (
            self.escaped
            or self.hangs
            or self.untagged
            or self.temp_files
            or self.contained
            or self.refused
        )

    def summary(self) -> str:
        return (
            f"{self.mutants} mutants, {self.batches} builds, {self.seconds:.0f} s: "
            f"{len(self.escaped)} escaped exceptions, {len(self.hangs)} hangs, "
            f"{len(self.untagged)} unreported untagged outputs, "
            f"{len(self.contained)} contained crashes, "
            f"{len(self.refused)} of {self.decodable} Pillow-decodable web images refused, "
            f"{len(self.temp_files)} temp files left; "
            f"{self.errors_reported} mutants reported as errors"
        )


def _site_for(batch: Sequence[Mutant], folder: Path) -> None:
    images = folder / "images"
    images.mkdir(parents=True)
    for m in batch:
        (images / m.name).write_bytes(m.data)
    body = "\n".join(f'<p><img src="images/{m.name}" alt="{m.index}"></p>' for m in batch)
    (folder / "index.html").write_text(
        f"<!doctype html><html><head><title>fuzz</title></head><body>{body}</body></html>\n"
    )


def _build(site: Path, report: Path, timeout: float) -> subprocess.CompletedProcess[str] | None:
    command = [sys.executable, "-m", "ssg_dmi.cli", "build", str(site), *BUILD_ARGS]
    command += ["--report", str(report)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    try:
        return subprocess.run(
            command,
            cwd=site.parent,  # no ssg-dmi.toml / pyproject.toml of the repository applies
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None


def _exiftool_tags(site: Path) -> dict[str, bool]:
    """Every image file exiftool reads under ``site``: relpath -> whether it has DataMining."""
    run = subprocess.run(
        ["exiftool", "-j", "-q", "-q", "-G1", "-XMP-plus:DataMining", "-FileType", "-r", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    found: dict[str, bool] = {}
    for entry in json.loads(run.stdout or "[]"):
        path = Path(entry["SourceFile"])
        if path.suffix.lower() not in IMAGE_SUFFIXES or "ExifTool:Error" in entry:
            continue
        found[path.relative_to(site).as_posix()] = "XMP-plus:DataMining" in entry
    return found


def _check_site(site: Path, report_path: Path, batch: Sequence[Mutant], out: Findings) -> None:
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    errors = report.get("errors", {})
    out.errors_reported += len(errors)
    for rel, message in sorted(errors.items()):
        if CRASH in message:
            how = next((f" ({m.how})" for m in batch if rel.endswith(m.name)), "")
            out.contained.append(f"{rel}{how}: {message}")
    for m in batch:
        if decodes_whole(m):
            out.decodable += 1
            rel = f"images/{m.name}"
            if rel in errors:
                out.refused.append(f"{rel} ({m.how}): {errors[rel]}")
    for rel, tagged in sorted(_exiftool_tags(site).items()):
        if not tagged and rel not in errors:
            how = next((f" ({m.how})" for m in batch if rel.endswith(m.name)), "")
            out.untagged.append(f"{rel}: untagged and not reported{how}")
    for path in site.rglob(".ssg-dmi-*"):
        out.temp_files.append(str(path.relative_to(site)))


WEB_FORMATS = {".jpg": "JPEG", ".png": "PNG", ".gif": "GIF", ".webp": "WEBP", ".avif": "AVIF"}
# Pillow opens, but cannot write back, a GIF frame drawn past 65535 (see pixels.MAX_SIDE).
MAX_SIDE = {".jpg": 65500, ".png": 2**31 - 1, ".gif": 65535, ".webp": 16383, ".avif": 32768}
MAX_PIXELS = 128_000_000  # ssg-dmi's default max_pixels, which the builds here use


def decodes_whole(m: Mutant) -> bool:
    """Whether Pillow decodes every frame of a web-format mutant within ``MAX_PIXELS``."""
    if m.suffix not in WEB_FORMATS:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(m.data), formats=[WEB_FORMATS[m.suffix]])
            if im.size[0] * im.size[1] > MAX_PIXELS or max(im.size) > MAX_SIDE[m.suffix]:
                return False  # over ssg-dmi's limit, or more than its format can be written at
            for frame in ImageSequence.Iterator(im):
                frame.load()
                if frame.mode == "P" and frame.palette is None:
                    return False  # a palette PNG without PLTE: Pillow guesses, browsers refuse
    except Exception:  # noqa: BLE001 - any failure means "not decodable"
        return False
    return True


def _escaped(result: subprocess.CompletedProcess[str]) -> str | None:
    if result.returncode not in (0, 1) or "Traceback (most recent call last)" in result.stderr:
        tail = "\n".join(result.stderr.strip().splitlines()[-12:])
        return f"exit {result.returncode}:\n{tail}"
    return None


WATERMARKED = '[watermark]\ntext = "fuzz"\nmin_width = 1\n'


def run_batch(batch: Sequence[Mutant], work: Path, hang: float, out: Findings) -> None:
    """Build one site made of ``batch``; on a timeout, find the mutant that hangs."""
    folder = Path(tempfile.mkdtemp(prefix="batch-", dir=work))
    site, report = folder / "site", folder / "report.json"
    _site_for(batch, site)
    if out.batches % 2:
        # Every other batch is watermarked (the build runs in `folder`, so this file is its
        # config): the mark is drawn on each mutant that decodes, inside the same containment.
        (folder / "ssg-dmi.toml").write_text(WATERMARKED)
    started = time.monotonic()
    # A batch running over `hang` (plus start-up) is re-run one mutant at a time: no single
    # mutant taking longer than `hang` can hide among fast ones.
    result = _build(site, report, timeout=hang + STARTUP)
    took = time.monotonic() - started
    out.batches += 1
    if result is None:
        shutil.rmtree(folder, ignore_errors=True)
        if len(batch) == 1:
            out.hangs.append(f"{batch[0].name}: over {hang:.0f} s ({batch[0].how})")
        else:
            for m in batch:
                run_batch([m], work, hang, out)
        return
    if took > out.slowest[0]:
        label = batch[0].name if len(batch) == 1 else f"batch of {len(batch)} from {batch[0].name}"
        out.slowest = (took, label)
    problem = _escaped(result)
    if problem:
        names = ", ".join(m.name for m in batch) if len(batch) <= 4 else f"{len(batch)} mutants"
        if len(batch) > 1:  # narrow it down to the mutants that cause it
            shutil.rmtree(folder, ignore_errors=True)
            before = len(out.escaped)
            for m in batch:
                run_batch([m], work, hang, out)
            if len(out.escaped) == before:  # only together (a pool, its batches): say so
                out.escaped.append(f"{names} together, none alone: {problem}")
            return
        out.escaped.append(f"{names} ({batch[0].how}): {problem}")
    _check_site(site, report, batch, out)
    shutil.rmtree(folder, ignore_errors=True)


def run_builds(
    seed: int, count: int, batch_size: int, hang: float, start: int = 0, log: bool = True
) -> Findings:
    """Run ``count`` mutants through ``ssg-dmi build``; the findings."""
    out = Findings()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ssg-dmi-fuzz-") as tmp:
        work = Path(tmp)
        batch: list[Mutant] = []
        for m in mutants(seed, count, start):
            batch.append(m)
            out.mutants += 1
            if len(batch) == batch_size:
                run_batch(batch, work, hang, out)
                batch = []
                if log:
                    print(f"  {out.mutants}/{count} ...", file=sys.stderr, flush=True)
        if batch:
            run_batch(batch, work, hang, out)
    out.seconds = time.monotonic() - started
    return out


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


def run_renders(seed: int, count: int, hang: float, start: int = 0) -> Findings:
    """Call :func:`ssg_dmi.build.job.render` on each mutant in this process (no driver)."""
    from ssg_dmi.build.job import Options, render
    from ssg_dmi.errors import ImageError
    from ssg_dmi.images.tagging import tag_bytes
    from ssg_dmi.policy import ImagePolicy
    from ssg_dmi.settings import Settings
    from ssg_dmi.settings.watermark import Watermark

    defaults = Settings()
    options = Options(
        widths=(24, 48, 480, 960),
        formats=("webp", "avif", "jpeg"),
        quality=dict(defaults.quality),
        originals="optimize",
        max_pixels=defaults.max_pixels,
        srgb=False,
    )
    out = Findings()
    started = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)

    # A mark on every image wide enough: the full-size re-encode and PNG row splicing.
    marked = dataclasses.replace(options, watermark=Watermark(text="© fuzz", min_width=16))

    def calls(m: Mutant) -> Iterator[Callable[[], object]]:
        yield lambda: render(m.data, m.name, ImagePolicy(), options)
        yield lambda: render(m.data, m.name, ImagePolicy(), marked)
        # `ssg-dmi tag` re-encoding: the other caller of the pixel code.
        yield lambda: tag_bytes(
            m.data,
            ImagePolicy(),
            name=m.name,
            lossless=False,
            max_pixels=options.max_pixels,
            quality=options.quality,
        )

    for m in mutants(seed, count, start):
        out.mutants += 1
        began = time.monotonic()
        refused = False
        for call in calls(m):
            signal.alarm(int(hang))
            try:
                call()
            except ImageError:
                refused = True
            except _Timeout:
                out.hangs.append(f"{m.name}: over {hang:.0f} s ({m.how})")
            except Exception as exc:  # noqa: BLE001 - finding these is the point
                where = traceback.extract_tb(exc.__traceback__)[-1]
                out.escaped.append(
                    f"{m.name} ({m.how}): {type(exc).__name__}: {exc} "
                    f"[{Path(where.filename).name}:{where.lineno} {where.name}]"
                )
            finally:
                signal.alarm(0)
        out.errors_reported += refused
        if decodes_whole(m):
            out.decodable += 1
            if refused:
                out.refused.append(f"{m.name} ({m.how}): Pillow decodes it, ssg-dmi refused it")
        took = time.monotonic() - began
        if took > out.slowest[0]:
            out.slowest = (took, m.name)
    out.seconds = time.monotonic() - started
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--count", type=int, default=300, help="how many mutants (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    parser.add_argument("--start", type=int, default=0, help="index of the first mutant")
    parser.add_argument("--only", type=int, help="run just this mutant index")
    parser.add_argument("--batch", type=int, default=50, help="mutants per site (default 50)")
    parser.add_argument("--hang", type=float, default=60.0, help="seconds that count as a hang")
    parser.add_argument("--mode", choices=["build", "render"], default="build")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="write the mutants here")
    args = parser.parse_args(argv)
    start, count = (args.only, 1) if args.only is not None else (args.start, args.count)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        for m in mutants(args.seed, count, start):
            (args.keep / m.name).write_bytes(m.data)
            print(f"{m.name}: {m.how}")
    if args.mode == "render":
        findings = run_renders(args.seed, count, args.hang, start)
    else:
        findings = run_builds(args.seed, count, args.batch, args.hang, start)
    found = findings.escaped + findings.contained + findings.hangs + findings.untagged
    found += findings.refused
    for line in found + findings.temp_files:
        print(line)
    print(findings.summary())
    print(f"slowest: {findings.slowest[0]:.1f} s, {findings.slowest[1]}")
    return 0 if findings.ok else 1


if __name__ == "__main__":
    sys.exit(main())
