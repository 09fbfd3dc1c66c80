"""Regenerate samples/tenants.csv and samples/tenants.parquet (deterministic: seeded).

    python samples/make_samples.py [--rows 500] [--out DIR]

500 tenants with a realistic mix of options, using every column of ``pinpoint-email``
(the demo's service) and three tags, plus six deliberately invalid rows, to show what a
run does with them:

    row  50  name with a space and '!'           InvalidName
    row 120  a 70-character name                 InvalidName
    row 200  SendingEnabled 'maybe'              InvalidBoolean
    row 280  TlsPolicy 'STRICT'                  InvalidEnum
    row 360  LastFreshStart 'last tuesday'       InvalidTimestamp
    row 440  the name of row 10 again            DuplicateName

The Parquet file holds the same rows with native types (Boolean, Datetime in UTC, String).
Two of the invalid cells have no native form: in tenants.parquet row 200's SendingEnabled
and row 360's LastFreshStart are null ("not set"), so those two rows are valid there;
the other four invalid rows are the same in both files. Region and Profile are left out:
rows go to the run's --region/--profile (the demo's emulator serves a single Region).
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

SEED = 20240501
COLUMNS = (
    "ConfigurationSetName",
    "SendingPoolName",
    "TlsPolicy",
    "ReputationMetricsEnabled",
    "LastFreshStart",
    "SendingEnabled",
    "CustomRedirectDomain",
    "tag:team",
    "tag:env",
    "tag:cost-center",
)
COMPANIES = (
    "acme-corp", "globex", "initech", "umbrella", "hooli", "stark-industries", "wayne-ent",
    "wonka", "cyberdyne", "tyrell", "soylent", "massive-dynamic", "aperture", "black-mesa",
    "oscorp", "vandelay", "dunder-mifflin", "pied-piper", "nakatomi", "gringotts",
    "monarch", "blue-sun", "weyland", "virtucon", "bluth-co", "prestige-worldwide",
    "sterling-cooper", "los-pollos", "kramerica", "strickland",
)  # fmt: skip
TEAMS = ("growth", "platform", "billing", "support", "marketing", "onboarding")
ENVS = ("prod", "prod", "prod", "staging", "dev")
POOLS = ("shared-pool-1", "shared-pool-2", "dedicated-eu", "dedicated-us", "transactional")
BOOLEAN_SPELLINGS = {True: ("true", "TRUE", "yes", "1", "True"), False: ("false", "no", "0")}
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))

# Invalid rows: 1-based row number -> (column, CSV text). See the module docstring.
LONG_NAME = "tenant-" + "x" * 63
INVALID = {
    50: ("ConfigurationSetName", "tenant acme corp!"),
    120: ("ConfigurationSetName", LONG_NAME),
    200: ("SendingEnabled", "maybe"),
    280: ("TlsPolicy", "STRICT"),
    360: ("LastFreshStart", "last tuesday"),
    440: ("ConfigurationSetName", None),  # the name of row 10: filled in below
}
DUPLICATED_ROW = 10


def tenants(rows: int) -> list[dict[str, object]]:
    """The sample rows with native values (bool, datetime, str; None for not set)."""
    rng = random.Random(SEED)
    out: list[dict[str, object]] = []
    for number in range(1, rows + 1):
        company = rng.choice(COMPANIES)
        fresh = None
        if rng.random() < 0.4:
            fresh = EPOCH + timedelta(days=rng.randrange(0, 500), seconds=rng.randrange(86400))
        row: dict[str, object] = {
            "ConfigurationSetName": f"tenant-{company}-{number:04d}",
            "SendingPoolName": rng.choice(POOLS) if rng.random() < 0.6 else None,
            "TlsPolicy": rng.choice(("REQUIRE", "OPTIONAL", None)),
            "ReputationMetricsEnabled": rng.choice((True, False, None)),
            "LastFreshStart": fresh,
            "SendingEnabled": rng.choice((True, True, True, False, None)),
            "CustomRedirectDomain": f"click.{company}.example.com" if rng.random() < 0.5 else None,
            "tag:team": rng.choice(TEAMS),
            "tag:env": rng.choice(ENVS),
            "tag:cost-center": f"cc-{rng.randrange(1000, 1100)}" if rng.random() < 0.8 else None,
        }
        out.append(row)
    return out


def csv_text(value: object, rng: random.Random) -> str:
    """A cell as a person or a spreadsheet would write it: mixed spellings and formats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return rng.choice(BOOLEAN_SPELLINGS[value])
    if isinstance(value, datetime):
        style = rng.randrange(4)
        if style == 0:
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        if style == 1:
            return value.astimezone(CEST).isoformat()  # an offset other than UTC
        if style == 2:
            return value.strftime("%Y-%m-%d %H:%M:%S")  # no zone: read as UTC
        return str(int(value.timestamp()))  # epoch seconds
    return str(value)


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    rng = random.Random(SEED + 1)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        for number, row in enumerate(rows, 1):
            cells = {column: csv_text(row[column], rng) for column in COLUMNS}
            if number in INVALID:
                column, text = INVALID[number]
                cells[column] = text if text is not None else str(rows[DUPLICATED_ROW - 1][column])
            writer.writerow([cells[column] for column in COLUMNS])


def write_parquet(path: Path, rows: list[dict[str, object]]) -> None:
    native = [dict(row) for row in rows]
    for number, (column, text) in INVALID.items():
        cell = native[number - 1]
        if text is None:
            cell[column] = rows[DUPLICATED_ROW - 1][column]
        elif column in ("SendingEnabled", "LastFreshStart"):
            cell[column] = None  # no native form for 'maybe' or 'last tuesday'
        else:
            cell[column] = text
    schema: dict[str, pl.DataType] = {column: pl.String() for column in COLUMNS}
    schema["ReputationMetricsEnabled"] = pl.Boolean()
    schema["SendingEnabled"] = pl.Boolean()
    schema["LastFreshStart"] = pl.Datetime("us", "UTC")
    pl.DataFrame(native, schema=schema).write_parquet(path, statistics=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    if args.rows < max(INVALID):
        parser.error(f"--rows must be at least {max(INVALID)} to hold the invalid rows")
    rows = tenants(args.rows)
    write_csv(args.out / "tenants.csv", rows)
    write_parquet(args.out / "tenants.parquet", rows)
    print(f"wrote {args.rows} rows to {args.out / 'tenants.csv'} and tenants.parquet")


if __name__ == "__main__":
    main()
