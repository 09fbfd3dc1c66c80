"""The settings of a run: every numeric option within its range, and an endpoint URL botocore takes.

The ranges live in ``Settings.__post_init__`` alone, so the library refuses what the command line
refuses; through the command line a bad value is exit 2, one line, no ledger and no call made.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulk import Settings, UsageError
from bulk.emulator import Emulator, EmulatorConfig, threaded_emulator
from bulk.settings import MAX_ATTEMPTS, MAX_BURST, MAX_CONCURRENCY, MAX_RATE, MAX_TIMEOUT

from .torture import cli, one_line_error, write_csv

NAN, INF = math.nan, math.inf


class TestRanges:
    @pytest.mark.parametrize(
        ("field", "value", "expect"),
        [
            ("rate", NAN, "--rate nan is not a finite number; use 0 to 10000"),
            ("rate", INF, "--rate inf is not a finite number; use 0 to 10000"),
            ("rate", -INF, "--rate -inf is not a finite number"),
            ("rate", -3.0, "--rate -3 must be at least 0"),
            ("rate", MAX_RATE + 1, "--rate 10001 is too large; use 0 to 10000"),
            ("burst", 0, "--burst 0 must be at least 1"),
            ("burst", MAX_BURST + 1, "--burst 1001 is too large; use 1 to 1000"),
            ("concurrency", 0, "--concurrency 0 must be at least 1"),
            ("concurrency", 1_000_000, "--concurrency 1000000 is too large; use 1 to 1024"),
            ("max_attempts", 0, "--max-attempts 0 must be at least 1"),
            ("max_attempts", MAX_ATTEMPTS + 1, "--max-attempts 101 is too large; use 1 to 100"),
            ("timeout", 0.0, "--timeout 0 must be more than 0"),
            ("timeout", -1.0, "--timeout -1 must be more than 0"),
            ("timeout", NAN, "--timeout nan is not a finite number; use more than 0 and at most"),
            ("timeout", INF, "--timeout inf is not a finite number"),
            ("timeout", MAX_TIMEOUT * 2, "--timeout 7200 is too large"),
            ("emulator_rate", NAN, "--emulator-rate nan is not a finite number"),
            ("emulator_burst", 0, "--emulator-burst 0 must be at least 1"),
        ],
    )
    def test_out_of_range_names_the_option_and_value(
        self, field: str, value: float, expect: str
    ) -> None:
        with pytest.raises(UsageError) as caught:
            Settings(**{field: value})  # type: ignore[arg-type]
        assert str(caught.value).startswith(expect), str(caught.value)

    def test_the_bounds_themselves_are_accepted(self) -> None:
        low = Settings(rate=0, burst=1, concurrency=1, max_attempts=1, timeout=0.001)
        high = Settings(
            rate=MAX_RATE,
            burst=MAX_BURST,
            concurrency=MAX_CONCURRENCY,
            max_attempts=MAX_ATTEMPTS,
            timeout=MAX_TIMEOUT,
        )
        assert (low.rate, high.concurrency) == (0, 1024)

    def test_too_large_says_why_the_bound_is_there(self) -> None:
        with pytest.raises(UsageError, match=r"\(calls in flight\)"):
            Settings(concurrency=MAX_CONCURRENCY + 1)


class TestEndpointUrl:
    @pytest.mark.parametrize(
        ("url", "expect"),
        [
            (
                "127.0.0.1:4568",
                "--endpoint-url '127.0.0.1:4568' has no scheme; pass http://127.0.0.1:4568",
            ),
            ("localhost:4566", "has no scheme; pass http://localhost:4566"),
            ("", "--endpoint-url is empty; pass one like http://127.0.0.1:4568"),
            ("ftp://example.com", "must start with http:// or https://"),
            ("http://", "'http://' has no valid host name"),
            ("http://exa mple.com", "has no valid host name"),
            ("http://127.0.0.1:99999", "is not a valid URL (Port out of range 0-65535)"),
            ("http://[::1", "is not a valid URL"),
        ],
    )
    def test_a_bad_url_is_a_usage_error(self, url: str, expect: str) -> None:
        with pytest.raises(UsageError) as caught:
            Settings(endpoint_url=url)
        assert expect in str(caught.value)

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:4566",
            "https://email.eu-west-1.amazonaws.com/",
            "HTTP://LOCALHOST:4566",
            "http://[::1]:4566",
            "http://user:secret@127.0.0.1:4566",
        ],
    )
    def test_a_good_url_is_kept(self, url: str) -> None:
        assert Settings(endpoint_url=url).endpoint_url == url

    @pytest.mark.parametrize(
        "url", ["http://user:s3cret@127.0.0.1:99999", "user:s3cret@127.0.0.1:4566"]
    )
    def test_the_message_never_shows_a_password(self, url: str) -> None:
        with pytest.raises(UsageError) as caught:
            Settings(endpoint_url=url)
        assert "s3cret" not in str(caught.value)
        assert "127.0.0.1" in str(caught.value)


# -- through the command line -----------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[Emulator]:
    """An emulator the run would send to, to show that nothing was sent."""
    with threaded_emulator(EmulatorConfig(rate=0)) as emulator:
        yield emulator


@pytest.fixture
def tenants(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "tenants.csv", [{"ConfigurationSetName": n} for n in "ab"])


def no_ledger(path: Path) -> bool:
    return not Path(f"{path}.ledger.jsonl").exists()


class TestCommandLine:
    @pytest.mark.parametrize(
        ("option", "value", "expect"),
        [
            ("--rate", "nan", "bulk: error: --rate nan is not a finite number; use 0 to 10000"),
            ("--rate", "inf", "bulk: error: --rate inf is not a finite number"),
            ("--concurrency", "1000000", "bulk: error: --concurrency 1000000 is too large"),
            ("--timeout", "nan", "bulk: error: --timeout nan is not a finite number"),
            ("--max-attempts", "1000", "bulk: error: --max-attempts 1000 is too large"),
        ],
    )
    def test_a_bad_value_is_one_line_exit_2_nothing_sent(
        self, tenants: Path, served: Emulator, option: str, value: str, expect: str
    ) -> None:
        result = cli("provision", tenants, "--endpoint-url", served.url, option, value)
        assert result.exit_code == 2
        assert one_line_error(result.stderr).startswith(expect)
        assert served.stats()["calls"] == {}, "a call was made"
        assert no_ledger(tenants), "a ledger was written"

    def test_an_endpoint_without_a_scheme_says_what_to_pass(self, tenants: Path) -> None:
        result = cli("provision", tenants, "--endpoint-url", "127.0.0.1:4568")
        assert result.exit_code == 2
        line = one_line_error(result.stderr)
        assert line == (
            "bulk: error: --endpoint-url '127.0.0.1:4568' has no scheme; pass "
            "http://127.0.0.1:4568 (or https:// if the endpoint speaks TLS)"
        )
        assert no_ledger(tenants)

    def test_a_bad_emulator_rate_is_refused_before_the_emulator_starts(self, tenants: Path) -> None:
        result = cli("provision", tenants, "--emulator", "--emulator-rate", "nan")
        assert result.exit_code == 2
        assert "--emulator-rate nan" in one_line_error(result.stderr)
        assert result.stdout == ""
        assert no_ledger(tenants)


class TestRoleArn:
    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:iam::123456789012:role/Deploy",
            "arn:aws-cn:iam::123456789012:role/path/to/Deploy",
            "arn:aws-us-gov:iam::123456789012:role/Name+=,.@-_",
        ],
    )
    def test_a_role_arn_is_kept(self, arn: str) -> None:
        assert Settings(role_arn=arn).role_arn == arn

    @pytest.mark.parametrize(
        "arn",
        [
            "Deploy",
            "arn:aws:iam::12345:role/Deploy",
            "arn:aws:iam::123456789012:user/Deploy",
            "arn:aws:sts::123456789012:assumed-role/Deploy/s",
            "arn:aws:iam::123456789012:role/",
        ],
    )
    def test_anything_else_is_a_usage_error_naming_it(self, arn: str) -> None:
        with pytest.raises(UsageError) as caught:
            Settings(role_arn=arn)
        assert str(caught.value) == (
            f"--role-arn {arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
        )
