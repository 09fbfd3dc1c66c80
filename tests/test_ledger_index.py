"""The resume index (bulk.ledger.index): what it answers per (lane, name), and per digest."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from bulk.ledger.records import FINGERPRINTS, Prior, header_to_json, record_to_json
from bulk.ledger.rules import Action, carries_ambiguity, decide
from bulk.ledger.writer import save_index
from bulk.models import Lane, Outcome, Row, Status

from .ledger_helpers import (
    INPUT,
    LANE,
    OTHER_LANE,
    RULES,
    TARGET,
    action,
    open_ledger,
    outcome,
    write,
)


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

    @pytest.mark.parametrize("name", ["acme", "lone-\udc80"], ids=["fast-path", "slow-path"])
    def test_an_intent_with_no_record_after_it_reads_as_a_call_in_flight(
        self, path: Path, name: str
    ) -> None:
        """A process killed with a call in flight leaves the row's intent line and no record:
        the resume must read ``AlreadyExists`` as its own (a lone surrogate in a name sends
        the reader down its slow path, which must agree)."""
        with open_ledger(path) as ledger:
            ledger.append_intents([Row(3, name, LANE, {}, "digest-3")])
            ledger.append_intents([Row(4, "answered", LANE, {}, "digest-4")])
            ledger.append(outcome("answered", row=4, digest="digest-4"))
            ledger.append_intents([Row(5, "retried", LANE, {}, "digest-5")])
            ledger.append(outcome("retried", Status.FAILED, row=5, digest="digest-5"))
        with open_ledger(path) as ledger:
            index = ledger.index
            in_flight = index.get(LANE, name)
            assert in_flight == Prior(3, Status.FAILED, "digest-3", "Interrupted", ambiguous=True)
            assert carries_ambiguity(in_flight)
            assert decide(in_flight, "digest-3") is Action.SEND
            assert index.get(LANE, "answered") == Prior(4, Status.CREATED, "digest-4")
            assert not carries_ambiguity(index.get(LANE, "retried")), "answered: no call in flight"
            assert index.counts["failed"] == 2 and index.counts["created"] == 1

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

    def test_each_operation_keeps_its_own_learned_rate(self, path: Path) -> None:
        with open_ledger(path) as ledger:
            ledger.append_rate(LANE, 0.9)
            ledger.append_rate(LANE, 4.5, "ListConfigurationSets")
            ledger.append_rate(OTHER_LANE, 2.0, "CreateTenant")
        with open_ledger(path) as ledger:
            index = ledger.index
            assert index.learned_rate(LANE) == 0.9, "the create's rate, as older ledgers hold it"
            assert index.learned_rate(LANE, "ListConfigurationSets") == 4.5
            assert index.learned_rate(OTHER_LANE, "CreateTenant") == 2.0
            assert index.learned_rate(OTHER_LANE) is None
            assert index.learned_rate(LANE, "CreateTenant") is None


class TestLookups:
    """The record a lookup answers: what the resume rules (bulk.ledger.rules) then judge."""

    @pytest.mark.parametrize(("status", "same", "changed"), RULES)
    def test_the_rules_judge_what_the_ledger_read_back(
        self, path: Path, status: Status, same: Action, changed: Action
    ) -> None:
        write(path, [outcome("a", status, "00000000000000aa")])
        with open_ledger(path) as ledger:
            index = ledger.index
            assert action(index, LANE, "a", "00000000000000aa") is same
            assert action(index, LANE, "a", "00000000000000bb") is changed
            assert action(index, LANE, "unknown", "00000000000000aa") is Action.SEND
            prior = index.get(LANE, "a")
            assert prior is not None
            assert decide(prior, "00000000000000aa") is same
            assert decide(prior, "00000000000000bb") is changed

    def test_the_latest_record_decides(self, path: Path) -> None:
        write(path, [outcome("a", Status.CREATED), outcome("a", Status.DELETED)])
        with open_ledger(path) as ledger:
            assert action(ledger.index, LANE, "a", "00112233aabbccdd") is Action.SEND

    def test_a_failed_ambiguous_attempt_is_exposed(self, path: Path) -> None:
        write(path, [outcome("a", Status.FAILED, ambiguous=True), outcome("b", Status.FAILED)])
        with open_ledger(path) as ledger:
            a, b = ledger.index.get(LANE, "a"), ledger.index.get(LANE, "b")
            assert a is not None and a.ambiguous and a.status is Status.FAILED
            assert b is not None and not b.ambiguous

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
                assert action(index, LANE, "a", original) is Action.SKIP
                assert action(index, LANE, "a", duplicate) is Action.SKIP
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
            assert action(ledger.index, LANE, "a", "00000000000000ff") is Action.SKIP
            assert action(ledger.index, LANE, "a", "00000000000000aa") is Action.SKIP
            assert action(ledger.index, LANE, "a", "00000000000000bb") is Action.DRIFT

    def test_an_ambiguous_attempt_survives_an_invalid_edit(self, path: Path) -> None:
        write(path, [outcome("a", Status.FAILED, "00000000000000aa", ambiguous=True)])
        write(path, [outcome("a", Status.INVALID, "00000000000000ff")])
        with open_ledger(path) as ledger:
            prior = ledger.index.get(LANE, "a", "00000000000000bb")  # fixed: new content
            assert prior is not None and prior.status is Status.FAILED and prior.ambiguous
            assert carries_ambiguity(prior)  # a resend of the fixed row starts ambiguous


class TestFingerprintSchemes:
    """A record's fingerprint is kept only if its run header names this version's scheme."""

    @pytest.mark.parametrize("way", ["fast-parse", "slow-parse", "saved-index"])
    def test_only_fingerprints_of_the_current_scheme_are_kept(self, path: Path, way: str) -> None:
        # A lone surrogate in a name sends every chunk down the line-by-line parser.
        a = "a-\udc80" if way == "slow-parse" else "a"

        def fingerprinted(name: str, *, row: int, fingerprint: int) -> Outcome:
            return replace(outcome(name, row=row), fingerprint=fingerprint)

        # A run of an earlier bulk (no scheme in its header), then one of this version's.
        append_run(path, None, [fingerprinted(a, row=1, fingerprint=1)])
        append_run(
            path,
            FINGERPRINTS,
            [fingerprinted("b", row=2, fingerprint=2), fingerprinted(a, row=1, fingerprint=3)],
        )
        # A run that named another scheme; with a saved index, it is saved as it stands here,
        # and the records after it are still its own.
        append_run(path, "polars-hash-1", [fingerprinted("c", row=3, fingerprint=4)])
        if way == "saved-index":
            save(path)
        append_lines(path, [fingerprinted("d", row=4, fingerprint=5)])

        with open_ledger(path, dry_run=True) as ledger:
            index = ledger.index
            assert index.image_records == (4 if way == "saved-index" else 0)
            assert sorted(index.unchanged["fingerprint"].to_list()) == [2, 3]
            assert {name: index.get(LANE, name).fingerprinted for name in (a, "b", "c", "d")} == {  # type: ignore[union-attr]
                a: True,
                "b": True,
                "c": False,
                "d": False,
            }
            assert not index.current_scheme
        with open_ledger(path) as ledger:  # a run of this version's: its header says so
            pass
        with open_ledger(path, dry_run=True) as ledger:
            assert ledger.index.current_scheme


def append_run(path: Path, scheme: str | None, outcomes: list[Outcome]) -> None:
    """A run header naming ``scheme`` (none: as written before schemes were), then records."""
    header = json.loads(header_to_json("run", INPUT, TARGET, {}))
    if scheme is None:
        del header["fingerprints"]
    else:
        header["fingerprints"] = scheme
    with path.open("a") as file:
        file.write(json.dumps(header) + "\n")
    append_lines(path, outcomes)


def append_lines(path: Path, outcomes: list[Outcome]) -> None:
    with path.open("a") as file:
        file.writelines(record_to_json(item) + "\n" for item in outcomes)


def save(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        assert save_index(fd, path)
    finally:
        os.close(fd)
