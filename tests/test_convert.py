"""Cell converters: what each column kind accepts, the value it gives, and what it refuses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bulk.input.columns import Column, Problem, columns_for
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


class TestLists:
    @pytest.mark.parametrize(
        ("cell", "expected"),
        [
            ("BOUNCE,COMPLAINT", ["BOUNCE", "COMPLAINT"]),
            (" bounce ,  COMPLAINT ", ["BOUNCE", "COMPLAINT"]),
            ("COMPLAINT", ["COMPLAINT"]),
            ("[]", []),
            (["BOUNCE", " complaint"], ["BOUNCE", "COMPLAINT"]),  # a Parquet list
            ([], []),
        ],
    )
    def test_items(self, cell: object, expected: list[str]) -> None:
        assert convert("SuppressedReasons", cell) == expected

    @pytest.mark.parametrize(
        ("cell", "code", "message"),
        [
            (
                "BOUNCE,SPAM",
                "InvalidEnum",
                "column SuppressedReasons: 'SPAM' is not one of BOUNCE, ",
            ),
            ("BOUNCE,", "InvalidList", "'BOUNCE,' has an empty item (item 2); separate items"),
            (["BOUNCE", None], "InvalidList", "has an empty item (item 2)"),
            (1.5, "InvalidList", "column SuppressedReasons: 1.5 is not a list"),
        ],
    )
    def test_refusals(self, cell: object, code: str, message: str) -> None:
        problem = refusal("SuppressedReasons", cell)
        assert problem.code == code
        assert message in problem.message

    @pytest.mark.parametrize(
        "column",
        ["SendingPoolName", "TlsPolicy", "SendingEnabled", "LastFreshStart", "MaxDeliverySeconds"],
    )
    def test_brackets_in_a_column_of_one_value(self, column: str) -> None:
        problem = refusal(column, "[]")
        assert (problem.code, problem.message) == (
            "NotAList",
            f"column {column}: '[]' is an empty list, but {column} holds one value, not a list; "
            "leave the cell empty to leave it unset",
        )


class TestUnion:
    @pytest.mark.parametrize(
        ("cell", "expected"),
        [("DefaultScheme", "DefaultScheme"), ("smimescheme", "SmimeScheme")],
    )
    def test_the_choice(self, cell: str, expected: str) -> None:
        assert convert("SigningScheme", cell) == expected

    def test_an_unknown_choice(self) -> None:
        problem = refusal("SigningScheme", "Default")
        assert problem.code == "InvalidChoice"
        assert "'Default' is not one of DefaultScheme, SmimeScheme" in problem.message


class TestKindsNoModelHasYet:
    """Decimal numbers and JSON: for members a future model may add (floats, maps)."""

    def test_numbers(self) -> None:
        number = converter(Column("Ratio", "number"))
        assert number("1.5") == 1.5
        assert number(2) == 2.0
        for bad in ("nan", "many", True, "[]"):
            with pytest.raises(Problem, match="column Ratio: "):
                number(bad)

    def test_json(self) -> None:
        document = converter(Column("Labels", "json"))
        assert document('{"a": "b"}') == {"a": "b"}
        assert document("[]") == []  # a list of structures may be empty
        with pytest.raises(Problem, match=r"column Labels: '\{' is not JSON \(Expecting"):
            document("{")
