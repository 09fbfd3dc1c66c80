"""Per-row validation: requests built from columns, every row-level error, duplicates, digests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from bulk.errors import UsageError
from bulk.input.validate import Validator
from bulk.models import InputRow, Lane, Outcome, Row, Status

REGION = "us-east-1"


def validator(service: str = "pinpoint-email", **kwargs: Any) -> Validator:
    return Validator(service, region=kwargs.pop("region", REGION), **kwargs)


def record(number: int = 1, **values: Any) -> InputRow:
    """A record; ``tag_team=...`` stands for the column ``tag:team``."""
    cells = {"ConfigurationSetName": f"tenant-{number:04d}"}
    for key, value in values.items():
        cells[key.replace("tag_", "tag:", 1) if key.startswith("tag_") else key] = value
    return InputRow(number, cells)


def row(result: Row | Outcome) -> Row:
    assert isinstance(result, Row), result
    return result


def invalid(result: Row | Outcome) -> Outcome:
    assert isinstance(result, Outcome), result
    assert result.status is Status.INVALID
    return result


class TestValidator:
    def test_bad_default_region_is_a_usage_error(self) -> None:
        with pytest.raises(UsageError, match="region 'US East' is not a Region name"):
            Validator("sesv2", region="US East")


class TestRequest:
    @pytest.mark.parametrize("service", ["pinpoint-email", "sesv2"])
    def test_every_column_is_mapped(self, service: str) -> None:
        result = row(
            validator(service).validate(
                record(
                    7,
                    SendingPoolName="pool-a",
                    TlsPolicy="REQUIRE",
                    ReputationMetricsEnabled="true",
                    LastFreshStart="2024-05-01T12:00:00Z",
                    SendingEnabled="no",
                    CustomRedirectDomain="click.example.com",
                    tag_team="growth",
                    tag_env="prod",
                )
            )
        )
        assert result.number == 7
        assert result.name == "tenant-0007"
        assert result.lane == Lane(service, REGION)
        assert result.request == {
            "ConfigurationSetName": "tenant-0007",
            "DeliveryOptions": {"SendingPoolName": "pool-a", "TlsPolicy": "REQUIRE"},
            "ReputationOptions": {
                "ReputationMetricsEnabled": True,
                "LastFreshStart": datetime(2024, 5, 1, 12, tzinfo=UTC),
            },
            "SendingOptions": {"SendingEnabled": False},
            "TrackingOptions": {"CustomRedirectDomain": "click.example.com"},
            "Tags": [{"Key": "team", "Value": "growth"}, {"Key": "env", "Value": "prod"}],
        }

    def test_structures_without_a_set_member_are_omitted(self) -> None:
        result = row(
            validator().validate(record(TlsPolicy=None, SendingEnabled="yes", tag_team=None))
        )
        assert result.request == {
            "ConfigurationSetName": "tenant-0001",
            "SendingOptions": {"SendingEnabled": True},
        }

    def test_name_only_row_is_a_bare_request(self) -> None:
        assert row(validator().validate(record())).request == {
            "ConfigurationSetName": "tenant-0001"
        }

    def test_tags_keep_column_order(self) -> None:
        result = row(validator().validate(record(tag_z="1", tag_a="2", tag_m="3")))
        assert [tag["Key"] for tag in result.request["Tags"]] == ["z", "a", "m"]

    def test_sesv2_fields(self) -> None:
        result = row(
            validator("sesv2").validate(
                record(
                    HttpsPolicy="require_open_only",
                    CustomRedirectDomain="c.example.com",
                    MaxDeliverySeconds="600",
                )
            )
        )
        assert result.request["TrackingOptions"] == {
            "CustomRedirectDomain": "c.example.com",
            "HttpsPolicy": "REQUIRE_OPEN_ONLY",
        }
        assert result.request["DeliveryOptions"] == {"MaxDeliverySeconds": 600}

    def test_integer_name_from_parquet_is_text(self) -> None:
        result = row(validator().validate(InputRow(1, {"ConfigurationSetName": 12345})))
        assert result.name == "12345"


class TestInvalidRows:
    """Each error class: the code, and a message naming the column and quoting the value."""

    @pytest.mark.parametrize(
        ("values", "code", "message"),
        [
            (
                {"ConfigurationSetName": None},
                "MissingName",
                "column ConfigurationSetName is empty; every row needs a name",
            ),
            (
                {"ConfigurationSetName": "tenant acme!"},
                "InvalidName",
                "column ConfigurationSetName: 'tenant acme!' contains ' ', '!'; "
                "a name is 1-64 characters of A-Z a-z 0-9 _ -",
            ),
            (
                {"ConfigurationSetName": "t" * 70},
                "InvalidName",
                f"column ConfigurationSetName: '{'t' * 70}' is 70 characters long",
            ),
            (
                {"SendingEnabled": "maybe"},
                "InvalidBoolean",
                "column SendingEnabled: 'maybe' is not a boolean (use true/false, 1/0, yes/no)",
            ),
            (
                {"ReputationMetricsEnabled": 2},
                "InvalidBoolean",
                "column ReputationMetricsEnabled: 2 is not a boolean",
            ),
            (
                {"TlsPolicy": "STRICT"},
                "InvalidEnum",
                "column TlsPolicy: 'STRICT' is not one of REQUIRE, OPTIONAL",
            ),
            (
                {"LastFreshStart": "last tuesday"},
                "InvalidTimestamp",
                "column LastFreshStart: 'last tuesday' is not a timestamp (ISO-8601 like "
                "2024-05-01T12:00:00Z, or epoch seconds)",
            ),
            (
                {"LastFreshStart": "2024-13-45"},
                "InvalidTimestamp",
                "column LastFreshStart: '2024-13-45' is not a timestamp",
            ),
            (
                {"LastFreshStart": "1714564800000"},
                "InvalidTimestamp",
                "(epoch seconds, not milliseconds)",
            ),
            (
                {"tag:team": "x" * 257},
                "InvalidTag",
                "is 257 characters; a tag value is at most 256",
            ),
            (
                {"tag:team": "a,b"},
                "InvalidTag",
                "column 'tag:team': 'a,b' contains ','; tags allow letters, digits",
            ),
            (
                {"tag:team": "AWS:owned"},
                "InvalidTag",
                "column 'tag:team': 'AWS:owned' starts with 'aws:', which AWS reserves",
            ),
            (
                {"tag:aws:team": "x"},
                "InvalidTag",
                "column 'tag:aws:team': tag key 'aws:team' starts with 'aws:'",
            ),
            (
                {"tag:" + "k" * 129: "x"},
                "InvalidTag",
                "is 129 characters; a tag key is at most 128",
            ),
            (
                {"Region": "Virginia"},
                "InvalidRegion",
                "column Region: 'Virginia' is not a Region name like 'us-east-1'",
            ),
            (
                {"HttpsPolicy": "REQUIRE"},
                "UnsupportedColumn",
                "column 'HttpsPolicy': pinpoint-email has no such field; remove the column "
                "or use --service sesv2",
            ),
            (
                {"Nonsense": "x"},
                "UnsupportedColumn",
                "column 'Nonsense': pinpoint-email has no such field",
            ),
        ],
    )
    def test_error_classes(self, values: Mapping[str, Any], code: str, message: str) -> None:
        cells = {"ConfigurationSetName": "tenant-0001", **values}
        outcome = invalid(validator().validate(InputRow(3, cells)))
        assert outcome.code == code
        assert message in outcome.message
        assert outcome.row == 3
        assert "\n" not in outcome.message

    @pytest.mark.parametrize(
        ("column", "cell", "code", "message"),
        [
            (
                "MaxDeliverySeconds",
                "299",
                "InvalidNumber",
                "column MaxDeliverySeconds: 299 is out of range (300-50400)",
            ),
            ("MaxDeliverySeconds", "50401", "InvalidNumber", "50401 is out of range"),
            (
                "MaxDeliverySeconds",
                "ten",
                "InvalidNumber",
                "column MaxDeliverySeconds: 'ten' is not a whole number",
            ),
            (
                "HttpsPolicy",
                "HTTPS",
                "InvalidEnum",
                "column HttpsPolicy: 'HTTPS' is not one of REQUIRE, REQUIRE_OPEN_ONLY, OPTIONAL",
            ),
        ],
    )
    def test_sesv2_field_errors(self, column: str, cell: str, code: str, message: str) -> None:
        outcome = invalid(
            validator("sesv2").validate(InputRow(1, {"ConfigurationSetName": "t", column: cell}))
        )
        assert outcome.code == code
        assert message in outcome.message

    @pytest.mark.parametrize("service", ["pinpoint-email", "sesv2"])
    @pytest.mark.parametrize(
        ("values", "code", "message"),
        [
            (
                {f"tag_k{i:02d}": "x" for i in range(51)},
                "TooManyTags",
                "51 tag: columns are set in this row; a configuration set can have at most 50 "
                "tags (SES API reference, Tag); empty 1 of them",
            ),
            (
                {"SendingPoolName": "p" * 65},
                "ValueTooLong",
                f"column SendingPoolName: '{'p' * 65}' is 65 characters; a dedicated IP pool "
                "name is at most 64 characters; shorten it",
            ),
            (
                {"SendingPoolName": "p" * 1_000_000},
                "ValueTooLong",
                "... (1000000 characters) is too long; a dedicated IP pool name is at most 64",
            ),
            (
                {"CustomRedirectDomain": "d" * 254},
                "ValueTooLong",
                "(254 characters) is too long; a domain name is at most 253 characters",
            ),
        ],
        ids=["tags", "pool-name", "pool-name-million", "redirect-domain"],
    )
    def test_documented_limits_the_models_lack(
        self, service: str, values: dict[str, Any], code: str, message: str
    ) -> None:
        outcome = invalid(validator(service).validate(record(**values)))
        assert outcome.code == code
        assert message in outcome.message
        assert len(outcome.message) < 300

    @pytest.mark.parametrize("service", ["pinpoint-email", "sesv2"])
    def test_values_at_the_documented_limits_pass(self, service: str) -> None:
        tags: dict[str, Any] = {f"tag_k{i:02d}": "x" for i in range(50)}
        done = row(
            validator(service).validate(
                record(SendingPoolName="p" * 64, CustomRedirectDomain="d" * 253, **tags)
            )
        )
        assert len(done.request["Tags"]) == 50
        # Empty tag cells are not tags: they do not count.
        empty: dict[str, Any] = {f"tag_e{i:02d}": None for i in range(10)}
        assert len(row(validator(service).validate(record(**tags, **empty))).request["Tags"]) == 50

    def test_botocore_param_validation_is_applied(self) -> None:
        # TrackingOptions requires CustomRedirectDomain: only the model says so.
        outcome = invalid(validator("sesv2").validate(record(HttpsPolicy="REQUIRE")))
        assert outcome.code == "ParamValidation"
        assert outcome.message == (
            "column CustomRedirectDomain is required when HttpsPolicy is set"
        )

    def test_a_passing_form_does_not_hide_a_later_failing_one(self) -> None:
        check = validator("sesv2")
        row(check.validate(record(1, HttpsPolicy="REQUIRE", CustomRedirectDomain="c.example")))
        row(check.validate(record(2, HttpsPolicy="OPTIONAL", CustomRedirectDomain="d.example")))
        assert invalid(check.validate(record(3, HttpsPolicy="REQUIRE"))).code == "ParamValidation"

    def test_every_problem_is_reported_with_the_first_code(self) -> None:
        outcome = invalid(validator().validate(record(SendingEnabled="maybe", TlsPolicy="STRICT")))
        assert outcome.code == "InvalidBoolean"
        assert outcome.message == (
            "column SendingEnabled: 'maybe' is not a boolean (use true/false, 1/0, yes/no); "
            "column TlsPolicy: 'STRICT' is not one of REQUIRE, OPTIONAL"
        )

    def test_control_characters_are_escaped_in_messages(self) -> None:
        outcome = invalid(
            validator().validate(InputRow(1, {"ConfigurationSetName": "evil\x1b[2J\nname"}))
        )
        assert "\x1b" not in outcome.message
        assert "\n" not in outcome.message
        assert r"'evil\x1b[2J\nname'" in outcome.message

    def test_long_values_are_cut_in_messages(self) -> None:
        outcome = invalid(validator().validate(record(SendingEnabled="y" * 5000)))
        assert len(outcome.message) < 300
        assert "(5000 characters)" in outcome.message

    def test_invalid_row_keeps_its_name_for_the_ledger(self) -> None:
        outcome = invalid(validator().validate(record(5, SendingEnabled="maybe")))
        assert outcome.name == "tenant-0005"
        missing = invalid(validator().validate(InputRow(6, {"ConfigurationSetName": None})))
        assert missing.name == ""

    def test_bad_row_data_never_raises(self) -> None:
        cells: dict[str, Any] = {
            "ConfigurationSetName": object(),
            "SendingEnabled": [1],
            "LastFreshStart": float("nan"),
            "TlsPolicy": 3.5,
            "tag:team": b"bytes",
            "Region": 7,
            "Profile": object(),
        }
        outcome = invalid(validator().validate(InputRow(1, cells)))
        assert outcome.code == "InvalidName"


class TestLanes:
    def test_default_lane(self) -> None:
        result = row(validator(profile="ops").validate(record()))
        assert result.lane == Lane("pinpoint-email", REGION, "ops")

    def test_region_and_profile_cells_route_the_row(self) -> None:
        result = row(validator().validate(record(Region="eu-west-1", Profile="tenant-b")))
        assert result.lane == Lane("pinpoint-email", "eu-west-1", "tenant-b")

    def test_empty_routing_cells_use_the_default_lane(self) -> None:
        result = row(validator().validate(record(Region=None, Profile=None)))
        assert result.lane == Lane("pinpoint-email", REGION)

    def test_invalid_region_row_is_given_the_default_lane(self) -> None:
        outcome = invalid(validator().validate(record(Region="moon-base-1a")))
        assert outcome.lane == Lane("pinpoint-email", REGION)

    @pytest.mark.parametrize("region", ["us-gov-west-1", "cn-north-1", "ap-southeast-5"])
    def test_region_shapes(self, region: str) -> None:
        assert row(validator().validate(record(Region=region))).lane.region == region


class TestDuplicates:
    def test_first_row_wins_and_the_duplicate_names_it(self) -> None:
        check = validator()
        first = row(check.validate(InputRow(4, {"ConfigurationSetName": "tenant-a"})))
        row(check.validate(InputRow(5, {"ConfigurationSetName": "tenant-b"})))
        duplicate = invalid(check.validate(InputRow(9, {"ConfigurationSetName": "tenant-a"})))
        assert first.number == 4
        assert duplicate.code == "DuplicateName"
        assert duplicate.message == (
            "column ConfigurationSetName: 'tenant-a' duplicates row 4 (the first row with a "
            "name wins); rename or remove this row"
        )

    def test_same_name_in_another_lane_is_not_a_duplicate(self) -> None:
        check = validator()
        row(check.validate(InputRow(1, {"ConfigurationSetName": "t", "Region": "us-east-1"})))
        row(check.validate(InputRow(2, {"ConfigurationSetName": "t", "Region": "eu-west-1"})))
        row(check.validate(InputRow(3, {"ConfigurationSetName": "t", "Profile": "other"})))
        duplicate = invalid(
            check.validate(InputRow(4, {"ConfigurationSetName": "t", "Region": "eu-west-1"}))
        )
        assert "duplicates row 2 in pinpoint-email/default/eu-west-1" in duplicate.message

    def test_an_invalid_first_row_still_claims_its_name(self) -> None:
        # Fixing row 1 later must not turn row 2 into a second create of the same name.
        check = validator()
        invalid(check.validate(record(1, SendingEnabled="maybe")))
        later = invalid(check.validate(InputRow(2, {"ConfigurationSetName": "tenant-0001"})))
        assert later.code == "DuplicateName"

    def test_validating_the_same_row_again_is_not_a_duplicate(self) -> None:
        check = validator()
        row(check.validate(record(1)))
        row(check.validate(record(1)))

    def test_many_names_across_table_growth(self) -> None:
        check = validator()
        names = 5000  # the table starts at 1024 slots and must grow
        for number in range(1, names + 1):
            row(check.validate(InputRow(number, {"ConfigurationSetName": f"n{number}"})))
        for number in (1, 777, 5000):
            duplicate = invalid(
                check.validate(InputRow(names + number, {"ConfigurationSetName": f"n{number}"}))
            )
            assert f"duplicates row {number} " in duplicate.message

    def test_presized_table(self) -> None:
        check = validator(expected_rows=100_000)
        row(check.validate(InputRow(1, {"ConfigurationSetName": "a"})))
        assert (
            "duplicates row 1 "
            in invalid(check.validate(InputRow(2, {"ConfigurationSetName": "a"}))).message
        )

    @pytest.mark.parametrize("lanes", [False, True])
    def test_claiming_a_batch_is_claiming_each_row_in_turn(self, lanes: bool) -> None:
        # Repeats, a repeat of the same row, names of other types, lanes met and not yet
        # met; 3000 names make the table grow mid-batch.
        names: list[object] = [f"n{i % 2500}" for i in range(3000)] + [7, None, "n3"]
        rows = list(range(1, len(names) + 1))
        rows[-1] = 4  # row 4 again, with its own name: still its own
        regions = profiles = None
        if lanes:
            regions = [["eu-west-1", None, "us-east-1"][i % 3] for i in range(len(names))]
            profiles = [["other", None][i % 2] for i in range(len(names))]
        one_by_one, batched = validator(), validator()
        # Meet the profile "other" in us-east-1 only: rows in other unmet lanes are refused.
        for each in (one_by_one, batched):
            row(each.validate(InputRow(0, {"ConfigurationSetName": "z", "Profile": "other"})))
        expected = [
            i
            for i, (name, number) in enumerate(zip(names, rows, strict=True))
            if not one_by_one.claim(
                name,
                number,
                None if regions is None else regions[i],
                None if profiles is None else profiles[i],
            )
        ]
        assert batched.claim_many(names, rows, regions, profiles) == expected
        assert 500 <= len(expected) < len(names)
        # Both remember the same first rows.
        probes = [InputRow(9999, {"ConfigurationSetName": f"n{i}"}) for i in range(0, 2500, 7)]
        answers = [[check.validate(probe) for probe in probes] for check in (one_by_one, batched)]
        assert answers[0] == answers[1]
        assert sum(isinstance(answer, Outcome) for answer in answers[0]) > len(probes) // 4


class TestDigest:
    def test_digest_is_stable_across_runs(self) -> None:
        # Ledgers keep this digest: changing how it is computed re-sends every invalid row.
        result = row(validator().validate(record(TlsPolicy="REQUIRE", LastFreshStart="0")))
        assert result.digest == "c32a38d922d95e31"  # blake2b-64 of lane + canonical JSON

    def test_same_request_same_digest_whatever_the_spelling(self) -> None:
        check = validator()
        one = row(check.validate(record(1, SendingEnabled="yes", LastFreshStart="1714564800")))
        other = row(
            validator().validate(
                record(1, SendingEnabled=True, LastFreshStart=datetime(2024, 5, 1, 12))
            )
        )
        assert one.digest == other.digest
        assert len(one.digest) == 16

    def test_request_and_lane_change_the_digest(self) -> None:
        base = row(validator().validate(record(SendingEnabled="yes"))).digest
        assert row(validator().validate(record(SendingEnabled="no"))).digest != base
        assert (
            row(validator(region="eu-west-1").validate(record(SendingEnabled="yes"))).digest != base
        )

    def test_unchanged_invalid_row_keeps_its_digest_and_a_fixed_one_does_not(self) -> None:
        bad = invalid(validator().validate(record(SendingEnabled="maybe")))
        again = invalid(validator().validate(record(SendingEnabled="maybe")))
        still_bad = invalid(validator().validate(record(SendingEnabled="perhaps")))
        fixed = row(validator().validate(record(SendingEnabled="yes")))
        assert bad.digest == again.digest
        assert still_bad.digest != bad.digest
        assert fixed.digest != bad.digest

    def test_a_plain_rows_digest_is_what_earlier_runs_recorded(self) -> None:
        # Computed by the code before list, union, tenant and destination columns existed:
        # ledgers of earlier runs hold these, and must not see every settled row as changed.
        pinpoint = row(
            validator().validate(
                record(
                    TlsPolicy="REQUIRE",
                    SendingEnabled="no",
                    LastFreshStart="2024-05-01T12:00:00Z",
                    tag_team="growth",
                )
            )
        )
        assert pinpoint.digest == "07dd90a29197e770"
        sesv2 = validator("sesv2")
        one = row(
            sesv2.validate(record(TlsPolicy="REQUIRE", MaxDeliverySeconds="600", tag_team="growth"))
        )
        assert one.digest == "e4d9625bb44ea115"
        assert row(sesv2.validate(record(2))).digest == "17a17be5f389c93d"

    def test_tenants_and_destinations_are_part_of_the_digest(self) -> None:
        destination = (
            '[{"Name": "d", "MatchingEventTypes": ["SEND"], '
            '"SnsDestination": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t"}}]'
        )
        plain = row(validator("sesv2").validate(record())).digest
        digests = {
            plain,
            row(validator("sesv2").validate(record(TenantName="acme"))).digest,
            row(validator("sesv2").validate(record(TenantName="globex"))).digest,
            row(validator("sesv2").validate(record(EventDestinations=destination))).digest,
        }
        assert len(digests) == 4
        # None of either: the plain digest, whatever the cells say.
        assert row(validator("sesv2").validate(record(TenantName="[]"))).digest == plain
        assert row(validator("sesv2").validate(record(EventDestinations="[]"))).digest == plain


class TestLists:
    def test_items_separated_by_commas(self) -> None:
        result = row(validator("sesv2").validate(record(SuppressedReasons="BOUNCE,COMPLAINT")))
        assert result.request == {
            "ConfigurationSetName": "tenant-0001",
            "SuppressionOptions": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]},
        }

    def test_spaces_around_items_and_case_do_not_count(self) -> None:
        result = row(validator("sesv2").validate(record(SuppressedReasons=" bounce , Complaint ")))
        assert result.request["SuppressionOptions"] == {
            "SuppressedReasons": ["BOUNCE", "COMPLAINT"]
        }

    def test_brackets_are_the_empty_list(self) -> None:
        result = row(validator("sesv2").validate(record(SuppressedReasons="[]")))
        assert result.request["SuppressionOptions"] == {"SuppressedReasons": []}

    def test_a_parquet_list(self) -> None:
        result = row(validator("sesv2").validate(record(SuppressedReasons=["COMPLAINT"])))
        assert result.request["SuppressionOptions"] == {"SuppressedReasons": ["COMPLAINT"]}

    @pytest.mark.parametrize(
        ("values", "code", "message"),
        [
            (
                {"SuppressedReasons": "BOUNCE,SPAM"},
                "InvalidEnum",
                "column SuppressedReasons: 'SPAM' is not one of BOUNCE, COMPLAINT",
            ),
            (
                {"SuppressedReasons": "BOUNCE,,COMPLAINT"},
                "InvalidList",
                "column SuppressedReasons: 'BOUNCE,,COMPLAINT' has an empty item (item 2); "
                "separate items with commas, like A,B; write [] for an empty list",
            ),
            (
                {"SuppressedReasons": True},
                "InvalidList",
                "column SuppressedReasons: True is not a list",
            ),
            (
                {"TlsPolicy": "[]"},
                "NotAList",
                "column TlsPolicy: '[]' is an empty list, but TlsPolicy holds one value, not a "
                "list; leave the cell empty to leave it unset",
            ),
            ({"SendingPoolName": "[]"}, "NotAList", "column SendingPoolName: '[]' is an empty"),
            ({"SendingEnabled": "[]"}, "NotAList", "column SendingEnabled: '[]' is an empty"),
            ({"MaxDeliverySeconds": "[]"}, "NotAList", "column MaxDeliverySeconds: '[]' is an"),
            ({"LastFreshStart": "[]"}, "NotAList", "column LastFreshStart: '[]' is an empty"),
            ({"SigningScheme": "[]"}, "NotAList", "column SigningScheme: '[]' is an empty"),
        ],
    )
    def test_bad_lists(self, values: dict[str, Any], code: str, message: str) -> None:
        outcome = invalid(validator("sesv2").validate(record(**values)))
        assert outcome.code == code
        assert message in outcome.message


class TestUnion:
    def test_the_cell_names_the_choice(self) -> None:
        result = row(validator("sesv2").validate(record(SigningScheme="defaultscheme")))
        assert result.request["MessageSecurityOptions"] == {"SigningScheme": {"DefaultScheme": {}}}

    def test_a_column_inside_a_choice_makes_the_choice(self) -> None:
        alone = row(validator("sesv2").validate(record(SignatureFormat="detached")))
        both = row(
            validator("sesv2").validate(
                record(SignatureFormat="DETACHED", SigningScheme="SmimeScheme")
            )
        )
        expected = {"SigningScheme": {"SmimeScheme": {"SignatureFormat": "DETACHED"}}}
        assert alone.request["MessageSecurityOptions"] == expected
        assert both.request["MessageSecurityOptions"] == expected
        assert alone.digest == both.digest

    def test_an_unknown_choice(self) -> None:
        outcome = invalid(validator("sesv2").validate(record(SigningScheme="PGP")))
        assert (outcome.code, outcome.message) == (
            "InvalidChoice",
            "column SigningScheme: 'PGP' is not one of DefaultScheme, SmimeScheme (the "
            "SigningScheme to use)",
        )

    def test_two_choices_at_once(self) -> None:
        check = validator("sesv2")
        # The same columns with another choice passed first: the memo must not hide this one.
        row(check.validate(record(1, SigningScheme="SmimeScheme", SignatureFormat="DETACHED")))
        outcome = invalid(
            check.validate(record(2, SigningScheme="DefaultScheme", SignatureFormat="DETACHED"))
        )
        assert (outcome.code, outcome.message) == (
            "ParamValidation",
            "SigningScheme takes one choice (a union), but columns SigningScheme, "
            "SignatureFormat set DefaultScheme and SmimeScheme; keep the columns of one choice "
            "and empty the others",
        )


class TestNestedRequired:
    def test_a_required_sibling_deep_in_the_request_is_named_by_its_column(self) -> None:
        outcome = invalid(validator("sesv2").validate(record(ConfidenceVerdictThreshold="HIGH")))
        assert outcome.message == (
            "column ConditionThresholdEnabled is required when ConfidenceVerdictThreshold is set"
        )


class TestIgnoredColumns:
    def test_bulk_columns_are_neither_options_nor_errors(self) -> None:
        cells = {"bulk_status": "invalid", "bulk_code": "InvalidEnum", "bulk_message": "x"}
        plain = row(validator().validate(record(TlsPolicy="REQUIRE")))
        reported = row(validator().validate(record(TlsPolicy="REQUIRE", **cells)))
        assert reported.request == plain.request
        assert reported.digest == plain.digest

    def test_nor_part_of_an_invalid_rows_digest(self) -> None:
        # A report file fixed in a spreadsheet carries them: only the row's own cells count.
        bad = invalid(validator().validate(record(TlsPolicy="STRICT")))
        reported = invalid(validator().validate(record(TlsPolicy="STRICT", bulk_status="invalid")))
        assert reported.digest == bad.digest
        assert reported.message == bad.message


class TestOtherServicesColumns:
    @pytest.mark.parametrize("column", ["SuppressedReasons", "SigningScheme", "ArchiveArn"])
    def test_a_sesv2_column_with_pinpoint_email(self, column: str) -> None:
        outcome = invalid(validator().validate(record(**{column: "x"})))
        assert (outcome.code, outcome.message) == (
            "UnsupportedColumn",
            f"column {column!r}: pinpoint-email has no such field; remove the column or use "
            "--service sesv2",
        )
