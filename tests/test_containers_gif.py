"""GIF metadata surgery (the XMP application extension), checked with exiftool, pyexiv2
and Pillow."""

from __future__ import annotations

import contextlib
import io
import random
import struct
import subprocess
from pathlib import Path

import pytest
from PIL import GifImagePlugin, Image

from ssg_dmi.errors import ContainerError
from ssg_dmi.images.containers import Metadata, gif

from .container_bytes import mutated
from .images import encode
from .readers import (
    SAMPLE_XMP,
    assert_opt_out,
    needs_exiftool,
    pyexiv2_xmp,
    tagged,
)

OTHER_XMP = SAMPLE_XMP.replace(b"DMI-PROHIBITED", b"DMI-ALLOWED")


def make_gif(comment: bytes = b"made by a camera app", version: bytes = b"GIF89a") -> bytes:
    frames = [Image.new("P", (12, 8), i) for i in range(3)]
    for i, frame in enumerate(frames):
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] * 64)
        frame.putpixel((i, i), 3)
    data = encode(
        frames[0],
        "GIF",
        save_all=True,
        append_images=frames[1:],
        loop=0,
        duration=[100, 200, 300],
        comment=comment,
    )
    return version + data[6:]


def gif_frames(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as im:
        assert isinstance(im, GifImagePlugin.GifImageFile)
        frames = []
        for index in range(im.n_frames):
            im.seek(index)
            frames.append(
                im.convert("RGBA").tobytes() + struct.pack("<I", im.info.get("duration", 0))
            )
        return frames


def gif_blocks(data: bytes) -> list[bytes]:
    """The introducer + label (or app id) of each block, via the module's own walker."""
    _, blocks = gif._parse(data)
    return [b.raw[:2] + b.app_id for b in blocks]


def test_gif_write_keeps_animation_and_drops_comment() -> None:
    source = make_gif()
    out = gif.write(source, SAMPLE_XMP, None, keep_other=False)
    assert gif_frames(out) == gif_frames(source)
    with Image.open(io.BytesIO(out)) as im:
        assert isinstance(im, GifImagePlugin.GifImageFile)
        assert im.n_frames == 3
        assert im.info["loop"] == 0
        assert "comment" not in im.info
    # Right after the loop extension, before the first graphic control extension.
    assert gif_blocks(out)[:3] == [b"!\xffNETSCAPE2.0", b"!\xffXMP DataXMP", b"!\xf9"]
    assert out.count(b"XMP DataXMP") == 1
    # Every other block (loop, graphic control, frames) is the source's, byte for byte.
    kept = [b.raw for b in gif._parse(out)[1] if b.app_id != gif.XMP_ID]
    assert kept == [b.raw for b in gif._parse(source)[1] if b.raw[:2] != b"!\xfe"]
    # The only bytes added are the block itself; the removed comment is gone.
    overhead = 3 + len(gif.XMP_ID) + len(SAMPLE_XMP) + len(gif.MAGIC_TRAILER) + 1
    comment_block = 2 + 1 + len(b"made by a camera app") + 1
    assert len(out) - len(source) == overhead - comment_block


def test_gif_keep_other_keeps_comment() -> None:
    out = gif.write(make_gif(), SAMPLE_XMP, None, keep_other=True)
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["comment"] == b"made by a camera app"


def test_gif_read_round_trip_and_idempotence() -> None:
    source = make_gif()
    assert gif.read(source) == Metadata()
    once = gif.write(source, SAMPLE_XMP, b"II*\x00ignored", keep_other=False)
    assert gif.read(once).xmp == SAMPLE_XMP
    assert gif.read(once).exif is None
    assert gif.write(once, SAMPLE_XMP, None, keep_other=False) == once
    replaced = gif.write(once, OTHER_XMP, None, keep_other=False)
    assert gif.read(replaced).xmp == OTHER_XMP
    assert replaced.count(b"XMP DataXMP") == 1
    assert len(replaced) == len(once) + len(OTHER_XMP) - len(SAMPLE_XMP)


def test_gif87a_becomes_gif89a() -> None:
    out = gif.write(make_gif(version=b"GIF87a"), SAMPLE_XMP, None, keep_other=False)
    assert out.startswith(b"GIF89a")
    assert gif_frames(out) == gif_frames(make_gif())


def test_gif_without_loop_or_frames() -> None:
    still = io.BytesIO()
    Image.new("L", (3, 3), 7).save(still, "GIF")
    out = gif.write(still.getvalue(), SAMPLE_XMP, None, keep_other=False)
    assert gif_blocks(out)[0] == b"!\xffXMP DataXMP"
    assert gif_frames(out) == gif_frames(still.getvalue())
    empty = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
    assert gif.read(gif.write(empty, SAMPLE_XMP, None, False)).xmp == SAMPLE_XMP


def test_gif_rejects_packet_with_nul() -> None:
    with pytest.raises(ContainerError, match="NUL"):
        gif.write(make_gif(), SAMPLE_XMP + b"\x00", None, keep_other=False)


def test_gif_reads_packet_stored_as_plain_sub_blocks() -> None:
    # Some writers chunk the packet into length-prefixed sub-blocks instead of using
    # Adobe's raw packet + magic trailer; such a packet must still be found and replaced.
    head, blocks = gif._parse(make_gif())
    chunks = [SAMPLE_XMP[i : i + 255] for i in range(0, len(SAMPLE_XMP), 255)]
    xmp_block = b"!\xff\x0bXMP DataXMP" + b"".join(bytes([len(c)]) + c for c in chunks) + b"\0"
    data = head + blocks[0].raw + xmp_block + b"".join(b.raw for b in blocks[1:]) + b";"
    assert gif.read(data).xmp == SAMPLE_XMP
    assert gif_frames(data) == gif_frames(make_gif())
    expected = gif.write(make_gif(), SAMPLE_XMP, None, False)
    assert gif.write(data, SAMPLE_XMP, None, False) == expected


@needs_exiftool
def test_gif_exiftool_reads_it(tmp_path: Path) -> None:
    tags = tagged(tmp_path, "a.gif", gif.write(make_gif(), SAMPLE_XMP, None, keep_other=False))
    assert_opt_out(tags)
    assert tags["GIF:FrameCount"] == 3
    assert tags["GIF:AnimationIterations"] == 0
    assert "File:Comment" not in tags


@needs_exiftool
def test_gif_replaces_exiftool_written_xmp(tmp_path: Path) -> None:
    path = tmp_path / "e.gif"
    path.write_bytes(make_gif())
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-XMP-dc:Creator=Someone", str(path)],
        check=True,
    )
    assert b"XMP DataXMP" in path.read_bytes()
    out = gif.write(path.read_bytes(), SAMPLE_XMP, None, keep_other=False)
    assert out.count(b"XMP DataXMP") == 1
    tags = tagged(tmp_path, "f.gif", out)
    assert_opt_out(tags)
    assert "XMP-dc:Creator" not in tags
    assert gif_frames(out) == gif_frames(make_gif())


def test_gif_pyexiv2_cannot_read_it() -> None:
    # exiv2 has no GIF XMP support: it opens the file and reports nothing.
    assert pyexiv2_xmp(gif.write(make_gif(), SAMPLE_XMP, None, keep_other=False)) == {}


def bad_gifs() -> list[bytes]:
    good = make_gif()
    cases = [good[:n] for n in range(len(good))]  # every truncation, trailer included
    cases += [b"", b"\x00" * 64, random.Random(1).randbytes(300), b"GIF89a" + b"\xff" * 20]
    # An unknown block type is passed through now (browsers show it): test_containers_lenient
    return cases


def test_gif_bad_input_raises_container_error() -> None:
    for data in bad_gifs():
        with pytest.raises(ContainerError):
            gif.write(data, SAMPLE_XMP, None, keep_other=False)
        with pytest.raises(ContainerError):
            gif.read(data)


def test_gif_mutations_raise_only_container_error() -> None:
    good = make_gif()
    rng = random.Random(7)
    for _ in range(300):
        with contextlib.suppress(ContainerError):
            gif.write(mutated(rng, good, 4), SAMPLE_XMP, None, keep_other=False)
