"""What a build of a site's images did: typed records, and their JSON (``--report``).

Each record also answers ``record["field"]``, the way its JSON reads, so code written
against the ``--report`` file's shape reads the object the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field, fields
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from .spool import Spooled


class JsonShaped:
    """``record["name"]`` for ``record.name``, as the record's JSON spells it."""

    __slots__ = ()  # the per-image records are slotted: a 100,000-image report stays small

    def __getitem__(self, key: str) -> Any:
        if key in {f.name for f in fields(self)}:  # type: ignore[arg-type]
            return getattr(self, key)
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class VariantFile(JsonShaped):
    """One variant written beside its image."""

    path: str
    width: int
    height: int
    format: str
    bytes: int


@dataclass(frozen=True, slots=True)
class OriginalFile(JsonShaped):
    """The image at its own path, after tagging (``reencoded``: its pixels too)."""

    path: str
    width: int
    height: int
    format: str
    bytes: int
    reencoded: bool


@dataclass(frozen=True, slots=True)
class ImageResult(JsonShaped):
    """One image's outputs: its original and its variants, largest first."""

    original: OriginalFile
    variants: list[VariantFile]


# One image's record in an ImageTable: its fields as text, joined by NUL (which no path
# holds). The original: its path ("" when it is the key), width, height, format, bytes and
# "1" when re-encoded; then per variant its path ("~" and what follows the key, or "=" and
# the whole path), width, height, format and bytes.
_SEP = "\0"


def pack(rel: str, entry: ImageResult) -> str:
    """``entry`` of the image at ``rel`` as one compact string (see :class:`ImageTable`)."""
    o = entry.original
    variants = (
        (
            "~" + v.path[len(rel) :] if v.path.startswith(rel) else "=" + v.path,
            v.width,
            v.height,
            v.format,
            v.bytes,
        )
        for v in entry.variants
    )
    where = "" if o.path == rel else "=" + o.path
    return _joined(where, (o.width, o.height, o.format, o.bytes, o.reencoded), variants)


def unpack(rel: str, row: str) -> ImageResult:
    """The record :func:`pack` made ``row`` of."""
    f = row.split(_SEP)
    original = OriginalFile(
        f[0][1:] if f[0] else rel, int(f[1]), int(f[2]), f[3], int(f[4]), f[5] == "1"
    )
    variants = [
        VariantFile(
            rel + f[i][1:] if f[i][0] == "~" else f[i][1:],
            int(f[i + 1]),
            int(f[i + 2]),
            f[i + 3],
            int(f[i + 4]),
        )
        for i in range(6, len(f), 5)
    ]
    return ImageResult(original, variants)


class ImageTable(MutableMapping[str, ImageResult]):
    """``{site path: ImageResult}`` held as one short string per image (about 100 bytes
    instead of the ~500 its records take), in a :class:`~ssg_dmi.build.spool.Spooled`
    table: past its threshold the strings are in SQLite, so the driver of a very large
    site does not hold them. Iterates in path order. A record read from it is made anew
    from its string, equal to the one stored."""

    __slots__ = ("_rows",)

    def __init__(self, items: Iterable[tuple[str, ImageResult]] = ()) -> None:
        self._rows = Spooled()
        for rel, entry in items:
            self[rel] = entry

    def __getitem__(self, rel: str) -> ImageResult:
        return unpack(rel, self._rows[rel])

    def __setitem__(self, rel: str, entry: ImageResult) -> None:
        self._rows[rel] = pack(rel, entry)

    def __delitem__(self, rel: str) -> None:
        del self._rows[rel]

    def __contains__(self, rel: object) -> bool:
        return rel in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return bool(self._rows)

    def __repr__(self) -> str:
        return f"ImageTable({dict(self.items())!r})"

    def row(self, rel: str) -> str | None:
        """The packed record of ``rel`` (equal rows: equal records), None when absent."""
        found: str | None = self._rows.get(rel)
        return found

    def set_row(self, rel: str, row: str) -> None:
        """Store a record already packed (by :func:`pack` or :func:`row_of`)."""
        self._rows[rel] = row

    def set_rows(self, rows: Iterable[tuple[str, str]]) -> None:
        """:meth:`set_row` of each (site path, packed record) in turn."""
        self._rows.set_many(rows)

    def rows(self) -> Iterator[tuple[str, str]]:
        """(site path, packed record) pairs, in path order, read as they are used."""
        return self._rows.sorted_items()


def row_of(
    width: int,
    height: int,
    fmt: str,
    size: int,
    reencoded: bool,
    variants: Iterable[tuple[str, int, int, str, int]],
) -> str:
    """A packed record whose original is at its key and whose variants are at the key
    followed by each given suffix (so one record serves every path holding one source)."""
    return _joined(
        "",
        (width, height, fmt, size, reencoded),
        (("~" + suffix, w, h, f, b) for suffix, w, h, f, b in variants),
    )


def _joined(
    where: str,
    original: tuple[int, int, str, int, bool],
    variants: Iterable[tuple[str, int, int, str, int]],
) -> str:
    """The packed text (see :func:`pack`): the original's place ("" at the key, "=" and
    its path), its fields, then each variant's place ("~" and what follows the key, or
    "=" and its path) and fields."""
    width, height, fmt, size, reencoded = original
    fields_ = [where, str(width), str(height), fmt, str(size), "1" if reencoded else ""]
    for place, w, h, f, b in variants:
        fields_ += [place, str(w), str(h), f, str(b)]
    return _SEP.join(fields_)


@dataclass
class Summary(JsonShaped):
    """The counts of a build (``reencoded``: in this run, not taken from the cache)."""

    images: int = 0
    sources: int = 0
    variants: int = 0
    reencoded: int = 0
    cache_hits: int = 0
    files_written: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    variant_bytes: int = 0
    errors: int = 0


@dataclass
class Report:
    """What a build did: per image its outputs, and a summary."""

    images: MutableMapping[str, ImageResult] = field(default_factory=ImageTable)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    summary: Summary = field(default_factory=Summary)
    # Build-wide problems that did not stop it (a cache that cannot be written).
    warnings: list[str] = field(default_factory=list)
    # Files passed over on purpose (links leading outside the site, FIFOs), one line each.
    skipped: list[str] = field(default_factory=list)
    # Our variants from earlier builds that this build's outputs replace: removed by
    # `remove_stale` once pages point at the new ones.
    stale: list[str] = field(default_factory=list)

    def as_json(self, ascii_only: bool = False) -> str:
        """The report as JSON (``--report``): the text ``json.dumps(…, indent=2,
        sort_keys=True)`` gives for it, written per image from a template (the generic
        encoder with an indent runs in Python and copied every record first: over a
        second for 16,000 images)."""
        return "".join(self.json_chunks(ascii_only))

    def json_chunks(self, ascii_only: bool = False) -> Iterator[str]:
        """:meth:`as_json` in pieces of one image each, for a writer that streams them
        (the whole text of a 100,000-image report is ~50 MB)."""
        string = encode_basestring_ascii if ascii_only else encode_basestring
        yield '{\n  "errors": ' + _flat(self.errors, string) + ',\n  "images": '
        if self.images:
            sep = "{\n"
            images = self.images
            # From an ImageTable's strings, a record at a time: never a copy of the table.
            entries = (
                ((rel, unpack(rel, row)) for rel, row in images.rows())
                if isinstance(images, ImageTable)
                else iter(sorted(images.items()))
            )
            for rel, entry in entries:
                yield sep + _image(string(rel), entry, string)
                sep = ",\n"
            yield "\n  }"
        else:
            yield "{}"
        yield ',\n  "notes": ' + _flat(self.notes, string) + ',\n  "summary": '
        yield _dumps(asdict(self.summary), ascii_only, 2) + "\n}"

    @property
    def untagged(self) -> int:
        """How many images are left without our tags."""
        return len(self.errors)


def _dumps(value: Any, ascii_only: bool, depth: int) -> str:
    """``value`` as ``json.dumps(indent=2, sort_keys=True)`` writes it ``depth`` levels in."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=ascii_only)
    return text.replace("\n", "\n" + " " * (2 * (depth - 1))) if depth > 1 else text


def _num(value: int) -> str:
    return int.__repr__(value) if type(value) is int else json.dumps(value)


def _flat(table: Mapping[str, Any], string: Callable[[str], str]) -> str:
    """A ``{path: text}`` or ``{path: [text, …]}`` table one level in, as json.dumps does."""
    if not table:
        return "{}"
    rows = []
    for key, value in sorted(table.items()):
        if isinstance(value, str):
            rows.append(f"    {string(key)}: {string(value)}")
        elif not value:
            rows.append(f"    {string(key)}: []")
        else:
            inner = ",\n".join(f"      {string(str(v))}" for v in value)
            rows.append(f"    {string(key)}: [\n{inner}\n    ]")
    return "{\n" + ",\n".join(rows) + "\n  }"


def _image(key: str, entry: ImageResult, string: Callable[[str], str]) -> str:
    o = entry.original
    text = (
        f"    {key}: {{\n"
        '      "original": {\n'
        f'        "bytes": {_num(o.bytes)},\n'
        f'        "format": {string(o.format)},\n'
        f'        "height": {_num(o.height)},\n'
        f'        "path": {string(o.path)},\n'
        f'        "reencoded": {"true" if o.reencoded else "false"},\n'
        f'        "width": {_num(o.width)}\n'
        "      },\n"
        '      "variants": '
    )
    if not entry.variants:
        return text + "[]\n    }"
    variants = ",\n".join(
        "        {\n"
        f'          "bytes": {_num(v.bytes)},\n'
        f'          "format": {string(v.format)},\n'
        f'          "height": {_num(v.height)},\n'
        f'          "path": {string(v.path)},\n'
        f'          "width": {_num(v.width)}\n'
        "        }"
        for v in entry.variants
    )
    return f"{text}[\n{variants}\n      ]\n    }}"
