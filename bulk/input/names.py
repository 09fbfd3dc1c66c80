"""Names: the rule a name follows, and the first row of each name within a lane.

`NAME_RULE` is the rule configuration sets, tenants and event destinations share (1-64
characters of ``A-Z a-z 0-9 _ -``), and `name_problem` says why a cell breaks it.

A name is keyed with its lane as a 64-bit hash (`name_key`); `FirstSeen` keeps the first row
number of each key in a hash table of two flat arrays, small enough for millions of names. The
`~bulk.input.validate.Validator` asks it whether a row's name was met before (a
``DuplicateName``); a resumed run notes through it the names of the rows it skips.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from typing import Final

from bulk.input.columns import show

__all__ = ["NAME_RE", "NAME_RULE", "FirstSeen", "name_key", "name_problem"]

NAME_RULE: Final = "a name is 1-64 characters of A-Z a-z 0-9 _ -"
NAME_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def name_problem(
    where: str,
    raw: object,
    text: str | None,
    rule: str = NAME_RULE,
    pattern: re.Pattern[str] = NAME_RE,
    maximum: int = 64,
) -> str:
    """Why ``raw`` (read as ``text``; None: not text) breaks ``rule``, after ``where``."""
    prefix = f"{where}: {show(raw)}"
    if text is None:
        return f"{prefix} is not text; {rule}"
    if not text:
        return f"{prefix} is empty; {rule}"
    if len(text) > maximum:
        return f"{prefix} is {len(text)} characters long; {rule}"
    bad: list[str] = []
    for ch in text:
        if not pattern.fullmatch(ch) and ch not in bad:
            bad.append(ch)
    if not bad:  # a pattern that is more than a set of characters
        return f"{prefix} does not match {pattern.pattern!r}; {rule}"
    return f"{prefix} contains {', '.join(repr(ch) for ch in bad[:5])}; {rule}"


def name_key(lane_key: str, name: str) -> int:
    """The duplicate-table key of a name in a lane: Python's 64-bit hash of the pair.

    The table lives for one run, in one process, so the per-process hash seed does no harm;
    it costs a tenth of a cryptographic hash, which counts when a resume notes a million
    unchanged names.
    """
    return hash((lane_key, name)) & _MASK64


_MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF


class FirstSeen:
    """The first row number of each 64-bit key, in two flat arrays: 12 bytes a slot.

    Open addressing with linear probing; key 0 marks a free slot, so a key of 0 is stored
    as 1. Load stays at most 3/4 (the table grows by half past it). A million names cost
    16 MB in a presized table; grown from empty, 18 MB (30 MB while growing); a dict of
    ints would cost ~100 MB.
    """

    _MAX_LOAD = 0.75

    def __init__(self, expected: int = 0) -> None:
        # Allocated at the first lookup: a resume that skips every row never needs it.
        self._keys, self._rows = array("Q"), array("I")
        self._capacity = max(1024, int(expected / self._MAX_LOAD) + 1)
        self._limit = 0
        self._count = 0
        # Keys known to be new and distinct, not inserted yet (see defer_new).
        self._pending: list[tuple[array[int], array[int]]] = []
        self.only_deferred = True  # nothing but deferred keys ever entered

    def _allocate(self, capacity: int) -> None:
        self._keys = array("Q", [0]) * capacity
        self._rows = array("I", [0]) * capacity
        self._capacity = capacity
        self._limit = int(capacity * self._MAX_LOAD)

    def __len__(self) -> int:
        return self._count

    def defer_new(self, keys: Sequence[int], rows: Sequence[int]) -> None:
        """Note keys that are distinct and new to the table, inserting them only when needed.

        For the names of rows a resumed run skips unread: while nothing else enters the
        table they cannot collide, and a run where every row is skipped never pays for the
        inserts. Any lookup inserts them first, in order. ``keys`` are kept as signed 64-bit
        integers, as `hash` gives them (not masked like `name_key`'s).
        """
        self._pending.append((array("q", keys), array("I", rows)))

    def first_row(self, key: int, row: int) -> int:
        """The first row recorded for ``key``; records ``row`` if the key is new."""
        for _, earlier in self._record((key,), (row,)):
            return earlier
        return row

    def taken(self, keys: Sequence[int], rows: Sequence[int]) -> list[int]:
        """:meth:`first_row` for each (key, row) in turn; the indexes where it was not ``row``.

        One loop for a batch: a resume claims a million unchanged names.
        """
        return [i for i, _ in self._record(keys, rows)]

    def _record(self, keys: Sequence[int], rows: Sequence[int]) -> list[tuple[int, int]]:
        """Deferred keys first, then :meth:`_insert`."""
        self.only_deferred = False
        if not self._keys:
            self._allocate(self._capacity)
        if self._pending:
            pending, self._pending = self._pending, []
            for deferred_keys, deferred_rows in pending:
                self._insert(deferred_keys, deferred_rows)  # distinct and new: none is lost
        return self._insert(keys, rows)

    def _insert(self, keys: Sequence[int], rows: Sequence[int]) -> list[tuple[int, int]]:
        """Record each (key, row) whose key is new; (index, first row) of those whose key
        was recorded with another row."""
        taken: list[tuple[int, int]] = []
        table, firsts, capacity = self._keys, self._rows, self._capacity
        count, limit = self._count, self._limit
        for i, (key, row) in enumerate(zip(keys, rows, strict=True)):
            key = (key & _MASK64) or 1
            slot = key % capacity
            while True:
                found = table[slot]
                if found == 0:
                    table[slot] = key
                    firsts[slot] = row
                    count += 1
                    break
                if found == key:
                    if firsts[slot] != row:
                        taken.append((i, firsts[slot]))
                    break
                slot += 1
                if slot == capacity:
                    slot = 0
            if count > limit:
                self._count = count
                self._grow()
                table, firsts, capacity = self._keys, self._rows, self._capacity
                limit = self._limit
        self._count = count
        return taken

    def _grow(self) -> None:
        old_keys, old_rows = self._keys, self._rows
        self._allocate(self._capacity * 3 // 2)
        keys, rows, capacity = self._keys, self._rows, self._capacity
        for key, row in zip(old_keys, old_rows, strict=True):
            if key:
                i = key % capacity
                while keys[i]:
                    i = i + 1 if i + 1 < capacity else 0
                keys[i] = key
                rows[i] = row
