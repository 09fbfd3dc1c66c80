"""Cell converters: what each column kind accepts, the value it gives, and what it refuses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bulk.input.columns import Problem, columns_for
from bulk.input.convert import as_text, converter, tag_value


def convert(column: str, cell: object, service: str = "sesv2") -> object:
    """The request value of ``cell`` in ``column`` of ``service``."""
    return converter(columns_for(service)[column])(cell)


def refusal(column: str, cell: object) -> Problem:
    with pytest.raises(Problem) as caught:
        convert(column, cell)
    assert "\n" not in caught.value.message
    return caught.value


class TestValues:
    @pytest.mark.parametrize("text", ["require", "Require", "REQUIRE"])
    def test_enum_case_is_normalised(self, text: str) -> None:
        assert convert("TlsPolicy", text) == "REQUIRE"

    @pytest.mark.parametrize(
        ("cell", "expected"),
        [
            ("true", True),
            ("TRUE", True),
            ("Yes", True),
            ("1", True),
            ("false", False),
            ("False", False),
            ("NO", False),
            ("0", False),
            (True, True),  # Parquet Boolean
            (0, False),  # Parquet integer column
        ],
    )
    def test_booleans(self, cell: object, expected: bool) -> None:
        assert convert("SendingEnabled", cell) is expected

    @pytest.mark.parametrize(
        ("cell", "expected"),
        [
            ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
            ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
            ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # no zone: UTC
            ("2024-05-01 12:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
            ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
            ("1714564800", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # epoch seconds
            ("1714564800.5", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
            (1714564800, datetime(2024, 5, 1, 12, tzinfo=UTC)),  # Parquet int epoch
            (datetime(2024, 5, 1, 12), datetime(2024, 5, 1, 12, tzinfo=UTC)),  # naive
            (
                datetime(2024, 5, 1, 7, tzinfo=timezone(timedelta(hours=-5))),
                datetime(2024, 5, 1, 12, tzinfo=UTC),
            ),
            (date(2024, 5, 1), datetime(2024, 5, 1, tzinfo=UTC)),
        ],
    )
    def test_timestamps_become_aware_utc(self, cell: object, expected: datetime) -> None:
        stamp = convert("LastFreshStart", cell)
        assert isinstance(stamp, datetime)
        assert stamp == expected
        assert stamp.utcoffset() == timedelta(0)

    @pytest.mark.parametrize(("cell", "expected"), [("600", 600), (900, 900), (1200.0, 1200)])
    def test_integers(self, cell: object, expected: int) -> None:
        assert convert("MaxDeliverySeconds", cell) == expected

    @pytest.mark.parametrize(("cell", "expected"), [("pool-a", "pool-a"), (12345, "12345")])
    def test_text_and_integer_cells_are_text(self, cell: object, expected: str) -> None:
        assert convert("SendingPoolName", cell) == expected
        assert as_text(cell) == expected

    def test_tag_values(self) -> None:
        assert tag_value("tag:team", "growth") == "growth"
        assert tag_value("tag:cost-center", 1001) == "1001"  # a Parquet integer column


class TestRefusals:
    @pytest.mark.parametrize(
        ("column", "cell", "code", "message"),
        [
            ("SendingPoolName", 1.5, "InvalidValue", "column SendingPoolName: 1.5 is not text"),
            (
                "TlsPolicy",
                "STRICT",
                "InvalidEnum",
                "column TlsPolicy: 'STRICT' is not one of REQUIRE, OPTIONAL",
            ),
            (
                "SendingEnabled",
                "maybe",
                "InvalidBoolean",
                "column SendingEnabled: 'maybe' is not a boolean (use true/false, 1/0, yes/no)",
            ),
            ("SendingEnabled", 2, "InvalidBoolean", "column SendingEnabled: 2 is not a boolean"),
            (
                "LastFreshStart",
                "last tuesday",
                "InvalidTimestamp",
                "column LastFreshStart: 'last tuesday' is not a timestamp (ISO-8601 like "
                "2024-05-01T12:00:00Z, or epoch seconds)",
            ),
            (
                "LastFreshStart",
                1714564800000,
                "InvalidTimestamp",
                "(epoch seconds, not milliseconds)",
            ),
            ("LastFreshStart", float("nan"), "InvalidTimestamp", "nan is not a timestamp"),
            (
                "MaxDeliverySeconds",
                "ten",
                "InvalidNumber",
                "column MaxDeliverySeconds: 'ten' is not a whole number (300-50400)",
            ),
            (
                "MaxDeliverySeconds",
                "299",
                "InvalidNumber",
                "column MaxDeliverySeconds: 299 is out of range (300-50400)",
            ),
        ],
    )
    def test_refusals(self, column: str, cell: object, code: str, message: str) -> None:
        problem = refusal(column, cell)
        assert problem.code == code
        assert message in problem.message

    @pytest.mark.parametrize(
        ("cell", "message"),
        [
            (True, "column 'tag:team': True is not text"),
            ("a,b", "column 'tag:team': 'a,b' contains ','; tags allow letters, digits"),
        ],
    )
    def test_tag_value_refusals(self, cell: object, message: str) -> None:
        with pytest.raises(Problem) as caught:
            tag_value("tag:team", cell)
        assert caught.value.code == "InvalidTag"
        assert message in caught.value.message
