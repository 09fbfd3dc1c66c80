"""The resume rules (bulk.ledger.rules): what a resumed run does with a row, and the ambiguous mark.

``decide`` is what :class:`bulk.engine.intake.Intake` applies to every row that validates, and
``carries_ambiguity`` what the engine starts each send from; both are tested here as pure
functions, then through a ledger read back, then through the engine against the emulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulk.emulator import EmulatorConfig
from bulk.emulator import operations as emulator_operations
from bulk.emulator.protocol import ServiceError
from bulk.ledger.records import Prior
from bulk.ledger.rules import Action, carries_ambiguity, decide
from bulk.models import Status

from .ledger_helpers import LANE, RULES, open_ledger, outcome, write
from .torture import emulator_settings, latest_by_row, row_records, run_engine, tenants_file

SAME, CHANGED = "00000000000000aa", "00000000000000bb"


class TestDecide:
    @pytest.mark.parametrize(("status", "same", "changed"), RULES)
    def test_the_rules_of_the_design(self, status: Status, same: Action, changed: Action) -> None:
        prior = Prior(row=1, status=status, digest=SAME)
        assert decide(prior, SAME) is same
        assert decide(prior, CHANGED) is changed

    def test_a_row_never_recorded_is_sent(self) -> None:
        assert decide(None, SAME) is Action.SEND

    def test_a_row_settled_invalid_is_skipped_only_while_unchanged(self) -> None:
        rejected = Prior(row=4, status=Status.INVALID, digest=SAME, code="BadRequestException")
        assert decide(rejected, SAME) is Action.SKIP
        assert decide(rejected, CHANGED) is Action.SEND  # the user fixed it: send again

    def test_a_created_row_whose_request_changed_is_drift_never_a_resend(self) -> None:
        for status in (Status.CREATED, Status.EXISTS):
            assert decide(Prior(row=1, status=status, digest=SAME), CHANGED) is Action.DRIFT

    def test_a_failed_row_is_sent_again_ambiguous_or_not(self) -> None:
        for ambiguous in (False, True):
            failed = Prior(1, Status.FAILED, SAME, "InternalFailure", ambiguous=ambiguous)
            assert decide(failed, SAME) is Action.SEND
            assert decide(failed, CHANGED) is Action.SEND


class TestCarriesAmbiguity:
    def test_only_an_ambiguous_record_makes_an_attempt_ambiguous(self) -> None:
        assert carries_ambiguity(Prior(1, Status.FAILED, SAME, "InternalFailure", ambiguous=True))
        assert not carries_ambiguity(Prior(1, Status.FAILED, SAME, "TooManyRequestsException"))
        assert not carries_ambiguity(Prior(1, Status.DELETED, SAME))
        assert not carries_ambiguity(None)

    def test_ambiguity_sticks_until_the_row_is_settled(self, path: Path) -> None:
        write(path, [outcome("a", Status.FAILED, SAME, ambiguous=True)])
        with open_ledger(path) as ledger:
            prior = ledger.index.get(LANE, "a", SAME)
            assert decide(prior, SAME) is Action.SEND and carries_ambiguity(prior)
            # What the engine records when the resend fails with a 429 (not ambiguous itself).
            ledger.append(
                outcome(
                    "a",
                    Status.FAILED,
                    SAME,
                    code="TooManyRequestsException",
                    ambiguous=carries_ambiguity(prior),
                )
            )
        with open_ledger(path) as ledger:
            prior = ledger.index.get(LANE, "a", SAME)
            assert prior is not None and prior.code == "TooManyRequestsException"
            assert carries_ambiguity(prior)
            ledger.append(outcome("a", Status.CREATED, SAME))
        with open_ledger(path) as ledger:
            prior = ledger.index.get(LANE, "a", SAME)
            assert decide(prior, SAME) is Action.SKIP and not carries_ambiguity(prior)


class TestThroughTheEngine:
    async def test_an_ambiguous_attempt_stays_ambiguous_until_its_set_is_found_created(
        self, tmp_path: Path, emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tenants = tenants_file(tmp_path / "t.csv", 40)
        # Each create is stored, then answered with a 500: with one attempt each, every row
        # ends failed and ambiguous, although the service holds its set.
        config = EmulatorConfig(rate=0, ambiguous_rate=1.0, ambiguous_drop_share=0.0, seed=1)
        async with emulator_factory(config) as emu:
            await run_engine(tenants.path, emulator_settings(emu, max_attempts=1))
            first = row_records(tenants.ledger)
            assert {r["name"] for r in first} == tenants.valid
            assert all(r["status"] == "failed" and r["ambiguous"] is True for r in first)

            # A throttled resume: a 429 stores nothing, so such a failure is not ambiguous by
            # itself; the earlier run's ambiguous attempt keeps the mark on it. The lane may
            # not list its sets, so each is met by its create, as without a listing.
            monkeypatch.setitem(emulator_operations.HANDLERS, "ListConfigurationSets", _denied)
            emu.configure(ambiguous_rate=0.0, rate=1, burst=1)
            await run_engine(tenants.path, emulator_settings(emu, max_attempts=1))
            second = row_records(tenants.ledger)[len(first) :]
            throttled = [r for r in second if r["code"] == "TooManyRequestsException"]
            assert len(throttled) > 20
            assert all(r["status"] == "failed" and r["ambiguous"] is True for r in throttled)

            emu.configure(rate=0)
            await run_engine(tenants.path, emulator_settings(emu))
            latest = latest_by_row(tenants.ledger)
        # AlreadyExists after an ambiguous attempt, this run's or an earlier one's: created.
        assert {r["status"] for r in latest.values()} == {"created"}
        assert {r["message"] for r in latest.values()} == {
            "created by an earlier attempt whose answer was lost"
        }


def _denied(call: Any) -> dict[str, Any]:
    """ListConfigurationSets as a policy that allows only the create answers it."""
    raise ServiceError(403, "AccessDeniedException", "not allowed to list")
