"""The ledger's line format (bulk.ledger.records): row records, run headers, secrets kept out."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bulk.ledger.records import (
    FINGERPRINTS,
    RunHeader,
    end_to_json,
    header_to_json,
    parse_run_header,
    rate_to_json,
    record_to_json,
    redact_settings,
)
from bulk.models import Destination, Outcome, Status

from .ledger_helpers import LANE, lines, open_ledger, outcome, write


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
            "role_arn": None,
        }
        assert first["settings"] == {"rate": 1.0, "burst": 1}
        assert first["run_id"] != second["run_id"]
        assert {"time", "bulk", "pid"} <= first.keys()
        assert "status" not in first
        assert first["fingerprints"] == second["fingerprints"] == FINGERPRINTS == "xxhash64-v1"

    def test_a_restated_record_says_so_and_carries_its_fingerprint(self) -> None:
        item = Outcome(
            row=2,
            name="acme",
            status=Status.CREATED,
            lane=LANE,
            digest="d",
            fingerprint=0xABC,
            restated=True,
        )
        record = json.loads(record_to_json(item))
        assert record["restated"] is True and record["cells"] == "0000000000000abc"
        assert record["attempts"] == 0
        assert "restated" not in json.loads(record_to_json(replace(item, restated=False)))

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

    def test_a_run_header_reads_back_as_the_identity_it_binds(self) -> None:
        target = Destination("sesv2", "eu-west-1", "prod", endpoint="http://u:p@localhost:9000/")
        line = header_to_json("r1", "/data/tenants.csv", target, {"rate": 1})
        header = parse_run_header(json.loads(line))
        redacted = Destination("sesv2", "eu-west-1", "prod", endpoint="http://localhost:9000/")
        assert header == RunHeader("tenants.csv", redacted)
        assert ":p@" not in line
        no_region = {"kind": "run", "input": "t.csv", "target": {"service": "sesv2"}}
        assert parse_run_header(no_region) == "run header without a target service and region"


class TestOtherRecords:
    def test_rate_and_end_records(self) -> None:
        rate = json.loads(rate_to_json(LANE, 2))
        assert rate == rate | {"kind": "rate", "lane": "sesv2/default/eu-west-1", "rate": 2.0}
        end = json.loads(end_to_json("r1", {"created": 3, "run_id": "not this", "kind": "x"}))
        assert end == end | {"kind": "end", "run_id": "r1", "created": 3}
        assert rate["time"].endswith("Z") and end["time"].endswith("Z")

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
    def test_a_learned_rate_must_be_a_finite_number(self, bad: float) -> None:
        with pytest.raises(ValueError, match="learned rate must be a finite number"):
            rate_to_json(LANE, bad)
