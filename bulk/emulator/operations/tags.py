"""Tags of configuration sets and tenants: ListTagsForResource, TagResource, UntagResource."""

from __future__ import annotations

from typing import Any

from bulk.emulator.arns import Arn
from bulk.emulator.operations.call import Call
from bulk.emulator.protocol import ServiceError, bad_request
from bulk.emulator.state import Result

# TagResource's documentation: "A resource can have as many as 50 tags"; "The maximum length
# of a tag key is 128 characters. The maximum length of a tag value is 256 characters." The
# models carry none of these limits, so they are kept here.
MAX_TAGS = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256


def check_tags(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """``tags`` if they fit SES's documented limits, else a ``BadRequestException``."""
    if len(tags) > MAX_TAGS:
        raise bad_request(f"A resource can have at most {MAX_TAGS} tags, got {len(tags)}.")
    for tag in tags:
        key, value = tag["Key"], tag["Value"]
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise bad_request(f"Tag key {key!r} must be 1 to {MAX_KEY_LENGTH} characters.")
        if len(value) > MAX_VALUE_LENGTH:
            raise bad_request(
                f"The value of tag {key!r} must be at most {MAX_VALUE_LENGTH} characters."
            )
    return tags


def parse_arn(text: str) -> Arn:
    """The SES resource ARN ``text`` spells, else a ``BadRequestException``."""
    arn = Arn.parse(text)
    if arn is None:
        raise bad_request(
            f"Invalid resource ARN {text!r}: expected arn:aws:ses:REGION:ACCOUNT:TYPE/NAME."
        )
    return arn


def resource_not_found(arn: object) -> ServiceError:
    return ServiceError(404, "NotFoundException", f"Resource <{arn}> does not exist.")


def list_tags_for_resource(call: Call) -> dict[str, Any]:
    arn = parse_arn(call.params["ResourceArn"])
    tags = call.state.tags(call.scope, arn)
    if tags is None:
        raise resource_not_found(arn)
    return call.output({"Tags": tags})


def tag_resource(call: Call) -> dict[str, Any]:
    arn = parse_arn(call.params["ResourceArn"])
    tags = check_tags(call.params["Tags"])
    result = call.state.tag(call.scope, arn, tags, limit=MAX_TAGS)
    if result is Result.MISSING:
        raise resource_not_found(arn)
    if result is Result.LIMIT:
        raise bad_request(f"A resource can have at most {MAX_TAGS} tags: <{arn}> would have more.")
    return {}


def untag_resource(call: Call) -> dict[str, Any]:
    arn = parse_arn(call.params["ResourceArn"])
    if call.state.untag(call.scope, arn, call.params["TagKeys"]) is Result.MISSING:
        raise resource_not_found(arn)
    return {}


HANDLERS = {
    "ListTagsForResource": list_tags_for_resource,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
}
