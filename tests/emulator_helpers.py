"""What the emulator's tests share: the error a call that must fail gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of a call that must fail; every error the service
    answers carries a request id, as AWS's do."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["ResponseMetadata"]["RequestId"], "every error carries a request id"
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )
