"""The one parameter of the flow: a ``MigrationPlan``.

It is the form an operator fills in the Prefect UI and the YAML file under ``deployments/``. It never
holds a secret: fields ending in ``_secret`` name *where* a secret lives (``env:NAME`` for an environment
variable of the worker, ``prefect:BLOCK`` for a Prefect Secret block), resolved at run time by
:mod:`elasticache_migrate.secrets`.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from elasticache_migrate.errors import PlanError

__all__ = [
    "SECRET_REF_PATTERN",
    "Aws",
    "RedisConnection",
    "Source",
    "Quiesce",
    "Staging",
    "Target",
    "Cutover",
    "Approval",
    "Notifications",
    "VerifyOptions",
    "MigrationPlan",
    "load_plan",
    "validate_plan",
    "replication_group_id_problem",
    "network_source_problem",
    "SG_ID",
    "sentinel_address_problem",
]

SECRET_REF_PATTERN = r"^(env|prefect):[A-Za-z0-9_./-]{1,128}$"
_SECRET_HELP = "Where the secret lives, never the secret: 'env:NAME' (worker env var) or 'prefect:BLOCK'."


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Aws(_Model):
    """How to reach AWS."""

    region: str = Field("us-east-1", description="AWS region of the staging bucket and the new cluster.")
    endpoint_url: str | None = Field(
        None,
        description="Override the AWS endpoint (e.g. a local moto server for rehearsals/tests). "
        "Leave empty for real AWS.",
    )


class RedisConnection(_Model):
    """How to connect to a Redis server."""

    host: str = Field("127.0.0.1", description="Host name or IP of the Redis server.")
    port: int = Field(6379, ge=1, le=65535, description="TCP port.")
    tls: bool = Field(False, description="Connect with TLS (rediss://).")
    username: str | None = Field(None, description="ACL user name (Redis 6+); empty for the default user.")
    password_secret: str | None = Field(None, pattern=SECRET_REF_PATTERN, description=_SECRET_HELP)
    sentinel_master: str | None = Field(
        None, description="If set, host/port are a Sentinel (the first one asked); the master of this name is "
        "resolved through it or through any reachable one of source.redis.sentinels.",
    )
    sentinels: list[str] = Field(
        default_factory=list,
        description="More Sentinels of the same set, as 'host:port' (with sentinel_master): any reachable one "
        "answers, so one Sentinel down does not stop the migration; reachable ones that disagree about the master "
        "stop it (a failover in progress).",
    )
    sentinel_username: str | None = Field(
        None, description="ACL user for the Sentinels (Sentinel 6.2+); empty for the default user."
    )
    sentinel_password_secret: str | None = Field(
        None, pattern=SECRET_REF_PATTERN,
        description="Password of the Sentinels (sentinel requirepass, Sentinel 5.0.1+), if they have one; it is not "
        "the master's password. " + _SECRET_HELP,
    )

    @field_validator("sentinels")
    @classmethod
    def _sentinel_addresses(cls, v: list[str]) -> list[str]:
        problems = [p for p in map(sentinel_address_problem, v) if p]
        if problems:
            raise ValueError("source.redis.sentinels: " + "; ".join(problems))
        stripped = [a.strip() for a in v]
        dupes = sorted({a for a in stripped if stripped.count(a) > 1})
        if dupes:
            raise ValueError(f"source.redis.sentinels names {', '.join(dupes)} more than once")
        return stripped

    @model_validator(mode="after")
    def _sentinel_fields(self) -> RedisConnection:
        if not self.sentinel_master:
            extra = [n for n in ("sentinels", "sentinel_username", "sentinel_password_secret") if getattr(self, n)]
            if extra:
                raise ValueError(f"{', '.join(extra)} need(s) sentinel_master: the name the Sentinels monitor the "
                                 "master under (SENTINEL masters)")
        elif f"{self.host}:{self.port}" in self.sentinels:
            raise ValueError(f"source.redis.sentinels repeats host:port ({self.host}:{self.port}), the first Sentinel")
        return self


def sentinel_address_problem(value: str) -> str | None:
    """Why ``value`` is not a ``host:port`` Sentinel address (``[v6addr]:port`` for IPv6), or None."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host:
        return f"{value!r} is not host:port (e.g. 10.0.0.12:26379)"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"{value!r}: the port must be a number 1–65535"
    if host.startswith("[") != host.endswith("]") or (":" in host and not host.startswith("[")):
        return f"{value!r}: write an IPv6 address in brackets, e.g. [fd00::12]:26379"
    if any(c.isspace() for c in host) or "/" in host:
        return f"{value!r}: the host must be a name or an address"
    return None


class Source(_Model):
    """The self-hosted Redis to move."""

    kind: Literal["docker", "host"] = Field(
        "docker",
        description="'docker': Redis runs in a container, the RDB is read from it through the Docker API. "
        "'host': Redis runs on this host, the RDB is read from its file.",
    )
    redis: RedisConnection = Field(default_factory=RedisConnection, description="Connection to the source.")
    container: str | None = Field(None, description="Container name or id (kind=docker).")
    docker_host: str | None = Field(
        None, description="Docker engine URL (unix:///var/run/docker.sock, tcp://…); empty = DOCKER_HOST/default."
    )
    rdb_path: str | None = Field(
        None,
        description="Path of the RDB file (inside the container for kind=docker). Empty = ask the server "
        "(CONFIG GET dir + dbfilename).",
    )

    @model_validator(mode="after")
    def _container_for_docker(self) -> Source:
        if self.kind == "docker" and not self.container:
            raise ValueError("source.container is required when source.kind is 'docker'")
        return self


class Quiesce(_Model):
    """How writes are stopped before the snapshot."""

    maintenance_hook_url: str | None = Field(
        None,
        description="Optional HTTP endpoint of the app: POSTed {'migration_id', 'maintenance': true} before "
        "the pause and false when service is restored.",
    )
    maintenance_hook_token_secret: str | None = Field(
        None, pattern=SECRET_REF_PATTERN, description="Bearer token for the hook. " + _SECRET_HELP
    )
    require_no_clients: bool = Field(
        True, description="Wait until no application client is connected before pausing writes."
    )
    drain_timeout_seconds: float = Field(60, ge=0, description="How long to wait for clients to disconnect.")
    allowed_clients: list[str] = Field(
        default_factory=list,
        description="Client names (CLIENT SETNAME) or address prefixes allowed to stay connected "
        "(monitoring, exporters). Replicas, Sentinels and this tool are always allowed.",
    )
    during_window: Literal["block", "refuse"] = Field(
        "block",
        description="What the app's writes meet during the window. 'block': they wait (CLIENT PAUSE WRITE, "
        "Redis >= 6.2; a client without a socket timeout waits the whole window, one with a timeout gets a "
        "timeout error). 'refuse': they fail at once with NOREPLICAS (min-replicas-to-write set above any replica "
        "count), an error the app can show as maintenance. Below Redis 6.2 'block' is impossible (CLIENT PAUSE "
        "ALL would also stop this tool) and 'refuse' is used (preflight warns). Reads work in both.",
    )
    max_pause_seconds: int = Field(
        900,
        ge=30,  # the pause is renewed every third of this while the run lives; 30 s lets tests cross it quickly
        description="The write pause ('block') is renewed while the run lives, so it never ends before the "
        "run does; this is how long it outlives a run that died (crash, kill -9) before it expires by itself. "
        "The refusal ('refuse', and the fence at cutover) does not expire: a re-run or its rollback lifts it.",
    )
    stop_containers: list[str] = Field(
        default_factory=list,
        description="Worker containers (Sidekiq/Celery/RQ workers, batch jobs, daemons) to stop before the pause, "
        "so they leave the source, and to start again after the cutover (they read the new config) or after a "
        "rollback (the old one). Only those running are stopped and later started. Docker engine: "
        "cutover.docker_host, else source.docker_host, else the default.",
    )
    stop_timeout_seconds: int = Field(
        30, ge=1, le=3600,
        description="How long each worker container gets to finish its current job after SIGTERM (docker stop -t) "
        "before it is killed.",
    )

    @field_validator("stop_containers")
    @classmethod
    def _container_names(cls, v: list[str]) -> list[str]:
        names = [n.strip() for n in v]
        if any(not n for n in names):
            raise ValueError("quiesce.stop_containers: a container name is empty")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"quiesce.stop_containers names {', '.join(dupes)} more than once")
        return names


class Staging(_Model):
    """Where the RDB is staged."""

    bucket: str = Field(..., min_length=3, max_length=63, description="S3 bucket, in the target's region.")
    key_prefix: str = Field("redis-migrations", description="Key prefix; the object is PREFIX/ID/dump.rdb.")
    transfer: Literal["auto", "sync", "stream", "staged"] = Field(
        "auto",
        description="How the snapshot reaches S3. 'sync': read over the replication protocol (SYNC, as redis-cli "
        "--rdb does) straight into a multipart upload while the source writes it; needs a source >= 7.0 whose user "
        "may run REPLCONF and SYNC, no Docker or file access. 'staged': BGSAVE, copy to disk (CRC-checked), then "
        "upload. 'stream': BGSAVE, then copy and upload in one pass. 'auto': sync on a source >= 7.0 that allows "
        "it, else staged. All keep a local copy (checked before the grant, used to resume). benchmarks/run.py "
        "measures them (README, Performance).",
    )
    workdir: str = Field(
        "~/.local/share/redis-elasticache-migrate",
        description="Local directory for the extracted RDB (needs free space of about the RDB's size).",
    )

    @field_validator("key_prefix")
    @classmethod
    def _no_commas(cls, v: str) -> str:
        if "," in v:
            raise ValueError("ElastiCache cannot read S3 keys containing commas; remove them from key_prefix")
        return v.strip("/")


class Target(_Model):
    """The new managed Redis (or a local rehearsal of it)."""

    kind: Literal["elasticache", "rehearsal"] = Field(
        "elasticache",
        description="'elasticache': create a replication group. 'rehearsal': start a local server of the "
        "same engine seeded from the same S3 object, to rehearse the window.",
    )
    replication_group_id: str = Field(..., description="1–40 chars: letters, digits, hyphens; starts with a letter.")
    description: str = Field("Migrated from self-hosted Redis", description="Replication group description.")
    engine: Literal["redis", "valkey"] = Field("redis", description="Engine of the new cluster.")
    engine_version: str = Field(
        "7.1", description="Engine version, e.g. 7.1 (redis) or 8.1, 9.0 (valkey). Preflight checks it loads the "
        "snapshot: Redis OSS 7.0/7.1 load RDB ≤ 10, Valkey 7.2–8.1 RDB ≤ 11, Valkey 9.0/9.1 also VALKEY080.")
    node_type: str = Field("cache.r7g.large", description="Node type; size it from the source's used_memory.")
    replicas: int = Field(1, ge=0, le=5, description="Read replicas per shard.")
    multi_az: bool = Field(False, description="Multi-AZ with automatic failover (needs replicas >= 1).")
    cluster_mode: bool = Field(False, description="Cluster mode enabled (needs db0 only, no CROSSSLOT apps).")
    shards: int = Field(1, ge=1, le=500, description="Shards (node groups) when cluster_mode is on.")
    subnet_group: str | None = Field(None, description="Cache subnet group name (VPC).")
    security_group_ids: list[str] = Field(
        default_factory=list, description="VPC security group ids (of the subnet group's VPC). Preflight blocks "
        "unless their inbound rules admit target.port from every app_sources entry and from the worker.")
    app_sources: list[str] = Field(
        default_factory=list, description="Where the app connects from: CIDRs (10.0.1.0/24; an address alone is "
        "/32) or security group ids (sg-…). Preflight checks target.security_group_ids admit target.port from each; "
        "empty = only warned about.")
    worker_source: str | None = Field(
        None, description="Where this worker's connections to the new cluster come from (CIDR or sg-…), for the same "
        "check (it must reach the cluster to verify it). Empty = the worker's own interface addresses, right when "
        "it runs in the VPC without NAT; set the worker's security group when rules reference groups.")
    parameter_group: str | None = Field(None, description="Cache parameter group name; empty = engine default.")
    port: int = Field(6379, ge=1, le=65535, description="Port of the new cluster.")
    transit_encryption: bool = Field(False, description="Enable TLS in transit (clients must use rediss://).")
    at_rest_encryption: bool = Field(False, description="Enable encryption at rest.")
    auth_token_secret: str | None = Field(
        None, pattern=SECRET_REF_PATTERN, description="AUTH token (needs transit_encryption). " + _SECRET_HELP
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags; 'migration-id' is always added.")
    wait_delay_seconds: int = Field(30, ge=1, description="Seconds between status polls while creating.")
    wait_max_attempts: int = Field(120, ge=1, description="Polls before giving up (delay x attempts = 1 h).")
    rehearsal_binary: str | None = Field(
        None, description="Rehearsal only: server binary to use (e.g. 'valkey-8.1'); empty = match the engine "
        "(valkey 9.x → valkey-9.1). Preflight blocks when it cannot load the snapshot."
    )
    rehearsal_port: int = Field(0, ge=0, le=65535, description="Rehearsal only: local port (0 = any free port).")
    delete_on_rollback: bool = Field(
        False, description="On rollback, delete a target this run created (default: keep it for inspection)."
    )

    @field_validator("replication_group_id")
    @classmethod
    def _group_id(cls, v: str) -> str:
        problem = replication_group_id_problem(v)
        if problem:
            raise ValueError(problem)
        return v.lower()

    @field_validator("app_sources")
    @classmethod
    def _app_sources(cls, v: list[str]) -> list[str]:
        problems = [p for p in map(network_source_problem, v) if p]
        if problems:
            raise ValueError("target.app_sources: " + "; ".join(problems))
        return v

    @field_validator("worker_source")
    @classmethod
    def _worker_source(cls, v: str | None) -> str | None:
        problem = network_source_problem(v) if v else None
        if problem:
            raise ValueError(f"target.worker_source: {problem}")
        return v or None

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if self.auth_token_secret and not self.transit_encryption:
            raise ValueError("target.auth_token_secret needs target.transit_encryption: true")
        if self.multi_az and self.replicas < 1:
            raise ValueError("target.multi_az needs target.replicas >= 1")
        if self.shards > 1 and not self.cluster_mode:
            raise ValueError("target.shards > 1 needs target.cluster_mode: true")
        return self


SG_ID = re.compile(r"^sg-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
"""A security group id: ``sg-`` and 8 or 17 hex digits."""


def network_source_problem(value: str) -> str | None:
    """Why ``value`` is neither a CIDR (``10.0.1.0/24``, an address alone = /32) nor a security group id, or None."""
    if value.startswith("sg-"):
        return None if SG_ID.match(value) else f"{value!r} is not a security group id (sg- and 8 or 17 hex digits)"
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is neither a CIDR like 10.0.1.0/24 nor a security group id like sg-0123456789abcdef0"
    return None


def replication_group_id_problem(v: str) -> str | None:
    """Why ``v`` is not a valid ElastiCache replication group id, or None."""
    if not 1 <= len(v) <= 40:
        return f"replication_group_id {v!r} must be 1–40 characters"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", v):
        return f"replication_group_id {v!r} must start with a letter and hold only letters, digits, hyphens"
    if "--" in v or v.endswith("-"):
        return f"replication_group_id {v!r} must not contain '--' nor end with '-'"
    return None


class Cutover(_Model):
    """Where the application reads its Redis address, and what to write there."""

    @model_validator(mode="before")
    @classmethod
    def _removed_source_after_cutover(cls, data: Any) -> Any:
        if isinstance(data, dict) and "source_after_cutover" in data:
            raise ValueError(
                "cutover.source_after_cutover was removed: 'unpause' released writes blocked since the quiesce to "
                "the old source after the switch, and 'keep_paused' let the pause expire with clients still on it; "
                "both lost acknowledged writes. The old source is now fenced at cutover (it refuses every write "
                "until the run ends; rollback lifts it): delete the key")
        return data

    backend: Literal["none", "ssm", "secretsmanager", "route53", "dotenv", "yaml", "webhook"] = Field(
        "none",
        description="'ssm': an SSM parameter; 'secretsmanager': one JSON field of a secret; 'route53': a CNAME the "
        "app resolves; 'dotenv' / 'yaml': a file on the host; 'webhook': an HTTP endpoint of the app; 'none': skip.",
    )
    ssm_parameter: str | None = Field(None, description="SSM parameter name (backend=ssm), e.g. /app/redis_url.")
    secret_id: str | None = Field(None, description="Secrets Manager secret name or ARN (backend=secretsmanager).")
    secret_field: str = Field("REDIS_URL", description="JSON field of the secret holding the address.")
    route53_zone_id: str | None = Field(None, description="Hosted zone id (backend=route53).")
    route53_record: str | None = Field(
        None, description="Record name the app connects to, e.g. redis.internal.example.com (backend=route53)."
    )
    route53_ttl: int = Field(60, ge=0, le=86400, description="TTL of the CNAME (keep it short before the window).")
    dotenv_path: str | None = Field(None, description="Path of the env file (backend=dotenv).")
    dotenv_key: str = Field("REDIS_URL", description="Variable to set in the env file.")
    yaml_path: str | None = Field(None, description="Path of the YAML config file (backend=yaml).")
    yaml_key: str = Field("redis.url", description="Dotted path of the value in the YAML file.")
    webhook_url: str | None = Field(
        None, description="App endpoint (backend=webhook): GET returns {'value'}, PUT {'value'} sets it."
    )
    webhook_token_secret: str | None = Field(
        None, pattern=SECRET_REF_PATTERN, description="Bearer token for the webhook. " + _SECRET_HELP
    )
    restart_containers: list[str] = Field(
        default_factory=list,
        description="App containers to restart after the config changes (and after a restore), so they read it.",
    )
    docker_host: str | None = Field(
        None, description="Docker engine of the app containers; empty = source.docker_host or the default."
    )
    value_template: str = Field(
        "{scheme}://{host}:{port}/0",
        description="What to write; {scheme} is redis or rediss, {host} and {port} are the new endpoint's "
        "(route53 always writes the bare host name).",
    )
    create_if_missing: bool = Field(
        False,
        description="Create the parameter / secret field / record / key when it does not exist yet. Off: preflight "
        "blocks on a missing one, since a misspelled name would be created, and the app would never read it.",
    )
    extra_values: dict[str, str] = Field(
        default_factory=dict,
        description="More settings of the same file to switch together with the main one (backend dotenv or yaml): "
        "env variable (dotenv) or dotted path (yaml) -> what to write, with {scheme}, {host}, {port} as in "
        "value_template, e.g. REDIS_HOST: '{host}'. Written in the same atomic rewrite as the main value and put "
        "back with it by a rollback.",
    )
    clear_keys: list[str] = Field(
        default_factory=list,
        description="Settings of the same file removed at the switch (backend dotenv or yaml) and put back byte for "
        "byte by a rollback: e.g. the Sentinel settings (REDIS_SENTINELS, REDIS_MASTER_NAME) of an app that uses "
        "the main value (REDIS_URL) when they are absent. ElastiCache is not a Sentinel: an app left with them "
        "keeps asking the old Sentinels. Preflight blocks when the file holds Sentinel settings the plan does not "
        "switch or clear.",
    )

    @model_validator(mode="after")
    def _settings_together(self) -> Cutover:
        if not (self.extra_values or self.clear_keys):
            return self
        if self.backend not in ("dotenv", "yaml"):
            raise ValueError("cutover.extra_values / clear_keys need backend dotenv or yaml (several settings of one "
                             f"file switched in one rewrite); backend {self.backend!r} holds one value")
        main = self.dotenv_key if self.backend == "dotenv" else self.yaml_key
        keys = [main, *self.extra_values, *self.clear_keys]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"cutover: {', '.join(dupes)} named twice (main key, extra_values, clear_keys each "
                             "take a setting once)")
        shape = r"[A-Za-z_][A-Za-z0-9_.-]*" if self.backend == "dotenv" else r"[^.\s]+(?:\.[^.\s]+)*"
        bad = [k for k in keys[1:] if not re.fullmatch(shape, k)]
        if bad:
            raise ValueError(f"cutover: {', '.join(map(repr, bad))} is not a "
                             + ("variable name" if self.backend == "dotenv" else "dotted YAML path"))
        for key, template in self.extra_values.items():
            try:
                template.format(scheme="redis", host="h", port=1)
            except (KeyError, IndexError, AttributeError, TypeError, ValueError) as exc:
                raise ValueError(f"cutover.extra_values[{key}] may use only {{scheme}}, {{host}}, {{port}}: "
                                 f"{exc}") from exc
        return self

    @model_validator(mode="after")
    def _backend_fields(self) -> Cutover:
        needed = {"ssm": ("ssm_parameter",), "secretsmanager": ("secret_id",),
                  "route53": ("route53_zone_id", "route53_record"), "dotenv": ("dotenv_path",),
                  "yaml": ("yaml_path",), "webhook": ("webhook_url",)}.get(self.backend, ())
        for name in needed:
            if not getattr(self, name):
                raise ValueError(f"cutover.{name} is required for backend '{self.backend}'")
        try:
            self.value_template.format(scheme="redis", host="h", port=1)
        except (KeyError, IndexError, AttributeError, TypeError, ValueError) as exc:  # e.g. {host.x}, {port[0]}, {
            raise ValueError(f"cutover.value_template may use only {{scheme}}, {{host}}, {{port}}: {exc}") from exc
        return self


class Approval(_Model):
    """The human gate before cutover."""

    @model_validator(mode="before")
    @classmethod
    def _renamed_required(cls, data: Any) -> Any:
        # Prefect drops every schema key named `required` (property names too) when it checks a deployment's
        # parameters, so a field of that name could not be deployed: it is `enabled`.
        if isinstance(data, dict) and "required" in data:
            raise ValueError("approval.required is now approval.enabled (same meaning): rename the key")
        return data

    enabled: bool = Field(
        True, description="Pause for approval before switching the app's config (false = the plan approves itself)."
    )
    timeout_seconds: int = Field(3600, ge=10, description="No decision by then = rollback.")
    approvers: list[str] = Field(
        default_factory=list,
        description="Who may decide: names typed in the UI form and/or Slack user ids (U…); empty = anyone "
        "who can resume the run.",
    )
    slack_channel: str | None = Field(
        None,
        description="Slack channel id for the Approve/Reject message (needs notifications.slack_bot_token_secret).",
    )
    ui_url: str | None = Field(
        None, description="Base URL of the Prefect UI, for the link in the Slack message (e.g. http://prefect:4200)."
    )


class Notifications(_Model):
    """Where phase messages go."""

    slack_webhook_secret: str | None = Field(
        None, pattern=SECRET_REF_PATTERN,
        description="Slack incoming-webhook URL. " + _SECRET_HELP + " Empty = log only (or the bot token).",
    )
    slack_bot_token_secret: str | None = Field(
        None, pattern=SECRET_REF_PATTERN, description="Slack bot token (xoxb-…) for chat.postMessage. " + _SECRET_HELP
    )
    slack_channel: str | None = Field(None, description="Channel id for phase messages sent with the bot token.")
    slack_api_url: str = Field(
        "https://slack.com/api", description="Slack Web API base URL (tests point it at a local stand-in)."
    )


class VerifyOptions(_Model):
    """How the target is compared with the source."""

    ttl_tolerance_ms: int = Field(2000, ge=0, description="Allowed TTL difference between source and target.")
    batch_size: int = Field(500, ge=1, le=10000, description="Keys per pipelined round trip.")
    max_reported_mismatches: int = Field(20, ge=1, description="Mismatches named in the report.")
    sample_keys: int = Field(
        0, ge=0,
        description="0 = compare every key. N > 0 = when the source holds more than N keys, compare N random keys "
        "(counts per db still exact) and report the confidence that gives.",
    )
    probes: list[str] = Field(
        default_factory=list,
        description="Keys or glob patterns the app cannot live without (e.g. 'session:*'): each must be on the "
        "target, patterns with as many keys as on the source.",
    )


class MigrationPlan(_Model):
    """Everything a migration needs to know, minus secrets."""

    migration_id: str = Field(
        ...,
        pattern=r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$",
        description="Stable id of this migration (lowercase, digits, '-'). Re-running with the same id "
        "adopts what an earlier run made.",
    )
    aws: Aws = Field(default_factory=Aws)
    source: Source
    quiesce: Quiesce = Field(default_factory=Quiesce)
    staging: Staging
    target: Target
    cutover: Cutover = Field(default_factory=Cutover)
    approval: Approval = Field(default_factory=Approval)
    notifications: Notifications = Field(default_factory=Notifications)
    verify: VerifyOptions = Field(default_factory=VerifyOptions)

    @property
    def object_key(self) -> str:
        """S3 key of the staged RDB."""
        prefix = f"{self.staging.key_prefix}/" if self.staging.key_prefix else ""
        return f"{prefix}{self.migration_id}/dump.rdb"

    @property
    def workdir(self) -> Path:
        """Local directory of this migration."""
        return Path(self.staging.workdir).expanduser() / self.migration_id


def load_plan(path: str | Path, overrides: dict[str, Any] | None = None) -> MigrationPlan:
    """Read a plan from YAML (optionally under a top-level ``plan:`` key) and validate it.

    Raises:
        PlanError: the file is missing, not YAML, or a field is invalid (all problems listed).
    """
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError as exc:
        raise PlanError(f"plan file {p} does not exist", remedy="pass the path of a plan YAML file") from exc
    except yaml.YAMLError as exc:
        raise PlanError(f"plan file {p} is not valid YAML: {exc}") from exc
    if isinstance(data, dict) and "plan" in data:
        data = data["plan"]
    if not isinstance(data, dict):
        raise PlanError(f"plan file {p} must hold a mapping of plan fields")
    if overrides:
        data = _deep_merge(data, overrides)
    return validate_plan(data)


def validate_plan(data: dict[str, Any]) -> MigrationPlan:
    """Validate a plan dict, turning pydantic's errors into one PlanError listing every field."""
    from pydantic import ValidationError

    try:
        return MigrationPlan.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(x) for x in e['loc']) or '(plan)'}: {e['msg']}" for e in exc.errors()]
        raise PlanError("the plan is invalid:\n" + "\n".join(lines)) from exc


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Return base with extra merged in, recursively for nested dicts."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
