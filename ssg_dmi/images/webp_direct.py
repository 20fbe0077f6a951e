"""Still WebP pixels decoded by libwebp itself, straight into memory we own.

Pillow decodes a WebP through libwebp's animation decoder, even a still one: into an RGBA
canvas, copied out as a bytes object, then unpacked into the image. libwebp's own
``WebPDecode`` writes the rows straight into a buffer of ours: the same pixels, bit for bit,
for a fifth less CPU (opening and decoding the dev corpus's fourteen 4096 × 4096 WebPs, best
of 4: 2.79 s against 3.50 s). It can also decode at a smaller size
(``WebPDecoderOptions.use_scaling``), as libjpeg's ``draft`` does for JPEG; the build does not
ask for that: every size tried (1, 1.25, 1.5 and 2 × the largest variant, and 1/k where
Pillow's resize would average k × k blocks first) moved some variant's SSIMULACRA2 by more
than 0.5 points (bench/README.md, "Decode, format by format"). Pillow does not expose
``WebPDecode``, so this calls the libwebp that Pillow's ``PIL._webp`` extension itself loaded
(the copy in ``pillow.libs/`` for a wheel) through :mod:`ctypes`.

A foreign call cannot be made safe by catching exceptions, only by not making a wrong one:

- The structures below are ``decode.h``'s, as they have been from libwebp 1.1.0 (decoder ABI
  0x0209) to 1.6.0 (0x0210, the same layout; checked against the C compiler's offsets).
  ``WebPInitDecoderConfigInternal`` and ``WebPGetFeaturesInternal`` refuse a caller whose ABI
  major differs from the library's; the library's version must be at least 1.1.0 as well; and
  each record lives at the start of a buffer 1 KiB larger than it, so even a library writing a
  larger record than described writes into memory we own.
- libwebp writes into memory we own, sized exactly (``is_external_memory``: it checks the
  stride and size against the output it will write and refuses a buffer too small), reads the
  file's bytes only within the length given, and runs on this thread (``use_threads = 0``);
  ctypes releases the GIL for the call, so build threads still decode in parallel.
- Only what is exact is done: a still (not animated) image, in the mode Pillow opens it in
  (RGB, or RGBA when the file has alpha). A smaller size, when asked, is refused for a lossy
  image with alpha: libwebp rescales its colour and alpha apart, so the colour of transparent
  pixels leaks into the edges (by up to 47 levels in the tests' picture), where Pillow's resize
  weights colour by alpha; for lossless images libwebp weights by alpha too.

Anything else (no library, another ABI, an animation, a status other than OK, an output of
another size than asked) returns None and the caller decodes with Pillow as before; so a
damaged file fails there, with the same message as without this module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re

from PIL import Image

# decode.h: "WEBP_DECODER_ABI_VERSION 0x0209  // MAJOR(8b) + MINOR(8b)" (libwebp 1.1 to 1.5).
ABI_VERSION = 0x0209
MIN_VERSION = 0x010100  # 1.1.0, the first with ABI 0x0209
_MODE_RGBA = 1  # WEBP_CSP_MODE
_STATUS_OK = 0  # VP8StatusCode
_FORMAT_LOSSLESS = 2  # WebPBitstreamFeatures.format: 0 mixed/undefined, 1 lossy, 2 lossless
_SLACK = 1024
# Pillow mode -> how it reads libwebp's RGBA rows. RGBA, not RGB, even for an opaque image:
# Pillow keeps RGB at 4 bytes a pixel, so 4-byte rows are copied in, not spread out (decode
# and copy, dev corpus's 14 WebPs, best of 4: 2.10 s against 2.23 s from libwebp's RGB).
_RAWMODES = {"RGB": "RGBX", "RGBA": "RGBA"}


class _Features(ctypes.Structure):
    """``WebPBitstreamFeatures``."""

    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("has_alpha", ctypes.c_int),
        ("has_animation", ctypes.c_int),
        ("format", ctypes.c_int),
        ("pad", ctypes.c_uint32 * 5),
    ]


class _RGBABuffer(ctypes.Structure):
    """``WebPRGBABuffer``."""

    _fields_ = [
        ("rgba", ctypes.c_void_p),
        ("stride", ctypes.c_int),
        ("size", ctypes.c_size_t),
    ]


class _YUVABuffer(ctypes.Structure):
    """``WebPYUVABuffer`` (unused here, but it sets the size of the union)."""

    _fields_ = [
        ("y", ctypes.c_void_p),
        ("u", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("a", ctypes.c_void_p),
        ("y_stride", ctypes.c_int),
        ("u_stride", ctypes.c_int),
        ("v_stride", ctypes.c_int),
        ("a_stride", ctypes.c_int),
        ("y_size", ctypes.c_size_t),
        ("u_size", ctypes.c_size_t),
        ("v_size", ctypes.c_size_t),
        ("a_size", ctypes.c_size_t),
    ]


class _BufferUnion(ctypes.Union):
    _fields_ = [("RGBA", _RGBABuffer), ("YUVA", _YUVABuffer)]


class _DecBuffer(ctypes.Structure):
    """``WebPDecBuffer``."""

    _fields_ = [
        ("colorspace", ctypes.c_int),  # WEBP_CSP_MODE, an enum: int-sized
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("is_external_memory", ctypes.c_int),
        ("u", _BufferUnion),
        ("pad", ctypes.c_uint32 * 4),
        ("private_memory", ctypes.c_void_p),
    ]


class _Options(ctypes.Structure):
    """``WebPDecoderOptions``."""

    _fields_ = [
        ("bypass_filtering", ctypes.c_int),
        ("no_fancy_upsampling", ctypes.c_int),
        ("use_cropping", ctypes.c_int),
        ("crop_left", ctypes.c_int),
        ("crop_top", ctypes.c_int),
        ("crop_width", ctypes.c_int),
        ("crop_height", ctypes.c_int),
        ("use_scaling", ctypes.c_int),
        ("scaled_width", ctypes.c_int),
        ("scaled_height", ctypes.c_int),
        ("use_threads", ctypes.c_int),
        ("dithering_strength", ctypes.c_int),
        ("flip", ctypes.c_int),
        ("alpha_dithering_strength", ctypes.c_int),
        ("pad", ctypes.c_uint32 * 5),
    ]


class _Config(ctypes.Structure):
    """``WebPDecoderConfig``."""

    _fields_ = [("input", _Features), ("output", _DecBuffer), ("options", _Options)]


# A mapped file of this process that is libwebp itself (not libwebpdemux, libwebpmux or
# libsharpyuv): "libwebp.so.7" from a distribution, "libwebp-51b0b3f7.so.7.2.0" in a wheel.
_LIBWEBP = re.compile(r"libwebp(?:-[0-9a-f]+)?\.so(?:\.\d+)*")


def _loaded_by_pillow() -> list[str]:
    """Paths of the libwebp that ``PIL._webp`` loaded (Linux: read from /proc/self/maps)."""
    try:
        from PIL import _webp  # loading it maps the libwebp it links
    except ImportError:
        return []
    found = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                # address perms offset dev inode path (the path may hold spaces)
                fields = line.rstrip("\n").split(maxsplit=5)
                if len(fields) == 6 and _LIBWEBP.fullmatch(os.path.basename(fields[5])):
                    found.append(fields[5])
    except OSError:
        return []
    # A wheel's own copy first (beside PIL, in pillow.libs/), should another be mapped too.
    here = os.path.dirname(os.path.dirname(os.path.abspath(_webp.__file__ or "")))
    return sorted(dict.fromkeys(found), key=lambda path: not path.startswith(here + os.sep))


@functools.cache
def library() -> ctypes.CDLL | None:
    """The libwebp Pillow decodes with, set up for the calls below; None when there is none
    or it is not one these structures describe."""
    for name in (*_loaded_by_pillow(), ctypes.util.find_library("webp")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.WebPGetDecoderVersion.restype = ctypes.c_int
            lib.WebPGetDecoderVersion.argtypes = []
            lib.WebPInitDecoderConfigInternal.restype = ctypes.c_int
            lib.WebPInitDecoderConfigInternal.argtypes = [ctypes.c_void_p, ctypes.c_int]
            lib.WebPDecode.restype = ctypes.c_int
            lib.WebPDecode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
            lib.WebPGetFeaturesInternal.restype = ctypes.c_int
            lib.WebPGetFeaturesInternal.argtypes = [
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_void_p,
                ctypes.c_int,
            ]
            lib.WebPFreeDecBuffer.restype = None
            lib.WebPFreeDecBuffer.argtypes = [ctypes.c_void_p]
            if lib.WebPGetDecoderVersion() < MIN_VERSION:
                continue
            return lib
        except (OSError, AttributeError):
            continue
    return None


def decode(data: bytes, size: tuple[int, int], mode: str) -> Image.Image | None:
    """``data``, a still WebP, decoded to ``size`` (as stored: not turned upright) in
    ``mode`` ("RGB" or "RGBA", the mode Pillow opens it in): at its own size, the pixels
    Pillow decodes; smaller, rescaled by libwebp. None where that is not done exactly (see
    the module's notes), and the caller decodes with Pillow instead."""
    lib = library()
    rawmode = _RAWMODES.get(mode)
    width, height = size
    if lib is None or rawmode is None or width <= 0 or height <= 0:
        return None
    # The record, and 1 KiB beyond it, in memory we own (see the module's notes).
    raw = bytearray(ctypes.sizeof(_Config) + _SLACK)
    config = _Config.from_buffer(raw)
    if not lib.WebPInitDecoderConfigInternal(ctypes.addressof(config), ABI_VERSION):
        return None
    found = config.input
    if (
        lib.WebPGetFeaturesInternal(data, len(data), ctypes.addressof(found), ABI_VERSION)
        != _STATUS_OK
        or found.has_animation
        or (found.has_alpha and mode != "RGBA")
    ):
        return None
    scaled = (width, height) != (found.width, found.height)
    if scaled and (
        width > found.width
        or height > found.height
        or (found.has_alpha and found.format != _FORMAT_LOSSLESS)
    ):
        return None
    stride = width * 4
    pixels = bytearray(stride * height)
    target = (ctypes.c_char * len(pixels)).from_buffer(pixels)
    try:
        out = config.output
        out.colorspace = _MODE_RGBA
        out.is_external_memory = 1
        out.u.RGBA.rgba = ctypes.addressof(target)
        out.u.RGBA.stride = stride
        out.u.RGBA.size = len(pixels)
        config.options.use_scaling = int(scaled)
        config.options.scaled_width = width if scaled else 0
        config.options.scaled_height = height if scaled else 0
        config.options.use_threads = 0
        status = lib.WebPDecode(data, len(data), ctypes.addressof(config))
        if (
            status != _STATUS_OK
            or (out.width, out.height) != (width, height)
            or out.colorspace != _MODE_RGBA
            or out.u.RGBA.rgba != ctypes.addressof(target)
        ):
            return None
    finally:
        # Nothing to free with external memory, but the API asks for it; harmless either way.
        lib.WebPFreeDecBuffer(ctypes.addressof(config.output))
        del target, config, found, out  # views on bytearrays we keep
    return Image.frombytes(mode, size, pixels, "raw", rawmode)
