"""Every failure the migration can meet, each carrying what the operator should do about it.

::

    MigrationError                  base: .remedy (one line, imperative), .step, .retryable
    ├── PlanError                   the plan itself is wrong (fix the YAML / form field named)
    ├── PreflightError              a blocking preflight finding (nothing was changed)
    ├── SourceError                 the source Redis cannot be reached or refused a command
    │   ├── QuiesceError            clients did not drain, or writes could not be paused
    │   ├── WindowLocked            another run holds this source's window lock (or took it from this run)
    │   └── SyncUnavailable         the source cannot or may not serve SYNC (auto: the staged path instead)
    ├── SnapshotError               BGSAVE failed or never finished
    ├── ExtractError                container / file missing, not an RDB, unreadable
    ├── TransferError               S3 bucket/object problems (upload, download, head)
    │   └── GrantError              the object could not be made readable by ElastiCache
    ├── ProvisioningError           create / wait-available (restore-failed, id taken, ...)
    ├── ApprovalError
    │   ├── ApprovalRejected        a human said no
    │   └── ApprovalTimedOut        nobody answered in time
    ├── RunCancelled                the run was cancelled (Prefect UI/API, or SIGTERM): rolled back
    ├── CatchUpError                the replication stream could not be applied to the target (online mode)
    │   └── StreamRefused           the stream holds a command the target may not run (CONFIG, DEBUG, ...)
    ├── CutoverError                the app's config could not be switched (or restored)
    └── VerificationError           the target's data differs from the source
        └── SourceMoved             the source took writes after the snapshot (fence re-check): nothing switched
            └── MasterChanged       a Sentinel set's master changed during the window (failover): rolled back

Foreign errors are turned into these by class, each at the one seam that talks to that system
(botocore/boto3: :func:`elasticache_migrate.aws.aws_errors`; redis-py, hiredis and sockets to a Redis:
:func:`elasticache_migrate.source.connection.redis_errors`; the docker SDK:
:func:`elasticache_migrate.containers.docker_errors`), through :func:`boundary`, always with
``raise ... from exc`` so nothing is hidden. An exception no seam knows is a bug: it propagates as it is and
is never retried.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = [
    "MigrationError",
    "PlanError",
    "PreflightError",
    "SourceError",
    "QuiesceError",
    "WindowLocked",
    "ReplicaLinkLost",
    "SyncUnavailable",
    "SnapshotError",
    "ExtractError",
    "TransferError",
    "GrantError",
    "ProvisioningError",
    "ApprovalError",
    "ApprovalRejected",
    "ApprovalTimedOut",
    "RunCancelled",
    "CatchUpError",
    "StreamRefused",
    "CutoverError",
    "VerificationError",
    "SourceMoved",
    "MasterChanged",
    "Translate",
    "boundary",
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


class WindowLocked(SourceError):
    """Another run holds this source's migration window (its lock connection is older than ours).

    Raised before anything is changed, or right before the switch when this run lost the lock while its
    connection was down. Never retried.
    """

    default_remedy = "wait for the other run to finish, or cancel it in the Prefect UI/API, then run again"
    retryable = False


class ReplicaLinkLost(SourceError):
    """The pseudo-replica link to the source ended (closed, reset, or silent past its timeout). ``replid`` and
    ``offset`` say where the spooled stream stands: resume with ``PSYNC <replid> <offset + 1>``."""

    default_remedy = ("the link is resumed from the journal (PSYNC from the last spooled offset); if it keeps "
                      "dropping, check the source's log (repl-timeout, client-output-buffer-limit replica)")
    retryable = True

    def __init__(self, message: str, *, replid: str | None, offset: int | None, remedy: str | None = None,
                 step: str | None = "replica-link") -> None:
        super().__init__(message, remedy=remedy, step=step)
        self.replid, self.offset = replid, offset


class SyncUnavailable(SourceError):
    """The source cannot or may not serve the sync transfer (older than 7.0, SYNC/REPLCONF not granted or renamed).

    Never retried: under ``staging.transfer: auto`` the flow takes the staged path instead; under ``sync`` the
    remedy says what to grant or to set.
    """

    default_remedy = "grant +replconf +sync to the plan's ACL user on the source, or set staging.transfer: staged"
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


class RunCancelled(MigrationError):
    """The run was cancelled from the Prefect UI/API (or its process got SIGTERM) after quiesce.

    The flow rolls back (config restored, source serving) and ends Cancelled with the message.
    """

    default_remedy = "nothing was switched (or the switch was undone); run again with the same migration id"


class CatchUpError(MigrationError):
    """The source's replication stream could not be applied to the target (a malformed stream, a command the
    target refused, the target unreachable mid-batch). The target may hold part of a batch: never retried in place
    (a non-idempotent command could run twice); the run rolls back or seeds again."""

    default_remedy = ("nothing was switched; check the target's reachability and memory, then run the migration "
                      "again with the same id: it seeds the target again")


class StreamRefused(CatchUpError):
    """The stream holds a command ElastiCache does not accept (CONFIG, DEBUG, SHUTDOWN, REPLICAOF, ...), or a db
    other than 0 for a single-db (cluster mode) target. Applying the rest would leave the target different."""

    default_remedy = ("find who ran the named command on the source during the migration (its MONITOR or "
                      "slowlog); stop that job, then run the migration again with the same id")


class CutoverError(MigrationError):
    """The application's Redis address could not be switched (or restored)."""

    default_remedy = "check the config backend's permissions; the previous value is in the run's logs"


class VerificationError(MigrationError):
    """The target's data differs from the source."""

    default_remedy = "the config was restored; inspect the mismatches in the verify artifact before retrying"


class SourceMoved(VerificationError):
    """The source took writes after the snapshot (the fence's re-check): the cutover would lose them."""

    default_remedy = ("find who wrote during the window (CLIENT LIST on the source; was the pause lifted or the "
                      "config changed from outside?), then run the migration again with the same id: it takes a "
                      "new snapshot")


class MasterChanged(SourceMoved):
    """A Sentinel set's master is no longer the node quiesce paused (a failover, or a restart of the master): the
    snapshot does not hold what the set's master may have taken since, so nothing is (or stays) switched."""

    default_remedy = ("find out why the set failed over (the Sentinels' logs: +switch-master); when it is stable, "
                      "run the migration again with the same id: it pauses the new master and takes a new snapshot")


def is_retryable(exc: BaseException) -> bool:
    """True only for a :class:`MigrationError` that says a retry can fix it (connection resets, throttling).

    An exception no seam mapped is a bug, not something to retry.
    """
    return isinstance(exc, MigrationError) and exc.retryable


Translate = Callable[[Exception, str, type[MigrationError], str], "MigrationError | None"]
"""A seam's class-to-class table as a function: (foreign exception, step, error class, message prefix) -> the
MigrationError to raise, or None when the exception is not that seam's (it then propagates unchanged)."""


@contextlib.contextmanager
def boundary(translate: Translate, step: str, error: type[MigrationError], what: str = "") -> Iterator[None]:
    """The one way a seam turns foreign exceptions raised inside the block into the error tree.

    A :class:`MigrationError` passes through (its step filled in when missing); a foreign exception that
    ``translate`` knows is raised as a MigrationError ``from`` it; anything else propagates as it is.

    Args:
        translate: the seam's mapping (see :mod:`elasticache_migrate.aws`, :mod:`.containers`,
            :mod:`.source.connection`).
        step: the flow step, named in the message.
        error: the MigrationError subclass for failures the seam does not classify more precisely.
        what: a short description of the operation ("upload s3://b/k"), for the message.
    """
    try:
        yield
    except MigrationError as exc:
        if exc.step is None:
            exc.step = step
        raise
    except Exception as exc:
        mapped = translate(exc, step, error, f"{what}: " if what else "")
        if mapped is None:
            raise
        raise mapped from exc
