"""The input columns: read from the service model, their limits, the tag rules, quoting values."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bulk.errors import UsageError
from bulk.input.columns import (
    columns_for,
    show,
    tag_key_problem,
    tag_value_problem,
)
from bulk.input.limits import limit_problems, limits_for


class TestColumns:
    def test_pinpoint_email_has_no_sesv2_only_fields(self) -> None:
        columns = columns_for("pinpoint-email")
        assert "TlsPolicy" in columns
        assert "HttpsPolicy" not in columns
        assert "MaxDeliverySeconds" not in columns

    def test_sesv2_adds_https_policy_and_max_delivery_seconds(self) -> None:
        columns = columns_for("sesv2")
        assert columns["HttpsPolicy"].enum == ("REQUIRE", "REQUIRE_OPEN_ONLY", "OPTIONAL")
        assert (columns["MaxDeliverySeconds"].minimum, columns["MaxDeliverySeconds"].maximum) == (
            300,
            50400,
        )

    def test_enum_values_come_from_the_service_model(self) -> None:
        assert columns_for("pinpoint-email")["TlsPolicy"].enum == ("REQUIRE", "OPTIONAL")

    def test_columns_sit_at_their_path_in_the_request(self) -> None:
        columns = columns_for("sesv2")
        assert columns["TlsPolicy"].path == ("DeliveryOptions", "TlsPolicy")
        assert columns["ConfidenceVerdictThreshold"].path == (
            "SuppressionOptions",
            "ValidationOptions",
            "ConditionThreshold",
            "OverallConfidenceThreshold",
            "ConfidenceVerdictThreshold",
        )
        reasons = columns["SuppressedReasons"]
        assert (reasons.kind, reasons.path) == ("list", ("SuppressionOptions", "SuppressedReasons"))
        assert reasons.item is not None and reasons.item.enum == ("BOUNCE", "COMPLAINT")
        scheme = columns["SigningScheme"]
        assert (scheme.kind, scheme.enum) == ("union", ("DefaultScheme", "SmimeScheme"))
        assert columns["SignatureFormat"].path == (
            "MessageSecurityOptions",
            "SigningScheme",
            "SmimeScheme",
            "SignatureFormat",
        )

    def test_bulks_own_columns_come_after_the_models(self) -> None:
        assert list(columns_for("sesv2"))[-5:] == [
            "TenantName",
            "EventDestinations",
            "Region",
            "Profile",
            "RoleArn",
        ]
        assert list(columns_for("pinpoint-email"))[-4:] == [
            "EventDestinations",
            "Region",
            "Profile",
            "RoleArn",
        ]

    def test_unknown_service_is_a_usage_error(self) -> None:
        with pytest.raises(UsageError, match="unknown service 'ses'; use one of: pinpoint-email"):
            columns_for("ses")


class TestLimits:
    def test_every_min_and_max_of_the_model_is_checked(self) -> None:
        # Read from the model, not a table: sesv2's ArchiveArn has min 20, max 1011 there.
        limits = {limit.path: limit for limit in limits_for("sesv2")}
        archive = limits[("ArchivingOptions", "ArchiveArn")]
        assert (archive.minimum, archive.maximum, archive.rule) == (20, 1011, "")
        delivery = limits[("DeliveryOptions", "MaxDeliverySeconds")]
        assert (delivery.minimum, delivery.maximum) == (300, 50400)
        arn = "arn:aws:ses:us-east-1:123456789012:mailmanager-archive/a-" + "x" * 1000
        (long,) = limit_problems({"ArchivingOptions": {"ArchiveArn": arn}}, list(limits.values()))
        assert long.code == "ValueTooLong"
        assert f"column ArchiveArn: {show(arn)} is too long; at most 1011 characters" in (
            long.message
        )
        (short,) = limit_problems({"ArchivingOptions": {"ArchiveArn": "arn"}}, [archive])
        assert short.message == (
            "column ArchiveArn: 'arn' is 3 characters; at least 20 characters; lengthen it"
        )
        (number,) = limit_problems({"DeliveryOptions": {"MaxDeliverySeconds": 9}}, [delivery])
        assert (number.code, number.message) == (
            "InvalidNumber",
            "column MaxDeliverySeconds: 9 is out of range (300-50400)",
        )

    @pytest.mark.parametrize("service", ["pinpoint-email", "sesv2"])
    def test_documented_limits_fill_in_where_the_model_has_none(self, service: str) -> None:
        limits = {limit.path: limit for limit in limits_for(service)}
        documented = {
            ("Tags",): 50,
            ("DeliveryOptions", "SendingPoolName"): 64,
            ("TrackingOptions", "CustomRedirectDomain"): 253,
        }
        for path, maximum in documented.items():
            assert (limits[path].length, limits[path].maximum) == (True, maximum)
            assert limits[path].rule  # said in words: the model has no number to quote
        tags = [{"Key": f"k{i}", "Value": ""} for i in range(51)]
        (problem,) = limit_problems({"Tags": tags}, list(limits.values()))
        assert (problem.code, problem.message) == (
            "TooManyTags",
            "51 tag: columns are set in this row; a configuration set can have at most 50 "
            "tags (SES API reference, Tag); empty 1 of them",
        )
        assert limit_problems({"Tags": tags[:50]}, list(limits.values())) == []


class TestTagRules:
    @pytest.mark.parametrize(
        ("rule", "text", "problem"),
        [
            (tag_key_problem, "team", None),
            (tag_key_problem, "cost center:a/b=c+d-e@f.g_h", None),
            (tag_key_problem, "", "a tag key is 1-128 characters"),
            (tag_key_problem, "k" * 129, "is 129 characters; a tag key is at most 128"),
            (tag_key_problem, "AWS:team", "tag key 'AWS:team' starts with 'aws:', which AWS"),
            (tag_key_problem, "a,b!", "tag key 'a,b!' contains ',', '!'; tags allow letters"),
            (tag_value_problem, "", None),
            (tag_value_problem, "x" * 256, None),
            (tag_value_problem, "Grün team", None),
            (tag_value_problem, "x" * 257, "is 257 characters; a tag value is at most 256"),
            (tag_value_problem, "aws:owned", "'aws:owned' starts with 'aws:', which AWS reserves"),
            (tag_value_problem, "AWS:Owned", "'AWS:Owned' starts with 'aws:', which AWS reserves"),
            (tag_value_problem, "a;b", "'a;b' contains ';'; tags allow letters, digits, spaces"),
        ],
    )
    def test_tag_rules(
        self, rule: Callable[[str], str | None], text: str, problem: str | None
    ) -> None:
        found = rule(text)
        if problem is None:
            assert found is None
        else:
            assert found is not None
            assert problem in found


class TestShow:
    @pytest.mark.parametrize(
        ("value", "shown"),
        [("abc", "'abc'"), ("a\tb", r"'a\tb'"), (2, "2"), (True, "True"), ("\u202e", r"'\u202e'")],
    )
    def test_show(self, value: object, shown: str) -> None:
        assert show(value) == shown

    def test_long_values_are_cut(self) -> None:
        assert show("y" * 5000) == f"{'y' * 80!r}... (5000 characters)"
