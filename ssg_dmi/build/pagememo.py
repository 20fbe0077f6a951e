"""Which pages a rebuild need not rewrite: each already is what rewriting it would give.

The page rewrite (``build.site.rewrite_pages``) is a pure function of the page's text, what
the build knows of each image the page shows, a few settings and this package's code. A
page whose rewrite was seen to change nothing and to note nothing, or that a rewrite just
wrote noting nothing (the rewrite is idempotent: it gives that text again), is remembered
in the cache folder (``v1/pages/<site>.json``, one record per site folder) by a digest of its text
and a digest of everything else the rewrite read: the settings it was given and, for each
image path it looked up, what the build knew of that image (or that it knew nothing). On
the next build a page whose text and inputs give the same two digests is left as it is
without reading it through the tokenizer; any difference (an edited page, an image with
other variants, other settings, other code) rewrites it as before.

The record is read as untrusted: anything malformed is ignored (and the page rewritten).
A forged record can at worst leave a page as it is; it never makes the build write.

Each page's entries are held as their JSON text and parsed when that page is looked at:
parsed all at once, the record of a 5,000-page site took ~5 KB of objects per page. The
record is a JSON line per page, read and written a line at a time, and its entries are
held in tables that move into SQLite past their threshold (:mod:`ssg_dmi.build.spool`):
the record of a 100,000-page site is never all in memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..fsutil import atomic_write_chunks
from ..pages import scan as scanning
from ..pages.encoding import PageText
from ..pages.scan import PageScan
from ..version import __version__
from . import spool
from .spool import Spooled

log = logging.getLogger("ssg_dmi.build.pagememo")

_FORMAT = 3  # 1: entries as JSON values, not text; 2: one JSON object, not a line per page
_V = TypeVar("_V")


def text_digest(text: str, encoding: str, bom: bytes) -> str:
    """The digest of a decoded page: its text with the encoding it is written back in."""
    h = hashlib.sha256(f"{encoding}\0{bom.hex()}\0".encode())
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def code_signature() -> str:
    """This package's version and the size and time of each page module's file (and of
    the build code around them): a changed rewriter invalidates every record."""
    here = Path(__file__).parent
    files = [here / "site.py", here / "pagememo.py"]
    try:
        files += sorted((here.parent / "pages").glob("*.py"))
        parts = [__version__]
        for file in files:
            st = file.stat()
            parts.append(f"{file.name}:{st.st_size}:{st.st_mtime_ns}")
    except OSError:
        return ""  # unknown code: never trust a record
    return "\n".join(parts)


class Lookups(Mapping[str, _V]):
    """``images`` as the rewriter sees it, noting each path it asks for and, as text,
    what ``answer`` says the build knows of it (its record is a function of that text)."""

    def __init__(self, images: Mapping[str, _V], answer: Callable[[str], str]) -> None:
        self._images, self._answer = images, answer
        self.asked: dict[str, str] = {}

    def __getitem__(self, key: str) -> _V:
        self.asked[key] = self._answer(key)
        return self._images[key]

    def __iter__(self) -> Iterator[str]:
        # The rewriter only asks for paths; a caller listing every image depends on all
        # of them, which no record can say: mark the page as not to be remembered.
        self.asked["\0all"] = ""
        return iter(self._images)

    def __len__(self) -> int:
        self.asked["\0all"] = ""
        return len(self._images)


def _inputs_digest(context: str, answers: list[tuple[str, str]]) -> str:
    return hashlib.sha256(repr((context, answers)).encode("utf-8", "surrogatepass")).hexdigest()


class PageMemo:
    """The record of pages a rewrite leaves as they are, for one site folder."""

    def __init__(self, path: Path | None, code: str) -> None:
        self.path, self.code = path, code
        # Page -> its entry as JSON text (see the module's notes), in tables that move into
        # SQLite past their threshold (an entry is ~1.5 KB: a twentieth of the images').
        self._old, self._new = _table(), _table()
        self._old_scans, self._scans = _table(), _table()
        if path is None or not code:
            return
        try:
            with path.open("rb") as lines:
                if _header(lines.readline()) != [_FORMAT, code]:
                    return
                for line in lines:  # a line at a time: the record is never all in memory
                    entry = _parsed(line)
                    if isinstance(entry, list) and len(entry) == 3:
                        kind, rel, text = entry
                        if kind in ("p", "s") and isinstance(rel, str) and isinstance(text, str):
                            (self._old if kind == "p" else self._old_scans)[rel] = text
        except (OSError, UnicodeDecodeError):
            return

    @classmethod
    def for_site(cls, cache_dir: Path, site: Path) -> PageMemo:
        """The memo of ``site`` kept in the local cache folder ``cache_dir``."""
        where = str(site.resolve())
        name = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return cls(cache_dir / "v1" / "pages" / f"{name}.json", code_signature())

    def scan(self, rel: str, page: PageText, base_url: str, fresh: bool = False) -> PageScan:
        """:func:`~ssg_dmi.pages.scan.scan` of the page, from the record when its text and
        ``base_url`` are the ones it was recorded for (``fresh``: scan it anyway)."""
        digest = text_digest(page.text, page.encoding, page.bom)
        text: Any = self._old_scans.get(rel)
        entry: Any = None if fresh else _parsed(text)
        found = _scan_of(entry[2:]) if _recorded(entry, digest, base_url) else None
        if found is None:
            found = scanning.scan(page.text, rel, base_url)
            entry = [digest, base_url, found.dmi, found.images, found.watermark, found.marks]
            text = _text(entry)
        self._scans[rel] = text
        return found

    def written(self, rel: str, read: str, wrote: str, base_url: str, declared: bool) -> bool:
        """Record the scan of the text the build wrote for ``rel`` (digest ``wrote``) as
        the scan of the text it read (digest ``read``), held since the pages were scanned:
        a rewrite changes no ``<img>`` ``src``, ``data-dmi`` or ``data-watermark``, no
        ``<base>`` and no ssg-dmi meta (the rewrite's property test holds it to that).
        False, to scan the written text instead, when no scan of that text is held or when
        the adapter ``declared`` a value for a page that had none (it was written in)."""
        entry = _parsed(self._scans.get(rel))
        if not _recorded(entry, read, base_url) or (declared and entry[2] is None):
            return False
        entry[0] = wrote
        self._scans[rel] = _text(entry)
        return True

    def unchanged(self, rel: str, digest: str, context: str, answer: Callable[[str], str]) -> bool:
        """Whether the page ``rel`` (text ``digest``) is remembered as what a rewrite with
        these inputs gives, noting nothing; if so it is kept in the next record."""
        text = self._old.get(rel)
        entry = _parsed(text)
        if not (
            isinstance(text, str)
            and isinstance(entry, list)
            and len(entry) == 3
            and entry[0] == digest
            and isinstance(entry[1], list)
            and all(isinstance(p, str) for p in entry[1])
            and isinstance(entry[2], str)
        ):
            return False
        answers = [(p, answer(p)) for p in entry[1]]
        if _inputs_digest(context, answers) != entry[2]:
            return False
        self._new[rel] = text
        return True

    def remember(self, rel: str, digest: str, context: str, asked: dict[str, str]) -> None:
        """Note that a rewrite with these inputs gives the page ``rel`` (text ``digest``) as
        it is, noting nothing; ``asked``: :attr:`Lookups.asked`."""
        if "\0all" in asked:
            return
        paths = sorted(asked)
        answers = [(p, asked[p]) for p in paths]
        self._new[rel] = _text([digest, paths, _inputs_digest(context, answers)])

    def save(self) -> None:
        """Write the record (only this build's pages). A cache folder that cannot take it
        costs the next build the rewrite of every page, nothing else: logged, not warned."""
        if self.path is None or not self.code or not (self._new or self._old or self._scans):
            return

        def lines() -> Iterator[bytes]:  # a line per page, written as made
            yield json.dumps({"code": self.code, "format": _FORMAT}).encode() + b"\n"
            for kind, table in (("p", self._new), ("s", self._scans)):
                for rel, text in table.sorted_items():
                    yield json.dumps([kind, rel, text]).encode() + b"\n"

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_chunks(self.path, lines())
        except OSError as exc:
            log.debug("%s: cannot record the unchanged pages (%s)", self.path, exc)


def _table() -> Spooled:
    return Spooled(spill_at=max(1, spool.SPILL_AT // 20))


def _header(line: bytes) -> list[Any] | None:
    """The record's first line as [format, code]; None when it is not one."""
    head = _parsed(line)
    return [head.get("format"), head.get("code")] if isinstance(head, dict) else None


def _text(entry: list[Any]) -> str:
    return json.dumps(entry, separators=(",", ":"))


def _parsed(text: object) -> Any:
    """A recorded entry's value; None when it is not JSON text."""
    if not isinstance(text, (str, bytes)):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _recorded(entry: object, digest: str, base_url: str) -> bool:
    return isinstance(entry, list) and len(entry) == 6 and entry[:2] == [digest, base_url]


def _opt(value: object) -> bool:
    return value is None or isinstance(value, str)


def _scan_of(fields: list[Any]) -> PageScan | None:
    """A recorded scan, checked field by field; None when anything is malformed."""
    dmi, images, watermark, marks = fields
    if not (_opt(dmi) and _opt(watermark) and isinstance(images, list)):
        return None
    if not isinstance(marks, list):
        return None
    if not all(
        isinstance(i, list) and len(i) == 2 and isinstance(i[0], str) and _opt(i[1]) for i in images
    ):
        return None
    if not all(
        isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and isinstance(m[1], str)
        for m in marks
    ):
        return None
    return PageScan(
        dmi, tuple((p, v) for p, v in images), watermark, tuple((p, v) for p, v in marks)
    )
