"""Where a run and each row go: the order of Region sources, and Regions that do not exist.

The run's Region: ``--region``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the run's profile;
a row's: its Region cell, else its Profile's Region, else the run's. Never a guessed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bulk.emulator import Emulator, EmulatorConfig, threaded_emulator
from bulk.errors import UsageError
from bulk.input.regions import (
    NO_REGION,
    RunRegion,
    closest_region,
    known_regions,
    partition_of,
    profile_region,
    region_problem,
    run_region,
)
from bulk.input.validate import Validator
from bulk.ledger.reader import read_records
from bulk.models import InputRow, Lane, Outcome, Row
from bulk.settings import Settings

from .conftest import ACCESS_KEY
from .torture import cli, latest_by_row, one_line_error, write_csv

CONFIG = f"""\
[default]
region = us-west-2

[profile eu]
region = eu-west-1
aws_access_key_id = {ACCESS_KEY}
aws_secret_access_key = emulator-secret

[profile typo]
region = eu-west-99
aws_access_key_id = {ACCESS_KEY}
aws_secret_access_key = emulator-secret

[profile bare]
aws_access_key_id = {ACCESS_KEY}
aws_secret_access_key = emulator-secret
"""


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Region in the environment, and a shared config that names none."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_region: None) -> Path:
    """A shared config file with profiles that do and do not name a Region."""
    path = tmp_path / "aws-config"
    path.write_text(CONFIG)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    return path


def lane_of(result: Row | Outcome) -> Lane:
    assert isinstance(result, Row), result
    return result.lane


def invalid(result: Row | Outcome) -> Outcome:
    assert isinstance(result, Outcome), result
    return result


def record(**cells: str | None) -> InputRow:
    return InputRow(1, {"ConfigurationSetName": "tenant-1", **cells})


class TestKnownRegions:
    def test_every_partition_is_known(self) -> None:
        assert {"us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"} <= known_regions()

    @pytest.mark.parametrize(
        ("typed", "closest"),
        [
            ("us-est-1", "us-east-1"),  # not us-west-1: the longer common prefix wins a tie
            ("eu-west-99", "eu-west-1"),
            ("US-EAST-1", "us-east-1"),
            ("us-east1", "us-east-1"),
            ("Virginia", None),
        ],
    )
    def test_closest(self, typed: str, closest: str | None) -> None:
        assert closest_region(typed) == closest

    def test_known_region_has_no_problem(self) -> None:
        assert region_problem("ap-southeast-5") is None
        assert region_problem("eusc-de-east-1") is None

    def test_unknown_region_names_the_closest(self) -> None:
        assert region_problem("us-est-1") == (
            "is not a known AWS Region; did you mean 'us-east-1'?"
        )

    def test_another_endpoint_checks_only_the_shape(self) -> None:
        assert region_problem("xx-moon-1", known_only=False) is None
        assert region_problem("US East", known_only=False) == (
            "is not a Region name like 'us-east-1'"
        )


class TestPartition:
    """The partition an ARN names, from botocore's endpoint data: a set's ARN in China or
    GovCloud that said ``aws`` would name no resource."""

    @pytest.mark.parametrize(
        ("region", "partition"),
        [
            ("us-east-1", "aws"),
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-gov-east-2", "aws-us-gov"),  # not listed yet: by the partition's pattern
            ("us-iso-east-1", "aws-iso"),
        ],
    )
    def test_each_region_is_in_its_partition(self, region: str, partition: str) -> None:
        assert partition_of(region) == partition

    def test_a_region_no_partition_claims_is_aws(self) -> None:
        # An emulator's or a private endpoint's own Region name.
        assert partition_of("zz-local-1") == "aws"


class TestRunRegion:
    def test_option_beats_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
        assert run_region("ap-south-1", None) == RunRegion("ap-south-1", "--region")

    def test_aws_region_beats_aws_default_region(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
        assert run_region(None, None) == RunRegion("eu-west-1", "AWS_REGION")

    def test_aws_default_region(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AWS_REGION", raising=False)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
        assert run_region(None, None) == RunRegion("eu-west-2", "AWS_DEFAULT_REGION")

    def test_the_profiles_region_comes_last(self, aws_config: Path) -> None:
        assert run_region(None, "eu") == RunRegion("eu-west-1", "profile 'eu'")
        assert run_region(None, None) == RunRegion("us-west-2", "profile 'default'")

    def test_aws_profile_names_the_runs_profile(
        self, aws_config: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AWS_PROFILE", "eu")
        assert run_region(None, None) == RunRegion("eu-west-1", "profile 'eu'")

    def test_none_anywhere_is_none_not_a_guess(self, aws_config: Path) -> None:
        found = run_region(None, "bare")
        assert found.region is None
        assert str(found) == (
            "none (not in --region, AWS_REGION, AWS_DEFAULT_REGION or profile 'bare')"
        )

    def test_a_missing_profile_is_left_to_the_client(self, aws_config: Path) -> None:
        assert profile_region("nope") is None
        assert run_region(None, "nope").region is None
        assert run_region("eu-west-1", "nope").region == "eu-west-1"

    def test_display_form(self) -> None:
        assert str(RunRegion("eu-west-1", "AWS_REGION")) == "eu-west-1 (AWS_REGION)"

    @pytest.mark.parametrize(
        ("option", "variable", "message"),
        [
            ("us-est-1", None, "Region 'us-est-1' (from --region) is not a known AWS Region; "
             "did you mean 'us-east-1'?"),
            (None, "eu-west-99", "Region 'eu-west-99' (from AWS_REGION) is not a known AWS "
             "Region; did you mean 'eu-west-1'?"),
        ],
    )  # fmt: skip
    def test_an_unknown_region_is_refused(
        self,
        monkeypatch: pytest.MonkeyPatch,
        option: str | None,
        variable: str | None,
        message: str,
    ) -> None:
        if variable is not None:
            monkeypatch.setenv("AWS_REGION", variable)
        with pytest.raises(UsageError) as caught:
            run_region(option, None)
        assert str(caught.value) == message

    def test_an_unknown_profile_region_is_refused(self, aws_config: Path) -> None:
        with pytest.raises(UsageError, match="'eu-west-99' \\(from profile 'typo'\\)"):
            run_region(None, "typo")

    def test_another_endpoint_allows_an_unknown_region(self) -> None:
        assert run_region("xx-moon-1", None, known_only=False).region == "xx-moon-1"
        with pytest.raises(UsageError, match="is not a Region name like 'us-east-1'"):
            run_region("US East", None, known_only=False)

    def test_settings_resolve_it_and_the_emulator_keeps_the_check(self) -> None:
        endpoint = "http://127.0.0.1:4566"
        assert Settings().run_region() == RunRegion("us-east-1", "AWS_DEFAULT_REGION")
        assert Settings(region="xx-moon-1", endpoint_url=endpoint).run_region().region
        with pytest.raises(UsageError, match="did you mean 'us-east-1'"):
            Settings(region="us-est-1", endpoint_url=endpoint, emulator=True).run_region()


class TestRowRegion:
    def test_a_profile_cell_uses_that_profiles_region(self, aws_config: Path) -> None:
        check = Validator("sesv2", region="us-east-1")
        assert lane_of(check.validate(record(Profile="eu"))) == Lane("sesv2", "eu-west-1", "eu")
        # A Region cell beats it; a profile that names none falls back to the run's.
        assert lane_of(check.validate(record(Profile="eu", Region="ap-south-1"))).region == (
            "ap-south-1"
        )
        assert lane_of(check.validate(record(Profile="bare"))).region == "us-east-1"

    def test_an_unknown_region_cell_names_the_closest(self) -> None:
        outcome = invalid(
            Validator("sesv2", region="us-east-1").validate(record(Region="us-est-1"))
        )
        assert outcome.code == "InvalidRegion"
        assert outcome.message == (
            "column Region: 'us-est-1' is not a known AWS Region; did you mean 'us-east-1'?"
        )

    def test_a_profile_with_an_unknown_region(self, aws_config: Path) -> None:
        outcome = invalid(Validator("sesv2", region="us-east-1").validate(record(Profile="typo")))
        assert outcome.code == "InvalidRegion"
        assert outcome.message == (
            "column Profile: profile 'typo' has region 'eu-west-99', which is not a known "
            "AWS Region; did you mean 'eu-west-1'?"
        )

    def test_another_endpoint_allows_an_unknown_region_cell(self) -> None:
        check = Validator("sesv2", region="us-east-1", known_only=False)
        assert lane_of(check.validate(record(Region="xx-moon-1"))).region == "xx-moon-1"

    def test_without_a_run_region_rows_need_their_own(self, aws_config: Path) -> None:
        check = Validator("sesv2", region=None, columns=["ConfigurationSetName", "Region"])
        assert lane_of(check.validate(record(Region="eu-west-2"))).region == "eu-west-2"
        assert lane_of(check.validate(record(Profile="eu"))).region == "eu-west-1"
        outcome = invalid(check.validate(record()))
        assert outcome.code == "NoRegion"
        assert outcome.message == (
            "no AWS Region for this row: fill the Region cell, pass --region, set AWS_REGION, "
            "or set region in profile 'default'"
        )
        assert check.claim("tenant-1", 1) is False  # nothing to claim it in

    def test_without_a_run_region_or_routing_columns_nothing_can_run(self) -> None:
        with pytest.raises(UsageError) as caught:
            Validator("sesv2", region=None, columns=["ConfigurationSetName", "TlsPolicy"])
        assert str(caught.value) == NO_REGION


# -- through the command line ------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[Emulator]:
    """An unthrottled emulator served from a thread, as the command line's target."""
    with threaded_emulator(EmulatorConfig(rate=0)) as emulator:
        yield emulator


def provision(path: Path, emulator: Emulator, *more: str) -> tuple[int, str]:
    result = cli("provision", path, "--endpoint-url", emulator.url, "--rate", "0", *more)
    return result.exit_code, result.stderr


def names_in(emulator: Emulator, region: str) -> list[str]:
    return emulator.state.names((ACCESS_KEY, region))


def ledger_region(path: Path) -> str:
    headers = [r for r in read_records(Path(f"{path}.ledger.jsonl")) if r.get("kind") == "run"]
    return str(headers[-1]["target"]["region"])


def two_rows(path: Path, **cells: str) -> Path:
    return write_csv(path, [{"ConfigurationSetName": f"tenant-{i}", **cells} for i in range(2)])


class TestCommandLine:
    def test_aws_region_is_honoured(
        self, tmp_path: Path, served: Emulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = two_rows(tmp_path / "t.csv")
        monkeypatch.setenv("AWS_REGION", "eu-west-1")  # AWS_DEFAULT_REGION is us-east-1
        assert provision(path, served)[0] == 0
        assert names_in(served, "eu-west-1") == ["tenant-0", "tenant-1"]
        assert names_in(served, "us-east-1") == []
        assert ledger_region(path) == "eu-west-1"  # the ledger records the resolved Region

    def test_aws_default_region_after_it(
        self, tmp_path: Path, served: Emulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = two_rows(tmp_path / "t.csv")
        monkeypatch.delenv("AWS_REGION", raising=False)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
        assert provision(path, served)[0] == 0
        assert names_in(served, "eu-west-2") == ["tenant-0", "tenant-1"]

    def test_region_option_beats_both(
        self, tmp_path: Path, served: Emulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = two_rows(tmp_path / "t.csv")
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        assert provision(path, served, "--region", "ap-south-1")[0] == 0
        assert names_in(served, "ap-south-1") == ["tenant-0", "tenant-1"]
        # The same ledger, resolved again from the environment: another Region, refused.
        code, stderr = provision(path, served)
        assert code == 2
        assert "belongs to another region: 'ap-south-1' in the ledger, 'eu-west-1'" in (
            one_line_error(stderr)
        )

    def test_a_profile_cell_goes_to_its_profiles_region(
        self, tmp_path: Path, served: Emulator, aws_config: Path
    ) -> None:
        path = write_csv(
            tmp_path / "t.csv",
            [
                {"ConfigurationSetName": "in-eu", "Profile": "eu"},
                {"ConfigurationSetName": "in-run", "Profile": ""},
            ],
        )
        assert provision(path, served, "--region", "us-east-2")[0] == 0
        assert names_in(served, "eu-west-1") == ["in-eu"]
        assert names_in(served, "us-east-2") == ["in-run"]

    def test_no_region_anywhere_is_exit_2_and_nothing_happens(
        self, tmp_path: Path, served: Emulator, no_region: None
    ) -> None:
        path = two_rows(tmp_path / "t.csv")
        code, stderr = provision(path, served)
        assert code == 2
        assert one_line_error(stderr) == f"bulk: error: {NO_REGION}"
        assert served.stats()["calls"] == {}
        assert not Path(f"{path}.ledger.jsonl").exists()

    def test_no_run_region_when_every_row_names_one(
        self, tmp_path: Path, served: Emulator, no_region: None
    ) -> None:
        path = write_csv(
            tmp_path / "t.csv",
            [
                {"ConfigurationSetName": "a", "Region": "eu-west-1"},
                {"ConfigurationSetName": "b", "Region": ""},
            ],
        )
        assert provision(path, served)[0] == 1
        assert names_in(served, "eu-west-1") == ["a"]
        rows = latest_by_row(Path(f"{path}.ledger.jsonl"))
        assert (rows[1]["status"], rows[2]["status"], rows[2]["code"]) == (
            "created",
            "invalid",
            "NoRegion",
        )

    def test_an_unknown_run_region_is_exit_2_with_the_closest(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = two_rows(tmp_path / "t.csv")
        monkeypatch.setenv("AWS_REGION", "us-est-1")
        result = cli("provision", path, "--emulator")
        assert result.exit_code == 2
        assert one_line_error(result.stderr) == (
            "bulk: error: Region 'us-est-1' (from AWS_REGION) is not a known AWS Region; "
            "did you mean 'us-east-1'?"
        )
        assert not Path(f"{path}.ledger.jsonl").exists()

    def test_an_unknown_region_cell_makes_that_row_invalid(self, tmp_path: Path) -> None:
        path = write_csv(
            tmp_path / "t.csv",
            [
                {"ConfigurationSetName": "good", "Region": "eu-west-1"},
                {"ConfigurationSetName": "typo", "Region": "eu-west-99"},
                {"ConfigurationSetName": "default", "Region": ""},
            ],
        )
        result = cli("provision", path, "--emulator", "--emulator-rate", "0", "--rate", "0")
        assert result.exit_code == 1, result.stderr
        rows = latest_by_row(Path(f"{path}.ledger.jsonl"))
        assert [rows[n]["status"] for n in (1, 2, 3)] == ["created", "invalid", "created"]
        assert rows[2]["code"] == "InvalidRegion"
        assert rows[2]["message"] == (
            "column Region: 'eu-west-99' is not a known AWS Region; did you mean 'eu-west-1'?"
        )

    def test_another_endpoint_allows_an_unknown_well_formed_region(
        self, tmp_path: Path, served: Emulator
    ) -> None:
        path = two_rows(tmp_path / "t.csv")
        assert provision(path, served, "--region", "xx-moon-1")[0] == 0
        assert names_in(served, "xx-moon-1") == ["tenant-0", "tenant-1"]
