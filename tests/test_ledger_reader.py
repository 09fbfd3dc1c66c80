"""Reading a ledger (bulk.ledger.reader): both parsers, torn tails, corruption, crashes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bulk.ledger.reader as reader
from bulk.errors import LedgerError
from bulk.ledger.index import ResumeIndex
from bulk.ledger.reader import read_records
from bulk.ledger.records import record_to_json
from bulk.ledger.rules import Action
from bulk.models import SETTLED, Outcome, Status

from .ledger_helpers import (
    DIGESTS,
    LANE,
    NAMES,
    OTHER_LANE,
    action,
    as_prior,
    lines,
    model_action,
    model_prior,
    open_ledger,
    outcome,
    outcomes_strategy,
    write,
)


class TestRead:
    def test_read_records_returns_every_record_in_order(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            ledger.append(outcome("a"))
            ledger.append_rate(LANE, 0.5)
            ledger.append_end({"created": 1, "kind": "not this"})
        records = list(read_records(path))
        assert [r.get("kind") for r in records] == ["run", None, "rate", "end"]
        assert records[3]["created"] == 1 and records[3]["run_id"] == records[0]["run_id"]

    def test_the_fast_and_the_line_by_line_parser_agree(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        items = [
            outcome(f"n{i % 37}", list(Status)[i % 5], f"{i % 11:016x}", row=i, code=f"C{i % 3}")
            for i in range(400)
        ]
        items += [outcome("x", lane=OTHER_LANE, digest="odd", ambiguous=True)]
        with open_ledger(path) as ledger:
            for item in items:
                ledger.append(item)
                if item.row % 50 == 0:
                    ledger.append_rate(item.lane, item.row / 10)
        monkeypatch.setattr(reader, "_CHUNK", 1000)  # many chunks, lines longer than a chunk
        names = [f"n{i}" for i in range(37)] + ["x", "never recorded"]

        def contents(index: ResumeIndex) -> tuple[object, ...]:
            priors = [index.get(lane, name) for lane in (LANE, OTHER_LANE) for name in names]
            return len(index), index.counts, index.learned_rate(LANE), priors

        with open_ledger(path, dry_run=True) as ledger:
            fast = contents(ledger.index)
        monkeypatch.setattr(reader, "_parse_fast", lambda chunk: None)
        with open_ledger(path, dry_run=True) as ledger:
            assert contents(ledger.index) == fast
        latest = {(str(item.lane), item.name): item.status.value for item in items}
        counts = {status.value: list(latest.values()).count(status.value) for status in Status}
        assert fast[:3] == (38, counts, 35.0)
        assert sum(prior is not None for prior in fast[3]) == 38


class TestTornTail:
    def test_a_torn_last_line_is_ignored_and_cut_away(self, path: Path) -> None:
        write(path, [outcome("a", row=1), outcome("b", row=2)])
        whole = path.read_bytes()
        path.write_bytes(whole + record_to_json(outcome("c", row=3)).encode()[:40])
        with open_ledger(path) as ledger:
            assert ledger.index.get(LANE, "c") is None
            assert ledger.index.get(LANE, "b") is not None
            ledger.append(outcome("d", row=4))
        records = lines(path)  # every line parses: nothing was glued to the torn bytes
        assert [r.get("name") for r in records] == [None, "a", "b", None, "d"]

    def test_a_complete_but_unreadable_last_line_is_torn_too(self, path: Path) -> None:
        write(path, [outcome("a")])
        path.write_bytes(path.read_bytes() + b"\0" * 100 + b"\n")
        with open_ledger(path) as ledger:
            assert len(ledger.index) == 1
        assert b"\0" not in path.read_bytes()
        assert len(lines(path)) == 3

    def test_a_complete_last_record_without_its_newline_does_not_count(self, path: Path) -> None:
        write(path, [outcome("a")])
        path.write_bytes(path.read_bytes() + record_to_json(outcome("b")).encode())
        with open_ledger(path) as ledger:
            assert ledger.index.get(LANE, "b") is None

    def test_a_dry_run_ignores_the_torn_line_without_touching_the_file(self, path: Path) -> None:
        write(path, [outcome("a")])
        torn = path.read_bytes() + b'{"row":2,"na'
        path.write_bytes(torn)
        with open_ledger(path, dry_run=True) as ledger:
            assert len(ledger.index) == 1
            ledger.append(outcome("b"))  # ignored in a dry run
        assert path.read_bytes() == torn
        assert [r.get("name") for r in read_records(path)] == [None, "a"]

    def test_a_ledger_that_is_only_a_torn_header_is_a_new_ledger(self, path: Path) -> None:
        path.write_bytes(b'{"kind":"run","input":"other.csv","tar')
        with open_ledger(path) as ledger:
            assert len(ledger.index) == 0
        assert [r["input"] for r in lines(path)] == ["tenants.csv"]


class TestCorruption:
    def test_an_invalid_line_in_the_middle_names_the_file_and_line(self, path: Path) -> None:
        write(path, [outcome("a"), outcome("b"), outcome("c")])
        text = path.read_text().split("\n")
        text[2] = text[2][:30]  # line 3 of 5: record "b", cut short
        path.write_text("\n".join(text))
        with pytest.raises(LedgerError) as raised:
            open_ledger(path)
        assert str(raised.value) == (
            f"ledger {path} line 3 is not valid JSON; the file was edited or corrupted: "
            "restore it or pass --ledger NEW"
        )
        with pytest.raises(LedgerError, match="line 3 is not valid JSON"):
            list(read_records(path))

    def test_the_line_number_is_right_far_into_a_large_ledger(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        write(path, [outcome(f"n{i}", row=i) for i in range(1, 300)])
        text = path.read_text().split("\n")
        text[250] = "{not json"
        path.write_text("\n".join(text))
        monkeypatch.setattr(reader, "_CHUNK", 4096)
        with pytest.raises(LedgerError, match=r"line 251 is not valid JSON"):
            open_ledger(path)

    @pytest.mark.parametrize(
        ("line", "why"),
        [
            ('{"row":1,"name":"a","status":"gone","lane":"l","digest":"d"}', "unknown status"),
            ('{"row":1,"status":"created","lane":"l","digest":"d"}', "'name' is not a string"),
            ('{"row":-1,"name":"a","status":"created","lane":"l","digest":"d"}', "'row'"),
            ('{"hello":"world"}', "neither 'kind' nor 'status'"),
            ('{"kind":"run","input":"tenants.csv"}', "run header without 'target'"),
            ("[1, 2]", "not a JSON object"),
        ],
    )
    def test_a_line_that_is_not_a_record_is_refused(self, path: Path, line: str, why: str) -> None:
        write(path, [outcome("a")])
        path.write_text(path.read_text() + line + "\n" + record_to_json(outcome("b")) + "\n")
        with pytest.raises(LedgerError, match="line 3") as raised:
            open_ledger(path)
        assert why in str(raised.value)

    def test_unknown_record_kinds_and_blank_lines_are_skipped(self, path: Path) -> None:
        write(path, [outcome("a")])
        path.write_text(path.read_text() + '{"kind":"note","text":"hi"}\n\n  \n')
        with open_ledger(path) as ledger:
            assert len(ledger.index) == 1


# -- crash safety, as a property --------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=outcomes_strategy, data=st.data())
def test_a_crash_at_any_byte_loses_exactly_the_records_not_fully_written(
    items: list[Outcome], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ledger.jsonl"
        with open_ledger(path) as ledger:
            for item in items:
                ledger.append(item)
        whole = path.read_bytes()
        line_ends = [i + 1 for i, byte in enumerate(whole) if byte == ord("\n")]
        cut = data.draw(
            st.one_of(st.sampled_from(line_ends), st.integers(0, len(whole))), label="crash point"
        )
        path.write_bytes(whole[:cut])
        # A record survives iff its whole line, newline included, is before the crash point.
        survivors = [json.loads(line) for line in whole[:cut].split(b"\n")[:-1]]
        keys = {(r["lane"], r["name"]) for r in survivors if "status" in r}

        with open_ledger(path) as ledger:
            index = ledger.index
            assert len(index) == len(keys)
            found = {}
            for lane in (LANE, OTHER_LANE):
                for name in NAMES:
                    latest = model_prior(survivors, lane, name, None)
                    assert index.get(lane, name) == as_prior(latest)
                    if latest is not None:
                        found[(str(lane), name)] = as_prior(latest)
                    for digest in DIGESTS:  # the work a resumed run would do
                        expected = model_prior(survivors, lane, name, digest)
                        assert index.get(lane, name, digest) == as_prior(expected)
                        assert action(index, lane, name, digest) is model_action(expected, digest)
            assert found.keys() == keys
            settled = [prior.status for prior in found.values() if prior.status in SETTLED]
            assert sum(index.counts[status] for status in SETTLED) == len(settled)
            ledger.append(outcome("after", row=99))

        # The next run's records start on a line of their own.
        assert lines(path) == [*survivors, *lines(path)[len(survivors) :]]
        tail = [record.get("kind", record.get("name")) for record in lines(path)[len(survivors) :]]
        assert tail == ["run", "after"]


@pytest.mark.soak
def test_a_million_row_ledger_loads_in_seconds(tmp_path: Path) -> None:
    import time

    import psutil

    path = tmp_path / "big.jsonl"
    write(path, [])
    with path.open("a") as file:
        for i in range(1, 1_000_001):
            file.write(record_to_json(outcome(f"tenant-{i:07d}", row=i, digest=f"{i:016x}")))
            file.write("\n")
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    with open_ledger(path, dry_run=True) as ledger:
        elapsed = time.perf_counter() - started
        grown = (process.memory_info().rss - before) / 1e6
        assert len(ledger.index) == 1_000_000
        assert action(ledger.index, LANE, "tenant-0500000", f"{500000:016x}") is Action.SKIP
    assert elapsed < 5, elapsed
    assert grown < 300, grown
