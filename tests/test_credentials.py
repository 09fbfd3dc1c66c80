"""Credentials or AWS configuration a lane cannot use: one line saying what to do, exit 3.

Each error botocore raises for them comes from a stub credential provider, the way botocore's
own providers raise it (while the chain is searched, or at the first signing), through the
command line as a user runs it; one case uses botocore's real SSO provider in a subprocess.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from aiobotocore.credentials import AioCredentialResolver, AioDeferredRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.credentials import CredentialProvider
from botocore.exceptions import (
    ConfigNotFound,
    ConfigParseError,
    CredentialRetrievalError,
    InfiniteLoopConfigError,
    InvalidChecksumConfigError,
    InvalidConfigError,
    InvalidDefaultsMode,
    InvalidIMDSEndpointError,
    InvalidIMDSEndpointModeError,
    InvalidSTSRegionalEndpointsConfigError,
    LoginAuthorizationCodeError,
    LoginInsufficientPermissions,
    LoginRefreshRequired,
    LoginTokenLoadError,
    MetadataRetrievalError,
    MissingDependencyException,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    RefreshWithMFAUnsupportedError,
    SSOError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
    UnknownCredentialError,
)

from bulk.engine import sessions as sessions_module
from bulk.engine.credentials import CREDENTIAL_ERRORS

from .torture import cli, latest_by_row, one_line_error, run_bulk


class FailingCredentials(CredentialProvider):  # type: ignore[misc]
    """A credential provider that fails with ``error`` the way botocore's own providers do.

    ``when="load"``: while the chain is searched, as the client is made (a broken
    credential_process, a config the provider refuses). ``when="sign"``: the provider hands out
    credentials that fetch themselves at the first signing and fail then, as SSO and role
    credentials do (an SSO session that has expired). ``good_fetches`` fetches succeed first, each
    with credentials that are already due for renewal: the failure comes mid-run.
    """

    METHOD = "stub"

    def __init__(self, error: Exception, when: str, good_fetches: int = 0) -> None:
        self.error = error
        self.when = when
        self.good_fetches = good_fetches

    async def load(self) -> AioDeferredRefreshableCredentials | None:
        if self.when == "load":
            raise self.error
        return AioDeferredRefreshableCredentials(refresh_using=self._fetch, method=self.METHOD)

    async def _fetch(self) -> dict[str, str]:
        if self.good_fetches <= 0:
            raise self.error
        self.good_fetches -= 1
        # Inside botocore's mandatory refresh window (10 minutes): the next signing fetches again.
        expiry = datetime.now(UTC) + timedelta(minutes=5)
        return {
            "access_key": "AKIASTUB",
            "secret_key": "stub-secret",
            "token": "stub-token",
            "expiry_time": expiry.isoformat(),
        }


@pytest.fixture
def credentials_from(monkeypatch: pytest.MonkeyPatch) -> Callable[[FailingCredentials], None]:
    """``credentials_from(provider)``: every session the pool makes resolves through it alone."""

    def install(provider: FailingCredentials) -> None:
        class StubbedSession(AioSession):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.register_component("credential_provider", AioCredentialResolver([provider]))

        monkeypatch.setattr(sessions_module, "AioSession", StubbedSession)

    return install


@pytest.fixture
def prod_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS config file with profile ``prod`` (us-east-1), and a one-row input file."""
    config = tmp_path / "aws-config"
    config.write_text("[profile prod]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    path = tmp_path / "plain.csv"
    path.write_text("ConfigurationSetName\nacme\n")
    return path


SSO_LOGIN = "run `aws sso login --profile prod`, then run bulk again"
LOGIN = "run `aws login --profile prod`, then run bulk again"
CONFIG_FIX = "fix the setting in {config} or its AWS_* environment variable, then run bulk again"
FILE_FIX = "cannot be read"

# Each credential or configuration error botocore raises, with what the user's line must say.
CREDENTIAL_CASES = [
    (UnauthorizedSSOTokenError(), ["AWS SSO session of profile 'prod' has expired", SSO_LOGIN]),
    (
        SSOTokenLoadError(error_msg="Token for https://x.awsapps.com/start does not exist"),
        ["Token for https://x.awsapps.com/start does not exist", SSO_LOGIN],
    ),
    (SSOError(), ["SSOError", SSO_LOGIN]),
    (
        TokenRetrievalError(provider="sso", error_msg="Token has expired and refresh failed"),
        ["Token has expired and refresh failed", SSO_LOGIN],
    ),
    (LoginRefreshRequired(), ["`aws login` session of profile 'prod'", LOGIN]),
    (LoginTokenLoadError(error_msg="no cached token"), ["no cached token", LOGIN]),
    (LoginAuthorizationCodeError(error_msg="code expired"), ["code expired", LOGIN]),
    (LoginInsufficientPermissions(), ["signin:CreateOAuth2Token", "grant the permission"]),
    (
        RefreshWithMFAUnsupportedError(),
        ["renewing them needs an MFA code", "run bulk again to enter a new code"],
    ),
    (
        CredentialRetrievalError(provider="custom-process", error_msg="vault-helper: locked"),
        ["could not get credentials from its credential_process", "vault-helper: locked"],
    ),
    (
        CredentialRetrievalError(provider="container-role", error_msg="connection refused"),
        ["from the container credentials endpoint", "connection refused"],
    ),
    (
        MetadataRetrievalError(error_msg="IMDSv1 has been disabled"),
        ["instance metadata service gave no credentials", "IMDSv1 has been disabled"],
    ),
    (
        InvalidConfigError(
            error_msg='The credential source "Bogus" referenced in profile "prod" is not valid.'
        ),
        ['"Bogus"', CONFIG_FIX],
    ),
    (
        InfiniteLoopConfigError(source_profile="prod", visited_profiles=["prod"]),
        ["InfiniteLoopConfigError", CONFIG_FIX],
    ),
    (
        ConfigParseError(path="/home/u/.aws/config"),
        ["Unable to parse config file: /home/u/.aws/config", FILE_FIX, "fix that file"],
    ),
    (
        ConfigNotFound(path="/home/u/.aws/sso.cfg"),
        ["/home/u/.aws/sso.cfg", FILE_FIX, "fix that file"],
    ),
    (UnknownCredentialError(name="Ec2InstanceMetadata"), ["Ec2InstanceMetadata", CONFIG_FIX]),
    (InvalidDefaultsMode(mode="fast", valid_modes="legacy, standard"), ["fast", CONFIG_FIX]),
    (
        InvalidChecksumConfigError(
            config_key="request_checksum_calculation",
            valid_options="when_supported",
            config_value="never",
        ),
        ["request_checksum_calculation", CONFIG_FIX],
    ),
    (InvalidIMDSEndpointError(endpoint="not a url"), ["not a url", CONFIG_FIX]),
    (InvalidIMDSEndpointModeError(mode="ipv5", valid_modes="ipv4, ipv6"), ["ipv5", CONFIG_FIX]),
    (
        InvalidSTSRegionalEndpointsConfigError(sts_regional_endpoints_config="global"),
        ["global", CONFIG_FIX],
    ),
    (
        MissingDependencyException(msg='You will need to pip install "botocore[crt]"'),
        ['pip install "botocore[crt]"', "install it"],
    ),
    (NoCredentialsError(), ["no usable AWS credentials for pinpoint-email/prod/us-east-1"]),
    (ProfileNotFound(profile="prod"), ["AWS profile 'prod' not found", "check --profile"]),
    (NoRegionError(), ["no AWS Region set", "--region"]),
    (
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        ["no usable AWS credentials", "missing: AWS_SECRET_ACCESS_KEY"],
    ),
]


class TestCredentialErrors:
    @pytest.mark.parametrize("when", ["load", "sign"])
    @pytest.mark.parametrize(
        ("error", "says"), CREDENTIAL_CASES, ids=[type(e).__name__ for e, _ in CREDENTIAL_CASES]
    )
    def test_each_gives_its_line_and_exit_3(
        self,
        error: Exception,
        says: list[str],
        when: str,
        credentials_from: Callable[[FailingCredentials], None],
        prod_profile: Path,
    ) -> None:
        credentials_from(FailingCredentials(error, when))
        result = cli(
            "provision", prod_profile, "--profile", "prod", "--endpoint-url", "http://127.0.0.1:9"
        )
        assert result.exit_code == 3, result.output
        line = one_line_error(result.stderr)
        assert "unexpected" not in line and "unreachable" not in line, line
        if not isinstance(error, ProfileNotFound | NoRegionError):
            assert "pinpoint-email/prod/us-east-1" in line, line  # the lane
        config = str(prod_profile.parent / "aws-config")
        for text in says:
            assert text.format(config=config) in line, line

    def test_an_sso_profile_never_logged_in_is_one_line_as_a_user_sees_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # botocore's own SSO provider, in a subprocess: the token cache in $HOME is empty, so
        # the first signing fails before anything is sent, and aiobotocore logs that with a
        # traceback unless bulk keeps it off stderr.
        config = tmp_path / "aws-config"
        config.write_text(
            "[profile prod]\nregion = us-east-1\nsso_start_url = https://x.awsapps.com/start\n"
            "sso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = Admin\n"
        )
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        monkeypatch.setenv("HOME", str(tmp_path))
        path = tmp_path / "plain.csv"
        path.write_text("ConfigurationSetName\nacme\n")
        result = run_bulk(
            "provision",
            path,
            "--profile",
            "prod",
            "--endpoint-url",
            "http://127.0.0.1:9",
            cwd=tmp_path,
        )
        assert result.returncode == 3, result.stderr
        line = one_line_error(result.stderr)
        assert "SSOTokenLoadError" in line and SSO_LOGIN in line, line

    def test_without_a_profile_the_login_line_names_none(
        self, credentials_from: Callable[[FailingCredentials], None], tmp_path: Path
    ) -> None:
        credentials_from(FailingCredentials(UnauthorizedSSOTokenError(), "sign"))
        path = tmp_path / "plain.csv"
        path.write_text("ConfigurationSetName\nacme\n")
        result = cli("provision", path, "--endpoint-url", "http://127.0.0.1:9")
        assert result.exit_code == 3
        line = one_line_error(result.stderr)
        assert (
            "pinpoint-email/default/us-east-1: the AWS SSO session of the default profile" in line
        )
        assert "run `aws sso login`, then run bulk again" in line

    def test_an_sso_session_that_expires_mid_run_stops_it_with_exit_3(
        self,
        credentials_from: Callable[[FailingCredentials], None],
        prod_profile: Path,
        threaded_emulator: Any,
    ) -> None:
        # The pre-flight and the first create sign with good credentials; the next signing
        # finds the SSO session gone.
        credentials_from(FailingCredentials(UnauthorizedSSOTokenError(), "sign", good_fetches=2))
        prod_profile.write_text("ConfigurationSetName\n" + "".join(f"t{i}\n" for i in range(5)))
        with threaded_emulator() as emulator:
            result = cli(
                "provision",
                prod_profile,
                "--profile",
                "prod",
                "--endpoint-url",
                emulator.url,
                "--rate",
                "0",
                "--concurrency",
                "1",
            )
        assert result.exit_code == 3, result.output
        assert SSO_LOGIN in result.stderr
        assert "Traceback" not in result.stderr
        records = latest_by_row(prod_profile.parent / "plain.csv.ledger.jsonl")
        # The row whose signing failed: recorded failed, its intent answered (nothing sent).
        unsettled = [r for r in records.values() if r["status"] != "created"]
        assert all(r["status"] == "failed" and "ambiguous" not in r for r in unsettled)

    def test_every_botocore_exception_is_sorted(self) -> None:
        """Every class in botocore.exceptions is a credential error or named here as not one.

        A botocore release that adds a class fails this test until someone decides which it is.
        """
        handled = set(CREDENTIAL_ERRORS)
        # Not the user's credentials or configuration: raised by a request, its transport or its
        # answer (ClientError and the connection errors, classified per call), by the service
        # model or our own use of the client (a bug), by S3-only, bearer-token-only or
        # waiter/paginator/stubber features this tool does not use, or warnings.
        not_credential = {
            "AliasConflictParameterError",
            "ApiVersionNotFoundError",
            "AwsChunkedWrapperError",
            "BaseEndpointResolverError",
            "BotoCoreError",
            "CapacityNotAvailableError",
            "ChecksumError",
            "ClientError",
            "ConnectTimeoutError",
            "ConnectionClosedError",
            "ConnectionError",
            "DataNotFoundError",
            "EndpointConnectionError",
            "EndpointProviderError",
            "EndpointResolutionError",
            "EndpointVariantError",
            "EventStreamError",
            "FlexibleChecksumError",
            "HTTPClientError",
            "ImminentRemovalWarning",
            "IncompleteReadError",
            "InvalidDNSNameError",
            "InvalidEndpointConfigurationError",
            "InvalidEndpointDiscoveryConfigurationError",
            "InvalidExpressionError",
            "InvalidHostLabelError",
            "InvalidMaxRetryAttemptsError",
            "InvalidProxiesConfigError",
            "InvalidRegionError",
            "InvalidRetryConfigurationError",
            "InvalidRetryModeError",
            "InvalidS3AddressingStyleError",
            "InvalidS3UsEast1RegionalEndpointConfigError",
            "MD5UnavailableError",
            "MissingParametersError",
            "MissingServiceIdError",
            "NoAuthTokenError",
            "OperationNotPageableError",
            "PaginationError",
            "ParamValidationError",
            "ProxyConnectionError",
            "RangeError",
            "ReadTimeoutError",
            "ResponseStreamingError",
            "SSLError",
            "ServiceNotInRegionError",
            "StubAssertionError",
            "StubResponseError",
            "UnStubbedResponseError",
            "UndefinedModelAttributeError",
            "UnknownClientMethodError",
            "UnknownEndpointError",
            "UnknownEndpointResolutionBuiltInName",
            "UnknownFIPSEndpointError",
            "UnknownKeyError",
            "UnknownParameterError",
            "UnknownRegionError",
            "UnknownServiceError",
            "UnknownServiceStyle",
            "UnknownSignatureVersionError",
            "UnknownTokenProviderError",
            "UnseekableStreamError",
            "UnsupportedOutpostResourceError",
            "UnsupportedS3AccesspointConfigurationError",
            "UnsupportedS3ArnError",
            "UnsupportedS3ConfigurationError",
            "UnsupportedS3ControlArnError",
            "UnsupportedS3ControlConfigurationError",
            "UnsupportedServiceProtocolsError",
            "UnsupportedSignatureVersionError",
            "UnsupportedTLSVersionWarning",
            "ValidationError",
            "WaiterConfigError",
            "WaiterError",
        }
        unsorted = []
        for name in dir(botocore.exceptions):
            cls = getattr(botocore.exceptions, name)
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                continue
            if cls.__module__ != botocore.exceptions.__name__:
                continue
            if issubclass(cls, tuple(handled)) == (name in not_credential):
                unsorted.append(name)
        assert not unsorted, (
            f"botocore.exceptions has classes not sorted into credential errors "
            f"(bulk.engine.credentials.CREDENTIAL_ERRORS) or not: {unsorted}"
        )
        tested = [type(error) for error, _ in CREDENTIAL_CASES]
        untested = [c.__name__ for c in handled if not any(issubclass(t, c) for t in tested)]
        assert not untested, f"credential errors without a case in CREDENTIAL_CASES: {untested}"


class TestBrokenConfigFile:
    def test_a_config_file_that_does_not_parse_is_one_line_and_exit_3(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Reading the service model must not read the user's config: the broken file is
        reported where credentials are, naming it, not as an unexpected error."""
        config = tmp_path / "config"
        config.write_text("[default\nregion = eu-west-1\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        path = tmp_path / "t.csv"
        path.write_text("ConfigurationSetName\nacme\n")
        result = cli(
            "provision", path, "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"
        )
        assert result.exit_code == 3
        line = one_line_error(result.stderr)
        assert "cannot be read" in line and str(config) in line
