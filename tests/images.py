"""Small test images made on the spot, carrying the private metadata a camera would write."""

from __future__ import annotations

import functools
import io
import struct
from typing import Any

from PIL import Image, ImageCms, PngImagePlugin

SECRET = "SECRET-OLD-XMP-7731"
OLD_XMP = (
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
    f' exif:GPSLatitude="48,51.4N" photoshop:City="{SECRET}">'
    "<dc:creator><rdf:Seq><rdf:li>Source Author</rdf:li></rdf:Seq></dc:creator>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
).encode()
SERIAL = "SN-99887766"


def camera_exif(orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it: GPS position, serial numbers, owner, orientation."""
    exif = Image.Exif()
    exif[0x010F] = "Phone Maker"
    exif[0x0110] = "Phone 12"
    exif[0x0112] = orientation
    exif[0x013B] = "Exif Artist"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 24.0)
    gps[3] = "E"
    gps[4] = (2.0, 21.0, 7.0)
    sub = exif.get_ifd(0x8769)
    sub[0xA431] = SERIAL
    sub[0xA435] = "LENS-" + SERIAL
    sub[0xA430] = "Owner Name"
    sub[0x829A] = 0.01
    return exif


def pattern(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """An asymmetric picture: each quadrant its own colour, so any rotation shows."""
    w, h = size
    im = Image.new("RGB", size, (255, 0, 0))
    im.paste((0, 255, 0), (w // 2, 0, w, h // 2))
    im.paste((0, 0, 255), (0, h // 2, w // 2, h))
    im.paste((255, 255, 0), (w // 2, h // 2, w, h))
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(Image.linear_gradient("L").resize(size))
    return im if mode in ("RGB", "RGBA") else im.convert(mode)


@functools.cache
def srgb_icc() -> bytes:
    """A real ICC profile to check colour data survives (made once: LittleCMS stamps the
    creation time into it, and the tests compare files made seconds apart)."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    """Pillow's encoding of ``im`` as ``fmt``."""
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def photo(size: tuple[int, int]) -> Image.Image:
    """A photo-like RGB picture: smooth gradients plus grain, so sizes behave like photos."""
    grad = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40)
    return Image.merge("RGB", (grad, radial, noise))


def jpeg(im: Image.Image, quality: int = 90, **options: Any) -> bytes:
    """Pillow's JPEG of ``im`` (quality 90 unless told)."""
    return encode(im, "JPEG", quality=quality, **options)


def half_transparent(size: tuple[int, int] = (300, 200)) -> Image.Image:
    """A photo whose left half is fully transparent and right half fully opaque."""
    im = photo(size).convert("RGBA")
    alpha = Image.new("L", size, 255)
    alpha.paste(0, (0, 0, size[0] // 2, size[1]))
    im.putalpha(alpha)
    return im


def gray16(values: list[int], size: tuple[int, int]) -> Image.Image:
    """A 16-bit greyscale image whose columns take ``values`` left to right."""
    w, h = size
    row = b"".join(struct.pack("<H", values[x * len(values) // w]) for x in range(w))
    return Image.frombytes("I;16", size, row * h)


def busy_picture(mode: str = "RGB", size: tuple[int, int] = (32, 24)) -> Image.Image:
    """A deterministic busy picture with no metadata (every byte differs from its neighbour)."""
    data = bytes((i * 37 + i // 96) % 256 for i in range(size[0] * size[1] * len(mode)))
    return Image.frombytes(mode, size, data)


def camera_file(fmt: str, orientation: int = 1) -> bytes:
    """A source file of ``fmt`` with GPS, serials, old XMP and an ICC profile."""
    exif = camera_exif(orientation)
    icc = srgb_icc()
    if fmt == "JPEG":
        return encode(pattern(), "JPEG", exif=exif, xmp=OLD_XMP, icc_profile=icc, quality=90)
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()  # Pillow's PNG writer ignores xmp=
        info.add_itxt("XML:com.adobe.xmp", OLD_XMP.decode())
        return encode(pattern(mode="RGBA"), "PNG", exif=exif, pnginfo=info, icc_profile=icc)
    if fmt == "WEBP":
        return encode(pattern(), "WEBP", exif=exif, xmp=OLD_XMP, icc_profile=icc, quality=90)
    if fmt == "AVIF":
        return encode(pattern(), "AVIF", exif=exif, xmp=OLD_XMP, icc_profile=icc, quality=90)
    if fmt == "TIFF":
        return encode(pattern(), "TIFF", exif=exif, tiffinfo={700: OLD_XMP}, icc_profile=icc)
    if fmt == "GIF":
        frames = [pattern().convert("P"), pattern((64, 48)).rotate(180).convert("P")]
        return encode(
            frames[0],
            "GIF",
            save_all=True,
            append_images=frames[1:],
            loop=0,
            duration=100,
            comment=SECRET.encode(),
        )
    if fmt == "SVG":
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<!-- a drawing -->\n'
            '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
            '<metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f"<rdf:Description>{SECRET}</rdf:Description></rdf:RDF></metadata>"
            '<rect width="64" height="48" fill="red"/></svg>\n'
        ).encode()
    raise ValueError(fmt)


FORMATS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "AVIF": ".avif",
    "TIFF": ".tif",
    "GIF": ".gif",
    "SVG": ".svg",
}
