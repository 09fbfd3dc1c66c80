"""Accounts and STS as boto3 sees them: AssumeRole, GetCallerIdentity, per-account state and limits.

Every client here is a real botocore client on loopback; STS answers on the emulator's own port.
"""

from __future__ import annotations

import datetime
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session
from botocore.config import Config

from bulk.emulator import Emulator, EmulatorConfig

from .conftest import ACCESS_KEY, REGION
from .emulator_helpers import error_of

DEFAULT_ACCOUNT = "123456789012"
ROLE = "arn:aws:iam::111111111111:role/bulk-provisioner"
OTHER_ROLE = "arn:aws:iam::222222222222:role/bulk-provisioner"
DENIED_ROLE = "arn:aws:iam::333333333333:role/locked"
SIGNED_STS = {
    "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20240101/{REGION}/sts/"
    "aws4_request, SignedHeaders=host, Signature=0",
    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
}


class FakeWallClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(threaded_emulator: Callable[..., Any]) -> Iterator[Emulator]:
    with threaded_emulator(EmulatorConfig(rate=0, denied_roles={DENIED_ROLE})) as running:
        yield running


@pytest.fixture
def role_client() -> Iterator[Callable[..., Any]]:
    """``role_client(emulator, credentials, service)``: plain boto3 signing with assumed keys."""
    clients: list[Any] = []

    def make(emulator: Emulator, credentials: dict[str, Any], service: str = "sesv2") -> Any:
        client = boto3.session.Session().client(
            service,
            endpoint_url=emulator.url,
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            config=Config(retries={"total_max_attempts": 1}, read_timeout=10),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assume(sts: Any, role: str = ROLE, session: str = "run-1", **more: Any) -> dict[str, Any]:
    return dict(sts.assume_role(RoleArn=role, RoleSessionName=session, **more)["Credentials"])


def code_of(call: Callable[[], Any]) -> str:
    return error_of(call)[0]


def post(emulator: Emulator, body: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(
        emulator.url + "/", data=body.encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class TestAssumeRole:
    def test_returns_keys_of_the_roles_account(
        self, served: Emulator, boto3_client: Callable[..., Any], role_client: Callable[..., Any]
    ) -> None:
        sts = boto3_client(served, "sts")
        before = datetime.datetime.now(datetime.UTC)
        answer = sts.assume_role(RoleArn=ROLE, RoleSessionName="run-1", DurationSeconds=900)
        credentials = answer["Credentials"]
        assert credentials["AccessKeyId"].startswith("ASIA")
        assert credentials["SecretAccessKey"] and credentials["SessionToken"]
        lifetime = (credentials["Expiration"] - before).total_seconds()
        assert 899 <= lifetime <= 905
        user = answer["AssumedRoleUser"]
        assert user["Arn"] == "arn:aws:sts::111111111111:assumed-role/bulk-provisioner/run-1"
        assert user["AssumedRoleId"].startswith("AROA") and user["AssumedRoleId"].endswith(":run-1")

        identity = role_client(served, credentials, "sts").get_caller_identity()
        assert (identity["Account"], identity["Arn"], identity["UserId"]) == (
            "111111111111",
            user["Arn"],
            user["AssumedRoleId"],
        )
        assert sts.get_caller_identity()["Account"] == DEFAULT_ACCOUNT

    def test_a_set_created_with_role_keys_lands_in_the_roles_account(
        self, served: Emulator, boto3_client: Callable[..., Any], role_client: Callable[..., Any]
    ) -> None:
        sts = boto3_client(served, "sts")
        first = role_client(served, assume(sts, ROLE))
        second = role_client(served, assume(sts, OTHER_ROLE))
        first.create_configuration_set(ConfigurationSetName="tenant-a")
        assert first.list_configuration_sets()["ConfigurationSets"] == ["tenant-a"]
        assert boto3_client(served).list_configuration_sets()["ConfigurationSets"] == []
        assert second.list_configuration_sets()["ConfigurationSets"] == []
        second.create_configuration_set(ConfigurationSetName="tenant-a")  # another account
        assert served.state.names(("111111111111", REGION)) == ["tenant-a"]
        assert served.state.names(("222222222222", REGION)) == ["tenant-a"]
        assert served.state.names((ACCESS_KEY, REGION)) == []  # a key stands for its account
        by_scope = served.stats()["by_scope"]
        assert by_scope[f"111111111111/{REGION}"]["created"] == 1
        assert by_scope[f"222222222222/{REGION}"]["creates"] == {"accepted": 1, "throttled": 0}

    def test_both_apis_see_the_roles_sets(
        self, served: Emulator, boto3_client: Callable[..., Any], role_client: Callable[..., Any]
    ) -> None:
        credentials = assume(boto3_client(served, "sts"))
        role_client(served, credentials, "pinpoint-email").create_configuration_set(
            ConfigurationSetName="both"
        )
        sesv2 = role_client(served, credentials, "sesv2")
        assert sesv2.get_configuration_set(ConfigurationSetName="both")["ConfigurationSetName"] == (
            "both"
        )

    def test_a_denied_role_is_access_denied_beside_good_ones(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        sts = boto3_client(served, "sts")
        code, status, message = error_of(lambda: assume(sts, DENIED_ROLE))
        assert (code, status) == ("AccessDenied", 403)
        assert DENIED_ROLE in message and "sts:AssumeRole" in message
        assert assume(sts, "arn:aws:iam::333333333333:role/open")["AccessKeyId"]
        assert assume(sts, ROLE)["AccessKeyId"]
        stats = served.stats()
        assert stats["assume_role"] == {
            DENIED_ROLE: 1,
            "arn:aws:iam::333333333333:role/open": 1,
            ROLE: 1,
        }
        assert stats["errors"] == {"AccessDenied": 1}
        assert stats["issued_credentials"] == 2

    def test_denying_an_account_denies_each_of_its_roles(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        served.configure(denied_roles=["111111111111"])
        sts = boto3_client(served, "sts")
        for role in (ROLE, "arn:aws:iam::111111111111:role/path/other"):
            assert code_of(partial(assume, sts, role)) == "AccessDenied"
        assert assume(sts, OTHER_ROLE)["AccessKeyId"]

    def test_credential_lifetime_caps_what_is_asked(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        served.configure(credential_lifetime=60)
        sts = boto3_client(served, "sts")
        before = datetime.datetime.now(datetime.UTC)
        for expiration in (
            assume(sts)["Expiration"],
            assume(sts, DurationSeconds=43200)["Expiration"],
        ):
            assert 59 <= (expiration - before).total_seconds() <= 65

    def test_without_a_duration_credentials_last_an_hour(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        before = datetime.datetime.now(datetime.UTC)
        expiration = assume(boto3_client(served, "sts"))["Expiration"]
        assert 3599 <= (expiration - before).total_seconds() <= 3605


class TestRefresh:
    def test_expired_keys_are_refused_and_fresh_ones_see_the_same_sets(
        self, served: Emulator, boto3_client: Callable[..., Any], role_client: Callable[..., Any]
    ) -> None:
        clock = FakeWallClock()
        served.runtime.wall_clock = clock
        served.configure(credential_lifetime=60)
        sts = boto3_client(served, "sts")
        old = role_client(served, assume(sts))
        old.create_configuration_set(ConfigurationSetName="before-refresh")
        clock.now += 60
        code, status, _ = error_of(old.list_configuration_sets)
        assert (code, status) == ("ExpiredTokenException", 403)
        new = role_client(served, assume(sts, session="run-2"))
        assert new.list_configuration_sets()["ConfigurationSets"] == ["before-refresh"]
        with pytest.raises(new.exceptions.AlreadyExistsException):
            new.create_configuration_set(ConfigurationSetName="before-refresh")

    def test_botocore_refreshing_a_profiles_role_keeps_its_account(
        self,
        served: Emulator,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # botocore refreshes credentials that expire within minutes before each use: with
        # 1-second credentials every call below signs with keys of a new AssumeRole.
        served.configure(credential_lifetime=1)
        config = tmp_path / "config"
        config.write_text(
            f"[profile base]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = s\n"
            f"[profile tenant]\nrole_arn = {ROLE}\nsource_profile = base\nregion = {REGION}\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", served.url)
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        session = boto3.session.Session(profile_name="tenant")
        client = session.client(
            "sesv2", endpoint_url=served.url, config=Config(retries={"total_max_attempts": 1})
        )
        try:
            client.create_configuration_set(ConfigurationSetName="refreshed")
            assert client.list_configuration_sets()["ConfigurationSets"] == ["refreshed"]
        finally:
            client.close()
        assert served.stats()["assume_role"][ROLE] >= 2, "the credentials were refreshed"
        assert served.state.names(("111111111111", REGION)) == ["refreshed"]

    def test_issued_keys_survive_a_reset(
        self, served: Emulator, boto3_client: Callable[..., Any], role_client: Callable[..., Any]
    ) -> None:
        credentials = assume(boto3_client(served, "sts"))
        served.reset()
        identity = role_client(served, credentials, "sts").get_caller_identity()
        assert identity["Account"] == "111111111111"


class TestCredentials:
    def test_plain_keys_belong_to_the_default_or_mapped_account(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        served.configure(
            default_account="444444444444", key_accounts={"AKIAMAPPED": "555555555555"}
        )
        assert boto3_client(served, "sts").get_caller_identity()["Account"] == "444444444444"
        mapped = boto3_client(served, "sts", access_key="AKIAMAPPED").get_caller_identity()
        assert (mapped["Account"], mapped["Arn"]) == (
            "555555555555",
            "arn:aws:iam::555555555555:user/emulator",
        )

    def test_issued_keys_need_their_own_session_token(
        self, served: Emulator, boto3_client: Callable[..., Any], role_client: Callable[..., Any]
    ) -> None:
        sts = boto3_client(served, "sts")
        credentials = assume(sts)
        other = assume(sts, session="run-2")
        mixed = {**credentials, "SessionToken": other["SessionToken"]}
        code, status, _ = error_of(role_client(served, mixed).list_configuration_sets)
        assert (code, status) == ("UnrecognizedClientException", 403)
        code, status, _ = error_of(role_client(served, mixed, "sts").get_caller_identity)
        assert (code, status) == ("InvalidClientTokenId", 403)

    def test_bad_input_is_a_validation_error(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        # botocore checks these too; a client without that check meets the service's own.
        sts = boto3_client(served, "sts", parameter_validation=False)
        code, status, message = error_of(lambda: assume(sts, DurationSeconds=60))
        assert (code, status) == ("ValidationError", 400)
        assert "greater than or equal to 900" in message
        code, _, message = error_of(lambda: assume(sts, "arn:aws:iam::1234:role/short-account"))
        assert code == "ValidationError" and "arn:aws:iam::ACCOUNT:role/NAME" in message

    def test_an_unknown_action_or_no_signature_is_an_xml_error(self, served: Emulator) -> None:
        status, body = post(served, "Action=GetSessionToken&Version=2011-06-15", SIGNED_STS)
        assert status == 400
        assert "<Code>InvalidAction</Code>" in body and "<Type>Sender</Type>" in body
        unsigned = {"Content-Type": SIGNED_STS["Content-Type"]}
        status, body = post(served, "Action=GetCallerIdentity&Version=2011-06-15", unsigned)
        assert status == 403 and "<Code>MissingAuthenticationToken</Code>" in body

    def test_sts_faults_are_xml_500s_when_asked_for(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        served.configure(fault_operations=["AssumeRole"], fault_rate=1.0)
        sts = boto3_client(served, "sts")
        code, status, _ = error_of(lambda: assume(sts))
        assert (code, status) == ("InternalFailure", 500)
        assert sts.get_caller_identity()["Account"] == DEFAULT_ACCOUNT  # not in fault_operations
        assert served.stats()["issued_credentials"] == 0

    async def test_aiobotocore_assumes_a_role_in_the_same_loop(self, emulator: Emulator) -> None:
        config = Config(retries={"total_max_attempts": 1})
        session = get_session()
        async with session.create_client(
            "sts", endpoint_url=emulator.url, region_name=REGION, config=config
        ) as sts:
            answer = await sts.assume_role(RoleArn=ROLE, RoleSessionName="async")
        credentials = answer["Credentials"]
        async with session.create_client(
            "sesv2",
            endpoint_url=emulator.url,
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            config=config,
        ) as client:
            await client.create_configuration_set(ConfigurationSetName="async-role")
        assert emulator.state.names(("111111111111", REGION)) == ["async-role"]


class TestPerAccountThrottling:
    def test_keys_of_one_account_share_one_bucket(
        self,
        threaded_emulator: Callable[..., Any],
        boto3_client: Callable[..., Any],
        role_client: Callable[..., Any],
    ) -> None:
        config = EmulatorConfig(rate=0.01, burst=1, key_accounts={"AKIAELSEWHERE": "666666666666"})
        with threaded_emulator(config) as served:
            boto3_client(served).create_configuration_set(ConfigurationSetName="first")
            same_account = boto3_client(served, "pinpoint-email", access_key="AKIASAMEACCOUNT")
            code, status, _ = error_of(
                lambda: same_account.create_configuration_set(ConfigurationSetName="second")
            )
            assert (code, status) == ("TooManyRequestsException", 429)

            sts = boto3_client(served, "sts")
            role_keys = role_client(served, assume(sts))
            role_keys.create_configuration_set(ConfigurationSetName="role-first")  # own bucket
            refreshed = role_client(served, assume(sts, session="run-2"))
            again = partial(refreshed.create_configuration_set, ConfigurationSetName="again")
            assert code_of(again) == "TooManyRequestsException"
            elsewhere = boto3_client(served, access_key="AKIAELSEWHERE")
            elsewhere.create_configuration_set(ConfigurationSetName="mapped-first")

            by_scope = served.stats()["by_scope"]
            assert by_scope[f"{DEFAULT_ACCOUNT}/{REGION}"]["creates"] == {
                "accepted": 1,
                "throttled": 1,
            }
            assert by_scope[f"111111111111/{REGION}"]["creates"] == {"accepted": 1, "throttled": 1}
            assert by_scope[f"666666666666/{REGION}"]["creates"] == {"accepted": 1, "throttled": 0}
            assert by_scope[f"111111111111/{REGION}"]["throttled"] == {"CreateConfigurationSet": 1}


class TestOperationLimits:
    def test_creates_are_throttled_at_their_rate_while_lists_are_not(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        with threaded_emulator(EmulatorConfig(rate=0.01, burst=2)) as served:
            client = boto3_client(served)
            for name in ("one", "two"):
                client.create_configuration_set(ConfigurationSetName=name)
            third = partial(client.create_configuration_set, ConfigurationSetName="three")
            assert code_of(third) == "TooManyRequestsException"
            for _ in range(20):
                assert client.list_configuration_sets()["ConfigurationSets"] == ["one", "two"]
            assert served.stats()["by_scope"][f"{DEFAULT_ACCOUNT}/{REGION}"]["calls"] == {
                "CreateConfigurationSet": 3,
                "ListConfigurationSets": 20,
            }

    def test_each_operation_has_its_own_limit(
        self, threaded_emulator: Callable[..., Any], boto3_client: Callable[..., Any]
    ) -> None:
        config = EmulatorConfig(
            rate=0, operation_limits={"ListConfigurationSets": (0.01, 2), "AssumeRole": (0.01, 1)}
        )
        with threaded_emulator(config) as served:
            client = boto3_client(served)
            client.list_configuration_sets()
            client.list_configuration_sets()
            code, status, _ = error_of(client.list_configuration_sets)
            assert (code, status) == ("TooManyRequestsException", 429)
            for index in range(10):  # neither creates nor gets spend the list's tokens
                client.create_configuration_set(ConfigurationSetName=f"s{index}")
                client.get_configuration_set(ConfigurationSetName=f"s{index}")
            sts = boto3_client(served, "sts")
            assume(sts)
            code, status, message = error_of(lambda: assume(sts))
            assert (code, status, message) == ("Throttling", 400, "Rate exceeded")
            sts.get_caller_identity()

    def test_limits_change_while_it_runs(
        self, served: Emulator, boto3_client: Callable[..., Any]
    ) -> None:
        client = boto3_client(served)
        served.configure(operation_limits={"GetAccount": [0.01, 1]})
        client.get_account()
        assert code_of(client.get_account) == "TooManyRequestsException"
        served.configure(operation_limits={"GetAccount": [0, 1]})  # 0: unthrottled
        for _ in range(5):
            client.get_account()
        assert served.config.as_dict()["operation_limits"] == {"GetAccount": [0.0, 1]}
