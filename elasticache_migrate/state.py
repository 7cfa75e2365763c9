"""Typed values that travel between the steps (and, through the journal, between a crashed run and its re-run).

Each is a small frozen dataclass: a value, never formatted to a string and parsed back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PauseMode",
    "ServerInfo",
    "Endpoint",
    "QuiesceState",
    "NodeRef",
    "NodeChange",
    "MonitorRecord",
    "SetHold",
    "Snapshot",
    "Extracted",
    "StagedObject",
    "StagePath",
    "StagedSnapshot",
    "SyncSource",
    "RehearsalRecord",
    "CutoverRecord",
    "StoppedWorkers",
    "MigrationResult",
    "version_tuple",
    "info_int",
    "object_arn",
]

PauseMode = Literal["client-pause-write", "refuse-writes"]
StagePath = Literal["sync", "stream", "staged", "reused", "reuploaded"]
"""How a run's snapshot reached S3: one of the three transfers, or resumed from an earlier run's object (reused)
or its checked local copy (reuploaded)."""


def version_tuple(raw: str) -> tuple[int, int, int]:
    """(7, 0, 15) from '7.0.15'; missing or non-numeric parts are 0 ('7.0' → (7, 0, 0), '7.2-rc1' → (7, 0, 0))."""
    nums = [int(x) for x in raw.split(".")[:3] if x.isdigit()] + [0, 0, 0]
    return nums[0], nums[1], nums[2]


def info_int(info: Mapping[str, Any], key: str) -> int | None:
    """An INFO field as an int, None when the server does not report it (e.g. rdb_saves before 7.0)."""
    v = info.get(key)
    return None if v is None else int(v)


@dataclass(frozen=True, order=True)
class ServerInfo:
    """Which server answers: ``ServerInfo("redis", (7, 0, 15))``, ``ServerInfo("valkey", (8, 1, 8))``."""

    flavor: str
    version: tuple[int, int, int]

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ServerInfo:
        """From INFO server: Valkey reports ``valkey_version`` beside a ``redis_version`` it keeps for clients."""
        if "valkey_version" in info:
            return cls("valkey", version_tuple(str(info["valkey_version"])))
        return cls("redis", version_tuple(str(info.get("redis_version", "0.0.0"))))

    @property
    def dotted(self) -> str:
        """'7.0.15'."""
        return ".".join(map(str, self.version))

    def __str__(self) -> str:
        return f"{self.flavor} {self.dotted}"


@dataclass(frozen=True)
class Endpoint:
    """Where a Redis server answers."""

    host: str
    port: int
    tls: bool = False

    def url(self) -> str:
        """redis://host:port (no credentials, safe to log)."""
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url()


@dataclass(frozen=True)
class NodeRef:
    """One data node of the source: where it answers and which process it is (INFO ``run_id``, new at every
    start), so a change is undone on the node it was made on and a restart or failover is told apart."""

    host: str
    port: int
    run_id: str

    @property
    def address(self) -> str:
        """'host:port' ('[v6]:port')."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.address} (run_id {self.run_id[:8]})"


@dataclass(frozen=True)
class NodeChange:
    """A config value this run set on one node of the source's set, journaled before it was set."""

    node: NodeRef
    name: str          # "slave-priority" (< 5.0) / "replica-priority", "min-slaves-to-write", ...
    previous: str
    value: str


@dataclass(frozen=True)
class MonitorRecord:
    """What one Sentinel monitored before ``SENTINEL REMOVE`` (decommission): enough to MONITOR it again.

    ``settings`` are the ``SENTINEL SET`` values it reported (down-after-milliseconds, failover-timeout,
    parallel-syncs, scripts); the auth-pass is never journaled (the plan's password secret supplies it).
    """

    sentinel: tuple[str, int]
    master_name: str
    host: str
    port: int
    quorum: int
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SetHold:
    """A Sentinel-managed source held still for the window (``source.redis.sentinel_master``).

    ``master`` is the node quiesce paused (the Sentinels' master then); ``changes`` the replicas' priorities set
    to 0 so no Sentinel can promote them (journaled before each change, undone on the same node by the
    rollback); ``confirmed`` once every reachable Sentinel reported them; ``removed`` the Sentinels that stopped
    monitoring the old set at decommission (after the verified cutover).
    """

    master_name: str
    master: NodeRef
    sentinels: tuple[tuple[str, int], ...] = ()
    changes: tuple[NodeChange, ...] = ()
    confirmed: bool = False
    removed: tuple[MonitorRecord, ...] = ()


@dataclass(frozen=True)
class QuiesceState:
    """What quiesce (and the fence at cutover) changed, so unquiesce (or a later run) can undo exactly that.

    ``mode`` is how writes are stopped during the window: ``client-pause-write`` (CLIENT PAUSE WRITE, renewed
    while the run lives; ``pause_expires_at`` is the latest renewal's end) or ``refuse-writes``
    (min-replicas-to-write above any replica count: NOREPLICAS; it does not expire). ``saved_config`` holds
    the values the refusal replaced, journaled before they were changed; ``fenced_at`` is when the fence made
    the source refuse every write (just before the switch); ``node`` the node all of it was done on (every
    later step talks to that node, never to whichever node is master by then).
    """

    mode: PauseMode
    paused_at: float
    pause_expires_at: float | None          # None for refuse-writes (it does not expire)
    server: ServerInfo
    saved_config: dict[str, str] = field(default_factory=dict)
    hook_called: bool = False
    fenced_at: float | None = None          # set by the fence: the source refuses every write from then on
    node: NodeRef | None = None             # the node paused / refused / fenced (None in journals of older runs)


@dataclass(frozen=True)
class Snapshot:
    """A finished save of the source: the record verify and resume compare the source against."""

    last_save_time: int          # LASTSAVE after our save (server clock, seconds)
    rdb_saves: int | None        # INFO rdb_saves (7.0+), None on older servers
    seconds: float               # how long the save took, seen from here
    changes_since_save: int      # rdb_changes_since_last_save right after (0 when writes are paused)

    @classmethod
    def from_info(cls, info: Mapping[str, Any], seconds: float) -> Snapshot:
        """The record of the last save as INFO persistence ``info`` reports it."""
        return cls(last_save_time=int(info["rdb_last_save_time"]), rdb_saves=info_int(info, "rdb_saves"),
                   seconds=round(seconds, 3), changes_since_save=int(info.get("rdb_changes_since_last_save", 0)))


@dataclass(frozen=True)
class Extracted:
    """The RDB's local copy and what was learned reading it."""

    path: str
    size: int
    sha256: str
    crc64_stored: int
    crc64_computed: int
    rdb_version: int
    magic: str
    origin: str            # "container web-redis:/data/dump.rdb" / "host:/var/lib/redis/dump.rdb"

    @property
    def checksum_ok(self) -> bool | None:
        """None when the file carries no checksum (``rdbchecksum no`` or RDB < 5)."""
        if self.crc64_stored == 0 or (self.magic == "REDIS" and self.rdb_version < 5):
            return None
        return self.crc64_stored == self.crc64_computed


def object_arn(bucket: str, key: str, partition: str = "aws") -> str:
    """The SnapshotArns entry for an object (ElastiCache takes the S3 ARN)."""
    return f"arn:{partition}:s3:::{bucket}/{key}"


@dataclass(frozen=True)
class StagedObject:
    """The RDB in S3, as ElastiCache will read it."""

    bucket: str
    key: str
    size: int
    sha256: str
    etag: str
    rdb_version: int
    magic: str
    uploaded: bool        # False when an earlier run's identical object was reused

    @property
    def arn(self) -> str:
        return object_arn(self.bucket, self.key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class StagedSnapshot:
    """What the data path hands on: the snapshot record, its checked local copy, and the object in S3."""

    snapshot: Snapshot
    rdb: Extracted
    staged: StagedObject
    path: StagePath  # how it got there


@dataclass(frozen=True)
class SyncSource:
    """The source as the SYNC transfer first saw it after the pause (to tell a restart since)."""

    paused_at: float
    run_id: str | None


@dataclass(frozen=True)
class RehearsalRecord:
    """The local server standing in for ElastiCache in a rehearsal."""

    pid: int
    port: int
    binary: str
    version: str
    workdir: str
    seeded_from: str      # the SHA-256 of the RDB it loaded


@dataclass(frozen=True)
class MigrationResult:
    """What a completed migration hands back (the flow's return value): values, no config text and no secret."""

    migration_id: str
    endpoint: Endpoint                       # where the app's Redis now is
    snapshot: Snapshot
    rdb: Extracted                           # the checked local copy the target was seeded from
    staged: StagedObject                     # the object in S3
    keys_verified: int
    dbs: dict[int, tuple[int, int]]          # db -> (source keys, target keys)
    switched_where: str                      # the config switch-config wrote ("(none)" for backend none)
    config_changed: bool                     # False when a re-run found the value already there
    approved_by: str


@dataclass(frozen=True)
class CutoverRecord:
    """What switch-config replaced, so the rollback (or a re-run) can put it back."""

    where: str
    previous: str | None
    new: str
    previous_state: dict[str, Any] | None = None
    restarted: bool = False
    verified: bool = False  # verify-cutover passed: the app is on the target, a rollback must not move it back
    # cutover.extra_values / clear_keys (file backends): the values those settings had (None = absent), and the
    # text removed for clear_keys as (offset in the file before the switch, text), so a restore is byte-exact
    previous_others: dict[str, str | None] = field(default_factory=dict)
    cleared: tuple[tuple[int, str], ...] = ()
    no_final_newline: bool = False  # the file's last line had no line break before the switch


@dataclass(frozen=True)
class StoppedWorkers:
    """The worker containers (``quiesce.stop_containers``) this migration stopped because they were running, to
    start again after the cutover or the rollback. Journaled as each one is stopped; never lists one the user had
    stopped."""

    names: tuple[str, ...] = ()
