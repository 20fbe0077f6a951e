"""AVIF/HEIF (ISO-BMFF) still images: XMP and EXIF are items of the file-level ``meta`` box.

``meta`` lists the items (``iinf``), where their bytes live (``iloc``) and how they relate
(``iref``). An EXIF item has type ``Exif``; an XMP item has type ``mime`` with content
type ``application/rdf+xml``; both point at the primary item with a ``cdsc`` reference.

write() drops the old metadata items, zeroes the bytes they occupied (they would otherwise
survive as orphans in ``mdat``) and stores the new items in a metadata-only ``mdat``
appended to the file, addressed by file offsets (construction method 0): exiv2 ignores
``idat``, and a box of its own can be dropped whole by the next write, so rewriting is
idempotent and leaves no zeroed gap behind. Every other box is copied unchanged; ``iloc``
is rewritten with the offsets of data that moved (``meta`` changed size), in the plain
layout exiv2 needs (4-byte offsets, base offsets folded into the extents)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ...errors import ContainerError
from .metadata import Metadata

XMP_TYPE = b"application/rdf+xml"
# The top-level uuid box of a C2PA manifest store (C2PA 2.x, "Embedding manifests into BMFF").
C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
ANIMATED = "animated AVIF: metadata rewrite not supported; re-encode it as a still image"
Ranges = list[tuple[int, int]]


@dataclass(frozen=True)
class _Box:
    kind: bytes
    start: int
    body: int  # first byte after the header (size, type and any largesize)
    end: int


@dataclass
class _Loc:
    item: int
    method: int  # the 16-bit field of iloc v1/v2; construction_method is its low 4 bits
    dref: int
    base: int
    extents: list[tuple[int, int, int]]  # (extent_index, offset, length)


@dataclass
class _Meta:
    box: _Box
    children: list[_Box]
    infos: list[tuple[int, bytes, bytes, _Box]] = field(default_factory=list)  # id, type, ctype
    locs: list[_Loc] = field(default_factory=list)
    versions: dict[bytes, int] = field(default_factory=dict)  # of iinf, iloc, iref, pitm, idat
    refs: list[tuple[bytes, int, list[int]]] = field(default_factory=list)  # type, from, to
    primary: int | None = None
    idat: _Box | None = None


class _Cursor:
    """Big-endian fields read one after another, never past ``end``."""

    def __init__(self, data: bytes | bytearray, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def u(self, size: int) -> int:
        if self.pos + size > self.end:
            raise ContainerError(f"AVIF box data truncated at byte {self.pos}")
        self.pos += size
        return int.from_bytes(self.data[self.pos - size : self.pos], "big")

    def cstr(self) -> bytes:
        stop = self.data.find(b"\0", self.pos, self.end)
        text = bytes(self.data[self.pos : self.end if stop < 0 else stop])
        self.pos = self.end if stop < 0 else stop + 1
        return text


def _full(data: bytes | bytearray, box: _Box) -> tuple[int, int, _Cursor]:
    """A FullBox's version and flags, and a cursor after them."""
    cur = _Cursor(data, box.body, box.end)
    word = cur.u(4)
    return word >> 24, word & 0xFFFFFF, cur


def _boxes(data: bytes | bytearray, pos: int, end: int) -> list[_Box]:
    boxes: list[_Box] = []
    while pos < end:
        cur = _Cursor(data, pos, end)
        size, kind = cur.u(4), cur.u(4).to_bytes(4, "big")
        if size == 1:
            size = cur.u(8)
        elif size == 0:  # "extends to the end of the enclosing box or file"
            size = end - pos
        if size < cur.pos - pos or pos + size > end:
            raise ContainerError(f"AVIF box {kind!r} at byte {pos} has a bad size ({size})")
        boxes.append(_Box(kind, pos, cur.pos, pos + size))
        pos += size  # advances by at least 8 bytes, so the walk always ends
    return boxes


def _box(kind: bytes, body: bytes) -> bytes:
    if len(body) + 8 <= 0xFFFFFFFF:
        return struct.pack(">I4s", len(body) + 8, kind) + body
    return struct.pack(">I4sQ", 1, kind, len(body) + 16) + body


def _copy(data: bytes | bytearray, box: _Box) -> bytes:
    """The box's bytes, given an explicit size if it had size 0 (it may no longer be last)."""
    if data[box.start : box.start + 4] == b"\0\0\0\0":
        return _box(box.kind, bytes(data[box.body : box.end]))
    return bytes(data[box.start : box.end])


def _parse_iinf(data: bytes, meta: _Meta, box: _Box) -> None:
    version, _, cur = _full(data, box)
    count = cur.u(2 if version == 0 else 4)
    entries = _boxes(data, cur.pos, box.end)
    if len(entries) != count or any(e.kind != b"infe" for e in entries):
        raise ContainerError(f"AVIF iinf box says {count} entries but holds {len(entries)}")
    for entry in entries:
        version, _, cur = _full(data, entry)
        item, kind, ctype = cur.u(4 if version >= 3 else 2), b"", b""
        if version >= 2:  # v0/v1 entries (pre-HEIF) carry no item type
            cur.u(2)  # item_protection_index
            kind = cur.u(4).to_bytes(4, "big")
            cur.cstr()  # item_name
            if kind == b"mime":
                ctype = cur.cstr().split(b";")[0].strip()
        meta.infos.append((item, kind, ctype, entry))


def _parse_iloc(data: bytes, meta: _Meta, box: _Box) -> None:
    version, _, cur = _full(data, box)
    if version > 2:
        raise ContainerError(f"AVIF iloc version {version} is not supported")
    word = cur.u(2)
    sizes = (word >> 12, word >> 8 & 15, word >> 4 & 15, word & 15 if version else 0)
    if any(s not in (0, 4, 8) for s in sizes):
        raise ContainerError(f"AVIF iloc field sizes {sizes} are not 0, 4 or 8")
    off, length, base, index = sizes
    wide = 4 if version == 2 else 2
    for _ in range(cur.u(wide)):  # every entry consumes bytes, so a bogus count hits the end
        item = cur.u(wide)
        method = cur.u(2) if version else 0
        dref, start, count = cur.u(2), cur.u(base), cur.u(2)
        if count > 1 and index + off + length == 0:
            raise ContainerError(f"AVIF iloc item {item} has extents without any fields")
        extents = [(cur.u(index), cur.u(off), cur.u(length)) for _ in range(count)]
        meta.locs.append(_Loc(item, method, dref, start, extents))


def _parse_iref(data: bytes, meta: _Meta, box: _Box) -> None:
    version, _, cur = _full(data, box)
    size = 2 if version == 0 else 4
    for ref in _boxes(data, cur.pos, box.end):
        cur = _Cursor(data, ref.body, ref.end)
        source, count = cur.u(size), cur.u(2)
        meta.refs.append((ref.kind, source, [cur.u(size) for _ in range(count)]))


def _ranges(data: bytes, meta: _Meta, loc: _Loc) -> Ranges:
    """The file byte ranges holding an item's data (none if it is stored elsewhere)."""
    method = loc.method & 15
    if method > 2:
        raise ContainerError(f"AVIF item {loc.item} has unknown construction method {method}")
    if loc.dref or method == 2:  # another file, or an offset into another item
        return []
    start, end = 0, len(data)
    if method == 1:
        if meta.idat is None:
            raise ContainerError(f"AVIF item {loc.item} lives in idat but meta has no idat box")
        start, end = meta.idat.body, meta.idat.end
    ranges = []
    for _, off, length in loc.extents:
        first = start + loc.base + off
        last = end if length == 0 else first + length  # length 0 means "to the end"
        if last > end or first > end:
            raise ContainerError(f"AVIF iloc item {loc.item} points past the end of its data")
        ranges.append((first, last))
    return ranges


def _parse(data: bytes) -> tuple[list[_Box], _Meta | None]:
    top = _boxes(data, 0, len(data))
    if not top or top[0].kind != b"ftyp":
        raise ContainerError("not an AVIF/HEIF file: it does not start with an ftyp box")
    metas = [box for box in top if box.kind == b"meta"]
    if len(metas) > 1:
        raise ContainerError("AVIF file has more than one top-level meta box")
    if not metas:
        return top, None
    meta = _Meta(metas[0], _boxes(data, _full(data, metas[0])[2].pos, metas[0].end))
    parsers = {b"iinf": _parse_iinf, b"iloc": _parse_iloc, b"iref": _parse_iref}
    for child in meta.children:
        if child.kind not in (*parsers, b"pitm", b"idat"):
            continue
        if child.kind in meta.versions:
            raise ContainerError(f"AVIF meta box has two {child.kind!r} boxes")
        if child.kind == b"idat":  # a plain box, not a FullBox
            meta.idat, meta.versions[child.kind] = child, 0
            continue
        version, _, cur = _full(data, child)
        meta.versions[child.kind] = version
        if child.kind in parsers:
            parsers[child.kind](data, meta, child)
        else:
            meta.primary = cur.u(2 if version == 0 else 4)
    for loc in meta.locs:
        _ranges(data, meta, loc)  # validates every extent, not only the metadata ones
    return top, meta


def _strip_exif(payload: bytes) -> bytes:
    """TIFF-structured EXIF from an Exif item: skip the 4-byte header offset and ``Exif\\0\\0``."""
    if payload[:4] not in (b"II*\0", b"MM\0*") and not payload.startswith(b"Exif\0\0"):
        skip = 4 + _Cursor(payload, 0, len(payload)).u(4)
        if skip > len(payload):
            raise ContainerError("AVIF Exif item's TIFF header offset points past its end")
        payload = payload[skip:]
    return payload[6:] if payload.startswith(b"Exif\0\0") else payload


def read(data: bytes) -> Metadata:
    """The XMP packet and EXIF block of the first XMP and Exif items."""
    _, meta = _parse(data)
    if meta is None:
        return Metadata()
    found: dict[bytes, bytes] = {}
    locs = {loc.item: loc for loc in reversed(meta.locs)}
    for item, kind, ctype, _ in meta.infos:
        if item in locs and (kind == b"Exif" or ctype == XMP_TYPE) and kind not in found:
            found[kind] = b"".join(data[a:b] for a, b in _ranges(data, meta, locs[item]))
    exif = found.get(b"Exif")
    return Metadata(found.get(b"mime"), None if exif is None else _strip_exif(exif))


def _iloc(version: int, locs: list[_Loc]) -> bytes:
    """A canonical iloc: the narrowest fields that hold the values (4-byte offsets and lengths
    unless they need 8), which is also the only layout exiv2 can follow."""

    def fits(values: list[int], floor: int) -> int:
        for size in (floor, 4, 8):
            if all(v < 1 << (8 * size) for v in values):
                return size
        raise ContainerError("AVIF iloc offset does not fit in 64 bits")

    off = fits([e[1] for loc in locs for e in loc.extents], 4)
    length = fits([e[2] for loc in locs for e in loc.extents], 4)
    base = fits([loc.base for loc in locs], 0)
    index = fits([e[0] for loc in locs for e in loc.extents], 0) if version else 0
    wide = 4 if version == 2 else 2
    out = [struct.pack(">IBB", version << 24, off << 4 | length, base << 4 | index)]
    out.append(len(locs).to_bytes(wide, "big"))
    for loc in locs:
        out.append(loc.item.to_bytes(wide, "big") + (struct.pack(">H", loc.method) * bool(version)))
        out.append(struct.pack(">H", loc.dref) + loc.base.to_bytes(base, "big"))
        out.append(struct.pack(">H", len(loc.extents)))
        for ext_index, ext_off, ext_len in loc.extents:
            out.append(ext_index.to_bytes(index, "big") + ext_off.to_bytes(off, "big"))
            out.append(ext_len.to_bytes(length, "big"))
    return _box(b"iloc", b"".join(out))


def _infe(item: int, kind: bytes, name: bytes, ctype: bytes) -> bytes:
    wide = item > 0xFFFF  # infe version 3 has 32-bit item ids
    head = struct.pack(">I", (3 if wide else 2) << 24) + item.to_bytes(4 if wide else 2, "big")
    return _box(b"infe", head + b"\0\0" + kind + name + b"\0" + (ctype + b"\0" if ctype else b""))


def _iref(version: int, refs: list[tuple[bytes, int, list[int]]]) -> bytes:
    size, boxes = (4 if version else 2), []
    for kind, source, to in refs:
        ids = b"".join(i.to_bytes(size, "big") for i in to)
        boxes.append(_box(kind, source.to_bytes(size, "big") + struct.pack(">H", len(to)) + ids))
    return _box(b"iref", struct.pack(">I", version << 24) + b"".join(boxes))


def _iprp(buf: bytearray, box: _Box, removed: set[int]) -> bytes:
    """The iprp box without ipma associations of removed items, whose ids get reused."""
    parts, changed = [], False
    for child in _boxes(buf, box.body, box.end):
        if child.kind != b"ipma":
            parts.append(_copy(buf, child))
            continue
        version, flags, cur = _full(buf, child)
        count, kept = cur.u(4), []
        for _ in range(count):
            start, item = cur.pos, cur.u(2 if version == 0 else 4)
            cur.u(cur.u(1) * (2 if flags & 1 else 1))  # skip the associations
            if item not in removed:
                kept.append(bytes(buf[start : cur.pos]))
        changed |= len(kept) != count
        head = bytes(buf[child.body : child.body + 4]) + struct.pack(">I", len(kept))
        parts.append(_box(b"ipma", head + b"".join(kept)))
    return _box(b"iprp", b"".join(parts)) if changed else _copy(buf, box)


def _moved(loc: _Loc, moves: list[tuple[int, int, int]], size: int) -> _Loc:
    """``loc`` with its file offsets following the boxes (``start, end, delta``) that moved."""

    def shift(at: int, length: int) -> int:
        for start, end, delta in moves:
            if start <= at and at + (length or size - at) <= end:
                return delta
        raise ContainerError(f"AVIF item {loc.item} data at byte {at} is outside every mdat box")

    method = loc.method & 15
    if method == 2 or loc.dref:  # item-relative or external data: nothing here moves
        return loc
    # The base offset is folded into each extent (extent_index means nothing for methods 0
    # and 1), so each extent moves on its own and the entry gets exiv2's fixed layout.
    extents = [
        (0, loc.base + off + (0 if method else shift(loc.base + off, n)), n)
        for _, off, n in loc.extents
    ]
    return _Loc(loc.item, loc.method, 0, 0, extents)


def write(data: bytes, xmp: bytes, exif: bytes | None, keep_other: bool) -> bytes:
    """``data`` with its Exif/XMP items replaced by one XMP and (optionally) one Exif item.

    AVIF has no IPTC-IIM or comment blocks; ``keep_other`` only keeps a C2PA manifest
    store (a top-level ``uuid`` box).
    """
    top, meta = _parse(data)
    if meta is None or meta.primary is None or any(b.kind == b"moov" for b in top):
        raise ContainerError(ANIMATED)  # moov sample offsets would break if mdat moved
    if b"iinf" not in meta.versions or b"iloc" not in meta.versions:
        raise ContainerError("AVIF meta box lacks its iinf or iloc box")
    primary = meta.primary
    removed = {item for item, kind, ctype, _ in meta.infos if kind == b"Exif" or ctype == XMP_TYPE}
    kept = [loc for loc in meta.locs if loc.item not in removed]
    kept_ranges = [r for loc in kept for r in _ranges(data, meta, loc)]
    gone_ranges = [r for loc in meta.locs if loc.item in removed for r in _ranges(data, meta, loc)]
    buf = bytearray(data)
    homes = [(b.body, b.end) for b in top if b is not meta.box]
    if meta.idat:
        homes.append((meta.idat.body, meta.idat.end))
    for a, b in gone_ranges:  # erase only item data, never box structure or image data
        if any(a < kb and ka < b for ka, kb in kept_ranges):
            raise ContainerError("AVIF metadata item overlaps image data; refusing to erase it")
        if not any(start <= a and b <= end for start, end in homes):
            raise ContainerError("AVIF metadata item is not inside an mdat or idat box")
        buf[a:b] = bytes(b - a)  # zero rather than cut: cutting would move later offsets

    def holds(box: _Box, ranges: Ranges) -> bool:
        return any(box.body <= a < box.end for a, _ in ranges)

    # An mdat holding only metadata (like the one a previous write appended) goes whole.
    top = [
        b for b in top if b.kind != b"mdat" or holds(b, kept_ranges) or not holds(b, gone_ranges)
    ]
    if not keep_other:  # a C2PA manifest store goes as other metadata does (png.C2PA_CHUNK)
        top = [b for b in top if b.kind != b"uuid" or bytes(buf[b.body : b.body + 16]) != C2PA_UUID]
    ids = [item for item, *_ in meta.infos if item not in removed] + [loc.item for loc in kept]
    blobs = [(max([*ids, primary]) + 1, b"mime", b"XMP", XMP_TYPE, xmp)]
    if exif is not None:  # exif_tiff_header_offset 0: the TIFF header follows at once
        blobs.append((blobs[0][0] + 1, b"Exif", b"Exif", b"", b"\0\0\0\0" + exif))
    wide = blobs[-1][0] > 0xFFFF or primary > 0xFFFF  # 32-bit ids in iloc and iref
    payload = b"".join(blob[-1] for blob in blobs)

    infe = [_copy(buf, entry) for item, _, _, entry in meta.infos if item not in removed]
    infe += [_infe(item, kind, name, ctype) for item, kind, name, ctype, _ in blobs]
    iinf_v = max(meta.versions[b"iinf"], int(len(infe) > 0xFFFF))
    head = struct.pack(">I", iinf_v << 24) + len(infe).to_bytes(4 if iinf_v else 2, "big")
    iinf = _box(b"iinf", head + b"".join(infe))
    refs = [(k, src, [t for t in to if t not in removed]) for k, src, to in meta.refs]
    refs = [(k, src, to) for k, src, to in refs if src not in removed and to]
    refs += [(b"cdsc", item, [primary]) for item, *_ in blobs]
    iref = _iref(max(meta.versions.get(b"iref", 0), int(wide)), refs)
    iloc_v = 2 if wide else min(meta.versions[b"iloc"], 1)  # exiv2 misreads v2 item ids
    new = {b"iinf": iinf, b"iref": iref}
    new.update((c.kind, _iprp(buf, c, removed)) for c in meta.children if c.kind == b"iprp")
    flags = bytes(buf[meta.box.body : meta.box.body + 4])
    at = top.index(meta.box)

    def build(meta_len: int) -> list[bytes]:
        """The output file's boxes, assuming the new meta box is ``meta_len`` bytes long."""
        parts = [b"" if box is meta.box else _copy(buf, box) for box in top]
        parts.append(_box(b"mdat", payload))
        pos, moves = 0, []
        for box, part in zip(top, parts, strict=False):
            if box is not meta.box:  # where its payload was, and how far it moves
                moves.append((box.body, box.end, pos + len(part) - box.end))
            pos += meta_len if box is meta.box else len(part)
        pos += len(parts[-1]) - len(payload)
        locs = [_moved(loc, moves, len(data)) for loc in kept]
        for item, *_, blob in blobs:
            locs.append(_Loc(item, 0, 0, 0, [(0, pos, len(blob))]))
            pos += len(blob)
        new[b"iloc"] = _iloc(iloc_v, locs)
        children = []
        for child in meta.children:
            children.append(new.get(child.kind) or _copy(buf, child))
            if child.kind == b"iinf" and b"iref" not in meta.versions:
                children.append(iref)  # a new iref goes right after iinf
        parts[at] = _box(b"meta", flags + b"".join(children))
        return parts

    meta_len = meta.box.end - meta.box.start
    for _ in range(4):  # the meta length only changes again if an offset crosses 4 GiB
        parts = build(meta_len)
        if len(parts[at]) == meta_len:
            return b"".join(parts)
        meta_len = len(parts[at])
    raise ContainerError("AVIF meta box layout does not settle")
