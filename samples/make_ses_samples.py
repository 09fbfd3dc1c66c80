"""Regenerate samples/ses-tenants.csv and samples/event-destinations.json (seeded).

    python samples/make_ses_samples.py [--rows 120] [--out DIR]

The SES v2 demo (``make demo-sesv2``): each row is a tenant's whole set-up, a chain of steps
(tenant → configuration set → event destinations → association). The rows use SES v2's own
columns (``SuppressedReasons``, ``EngagementMetrics``, ``MaxDeliverySeconds``), share tenants
(a company's sets belong to its tenant; some belong to two), and take their event
destinations from ``event-destinations.json`` unless their own ``EventDestinations`` cell says
otherwise (``[]``: none; a JSON array: these). Two rows are deliberately invalid:

    row 40  an event type SES v2 does not have ('BOUNCED')    InvalidEventDestinations
    row 80  SuppressedReasons 'SPAM'                          InvalidEnum
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

SEED = 20261207
COLUMNS = (
    "ConfigurationSetName",
    "TenantName",
    "TlsPolicy",
    "SendingEnabled",
    "SuppressedReasons",
    "EngagementMetrics",
    "MaxDeliverySeconds",
    "tag:team",
    "EventDestinations",
)
COMPANIES = (
    "acme-corp", "globex", "initech", "umbrella", "hooli", "wonka", "cyberdyne", "tyrell",
    "soylent", "aperture", "vandelay", "pied-piper",
)  # fmt: skip
TEAMS = ("growth", "platform", "billing", "support")
FEEDBACK_TOPIC = "arn:aws:sns:us-east-1:111122223333:ses-feedback"

# What rows with an empty EventDestinations cell get (--event-destinations FILE.json).
DEFAULT_DESTINATIONS = [
    {
        "Name": "bounces-and-complaints",
        "Enabled": True,
        "MatchingEventTypes": ["BOUNCE", "COMPLAINT", "REJECT"],
        "SnsDestination": {"TopicArn": FEEDBACK_TOPIC},
    }
]
# A cell of its own: feedback to SNS and delivery metrics to CloudWatch.
WITH_METRICS = [
    *DEFAULT_DESTINATIONS,
    {
        "Name": "delivery-metrics",
        "Enabled": True,
        "MatchingEventTypes": ["SEND", "DELIVERY", "OPEN", "CLICK"],
        "CloudWatchDestination": {
            "DimensionConfigurations": [
                {
                    "DimensionName": "tenant",
                    "DimensionValueSource": "MESSAGE_TAG",
                    "DefaultDimensionValue": "unknown",
                }
            ]
        },
    },
]
BAD_EVENT_TYPE = [{**DEFAULT_DESTINATIONS[0], "MatchingEventTypes": ["BOUNCED"]}]
INVALID = {40: ("EventDestinations", BAD_EVENT_TYPE), 80: ("SuppressedReasons", "SPAM")}


def rows(count: int) -> list[dict[str, str]]:
    """The sample rows as CSV cells."""
    rng = random.Random(SEED)
    out: list[dict[str, str]] = []
    for number in range(1, count + 1):
        company = COMPANIES[number % len(COMPANIES)]
        tenants = company if rng.random() < 0.85 else f"{company},{company}-eu"
        destinations = rng.random()
        if destinations < 0.7:
            cell = ""  # the file's default
        elif destinations < 0.9:
            cell = json.dumps(WITH_METRICS)
        else:
            cell = "[]"
        row = {
            "ConfigurationSetName": f"{company}-{number:04d}",
            "TenantName": tenants,
            "TlsPolicy": rng.choice(("REQUIRE", "OPTIONAL", "")),
            "SendingEnabled": rng.choice(("true", "true", "false", "")),
            "SuppressedReasons": rng.choice(("BOUNCE,COMPLAINT", "BOUNCE", "[]", "")),
            "EngagementMetrics": rng.choice(("ENABLED", "DISABLED", "")),
            "MaxDeliverySeconds": rng.choice(("", "", "3600", "50400")),
            "tag:team": rng.choice(TEAMS),
            "EventDestinations": cell,
        }
        if number in INVALID:
            column, value = INVALID[number]
            row[column] = value if isinstance(value, str) else json.dumps(value)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    if args.rows < max(INVALID):
        parser.error(f"--rows must be at least {max(INVALID)} to hold the invalid rows")
    with (args.out / "ses-tenants.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows(args.rows))
    destinations = json.dumps(DEFAULT_DESTINATIONS, indent=2) + "\n"
    (args.out / "event-destinations.json").write_text(destinations, encoding="utf-8")
    print(f"wrote {args.rows} rows to {args.out / 'ses-tenants.csv'} and event-destinations.json")


if __name__ == "__main__":
    main()
