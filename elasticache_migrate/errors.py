"""Every failure the migration can meet, each carrying what the operator should do about it.

::

    MigrationError                  base: .remedy (one line, imperative), .step, .retryable
    ├── PlanError                   the plan itself is wrong (fix the YAML / form field named)
    ├── PreflightError              a blocking preflight finding (nothing was changed)
    ├── SourceError                 the source Redis cannot be reached or refused a command
    │   └── QuiesceError            clients did not drain, or writes could not be paused
    ├── SnapshotError               BGSAVE failed or never finished
    ├── ExtractError                container / file missing, not an RDB, unreadable
    ├── TransferError               S3 bucket/object problems (upload, download, head)
    │   └── GrantError              the object could not be made readable by ElastiCache
    ├── ProvisioningError           create / wait-available (restore-failed, id taken, ...)
    ├── ApprovalError
    │   ├── ApprovalRejected        a human said no
    │   └── ApprovalTimedOut        nobody answered in time
    ├── CutoverError                the app's config could not be switched (or restored)
    └── VerificationError           the target's data differs from the source

Foreign errors (botocore ``ClientError``, ``redis.RedisError``, ``docker.errors.APIError``) are turned
into these at one boundary, :func:`mapped`, always with ``raise ... from exc`` so nothing is hidden.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = [
    "MigrationError",
    "PlanError",
    "PreflightError",
    "SourceError",
    "QuiesceError",
    "SnapshotError",
    "ExtractError",
    "TransferError",
    "GrantError",
    "ProvisioningError",
    "ApprovalError",
    "ApprovalRejected",
    "ApprovalTimedOut",
    "CutoverError",
    "VerificationError",
    "mapped",
    "is_retryable",
]


class MigrationError(Exception):
    """A failure with a remedy: what happened, then what to do about it."""

    default_remedy = "read the message above; fix the cause and run the migration again with the same id"
    retryable = False

    def __init__(self, message: str, *, remedy: str | None = None, step: str | None = None,
                 retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy or self.default_remedy
        self.step = step
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        where = f"[{self.step}] " if self.step else ""
        return f"{where}{self.message} — what to do: {self.remedy}"


class PlanError(MigrationError):
    """The plan is invalid; the field named in the message needs fixing."""

    default_remedy = "fix the plan field named above (deployment YAML or the Prefect UI form) and start again"


class PreflightError(MigrationError):
    """A blocking preflight finding; nothing has been changed yet."""

    default_remedy = "fix every 'block' finding in the preflight report, then run again"


class SourceError(MigrationError):
    """The source Redis cannot be reached or refused a command."""

    default_remedy = "check source.redis host/port/TLS and the password secret; try `redis-cli -h … PING`"
    retryable = True


class QuiesceError(SourceError):
    """Application clients did not drain, or writes could not be paused."""

    default_remedy = "stop the application's writers (maintenance mode) or allow-list the named clients"
    retryable = False


class SnapshotError(MigrationError):
    """BGSAVE failed or did not finish."""

    default_remedy = "look at the source's log (fork/disk errors); free disk space or memory, then re-run"


class ExtractError(MigrationError):
    """The RDB could not be fetched from the container or host."""

    default_remedy = "check source.container / source.rdb_path and that the RDB file exists there"


class TransferError(MigrationError):
    """S3 refused or failed an operation on the staging bucket/object."""

    default_remedy = "check staging.bucket exists in the target's region and the credentials can write to it"
    retryable = True


class GrantError(TransferError):
    """The object could not be made readable by ElastiCache."""

    default_remedy = "grant READ and READ_ACP on the object to ElastiCache's canonical ID (see the message)"
    retryable = False


class ProvisioningError(MigrationError):
    """ElastiCache (or the rehearsal target) could not be created or did not become available."""

    default_remedy = "look at the replication group's events in the ElastiCache console; fix and re-run"


class ApprovalError(MigrationError):
    """The cutover was not approved."""

    default_remedy = "nothing was switched; schedule a new window and run again with the same migration id"


class ApprovalRejected(ApprovalError):
    """An approver rejected the cutover."""


class ApprovalTimedOut(ApprovalError):
    """Nobody approved within approval.timeout_seconds."""


class CutoverError(MigrationError):
    """The application's Redis address could not be switched (or restored)."""

    default_remedy = "check the config backend's permissions; the previous value is in the run's logs"


class VerificationError(MigrationError):
    """The target's data differs from the source."""

    default_remedy = "the config was restored; inspect the mismatches in the verify artifact before retrying"


def is_retryable(exc: BaseException) -> bool:
    """True for I/O failures worth another try; False for anything a retry cannot fix."""
    if isinstance(exc, MigrationError):
        return exc.retryable
    # Foreign errors that escaped mapping are I/O by nature (connection resets, throttling).
    return not isinstance(exc, (ValueError, TypeError, KeyError, AttributeError))


_S3_REMEDIES = {
    "NoSuchBucket": "create the bucket (same region as the target) or fix staging.bucket",
    "AccessDenied": "give the caller s3:PutObject/GetObject/PutObjectAcl on the staging bucket",
    "AccessControlListNotSupported": (
        "the bucket has ACLs disabled (Object Ownership: BucketOwnerEnforced); set it to BucketOwnerPreferred "
        "or use a staging bucket that allows ACLs"
    ),
    "PermanentRedirect": "the bucket is in another region: use a bucket in the target's region",
    "AuthorizationHeaderMalformed": "the bucket is in another region: use a bucket in the target's region",
    "InvalidAccessKeyId": "check the AWS credentials (AWS_PROFILE / AWS_ACCESS_KEY_ID) of the worker",
    "ExpiredToken": "refresh the worker's AWS credentials",
}
_RETRYABLE_AWS_CODES = {
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown", "InternalError",
    "ServiceUnavailable", "RequestTimeout", "InternalFailure",
}


@contextlib.contextmanager
def mapped(step: str, error: type[MigrationError] = MigrationError, what: str = "") -> Iterator[None]:
    """Turn foreign exceptions raised inside the block into ``error`` with a remedy.

    Args:
        step: the flow step, named in the message.
        error: the MigrationError subclass to raise.
        what: a short description of the operation ("upload s3://b/k"), for the message.
    """
    prefix = f"{what}: " if what else ""
    try:
        yield
    except MigrationError as exc:
        if exc.step is None:
            exc.step = step
        raise
    except Exception as exc:  # noqa: BLE001 - this is the one mapping boundary
        raise _translate(exc, step, error, prefix) from exc


def _translate(exc: Exception, step: str, error: type[MigrationError], prefix: str) -> MigrationError:
    """Build the MigrationError for one foreign exception."""
    mod = type(exc).__module__
    if mod.startswith("boto3"):
        # boto3's transfer layer (upload_file) re-raises botocore's ClientError as S3UploadFailedError, keeping
        # it only as the implicit context: classify by that error's code, or a SlowDown that outlasted
        # botocore's own retries would count as final and the upload would never be retried.
        inner = exc.__cause__ or exc.__context__
        if isinstance(inner, Exception) and type(inner).__module__.startswith("botocore"):
            return _translate(inner, step, error, prefix)
    if mod.startswith("botocore"):
        response = getattr(exc, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", type(exc).__name__))
        msg = str(response.get("Error", {}).get("Message", exc))
        retry = code in _RETRYABLE_AWS_CODES or type(exc).__name__ in {
            "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}
        return error(f"{prefix}AWS said {code}: {msg}", remedy=_S3_REMEDIES.get(code), step=step,
                     retryable=retry)
    if mod.startswith("redis"):
        name = type(exc).__name__
        if name == "AuthenticationError" or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            return SourceError(f"{prefix}Redis refused authentication ({exc})",
                               remedy="set the password secret named in the plan (env var or Prefect Secret)",
                               step=step, retryable=False)
        retry = name in {"ConnectionError", "TimeoutError", "BusyLoadingError"}
        return error(f"{prefix}Redis error {name}: {exc}", step=step, retryable=retry)
    if mod.startswith("docker") or mod.startswith("requests"):
        name = type(exc).__name__
        if name == "NotFound":
            return ExtractError(f"{prefix}Docker says not found: {exc}",
                                remedy="check source.container (docker ps -a) and source.docker_host",
                                step=step)
        return error(f"{prefix}Docker engine error {name}: {exc}",
                     remedy="check that the Docker engine at source.docker_host is running and reachable",
                     step=step, retryable=True)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        # A socket reset, refused or timed out (a server restarting, a network blip) is transient, whichever
        # client raised it raw; other OSErrors (disk full, permission denied) are not.
        return error(f"{prefix}{type(exc).__name__}: {exc}", step=step, retryable=True)
    if isinstance(exc, OSError):
        return error(f"{prefix}{type(exc).__name__}: {exc}", step=step, retryable=False)
    return error(f"{prefix}{type(exc).__name__}: {exc}", step=step, retryable=False)
