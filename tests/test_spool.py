"""Spooled: a text -> text table in a dict while small, in a private temporary SQLite
database past its threshold. Both sides answer alike (and as a dict would), iterate in key
order, hold any Python text exactly, write nothing visible, and keep memory bounded."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ssg_dmi.build import spool
from ssg_dmi.build.spool import Spooled

NEVER = 10**9  # a threshold no test reaches: the table stays a dict
# A table that never spills, one that spills at its first entry, one that spills midway.
SIDES = pytest.mark.parametrize("spill_at", [NEVER, 0, 3], ids=["dict", "spilled", "midway"])
LINUX = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")

NOT_UTF8 = os.fsdecode(b"caf\xe9.jpg")  # a file name that is not UTF-8, as Python holds it
# Keys that sort differently by UTF-16 units, by UTF-8 bytes with lone surrogates
# mishandled, or by locale: non-ASCII, above U+FFFF, lone surrogates, NUL, empty.
ODD_KEYS = [
    "",
    "\0",
    "a",
    "a\0b",
    "B",
    "Z/z.png",
    "caf.jpg",
    "café.jpg",
    NOT_UTF8,
    "日本/写真.png",
    "\ud7ff",
    "\ud800",
    "\udcff",
    "\ud83d\ude00",  # a surrogate pair as two lone surrogates: not the emoji below
    "\ue000",
    "\uffff",
    "\U0001f600.gif",
    "\U0010ffff",
]
ODD_VALUES = ["", "\0", "x\0y\0", "\udce9", "\ud83d", "\U0001f600", "é" * 50, NOT_UTF8]


def filled(spill_at: int, items: list[tuple[str, str]]) -> Spooled:
    table = Spooled(spill_at)
    for key, value in items:
        table[key] = value
    return table


def test_the_odd_keys_are_what_they_claim() -> None:
    assert NOT_UTF8 == "caf\udce9.jpg"  # surrogateescape: the byte 0xE9 as U+DCE9
    assert len(set(ODD_KEYS)) == len(ODD_KEYS)
    assert sorted(ODD_KEYS) != sorted(
        ODD_KEYS, key=lambda k: k.encode("utf-16-be", "surrogatepass")
    )


@pytest.mark.parametrize("spill_at", [0, 1, 5])
def test_spilled_flips_exactly_when_the_count_passes_spill_at(spill_at: int) -> None:
    table = Spooled(spill_at)
    assert not table.spilled
    for i in range(spill_at):
        table[f"k{i}"] = "v"
        assert not table.spilled
    if spill_at:  # at the threshold: replacing or appending to a held key adds nothing
        table["k0"] = "again"
        table.append("k0", "more")
        assert table.setdefault("k0", "x") == "again\0more"
        assert not table.spilled and len(table) == spill_at
    table.append(f"k{spill_at}", "v")  # one past it
    assert table.spilled and len(table) == spill_at + 1
    for i in range(spill_at + 1):  # back under it: still in SQLite
        del table[f"k{i}"]
    assert table.spilled and len(table) == 0 and not table
    table.close()
    assert not table.spilled


def test_the_default_threshold_is_the_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "SPILL_AT", 2)
    table = Spooled()
    table["a"], table["b"] = "1", "2"
    assert not table.spilled
    table["c"] = "3"
    assert table.spilled and dict(table) == {"a": "1", "b": "2", "c": "3"}


@SIDES
def test_every_operation(spill_at: int) -> None:
    table = Spooled(spill_at)
    assert len(table) == 0 and not table and list(table) == [] and repr(table) == "Spooled({})"
    assert table.get("b") is None and table.get("b", "d") == "d"
    with pytest.raises(KeyError):
        table["b"]
    table["b"] = "2"
    table["a"] = "1"
    table["c"] = "3"
    table["b"] = "two"  # replaced
    assert not table.spilled or spill_at < 3
    table.append("d", "4")  # new key
    table.append("a", "x")  # held key
    assert table.spilled == (spill_at < 4)
    assert list(table) == ["a", "b", "c", "d"]
    assert list(table.sorted_items()) == [("a", "1\0x"), ("b", "two"), ("c", "3"), ("d", "4")]
    assert list(table.items()) == list(table.sorted_items())
    assert table["a"] == "1\0x" and table.get("b") == "two" and table.get("b", "d") == "two"
    other: object = 1
    assert "c" in table and "z" not in table and other not in table and None not in table
    assert len(table) == 4 and bool(table)
    assert table.pop("c") == "3" and "c" not in table and len(table) == 3
    assert table.pop("c", "gone") == "gone" and table.pop("c", None) is None
    with pytest.raises(KeyError):
        table.pop("c")
    del table["d"]
    with pytest.raises(KeyError):
        del table["d"]
    assert repr(table) == "Spooled({'a': '1\\x00x', 'b': 'two'})"
    assert table == {"a": "1\0x", "b": "two"} and dict(table) == {"a": "1\0x", "b": "two"}
    assert table.spilled == (spill_at < 4)  # once spilled, stays so until emptied
    assert list(table.popitems()) == [("a", "1\0x"), ("b", "two")]
    assert len(table) == 0 and not table and list(table) == [] and not table.spilled
    table["e"] = "5"  # usable again
    assert list(table.items()) == [("e", "5")] and table.spilled == (spill_at < 1)
    table.close()
    assert len(table) == 0 and not table and list(table) == [] and not table.spilled
    assert table.get("e") is None and "e" not in table and repr(table) == "Spooled({})"
    table.close()  # twice is fine
    table["f"] = "6"
    assert dict(table) == {"f": "6"}


@pytest.mark.parametrize("spill_at", [NEVER, 0], ids=["dict", "spilled"])
def test_key_order_and_exact_text_with_odd_characters(spill_at: int) -> None:
    items = [(key, ODD_VALUES[i % len(ODD_VALUES)] + key) for i, key in enumerate(ODD_KEYS)]
    random.Random(7).shuffle(items)
    table = filled(spill_at, items)
    assert table.spilled == (spill_at == 0)
    assert list(table) == sorted(ODD_KEYS)  # code point order, as Python sorts text
    assert list(table.sorted_items()) == sorted(items)
    for key, value in items:
        got = table[key]
        assert got == value and type(got) is str and key in table
    assert table["\ud83d\ude00"] != table["\U0001f600.gif"]
    assert repr(table) == f"Spooled({dict(sorted(items))!r})"
    assert list(table.popitems()) == sorted(items)


def test_both_sides_iterate_alike() -> None:
    items = [(key, key * 2) for key in ODD_KEYS]
    random.Random(3).shuffle(items)
    small, large = filled(NEVER, items), filled(0, items)
    assert not small.spilled and large.spilled
    assert list(small) == list(large)
    assert list(small.sorted_items()) == list(large.sorted_items())
    assert repr(small) == repr(large)
    assert list(small.popitems()) == list(large.popitems())


@SIDES
def test_append_joins_with_nul(spill_at: int) -> None:
    table = Spooled(spill_at)
    table.append("p", "one")  # new key: the value alone
    assert table["p"] == "one"
    table["q"] = "x\0y"
    table.append("q", "z")  # held key (set, not appended): after it
    table.append("p", "")  # an empty value still adds its NUL
    table.append("p", "two\0")
    table.append("r", "")  # a new key with an empty value holds ""
    table.append(NOT_UTF8, "\ud800")
    table.append(NOT_UTF8, "\U0001f600")
    assert table.spilled == (spill_at < 4)
    assert dict(table) == {
        "p": "one\0\0two\0",
        "q": "x\0y\0z",
        "r": "",
        NOT_UTF8: "\ud800\0\U0001f600",
    }
    assert "r" in table and table.get("r") == ""
    del table["r"]  # an empty value is held, so it can be removed
    assert "r" not in table and len(table) == 3


def test_append_to_keys_set_before_the_spill() -> None:
    table = filled(2, [("a", "1"), ("b", "2")])
    assert not table.spilled
    table.append("c", "3")
    assert table.spilled
    table.append("a", "one")
    table.append("c", "three")
    assert list(table.sorted_items()) == [("a", "1\0one"), ("b", "2"), ("c", "3\0three")]


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "select-delete"])
def test_pop_on_a_spilled_table(returning: bool) -> None:
    table = filled(0, [("a", "1"), ("b", ""), (NOT_UTF8, "x\0\udce9"), ("d", "4")])
    assert table.spilled
    if returning:
        if sqlite3.sqlite_version_info < (3, 35):
            pytest.skip("this SQLite has no DELETE ... RETURNING")
        assert table._returning
    else:
        table._returning = False
    statements: list[str] = []
    table._db._db.set_trace_callback(statements.append)  # the connection inside the guard
    assert table.pop("a") == "1" and "a" not in table and table.get("a") is None
    assert table.pop("b") == "" and "b" not in table  # an empty value is not "missing"
    assert table.pop(NOT_UTF8, "default") == "x\0\udce9" and NOT_UTF8 not in table
    assert table.pop("a", "default") == "default" and table.pop("a", None) is None
    with pytest.raises(KeyError):
        table.pop("a")
    del table["d"]
    with pytest.raises(KeyError):
        del table["d"]
    assert len(table) == 0 and not table and list(table) == []
    assert any("RETURNING" in sql for sql in statements) == returning
    table["e"] = "5"  # the table still works after the deletes
    assert dict(table) == {"e": "5"}


@SIDES
def test_popitems_yields_key_order_and_empties_the_table(spill_at: int) -> None:
    items = [(f"{i:03d}/é", f"v{i}") for i in range(10)]
    random.Random(1).shuffle(items)
    table = filled(spill_at, items)
    assert table.spilled == (spill_at < 10)
    assert list(table.popitems()) == sorted(items)
    assert len(table) == 0 and not table and list(table) == [] and not table.spilled
    assert table.get("000/é") is None and list(table.sorted_items()) == []
    assert list(table.popitems()) == []  # an empty table yields nothing
    for key, value in items:  # and fills (and spills) again
        table[key] = value
    assert table.spilled == (spill_at < 10) and dict(table) == dict(items)


@pytest.mark.parametrize("spill_at", [NEVER, 0], ids=["dict", "spilled"])
def test_close_drops_everything(spill_at: int) -> None:
    table = filled(spill_at, [("a", "1"), ("b", "2")])
    db = table._db._db if spill_at == 0 else None  # the connection inside the guard
    table.close()
    assert len(table) == 0 and not table and list(table) == [] and not table.spilled
    assert "a" not in table and table.get("a") is None and repr(table) == "Spooled({})"
    if spill_at == 0:  # the connection (and with it the file) is gone
        with pytest.raises(sqlite3.ProgrammingError):
            db.execute("SELECT 1")  # type: ignore[union-attr]


_ALPHABET = ["a", "b", "é", "\U0001f600", "\udce9", "\0"]
_KINDS = (
    ["set"] * 25
    + ["append"] * 15
    + ["pop", "pop_default"] * 6
    + ["del"] * 8
    + ["get", "item", "in"] * 6
    + ["get_default"] * 4
    + ["iter", "sorted", "repr", "setdefault", "len", "bool"] * 2
    + ["popitems", "close"]
)


def _text(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, longest)))


def _apply(t: Any, kind: str, key: str, value: str) -> Any:
    """One operation on a Spooled, or the same on the dict model."""
    spooled = isinstance(t, Spooled)
    if kind == "set":
        t[key] = value
    elif kind == "append":
        if spooled:
            t.append(key, value)
        else:
            t[key] = value if key not in t else f"{t[key]}\0{value}"
    elif kind == "pop":
        return t.pop(key)
    elif kind == "pop_default":
        return t.pop(key, "<none>")
    elif kind == "del":
        del t[key]
    elif kind == "get":
        return t.get(key)
    elif kind == "get_default":
        return t.get(key, "<none>")
    elif kind == "item":
        return t[key]
    elif kind == "in":
        return key in t
    elif kind == "iter":
        return list(t) if spooled else sorted(t)
    elif kind == "sorted":
        return list(t.sorted_items()) if spooled else sorted(t.items())
    elif kind == "repr":
        return repr(t) if spooled else f"Spooled({dict(sorted(t.items()))!r})"
    elif kind == "setdefault":
        return t.setdefault(key, value)
    elif kind == "len":
        return len(t)
    elif kind == "bool":
        return bool(t)
    elif kind == "popitems":
        if spooled:
            return list(t.popitems())
        emptied = sorted(t.items())
        t.clear()
        return emptied
    elif kind == "close":
        if spooled:
            t.close()
        else:
            t.clear()
    else:
        raise AssertionError(kind)
    return None


def _outcome(t: Any, kind: str, key: str, value: str) -> tuple[str, Any]:
    try:
        return "ok", _apply(t, kind, key, value)
    except KeyError as exc:
        return "KeyError", exc.args


def test_random_operations_match_a_dict() -> None:
    rng = random.Random(20260)
    thresholds = [NEVER, 0, 12]
    tables = [Spooled(n) for n in thresholds]
    model: dict[str, str] = {}
    should_spill = [False] * len(tables)
    steps_spilled = [0] * len(tables)
    for step in range(3000):
        kind, key, value = rng.choice(_KINDS), _text(rng, 2), _text(rng, 3)
        expected = _outcome(model, kind, key, value)
        for i, table in enumerate(tables):
            got = _outcome(table, kind, key, value)
            assert got == expected, (step, kind, key, value, thresholds[i])
            if kind in ("popitems", "close"):
                should_spill[i] = False
            should_spill[i] = should_spill[i] or len(model) > thresholds[i]
            assert table.spilled == should_spill[i], (step, kind, thresholds[i])
            steps_spilled[i] += table.spilled
            assert len(table) == len(model) and bool(table) == bool(model)
            assert list(table.sorted_items()) == sorted(model.items()), (step, kind)
            probe = _text(rng, 2)
            assert (probe in table) == (probe in model)
            assert table.get(probe) == model.get(probe)
    # Each side was exercised: the dict never spilled, the others spent time on both sides.
    assert steps_spilled[0] == 0
    assert 1000 < steps_spilled[1] < 3000
    assert 300 < steps_spilled[2] < 2700


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs ``code`` in a new Python; its last line of output is JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_small_table_never_imports_sqlite3() -> None:
    result = _python(
        """
import json, sys
from ssg_dmi.build.spool import Spooled
t = Spooled(spill_at=100)
for i in range(100):
    t[f"k{i:03d}"] = "v"
t.append("k000", "w"); t["k001"] = "again"; t.setdefault("k002", "x")
t.pop("k003"); t.pop("nope", None); del t["k004"]; t["k004"] = "back"; t["k003"] = "back"
seen = [len(t), bool(t), "k005" in t, t.get("k000"), list(t)[:2], repr(t)[:9], t.spilled]
list(t.sorted_items()); list(t.popitems()); t.close()
small = "sqlite3" in sys.modules
t = Spooled(spill_at=100)
for i in range(101):
    t[f"k{i:03d}"] = "v"
print(json.dumps({"seen": seen, "small": small, "large": "sqlite3" in sys.modules,
                  "spilled": t.spilled}))
"""
    )
    assert result["seen"] == [100, True, True, "v\0w", ["k000", "k001"], "Spooled({", False]
    assert result["small"] is False
    assert result["large"] is True and result["spilled"] is True


@LINUX
def test_a_spilled_table_writes_nothing_visible(tmp_path: Path) -> None:
    folder = tmp_path / "tmp"
    folder.mkdir()
    env = dict(os.environ, TMPDIR=str(folder), SQLITE_TMPDIR=str(folder))
    result = _python(
        """
import json, os, sys
from ssg_dmi.build import spool
spool.CACHE_KIB = 64
folder = os.environ["SQLITE_TMPDIR"]

def open_files():
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return [path for path in found if path.startswith(folder)]

def value(i):
    return f"{i:06d}\\0\\udce9" * 128  # ~1 KiB of UTF-8

t = spool.Spooled(spill_at=100)
for i in range(20_000):  # ~20 MiB, far past 64 KiB of cache
    t[f"{i:06d}/caf\\udce9.jpg"] = value(i)
t.append("000000/caf\\udce9.jpg", "end")
open_listing, open_fds = sorted(os.listdir(folder)), open_files()
intact = all(t[f"{i:06d}/caf\\udce9.jpg"] == value(i) for i in range(1, 20_000))
intact = intact and t["000000/caf\\udce9.jpg"] == value(0) + "\\0end"
keys = sorted(f"{i:06d}/caf\\udce9.jpg" for i in range(20_000))
ordered = [k for k, _v in t.sorted_items()] == keys
spilled, count = t.spilled, len(t)
t.close()
print(json.dumps({"open_listing": open_listing, "open_fds": open_fds, "intact": intact,
                  "ordered": ordered, "spilled": spilled, "count": count,
                  "closed_listing": sorted(os.listdir(folder)), "closed_fds": open_files()}))
""",
        env=env,
    )
    assert result["spilled"] is True and result["count"] == 20_000
    assert result["intact"] is True and result["ordered"] is True
    assert result["open_listing"] == [] and result["closed_listing"] == []
    # The data did go to a file in that folder (so the empty listing means something):
    # one SQLite opened there and unlinked at once, gone with the connection.
    assert result["open_fds"] and all(path.endswith(" (deleted)") for path in result["open_fds"])
    assert result["closed_fds"] == []
    assert list(folder.iterdir()) == []


_FILL = """
import json, sys
from ssg_dmi.build import spool

def peak_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

spool.CACHE_KIB = 1024
spilled = sys.argv[-1] == "spilled"
table = spool.Spooled(spill_at=0) if spilled else {}
table["warm up"] = "sqlite3 loaded, the database made"
before = peak_kib()
for i in range(300_000):  # ~100 bytes an entry
    table[f"images/{i // 1000:03d}/photo-{i:07d}.jpg"] = f"{i:07d}" + "v" * 60
grown = peak_kib() - before
ok = len(table) == 300_001 and table["images/123/photo-0123456.jpg"] == "0123456" + "v" * 60
print(json.dumps({"grown_kib": grown, "ok": ok, "spilled": getattr(table, "spilled", False)}))
"""


@LINUX
def test_memory_stays_bounded_once_spilled() -> None:
    spilled, held = _python(_FILL, "spilled"), _python(_FILL, "dict")
    assert spilled["ok"] and held["ok"]
    assert spilled["spilled"] is True and held["spilled"] is False
    assert held["grown_kib"] > 20_000, held  # a dict of it takes tens of MiB
    assert spilled["grown_kib"] < held["grown_kib"] / 3, (spilled, held)
    assert spilled["grown_kib"] < 16 * 1024, spilled  # about the 1 MiB page cache


@pytest.mark.parametrize("spill_at", [10**9, 0, 100], ids=["memory", "file", "midway"])
def test_spooled_bytes_give_back_what_was_appended_in_order(spill_at: int) -> None:
    keys = [random.Random(i).randbytes(32) for i in range(500)]
    log = spool.SpooledBytes(spill_at)
    for key in keys:
        log += key
    assert len(log) == 32 * 500 and log.spilled == (spill_at < 32 * 500)
    joined = b"".join(keys)
    assert b"".join(log.pieces(32 * 7)) == joined
    assert [len(p) for p in log.pieces(32 * 7)] == [32 * 7] * 71 + [32 * 3]
    assert b"".join(log.pieces(4096)) == joined  # read again: the same
    log += b"x" * 32
    assert b"".join(log.pieces(4096)) == joined + b"x" * 32
    log.close()
    assert len(log) == 0 and b"".join(log.pieces(64)) == b"" and not log.spilled


def test_spooled_bytes_past_the_threshold_leave_nothing_visible(tmp_path: Path) -> None:
    code = f"""
import os, tempfile
tempfile.tempdir = {str(tmp_path)!r}
from ssg_dmi.build import spool
log = spool.SpooledBytes(1024)
for i in range(10_000):
    log += i.to_bytes(32, "big")
assert log.spilled and os.listdir({str(tmp_path)!r}) == []
data = b"".join(log.pieces(32 * 1024))
assert data == b"".join(i.to_bytes(32, "big") for i in range(10_000))
log.close()
print("ok", os.listdir({str(tmp_path)!r}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "ok []"


@pytest.mark.parametrize("upsert", [True, False], ids=["upsert", "one-by-one"])
@pytest.mark.parametrize("spill_at", [10**9, 0, 5], ids=["dict", "spilled", "midway"])
def test_batched_appends_and_sets_match_one_at_a_time(spill_at: int, upsert: bool) -> None:
    pairs = [(f"k{i % 7}", f"v{i}\0{NOT_UTF8}") for i in range(40)]  # repeats within a batch
    one, batched = Spooled(spill_at), Spooled(spill_at)
    for key, value in pairs:
        one.append(key, value)
    batched.append_many(pairs[:3])
    if batched.spilled:
        batched._upsert = upsert  # an SQLite before 3.24 has no ON CONFLICT … DO UPDATE
    batched.append_many(pairs[3:])
    assert list(batched.sorted_items()) == list(one.sorted_items())
    assert batched.spilled == (spill_at < 7)
    sets = [(f"s{i % 9}", f"w{i}") for i in range(30)]
    for key, value in sets:
        one[key] = value
    batched.set_many(sets)
    assert list(batched.sorted_items()) == list(one.sorted_items())
