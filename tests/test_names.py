"""The first-seen table: the first row of each name in a lane, across growth and deferral."""

from __future__ import annotations

import random

from bulk.input.names import FirstSeen, name_key


def random_keys(count: int, seed: int = 7) -> list[int]:
    """Distinct keys as `hash` gives them: signed 64-bit."""
    rng = random.Random(seed)
    return list({rng.randrange(-(2**63), 2**63) for _ in range(count)})


class TestNameKey:
    def test_a_name_is_keyed_with_its_lane(self) -> None:
        assert name_key("lane-a", "tenant") == name_key("lane-a", "tenant")
        assert name_key("lane-a", "tenant") != name_key("lane-b", "tenant")
        assert name_key("lane-a", "tenant") != name_key("lane-a", "tenant-2")
        assert 0 <= name_key("lane-a", "tenant") < 2**64

    def test_the_table_takes_a_key_masked_or_not(self) -> None:
        # Validator.claim_many passes hash() as it is, the others name_key(): the same name.
        table = FirstSeen()
        raw = hash(("lane", "tenant"))
        assert table.first_row(raw, 3) == 3
        assert table.first_row(name_key("lane", "tenant"), 8) == 3


class TestFirstRow:
    def test_the_first_row_of_a_key_wins(self) -> None:
        table = FirstSeen()
        assert table.first_row(42, 4) == 4
        assert table.first_row(43, 5) == 5
        assert table.first_row(42, 9) == 4
        assert table.first_row(42, 4) == 4  # the same row again is still the first
        assert len(table) == 2

    def test_every_key_survives_growth(self) -> None:
        table = FirstSeen()  # starts at 1024 slots and must grow several times
        keys = random_keys(5000)
        for row, key in enumerate(keys, 1):
            assert table.first_row(key, row) == row
        assert len(table) == len(keys)
        assert [table.first_row(key, 0) for key in keys] == list(range(1, len(keys) + 1))

    def test_a_presized_table_answers_as_a_grown_one(self) -> None:
        keys = random_keys(3000)
        presized, grown = FirstSeen(expected=100_000), FirstSeen()
        for table in (presized, grown):
            for row, key in enumerate(keys, 1):
                table.first_row(key, row)
        probes = keys[::7] + random_keys(50, seed=8)
        assert [presized.first_row(k, 0) for k in probes] == [grown.first_row(k, 0) for k in probes]


class TestBatches:
    def test_taken_is_first_row_for_each_in_turn(self) -> None:
        # Keys from 2 up: key 0 is stored as 1, the same key (see FirstSeen).
        keys = [2 + k % 2500 for k in range(3000)] + [5]
        rows = list(range(1, len(keys) + 1))
        rows[-1] = 4  # key 5 again, with the row it was first seen in
        one_by_one, batched = FirstSeen(), FirstSeen()
        expected = [
            i
            for i, (k, r) in enumerate(zip(keys, rows, strict=True))
            if one_by_one.first_row(k, r) != r
        ]
        assert batched.taken(keys, rows) == expected
        assert len(expected) == 500
        assert [batched.first_row(2 + k, 0) for k in range(2500)] == list(range(1, 2501))

    def test_deferred_keys_are_entered_before_any_lookup(self) -> None:
        table = FirstSeen()
        keys = random_keys(2000)
        table.defer_new(keys[:1500], list(range(1, 1501)))
        assert table.only_deferred
        assert len(table) == 0  # noted, not entered: a run that skips every row pays nothing
        assert table.taken(keys[1500:], list(range(1501, 2001))) == []
        assert not table.only_deferred
        assert len(table) == 2000
        assert table.first_row(keys[7], 9999) == 8
        assert table.taken([keys[0], keys[1999]], [1, 5]) == [1]
