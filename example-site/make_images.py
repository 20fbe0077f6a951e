"""Rebuild example-site/images from Debian's wallpaper packages (../shared/corpus/wallpapers.sh).

The committed images were made by this script: real KDE wallpapers photographs, scaled down,
with camera-like private metadata added on purpose (GPS position, serial numbers, a rotated
sensor) so the demo shows ssg-dmi removing it. Run: python example-site/make_images.py CORPUS
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).parent / "images"
KDE = "plasma-workspace-wallpapers-wallpapers_{}_contents_images_2560x1600.jpg"


def phone_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Demo Phone Co.", "Demo Phone 7", orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.6), "E", (2.0, 17.0, 40.2)
    sub = exif.get_ifd(0x8769)
    sub[0xA431], sub[0xA430] = "SN-0042-DEMO", "Ada Example"
    return exif


def scaled(corpus: Path, name: str, width: int) -> Image.Image:
    im = Image.open(corpus / KDE.format(name)).convert("RGB")
    return im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)


def main(corpus: Path) -> None:
    (OUT / "gallery").mkdir(parents=True, exist_ok=True)
    scaled(corpus, "ColorfulCups", 1200).save(
        OUT / "cups.jpg", quality=85, exif=phone_exif(), progressive=True
    )
    # A sensor that stored the picture sideways: pixels rotated, Orientation 6 says "turn me".
    upright = scaled(corpus, "Autumn", 900)
    upright.transpose(Image.Transpose.ROTATE_90).save(
        OUT / "autumn-sideways.jpg", quality=85, exif=phone_exif(orientation=6)
    )
    leaf = scaled(corpus, "FallenLeaf", 640).convert("RGBA")
    mask = Image.new("L", leaf.size, 0)
    ImageDraw.Draw(mask).ellipse((10, 10, leaf.width - 10, leaf.height - 10), fill=255)
    leaf.putalpha(mask)
    leaf.save(OUT / "leaf-cutout.png", optimize=True)
    scaled(corpus, "Kite", 800).save(OUT / "kite.webp", quality=80)
    ripple = scaled(corpus, "ColdRipple", 320)
    frames = [ripple.rotate(angle).convert("P", palette=Image.Palette.ADAPTIVE) for angle in (0, 4, 8)]
    frames[0].save(OUT / "ripple.gif", save_all=True, append_images=frames[1:], loop=0, duration=300)
    scaled(corpus, "BytheWater", 1000).save(
        OUT / "gallery" / "by-the-water.jpg", quality=85, exif=phone_exif()
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus"))
