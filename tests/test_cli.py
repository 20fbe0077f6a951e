"""The command line: tag and inspect, exit codes, and one clear line per bad file."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from ssg_dmi.cli import main

from .images import camera_file, encode, pattern
from .readers import PLUS, exiftool, needs_exiftool, pyexiv2_xmp


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def jpeg_with_broken_exif() -> bytes:
    good = encode(pattern(), "JPEG")
    tiff = (
        b"II*\x00\x08\x00\x00\x00"
        + b"\x05\x00"
        + b"\x0f\x01\x02\x00\xff\xff\x00\x00\xf0\xff\xff\x7f"
    )
    app1 = b"Exif\x00\x00" + tiff
    return good[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + good[2:]


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "truncated.jpg": (camera_file("JPEG")[:300], "truncat"),
    "truncated.png": (camera_file("PNG")[:200], ""),
    "empty.png": (b"", "empty file (0 bytes)"),
    "notes.jpg": (b"just some text, not a picture\n" * 4, "not a JPEG, PNG, WebP"),
    "bomb.png": (png_claiming(60000, 60000), "over the limit of"),
    "billion-laughs.svg": (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>',
        "entit",
    ),
    "xxe.svg": (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
        "entit",
    ),
}


def test_bad_files_one_line_each_rest_processed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name, (data, _) in BAD_FILES.items():
        (src / name).write_bytes(data)
    (src / "good.jpg").write_bytes(camera_file("JPEG"))
    (src / "lies.png").write_bytes(camera_file("JPEG"))  # a JPEG named .png
    (src / "broken-exif.jpg").write_bytes(jpeg_with_broken_exif())
    (src / "cmyk.jpg").write_bytes(encode(pattern().convert("CMYK"), "JPEG"))
    (src / "deep16.png").write_bytes(encode(Image.new("I;16", (40, 30), 40000), "PNG"))
    (src / "gone.jpg").symlink_to(src / "missing-target.jpg")
    odd = os.fsencode(src) + b"/caf\xe9-latin1.jpg"
    with open(odd, "wb") as handle:
        handle.write(camera_file("JPEG"))
    out = tmp_path / "out"
    code, stdout, stderr = run(
        capsys,
        "tag",
        str(src),
        "--out",
        str(out),
        "--config",
        str(_config(tmp_path, "max_pixels = 1000000\n")),
    )
    assert code == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    for name, (_, reason) in BAD_FILES.items():
        line = [e for e in errors if f"/{name}: " in e]
        assert len(line) == 1, (name, errors)
        assert reason.lower() in line[0].lower(), line
        assert line[0].endswith("left untagged")
    assert [e for e in errors if "gone.jpg" in e and "cannot read" in e]
    assert "Traceback" not in stderr
    assert "note: " in stderr and "lies.png: named .png but the content is JPEG" in stderr
    for good in ("good.jpg", "lies.png", "broken-exif.jpg", "cmyk.jpg", "deep16.png"):
        assert (out / good).is_file(), good
        assert pyexiv2_xmp((out / good).read_bytes())["Xmp.plus.DataMining"].startswith(PLUS)
    assert (out / "caf\udce9-latin1.jpg").exists()  # the non-UTF-8 name survives as bytes
    assert "caf\\udce9-latin1.jpg" in stdout or "caf\\xe9" in stdout
    assert sorted(p.name for p in src.iterdir() if not p.is_symlink()) == sorted(
        [
            *BAD_FILES,
            "good.jpg",
            "lies.png",
            "broken-exif.jpg",
            "cmyk.jpg",
            "deep16.png",
            "caf\udce9-latin1.jpg",
        ]
    )
    assert (src / "good.jpg").read_bytes() == camera_file("JPEG")  # sources untouched


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ssg-dmi.toml"
    path.write_text(text)
    return path


@needs_exiftool
def test_tag_file_and_folder_layout_and_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "photos"
    (src / "gallery").mkdir(parents=True)
    (src / "a.jpg").write_bytes(camera_file("JPEG"))
    (src / "gallery" / "b.png").write_bytes(camera_file("PNG"))
    (src / ".hidden").mkdir()
    (src / ".hidden" / "c.jpg").write_bytes(camera_file("JPEG"))
    single = tmp_path / "single.webp"
    single.write_bytes(camera_file("WEBP"))
    config = _config(
        tmp_path,
        'dmi = "DMI-PROHIBITED"\ncopyright = "© Ana"\n'
        '[[rules]]\npath = "gallery/**"\ndmi = "DMI-ALLOWED"\n',
    )
    out = tmp_path / "out"
    code, stdout, _ = run(
        capsys, "tag", str(src), str(single), "--out", str(out), "--config", str(config)
    )
    assert code == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["a.jpg", "gallery/b.png", "single.webp"]
    view = {Path(d["SourceFile"]).name: d for d in exiftool(*(out / f for f in files))}
    assert view["a.jpg"]["XMP-plus:DataMining"] == PLUS + "DMI-PROHIBITED"
    assert view["b.png"]["XMP-plus:DataMining"] == PLUS + "DMI-ALLOWED"
    assert view["single.webp"]["XMP-dc:Rights"] == "© Ana"
    mtimes = {f: (out / f).stat().st_mtime_ns for f in files}
    code, _, _ = run(
        capsys, "tag", str(src), str(single), "--out", str(out), "--config", str(config)
    )
    assert code == 0
    assert {f: (out / f).stat().st_mtime_ns for f in files} == mtimes  # nothing rewritten
    code, stdout, _ = run(
        capsys,
        "tag",
        str(single),
        "--out",
        str(out),
        "--dmi",
        "DMI-PROHIBITED-AIMLTRAINING",
        "--config",
        str(config),
        "--lossless",
    )
    assert code == 0 and "DMI-PROHIBITED-AIMLTRAINING, lossless" in stdout


def test_in_place_and_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(camera_file("JPEG"))
    code, stdout, _ = run(capsys, "inspect", str(photo))
    assert code == 1
    assert "DataMining: none (untagged)" in stdout and "EXIF GPS" in stdout
    code, _, _ = run(
        capsys,
        "tag",
        str(photo),
        "--in-place",
        "--config",
        str(_config(tmp_path, 'copyright = "© Ana"\n')),
    )
    assert code == 0
    code, stdout, _ = run(capsys, "inspect", "--json", str(photo))
    assert code == 0
    (found,) = json.loads(stdout)
    assert found["dmi"] == "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"
    assert found["rights"]["copyright"] == "© Ana"
    assert found["private"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tag", "x.jpg"], "one of the arguments --out --in-place is required"),
        (["tag", "x.jpg", "--out", "o", "--dmi", "DMI-NOPE"], "`dmi`: 'DMI-NOPE' is not"),
        (["tag", "x.jpg", "--out", "o", "--config", "nope.toml"], "cannot read the config"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    os.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_path_is_an_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tag", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "o"))
    assert code == 1
    assert "nope.jpg: no such file or folder" in err
