"""The ledger: format, resume decisions, crash safety, locking, and write failures."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bulk.ledger.reader as ledger_file
from bulk.errors import LedgerError, LedgerWriteError
from bulk.ledger.writer import (
    Action,
    Ledger,
    Prior,
    ResumeIndex,
    read_records,
    record_to_json,
    redact_settings,
)
from bulk.models import SETTLED, Destination, Lane, Outcome, Status

LANE = Lane("sesv2", "eu-west-1")
OTHER_LANE = Lane("sesv2", "eu-west-1", "staging")
TARGET = Destination("sesv2", "eu-west-1")
INPUT = "tenants.csv"


def outcome(
    name: str,
    status: Status = Status.CREATED,
    digest: str = "00112233aabbccdd",
    *,
    row: int = 1,
    lane: Lane = LANE,
    code: str | None = None,
    message: str = "",
    **extra: Any,
) -> Outcome:
    return Outcome(
        row=row,
        name=name,
        status=status,
        lane=lane,
        digest=digest,
        code=code,
        message=message,
        extra=extra,
    )


def open_ledger(path: Path, **kwargs: Any) -> Ledger:
    options: dict[str, Any] = {"input_name": INPUT, "target": TARGET, "settings": {}}
    options.update(kwargs)
    return Ledger.open(path, **options)


def write(path: Path, outcomes: Sequence[Outcome], **kwargs: Any) -> None:
    with open_ledger(path, **kwargs) as ledger:
        for item in outcomes:
            ledger.append(item)


def lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the file parsed strictly: proves no record was glued or torn."""
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "tenants.csv.ledger.jsonl"


class TestFormat:
    def test_row_record_has_the_documented_fields(self) -> None:
        item = Outcome(
            row=7,
            name="acme",
            status=Status.FAILED,
            lane=LANE,
            digest="0123456789abcdef",
            code="TooManyRequestsException",
            message="Rate exceeded",
            attempts=5,
            latency_ms=12.3456,
            request_id="req-1",
            extra={"ambiguous": True},
        )
        record = json.loads(record_to_json(item))
        assert record == record | {
            "row": 7,
            "name": "acme",
            "status": "failed",
            "code": "TooManyRequestsException",
            "message": "Rate exceeded",
            "attempts": 5,
            "lane": "sesv2/default/eu-west-1",
            "latency_ms": 12.35,
            "request_id": "req-1",
            "digest": "0123456789abcdef",
            "ambiguous": True,
        }
        assert record["time"].endswith("Z")
        assert "kind" not in record

    def test_extra_cannot_override_the_standard_fields_or_pose_as_another_kind(self) -> None:
        extra = {"kind": "rate", "status": "x", "row": 0, "note": 1}
        item = Outcome(
            row=3, name="acme", status=Status.CREATED, lane=LANE, digest="d", extra=extra
        )
        record = json.loads(record_to_json(item))
        assert record["row"] == 3
        assert record["status"] == "created"
        assert "kind" not in record
        assert record["note"] == 1

    def test_an_outcome_that_could_not_be_read_back_is_refused(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            with pytest.raises(ValueError, match="row"):
                ledger.append(outcome("a", row=-1))
            with pytest.raises(TypeError, match="name and digest"):
                ledger.append(outcome(None, row=1))  # type: ignore[arg-type]
            ledger.append(outcome("b", "exists"))  # type: ignore[arg-type]
        assert [(r.get("name"), r.get("status")) for r in lines(path)[1:]] == [("b", "exists")]

    def test_a_record_is_one_line_even_with_newlines_in_values(self) -> None:
        text = record_to_json(outcome("a\nb", message="line 1\nline 2\r\u2028"))
        assert "\n" not in text
        assert json.loads(text)["message"] == "line 1\nline 2\r\u2028"


class TestHeader:
    def test_each_run_starts_with_a_header(self, path: Path) -> None:
        write(path, [outcome("a")], settings={"rate": 1.0, "burst": 1})
        write(path, [outcome("b")], input_name="/elsewhere/tenants.csv")
        records = lines(path)
        assert [record.get("kind") for record in records] == ["run", None, "run", None]
        first, _, second, _ = records
        assert first["input"] == "tenants.csv" and second["input"] == "tenants.csv"
        assert first["target"] == {
            "service": "sesv2",
            "region": "eu-west-1",
            "profile": None,
            "endpoint": None,
        }
        assert first["settings"] == {"rate": 1.0, "burst": 1}
        assert first["run_id"] != second["run_id"]
        assert {"time", "bulk", "pid"} <= first.keys()
        assert "status" not in first

    def test_settings_that_look_secret_never_reach_the_file(self, path: Path) -> None:
        settings = {
            "rate": 2,
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AccessKeyId": "x",
            "session_token": "t",
            "nested": {"password": "p", "keep": True, "id": "AKIAIOSFODNN7EXAMPLE"},
            "list": ["AKIAIOSFODNN7EXAMPLE", "ok"],
        }
        with open_ledger(path, settings=settings):
            pass
        text = path.read_text()
        for secret in ("wJalrXUtnFEMI", "AKIAIOSFODNN7EXAMPLE", "session_token", "password"):
            assert secret not in text
        assert lines(path)[0]["settings"] == {"rate": 2, "nested": {"keep": True}, "list": ["ok"]}

    def test_redact_settings_keeps_ordinary_settings(self) -> None:
        settings = {"rate": 1, "burst": 2, "concurrency": 8, "max_attempts": 5, "region": "x"}
        assert redact_settings(settings) == settings

    def test_endpoint_credentials_are_not_written(self, path: Path) -> None:
        target = Destination("sesv2", "eu-west-1", endpoint="http://user:hunter2@localhost:9000")
        with open_ledger(path, target=target):
            pass
        assert "hunter2" not in path.read_text()
        with open_ledger(path, target=target) as ledger:  # and the same target still matches
            assert len(ledger.index) == 0


class TestRoundTrip:
    def test_reload_gives_the_latest_record_per_lane_and_name(self, path: Path) -> None:
        write(
            path,
            [
                outcome("a", Status.FAILED, code="InternalFailure", row=1),
                outcome("b", Status.INVALID, code="InvalidName", row=2),
                outcome("a", Status.CREATED, row=1),
                outcome("a", Status.FAILED, lane=OTHER_LANE, row=3, ambiguous=True),
            ],
        )
        with open_ledger(path) as ledger:
            index = ledger.index
            assert len(index) == 3
            assert index.get(LANE, "a") == Prior(1, Status.CREATED, "00112233aabbccdd")
            assert index.get(str(LANE), "b") == Prior(
                2, Status.INVALID, "00112233aabbccdd", "InvalidName"
            )
            assert index.get(OTHER_LANE, "a") == Prior(
                3, Status.FAILED, "00112233aabbccdd", None, ambiguous=True
            )
            assert index.get(LANE, "c") is None
            assert index.get(Lane("sesv2", "us-east-1"), "a") is None
            assert index.counts == {
                "created": 1,
                "exists": 0,
                "invalid": 1,
                "failed": 1,
                "deleted": 0,
            }

    def test_read_records_returns_every_record_in_order(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            ledger.append(outcome("a"))
            ledger.append_rate(LANE, 0.5)
            ledger.append_end({"created": 1, "kind": "not this"})
        records = list(read_records(path))
        assert [r.get("kind") for r in records] == ["run", None, "rate", "end"]
        assert records[3]["created"] == 1 and records[3]["run_id"] == records[0]["run_id"]

    @pytest.mark.parametrize(
        "digest",
        ["", "ABCDEF0123456789", "abc", "00112233aabbccddee", "not hex at all!", "ab cd ef 01"],
    )
    def test_any_digest_comes_back_exactly(self, path: Path, digest: str) -> None:
        write(path, [outcome("hex", row=1), outcome("odd", digest=digest, row=2)])
        with open_ledger(path, dry_run=True) as ledger:
            assert ledger.index.get(LANE, "odd") == Prior(2, Status.CREATED, digest)
            assert ledger.index.get(LANE, "hex") == Prior(1, Status.CREATED, "00112233aabbccdd")

    def test_names_beyond_ascii_and_lone_surrogates_come_back(self, path: Path) -> None:
        names = ["café", "名前", "emoji-😀", "lone-\udc80", 'quote"back\\slash']
        write(path, [outcome(name, row=i) for i, name in enumerate(names, 1)])
        with open_ledger(path) as ledger:
            for i, name in enumerate(names, 1):
                prior = ledger.index.get(LANE, name)
                assert prior is not None and prior.row == i, name

    def test_learned_rate_round_trip(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            assert ledger.index.learned_rate(LANE) is None
            ledger.append_rate(LANE, 4.0)
            ledger.append_rate(OTHER_LANE, 2.5)
            ledger.append_rate(LANE, 0.75)
        with open_ledger(path) as ledger:
            assert ledger.index.learned_rate(LANE) == 0.75
            assert ledger.index.learned_rate(str(OTHER_LANE)) == 2.5
            assert ledger.index.learned_rate(Lane("sesv2", "us-east-1")) is None

    def test_a_learned_rate_must_be_a_finite_number(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            for bad in (float("nan"), float("inf"), -1.0):
                with pytest.raises(ValueError):
                    ledger.append_rate(LANE, bad)

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
        monkeypatch.setattr(ledger_file, "_CHUNK", 1000)  # many chunks, lines longer than a chunk
        names = [f"n{i}" for i in range(37)] + ["x", "never recorded"]

        def contents(index: ResumeIndex) -> tuple[object, ...]:
            priors = [index.get(lane, name) for lane in (LANE, OTHER_LANE) for name in names]
            return len(index), index.counts, index.learned_rate(LANE), priors

        with open_ledger(path, dry_run=True) as ledger:
            fast = contents(ledger.index)
        monkeypatch.setattr(ledger_file, "_parse_fast", lambda chunk: None)
        with open_ledger(path, dry_run=True) as ledger:
            assert contents(ledger.index) == fast
        latest = {(str(item.lane), item.name): item.status.value for item in items}
        counts = {status.value: list(latest.values()).count(status.value) for status in Status}
        assert fast[:3] == (38, counts, 35.0)
        assert sum(prior is not None for prior in fast[3]) == 38


class TestResumeDecisions:
    @pytest.mark.parametrize(
        ("status", "same", "changed"),
        [
            (Status.CREATED, Action.SKIP, Action.DRIFT),
            (Status.EXISTS, Action.SKIP, Action.DRIFT),
            (Status.INVALID, Action.SKIP, Action.SEND),
            (Status.FAILED, Action.SEND, Action.SEND),
            (Status.DELETED, Action.SEND, Action.SEND),
        ],
    )
    def test_rules(self, path: Path, status: Status, same: Action, changed: Action) -> None:
        write(path, [outcome("a", status, "00000000000000aa")])
        with open_ledger(path) as ledger:
            index = ledger.index
            assert index.action(LANE, "a", "00000000000000aa") is same
            assert index.action(LANE, "a", "00000000000000bb") is changed
            assert index.action(LANE, "unknown", "00000000000000aa") is Action.SEND
            prior = index.get(LANE, "a")
            assert prior is not None
            assert prior.action("00000000000000aa") is same
            assert prior.action("00000000000000bb") is changed

    def test_the_latest_record_decides(self, path: Path) -> None:
        write(path, [outcome("a", Status.CREATED), outcome("a", Status.DELETED)])
        with open_ledger(path) as ledger:
            assert ledger.index.action(LANE, "a", "00112233aabbccdd") is Action.SEND

    def test_a_failed_ambiguous_attempt_is_exposed(self, path: Path) -> None:
        write(path, [outcome("a", Status.FAILED, ambiguous=True), outcome("b", Status.FAILED)])
        with open_ledger(path) as ledger:
            a, b = ledger.index.get(LANE, "a"), ledger.index.get(LANE, "b")
            assert a is not None and a.ambiguous and a.status is Status.FAILED
            assert b is not None and not b.ambiguous

    def test_ambiguity_sticks_until_the_row_is_settled(self, path: Path) -> None:
        write(path, [outcome("a", Status.FAILED, ambiguous=True)])
        write(path, [outcome("a", Status.FAILED, code="TooManyRequestsException")])
        with open_ledger(path) as ledger:
            prior = ledger.index.get(LANE, "a")
            assert prior is not None and prior.ambiguous
            assert prior.code == "TooManyRequestsException"
            ledger.append(outcome("a", Status.CREATED))
        with open_ledger(path) as ledger:
            prior = ledger.index.get(LANE, "a")
            assert prior is not None and not prior.ambiguous

    def test_a_duplicate_rows_invalid_record_does_not_hide_the_original(self, path: Path) -> None:
        original, duplicate = "00000000000000aa", "00000000000000dd"
        for records in (
            [
                outcome("a", Status.CREATED, original, row=1),
                outcome("a", Status.INVALID, duplicate, row=4),
            ],
            [
                outcome("a", Status.INVALID, duplicate, row=4),
                outcome("a", Status.CREATED, original, row=1),
            ],
        ):
            path.unlink(missing_ok=True)
            write(path, records)
            with open_ledger(path) as ledger:
                index = ledger.index
                assert index.action(LANE, "a", original) is Action.SKIP
                assert index.action(LANE, "a", duplicate) is Action.SKIP
                assert index.get(LANE, "a", original) == Prior(1, Status.CREATED, original)
                prior = index.get(LANE, "a", duplicate)
                assert prior is not None and prior.status is Status.INVALID and prior.row == 4
                latest = index.get(LANE, "a")  # without a digest: the later record
                assert latest is not None and latest.status is records[-1].status
                assert len(index) == 1

    def test_a_row_edited_into_an_invalid_state_and_back_is_still_created(self, path: Path) -> None:
        write(path, [outcome("a", Status.CREATED, "00000000000000aa")])
        write(path, [outcome("a", Status.INVALID, "00000000000000ff", code="InvalidTlsPolicy")])
        with open_ledger(path) as ledger:
            latest = ledger.index.get(LANE, "a")
            assert latest is not None and latest.status is Status.INVALID
            assert ledger.index.counts["invalid"] == 1 and ledger.index.counts["created"] == 0
            assert ledger.index.action(LANE, "a", "00000000000000ff") is Action.SKIP
            assert ledger.index.action(LANE, "a", "00000000000000aa") is Action.SKIP
            assert ledger.index.action(LANE, "a", "00000000000000bb") is Action.DRIFT

    def test_an_ambiguous_attempt_survives_an_invalid_edit(self, path: Path) -> None:
        write(path, [outcome("a", Status.FAILED, "00000000000000aa", ambiguous=True)])
        write(path, [outcome("a", Status.INVALID, "00000000000000ff")])
        with open_ledger(path) as ledger:
            prior = ledger.index.get(LANE, "a", "00000000000000bb")  # fixed: new content
            assert prior is not None and prior.status is Status.FAILED and prior.ambiguous
            assert ledger.index.ambiguous(LANE, "a")

    def test_the_index_holds_earlier_runs_only(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            ledger.append(outcome("a"))
            assert ledger.index.get(LANE, "a") is None


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
        monkeypatch.setattr(ledger_file, "_CHUNK", 4096)
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


class TestCompatibility:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (
                {"target": Destination("pinpoint-email", "eu-west-1")},
                "another service: 'sesv2' in the ledger, 'pinpoint-email' for this run",
            ),
            (
                {"target": Destination("sesv2", "us-east-1")},
                "another region: 'eu-west-1' in the ledger, 'us-east-1' for this run",
            ),
            (
                {"target": Destination("sesv2", "eu-west-1", "prod")},
                "another profile: none in the ledger, 'prod' for this run",
            ),
            (
                {"target": Destination("sesv2", "eu-west-1", endpoint="emulator")},
                "another endpoint: none in the ledger, 'emulator' for this run",
            ),
            (
                {"input_name": "customers.csv"},
                "another input file: 'tenants.csv' in the ledger, 'customers.csv' for this run",
            ),
        ],
    )
    def test_another_target_or_input_is_refused(
        self, path: Path, change: dict[str, Any], message: str
    ) -> None:
        write(path, [outcome("a")])
        before = path.read_bytes()
        with pytest.raises(LedgerError) as raised:
            open_ledger(path, **change)
        assert str(raised.value) == (
            f"ledger {path} belongs to {message}; "
            "pass --ledger NEW to keep this run's records in another file"
        )
        assert path.read_bytes() == before
        with pytest.raises(LedgerError, match="belongs to another"):
            open_ledger(path, dry_run=True, **change)
        with open_ledger(path):  # the refusal released the lock
            pass

    def test_every_run_header_is_checked(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        for run in range(3):
            write(path, [outcome(f"r{run}-{i}", row=i, nested={"kind": "run"}) for i in range(50)])
        records = lines(path)
        assert [i for i, r in enumerate(records) if r.get("kind") == "run"] == [0, 51, 102]
        records[51]["target"]["region"] = "us-west-2"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        monkeypatch.setattr(ledger_file, "_CHUNK", 2000)  # headers in different chunks
        with pytest.raises(LedgerError, match="another region: 'us-west-2' in the ledger"):
            open_ledger(path)
        records[51]["target"]["region"] = "eu-west-1"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        with open_ledger(path) as ledger:
            assert len(ledger.index) == 150

    def test_an_edited_input_in_another_directory_is_the_same_input(
        self, path: Path, tmp_path: Path
    ) -> None:
        write(path, [outcome("a", digest="00000000000000aa")])
        with open_ledger(path, input_name=str(tmp_path / "fixed" / "tenants.csv")) as ledger:
            assert ledger.index.action(LANE, "a", "00000000000000bb") is Action.DRIFT


class TestCheckPath:
    """Paths that can never hold a ledger are refused before anything is sent."""

    def test_a_new_or_existing_ledger_file_is_fine(self, tmp_path: Path) -> None:
        source = tmp_path / "tenants.csv"
        source.write_text("ConfigurationSetName\nacme\n")
        Ledger.check_path(tmp_path / "new.jsonl", source)
        (tmp_path / "old.jsonl").write_text("")
        Ledger.check_path(tmp_path / "old.jsonl", source)

    @pytest.mark.parametrize("how", ["same", "relative", "hard-link", "symlink", "missing"])
    def test_the_input_file_itself(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
    ) -> None:
        monkeypatch.chdir(tmp_path)
        source = tmp_path / "tenants.csv"
        if how != "missing":
            source.write_text("ConfigurationSetName\nacme\n")
        ledger = {"same": source, "relative": Path("tenants.csv"), "missing": source}.get(
            how, tmp_path / "other.csv"
        )
        if how == "hard-link":
            os.link(source, ledger)
        elif how == "symlink":
            ledger.symlink_to(source)
        with pytest.raises(LedgerError, match="is the input file itself; the ledger must be"):
            Ledger.check_path(ledger, source)

    @pytest.mark.parametrize("kind", ["device", "directory", "fifo"])
    def test_not_a_regular_file(self, tmp_path: Path, kind: str) -> None:
        ledger = tmp_path / "ledger.jsonl"
        if kind == "device":
            ledger = Path("/dev/null")
        elif kind == "directory":
            ledger.mkdir()
        else:
            os.mkfifo(ledger)
        with pytest.raises(LedgerError, match="not a regular file; bulk appends to the ledger"):
            Ledger.check_path(ledger, tmp_path / "tenants.csv")


class TestLock:
    def test_a_second_open_in_this_process_is_refused(self, path: Path) -> None:
        with open_ledger(path):
            with pytest.raises(LedgerError) as raised:
                open_ledger(path)
            assert str(raised.value).startswith(
                f"ledger {path} is in use by another bulk run (pid {os.getpid()})"
            )
            with pytest.raises(LedgerError, match="in use by another bulk run"):
                open_ledger(path, dry_run=True)
        with open_ledger(path):
            pass

    def test_dry_runs_share_the_ledger_but_keep_a_writer_out(self, path: Path) -> None:
        write(path, [outcome("a")])
        with (
            open_ledger(path, dry_run=True),
            open_ledger(path, dry_run=True),
            pytest.raises(LedgerError, match="in use"),
        ):
            open_ledger(path)

    def test_a_run_in_another_process_is_named_by_its_pid(self, path: Path) -> None:
        script = textwrap.dedent(
            f"""
            import sys
            from bulk.ledger.writer import Ledger
            from bulk.models import Destination
            ledger = Ledger.open({str(path)!r}, input_name={INPUT!r},
                                 target=Destination("sesv2", "eu-west-1"), settings={{}})
            print("locked", flush=True)
            sys.stdin.readline()
            ledger.close()
            """
        )
        child = subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdout.readline() == "locked\n"
            with pytest.raises(
                LedgerError, match=rf"in use by another bulk run \(pid {child.pid}\)"
            ):
                open_ledger(path)
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)
        with open_ledger(path) as ledger:  # the lock died with the run
            assert len(ledger.index) == 0


class TestKilledRun:
    def test_a_run_killed_mid_write_resumes_from_every_whole_record(self, path: Path) -> None:
        script = textwrap.dedent(
            f"""
            from bulk.ledger.writer import Ledger
            from bulk.models import Lane, Outcome, Status, Destination
            ledger = Ledger.open({str(path)!r}, input_name={INPUT!r},
                                 target=Destination("sesv2", "eu-west-1"), settings={{}})
            lane = Lane("sesv2", "eu-west-1")
            print("started", flush=True)
            for i in range(1, 10_000_000):
                ledger.append(Outcome(i, f"n{{i}}", Status.CREATED, lane, "00112233aabbccdd",
                                      message="x" * (i % 300)))
            """
        )
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "started\n"
        while path.stat().st_size < 200_000 and child.poll() is None:
            pass
        child.kill()
        child.wait(timeout=30)
        written = [r for r in read_records(path) if "status" in r]
        with open_ledger(path) as ledger:
            assert len(ledger.index) == len(written) > 0
            assert ledger.index.counts["created"] == len(written)
        assert len(lines(path)) == len(written) + 2  # two headers; nothing torn or glued


class TestWriteFailures:
    def test_a_ledger_that_cannot_be_created_fails_before_anything_is_sent(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(LedgerError, match=r"cannot create ledger .*No such file or directory"):
            open_ledger(tmp_path / "missing" / "ledger.jsonl")
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(LedgerError, match=r"cannot create ledger .*Not a directory"):
            open_ledger(blocker / "ledger.jsonl")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
    def test_a_read_only_directory_is_refused(self, tmp_path: Path) -> None:
        tmp_path.chmod(0o555)
        try:
            with pytest.raises(LedgerError, match="Permission denied"):
                open_ledger(tmp_path / "ledger.jsonl")
        finally:
            tmp_path.chmod(0o755)

    def test_a_dry_run_without_a_ledger_creates_nothing(self, tmp_path: Path) -> None:
        path = tmp_path / "missing" / "ledger.jsonl"
        with open_ledger(path, dry_run=True) as ledger:
            assert len(ledger.index) == 0
        assert not path.parent.exists()

    def test_a_full_disk_stops_the_run_with_one_clear_line(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ledger = open_ledger(path)
        ledger.append(outcome("a", row=1))
        ledger.append(outcome("b", row=2))
        real_write = os.write

        def full(fd: int, data: Any) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(LedgerWriteError) as raised:
            ledger.append(outcome("c", row=3))
        assert str(raised.value) == (
            f"cannot write ledger {path}: No space left on device; 2 records written before; "
            "free space and run the same command to resume"
        )
        assert raised.value.exit_code == 3
        monkeypatch.setattr(os, "write", real_write)
        with pytest.raises(LedgerWriteError):  # the run does not carry on with holes
            ledger.append(outcome("d", row=4))
        ledger.close()
        assert [r.get("name") for r in lines(path)] == [None, "a", "b"]

    def test_a_line_cut_short_by_a_full_disk_is_removed(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_write = os.write
        with open_ledger(path) as ledger:
            ledger.append(outcome("a"))

            def half(fd: int, data: Any) -> int:
                if len(data) > 20:
                    return real_write(fd, bytes(data)[:20])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(os, "write", half)
            with pytest.raises(LedgerWriteError, match="1 records written before"):
                ledger.append(outcome("b"))
            monkeypatch.setattr(os, "write", real_write)
        assert [r.get("name") for r in lines(path)] == [None, "a"]

    def test_a_batch_goes_in_with_one_write(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_write = os.write
        writes: list[bytes] = []

        def counting(fd: int, data: Any) -> int:
            writes.append(bytes(data))
            return real_write(fd, data)

        with open_ledger(path) as ledger:
            monkeypatch.setattr(os, "write", counting)
            ledger.append_many([outcome(name, row=n) for n, name in enumerate("abc", 1)])
            ledger.append_many([])  # nothing to record: no write
            monkeypatch.setattr(os, "write", real_write)
            assert ledger.records_written == 3
        assert len(writes) == 1 and writes[0].count(b"\n") == 3
        assert [r.get("name") for r in lines(path)] == [None, "a", "b", "c"]

    def test_a_batch_the_disk_took_only_part_of_is_undone_whole(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_write = os.write
        with open_ledger(path) as ledger:
            ledger.append(outcome("a"))

            def first_line_only(fd: int, data: Any) -> int:
                line = bytes(data).split(b"\n", 1)[0] + b"\n"
                if len(line) < len(data):
                    return real_write(fd, line)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(os, "write", first_line_only)
            with pytest.raises(LedgerWriteError, match="1 records written before"):
                ledger.append_many([outcome("b", row=2), outcome("c", row=3)])
            monkeypatch.setattr(os, "write", real_write)
        # "b" reached the file whole, but its batch did not: the ledger keeps what it reported.
        assert [r.get("name") for r in lines(path)] == [None, "a"]

    @pytest.mark.parametrize("code", [errno.EROFS, errno.EBADF, errno.EIO])
    def test_other_write_errors(
        self, path: Path, monkeypatch: pytest.MonkeyPatch, code: int
    ) -> None:
        def broken(fd: int, data: Any) -> int:
            raise OSError(code, os.strerror(code))

        with open_ledger(path) as ledger:
            monkeypatch.setattr(os, "write", broken)
            with pytest.raises(LedgerWriteError, match=os.strerror(code)):
                ledger.append(outcome("a"))

    def test_a_failed_fsync_is_a_write_error(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(fd: int) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        ledger = open_ledger(path)
        ledger.append(outcome("a"))
        monkeypatch.setattr(os, "fsync", broken)
        with pytest.raises(LedgerWriteError, match="Input/output error"):
            ledger.sync()
        ledger.close()

    def test_an_error_inside_the_with_block_is_not_masked_by_close(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with pytest.raises(KeyError), open_ledger(path) as ledger:
            ledger.append(outcome("a"))
            monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "x")))
            raise KeyError("original")

    def test_sync_and_close_are_safe_to_repeat(self, path: Path) -> None:
        ledger = open_ledger(path)
        ledger.append(outcome("a"))
        ledger.sync()
        ledger.sync()
        ledger.close()
        ledger.close()
        ledger.sync()
        assert ledger.records_written == 1
        with pytest.raises(ValueError, match="closed"):
            ledger.append(outcome("b"))


# -- crash safety, as a property --------------------------------------------------------------

NAMES = ("a", "b", "c")
DIGESTS = ("00000000000000aa", "00000000000000bb", "odd digest", "")
outcomes_strategy = st.lists(
    st.builds(
        outcome,
        st.sampled_from(NAMES),
        st.sampled_from(list(Status)),
        st.sampled_from(DIGESTS),
        row=st.integers(1, 9),
        lane=st.sampled_from([LANE, OTHER_LANE]),
        code=st.sampled_from([None, "TooManyRequestsException", "BadRequestException"]),
        ambiguous=st.booleans(),
    ),
    max_size=25,
)
InputRow = dict[str, Any]


def model_prior(
    records: list[InputRow], lane: Lane, name: str, digest: str | None
) -> InputRow | None:
    """The record a lookup should answer, replayed from the records the file kept.

    The latest record about the configuration set and the latest ``invalid`` one are kept
    apart; without a digest the later one answers; with one, the invalid record answers only
    for its own content, and the set's record otherwise.
    """
    state: tuple[int, InputRow] | None = None
    invalid: tuple[int, InputRow] | None = None
    for position, record in enumerate(records):
        if "status" in record and (record["lane"], record["name"]) == (str(lane), name):
            if record["status"] == "invalid":
                invalid = (position, record)
            else:
                state = (position, record)
    if state is None or invalid is None:
        found = state or invalid
        return None if found is None else found[1]
    newer = max(state, invalid, key=lambda pair: pair[0])[1]
    if digest is None:
        return newer
    if invalid[1]["digest"] != digest:
        return state[1]
    if state[1]["digest"] != digest:
        return invalid[1]
    return newer


def model_action(record: InputRow | None, digest: str) -> Action:
    if record is None or record["status"] in ("failed", "deleted"):
        return Action.SEND
    if record["digest"] == digest:
        return Action.SKIP
    return Action.SEND if record["status"] == "invalid" else Action.DRIFT


def as_prior(record: InputRow | None) -> Prior | None:
    if record is None:
        return None
    return Prior(
        row=record["row"],
        status=Status(record["status"]),
        digest=record["digest"],
        code=record["code"],
        ambiguous=record.get("ambiguous") is True,
    )


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
                        assert index.action(lane, name, digest) is model_action(expected, digest)
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
        assert ledger.index.action(LANE, "tenant-0500000", f"{500000:016x}") is Action.SKIP
    assert elapsed < 5, elapsed
    assert grown < 300, grown
