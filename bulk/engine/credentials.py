"""Credentials and AWS configuration a lane cannot use: which botocore errors, and their line.

botocore raises these while a client is made (the credential chain is searched, the config file
read) or a request is signed (SSO and role credentials fetch themselves then): no row of the lane
can get past one, and only the user can fix it. :mod:`bulk.engine.target` turns each into a
:class:`~bulk.errors.TargetError` (exit 3) whose message, from :func:`credential_message`, names
the lane and the profile and says what to do (``aws sso login --profile P``, the file or the
setting to fix). Every other class in ``botocore.exceptions`` is listed in
``tests/test_credentials.py`` as not one of these, so a botocore release that adds a class fails
there until someone sorts it.
"""

from __future__ import annotations

import logging
import os
import shlex

from botocore.exceptions import (
    ClientError,
    ConfigNotFound,
    ConfigParseError,
    CredentialRetrievalError,
    InvalidChecksumConfigError,
    InvalidConfigError,
    InvalidDefaultsMode,
    InvalidIMDSEndpointError,
    InvalidIMDSEndpointModeError,
    InvalidSTSRegionalEndpointsConfigError,
    LoginError,
    LoginInsufficientPermissions,
    MetadataRetrievalError,
    MissingDependencyException,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    RefreshWithMFAUnsupportedError,
    SSOError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
    UnknownCredentialError,
)

from bulk.models import Lane

# botocore's errors for a profile whose SSO or `aws login` session has run out: the user logs in.
# SSOError covers SSOTokenLoadError and UnauthorizedSSOTokenError; TokenRetrievalError is the SSO
# token provider failing to refresh.
_LOGIN_ERRORS = (SSOError, TokenRetrievalError, LoginError)

# botocore's errors for AWS configuration that cannot be used (a config file, a setting in it or
# its AWS_* variable); each message names the file or the setting. InvalidConfigError covers
# InfiniteLoopConfigError (a source_profile chain that loops); UnknownCredentialError is a
# credential_source naming a source the chain lacks.
_CONFIG_ERRORS = (
    ConfigParseError,
    ConfigNotFound,
    InvalidConfigError,
    InvalidDefaultsMode,
    InvalidChecksumConfigError,
    InvalidIMDSEndpointError,
    InvalidIMDSEndpointModeError,
    InvalidSTSRegionalEndpointsConfigError,
    UnknownCredentialError,
)

# Everything botocore raises when a lane's credentials or AWS configuration cannot be used.
CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    NoRegionError,
    CredentialRetrievalError,
    MetadataRetrievalError,
    RefreshWithMFAUnsupportedError,
    MissingDependencyException,
    *_LOGIN_ERRORS,
    *_CONFIG_ERRORS,
)


def credential_message(error: Exception, lane: Lane) -> str:
    """One line for a credential or configuration failure: which lane, what failed, what to do."""
    profile = lane.profile
    who = f"profile {profile!r}" if profile else "the default profile"
    flag = f" --profile {shlex.quote(profile)}" if profile else ""
    said = _said(error)
    if isinstance(error, ProfileNotFound):
        return f"AWS profile {profile!r} not found; check --profile or the Profile column"
    if isinstance(error, NoRegionError):
        return "no AWS Region set; pass --region or set AWS_REGION"
    if isinstance(error, SSOError | TokenRetrievalError):
        if isinstance(error, UnauthorizedSSOTokenError):
            said = type(error).__name__  # its text only says to run `aws sso login`
        return (
            f"{lane}: the AWS SSO session of {who} has expired or was never started ({said}); "
            f"run `aws sso login{flag}`, then run bulk again"
        )
    if isinstance(error, LoginInsufficientPermissions):
        return (
            f"{lane}: the `aws login` session of {who} may not refresh its credentials ({said}); "
            "grant the permission it names, then run bulk again"
        )
    if isinstance(error, LoginError):
        return (
            f"{lane}: the `aws login` session of {who} has expired or cannot be read ({said}); "
            f"run `aws login{flag}`, then run bulk again"
        )
    if isinstance(error, RefreshWithMFAUnsupportedError):
        return (
            f"{lane}: the role credentials of {who} expired and renewing them needs an MFA code, "
            "which bulk cannot ask for mid-run; run bulk again to enter a new code (the ledger "
            "resumes), or use credentials that renew without one (SSO)"
        )
    if isinstance(error, CredentialRetrievalError):
        source = _CREDENTIAL_SOURCES.get(str(error.kwargs.get("provider")), "its credential source")
        return (
            f"{lane}: {who} could not get credentials from {source} ({said}); "
            "fix it or configure other credentials, then run bulk again"
        )
    if isinstance(error, MetadataRetrievalError):
        return (
            f"{lane}: the instance metadata service gave no credentials for {who} ({said}); "
            "run where it is reachable, or configure other credentials"
        )
    if isinstance(error, MissingDependencyException):
        return f"{lane}: {who} needs a package that is not installed ({said}); install it"
    if isinstance(error, ConfigParseError | ConfigNotFound):
        return (
            f"{lane}: the AWS configuration of {who} cannot be read ({said}); "
            "fix that file, then run bulk again"
        )
    if isinstance(error, _CONFIG_ERRORS):
        config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
        return (
            f"{lane}: the AWS configuration of {who} cannot be used ({said}); "
            f"fix the setting in {config} or its AWS_* environment variable, then run bulk again"
        )
    return (
        f"no usable AWS credentials for {lane} ({said}); "
        "configure the credential chain (environment, profile, SSO) or use --emulator"
    )


# botocore's names of credential sources, as the config file calls them.
_CREDENTIAL_SOURCES = {
    "custom-process": "its credential_process",
    "container-role": "the container credentials endpoint",
    "assume-role": "the role it assumes",
    "assume-role-with-web-identity": "its web identity token",
    "sso": "AWS SSO",
}


def _said(error: Exception) -> str:
    """The error's class and the first line of what it says, for a one-line message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def quiet_refresh_logs() -> None:
    """Keep aiobotocore's log of a failed credential refresh off stderr.

    aiobotocore logs a failed refresh of credentials or of an SSO token, traceback and all,
    before it raises the error; with no logging set up Python prints that on stderr, above the
    one line bulk makes of the same error (an assumed role's: STS's ``ClientError``, which
    stops the lane). Records of other errors pass. Idempotent.
    """
    for name in ("aiobotocore.credentials", "aiobotocore.tokens"):
        logging.getLogger(name).addFilter(_not_reported_here)  # a filter is added once


def _not_reported_here(record: logging.LogRecord) -> bool:
    """False for a log record of a credential failure, which bulk reports as its own line."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, (*CREDENTIAL_ERRORS, ClientError))
