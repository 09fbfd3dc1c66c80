"""The TenantName column: several names, repeats, bad names, and Pinpoint Email's refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bulk.errors import InputError
from bulk.input.source import open_source
from bulk.input.tenants import tenant_rule
from bulk.input.validate import Validator
from bulk.models import InputRow, Outcome, Row, Status

REGION = "us-east-1"


def validate(cell: Any, service: str = "sesv2") -> Row | Outcome:
    cells = {"ConfigurationSetName": "tenant-0001", "TenantName": cell}
    return Validator(service, region=REGION).validate(InputRow(1, cells))


def tenants(cell: Any) -> tuple[str, ...]:
    result = validate(cell)
    assert isinstance(result, Row), result
    return result.tenants


def refusal(cell: Any) -> str:
    result = validate(cell)
    assert isinstance(result, Outcome) and result.status is Status.INVALID, result
    assert result.code == "InvalidTenantName"
    return result.message


class TestRule:
    def test_the_rule_comes_from_the_model_and_the_documented_limit(self) -> None:
        rule = tenant_rule("sesv2")
        assert rule is not None
        # The model gives min 1 and no max or pattern: 64 and the characters are documented.
        assert (rule.minimum, rule.maximum) == (1, 64)
        assert rule.rule == "a tenant name is 1-64 characters of A-Z a-z 0-9 _ -"

    def test_pinpoint_email_has_no_tenants(self) -> None:
        assert tenant_rule("pinpoint-email") is None


class TestCells:
    @pytest.mark.parametrize(
        ("cell", "expected"),
        [
            ("acme", ("acme",)),
            ("acme,globex", ("acme", "globex")),
            (" acme , globex ,initech", ("acme", "globex", "initech")),
            ("globex,acme,globex,acme", ("globex", "acme")),  # repeats collapse, order kept
            ("t" * 64, ("t" * 64,)),
            ("A-z_0-9", ("A-z_0-9",)),
            ("[]", ()),
            (["acme", " globex", "acme"], ("acme", "globex")),  # a Parquet list
        ],
    )
    def test_names(self, cell: Any, expected: tuple[str, ...]) -> None:
        assert tenants(cell) == expected

    def test_tenants_are_not_in_the_request(self) -> None:
        result = validate("acme")
        assert isinstance(result, Row)
        assert result.request == {"ConfigurationSetName": "tenant-0001"}

    @pytest.mark.parametrize(
        ("cell", "message"),
        [
            (
                "acme corp",
                "column TenantName: 'acme corp' contains ' '; a tenant name is 1-64 characters "
                "of A-Z a-z 0-9 _ -",
            ),
            ("acme,café", "column TenantName: 'café' contains 'é'"),
            ("t" * 65, f"column TenantName: '{'t' * 65}' is 65 characters long"),
            ("acme,,globex", "column TenantName: 'acme,,globex' has an empty name"),
            ("acme,", "column TenantName: 'acme,' has an empty name"),
            ("a;b", "column TenantName: 'a;b' contains ';'"),
            (1.5, "column TenantName: 1.5 is not text"),
            (["acme", None], "holds an item that is not text"),
        ],
    )
    def test_bad_names(self, cell: Any, message: str) -> None:
        assert message in refusal(cell)


class TestPinpointEmail:
    def test_a_tenant_name_column_is_a_file_error(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.csv"
        path.write_text("ConfigurationSetName,TenantName\nacme,t1\n")
        with pytest.raises(InputError) as caught:
            open_source(path, service="pinpoint-email")
        assert caught.value.exit_code == 2
        assert str(caught.value) == (
            f"{path}: column 'TenantName': Pinpoint Email has no tenants; use --service sesv2, "
            "or drop the column"
        )
        assert open_source(path, service="sesv2").count() == 1

    def test_the_validator_alone_makes_the_row_invalid(self) -> None:
        result = validate("acme", service="pinpoint-email")
        assert isinstance(result, Outcome)
        assert (result.code, result.message) == (
            "UnsupportedColumn",
            "column 'TenantName': Pinpoint Email has no tenants; use --service sesv2, or drop "
            "the column",
        )


class TestParquet:
    @pytest.mark.parametrize(
        "column",
        [pl.Series(["acme,globex"]), pl.Series([["acme", "globex"]], dtype=pl.List(pl.String))],
        ids=["text", "list"],
    )
    def test_text_or_a_list_of_text(self, tmp_path: Path, column: pl.Series) -> None:
        path = tmp_path / "tenants.parquet"
        pl.DataFrame({"ConfigurationSetName": ["t"], "TenantName": column}).write_parquet(path)
        [record] = open_source(path, service="sesv2").records()
        result = Validator("sesv2", region=REGION).validate(record)
        assert isinstance(result, Row)
        assert result.tenants == ("acme", "globex")

    def test_a_list_of_numbers_is_a_file_error(self, tmp_path: Path) -> None:
        path = tmp_path / "tenants.parquet"
        frame = {"ConfigurationSetName": ["t"], "TenantName": [[1.5]]}
        pl.DataFrame(frame).write_parquet(path)
        with pytest.raises(InputError, match=r"column 'TenantName' has type List\(Float64\); "):
            open_source(path, service="sesv2")
