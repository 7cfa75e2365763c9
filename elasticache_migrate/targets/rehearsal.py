"""The rehearsal target: a real local Redis/Valkey seeded from the staged S3 object.

It reads the object the way ElastiCache would — after checking the object carries ElastiCache's grant,
is SSE-S3 encrypted and its key has no comma — downloads it, and starts a real server of the target's
engine line. If that server cannot load the RDB, the rehearsal fails as the real restore would.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import redis

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import GrantError, ProvisioningError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.rdb.compat import parse_version
from elasticache_migrate.source.connection import redis_client, redis_errors
from elasticache_migrate.staging.grant import canonical_id, grant_route, has_elasticache_grant, policy_allows
from elasticache_migrate.state import Endpoint, RehearsalRecord, StagedObject
from elasticache_migrate.targets.base import TargetHandle, TargetKind
from elasticache_migrate.testing.binaries import ServerBinary, find_binary
from elasticache_migrate.testing.localredis import LocalRedisServer, ServerStartError

__all__ = ["rehearsal_binary_name", "RehearsalTarget", "stop_rehearsal_target"]


def rehearsal_binary_name(engine: str, engine_version: str) -> str | None:
    """The local server that loads what that ElastiCache engine loads (same newest RDB version)."""
    major, minor = parse_version(engine_version)
    if engine == "valkey":
        if (major, minor) >= (9, 0):
            return "valkey-9.1"  # Valkey 9.0 and 9.1 both load VALKEY080 and REDIS <= 11
        return "valkey-8.1" if (7, 2) <= (major, minor) else None
    if major == 7:
        return "redis-7.0"
    if major == 6:
        return "redis-6.2"
    if major == 5:
        return "redis-5.0"
    return None


class RehearsalTarget:
    """Start a local server seeded from the S3 object, as ElastiCache would be."""

    kind: TargetKind = "rehearsal"

    def _binary(self, plan: MigrationPlan) -> ServerBinary:
        name = plan.target.rehearsal_binary or rehearsal_binary_name(plan.target.engine, plan.target.engine_version)
        if not name:
            raise ProvisioningError(
                f"no local server stands in for {plan.target.engine} {plan.target.engine_version}",
                remedy="set target.rehearsal_binary (python -m elasticache_migrate.testing.binaries list shows the "
                "choices)", step="create")
        return find_binary(name)

    def _check_readable_by_elasticache(self, plan: MigrationPlan, s3: Any, obj: StagedObject) -> None:
        """Refuse an object ElastiCache could not read: no grant, not SSE-S3, comma in key."""
        region = plan.aws.region
        if "," in obj.key:
            raise ProvisioningError(f"{obj.uri}: ElastiCache cannot read keys with commas", step="create")
        head = s3.head_object(Bucket=obj.bucket, Key=obj.key)
        sse = head.get("ServerSideEncryption")
        if sse not in (None, "AES256"):
            raise ProvisioningError(f"{obj.uri} is encrypted with {sse}; ElastiCache reads only SSE-S3 (AES256)",
                                    remedy="re-upload with SSE-S3 (the upload step forces AES256)", step="create")
        if grant_route(region) == "policy":
            policy = json.loads(s3.get_bucket_policy(Bucket=obj.bucket)["Policy"])
            ok = policy_allows(policy, obj.bucket, obj.key, region)
        else:
            ok = has_elasticache_grant(s3.get_object_acl(Bucket=obj.bucket, Key=obj.key), region)
        if not ok:
            raise GrantError(f"ElastiCache could not read {obj.uri}: its grant is missing",
                             remedy=f"grant READ and READ_ACP to canonical ID {canonical_id(region)} (the grant "
                             "step does this)", step="create")

    def create(self, plan: MigrationPlan, obj: StagedObject, log: Log = logger) -> TargetHandle:
        journal = Journal(plan.workdir)
        j = journal.read()
        earlier = j.rehearsal
        if earlier and _alive(earlier):
            if earlier.seeded_from == obj.sha256:
                log.info("adopting rehearsal target made by an earlier run (pid %s, port %s)", earlier.pid,
                         earlier.port)
                return TargetHandle(kind=self.kind, id=plan.target.replication_group_id, adopted=True,
                                    rehearsal=earlier)
            # Seeded from an older snapshot (the source changed since, e.g. it served the app again after a
            # rollback): adopting it would fail verify on every key written since. Replace it, unless the app
            # was switched to it and may have written there.
            if j.cutover:
                raise ProvisioningError(
                    f"the rehearsal target at 127.0.0.1:{earlier.port} (pid {earlier.pid}) holds an older "
                    "snapshot, and the app's config was switched to it", step="create",
                    remedy="it may hold the app's writes: inspect it, stop it yourself if it is to be replaced "
                    "(redis-cli -p PORT shutdown nosave), then re-run")
            log.warning("the rehearsal target of an earlier run (pid %s) holds an older snapshot: stopping it, "
                        "seeding a new one from %s", earlier.pid, obj.uri)
            stop_rehearsal_target(plan.workdir)
        binary = self._binary(plan)
        s3 = aws_client(plan, "s3")
        home = plan.workdir / "rehearsal-target"
        home.mkdir(parents=True, exist_ok=True)
        with aws_errors("create", ProvisioningError, obj.uri):
            self._check_readable_by_elasticache(plan, s3, obj)
            log.info("rehearsal: %s is readable by ElastiCache (grant, SSE-S3, key); downloading it", obj.uri)
            s3.download_file(obj.bucket, obj.key, str(home / "dump.rdb"))
        server = LocalRedisServer(binary, port=plan.target.rehearsal_port, workdir=home,
                                  config={"save": "", "appendonly": "no"})
        log.info("rehearsal: starting %s %s (%s) seeded from the downloaded object", binary.flavor, binary.version,
                 binary.name)
        try:
            server.start(timeout=600)
        except (ServerStartError, OSError) as exc:  # the server's own words are the message
            chosen = plan.target.rehearsal_binary
            raise ProvisioningError(
                f"the rehearsal {binary.flavor} {binary.version} ({binary.name}"
                + (", set by target.rehearsal_binary" if chosen else f", the stand-in for {plan.target.engine} "
                   f"{plan.target.engine_version}") + f") could not load the RDB: {exc}",
                remedy=("target.rehearsal_binary names a server older than the RDB: choose one that loads it "
                        "(python -m elasticache_migrate.testing.binaries list), or leave it empty to match the engine"
                        if chosen else "ElastiCache would fail the same way (restore-failed): pick an engine version "
                        "that loads this RDB version"), step="create") from exc
        assert server.pid is not None
        record = RehearsalRecord(pid=server.pid, port=server.port, binary=binary.name, version=binary.version,
                                 workdir=str(home), seeded_from=obj.sha256)
        journal.update(rehearsal=record)
        return TargetHandle(kind=self.kind, id=plan.target.replication_group_id, adopted=False, rehearsal=record)

    def delete(self, plan: MigrationPlan, handle: TargetHandle, log: Log = logger) -> None:
        """Stop the rehearsal server."""
        stop_rehearsal_target(plan.workdir)
        log.warning("stopped the rehearsal target (target.delete_on_rollback)")

    def wait_available(self, plan: MigrationPlan, handle: TargetHandle, log: Log = logger) -> Endpoint:
        """Wait until the server answers and has finished loading the RDB."""
        server = handle.rehearsal
        if server is None:
            raise ProvisioningError(f"the handle of rehearsal target {handle.id} names no local server",
                                    remedy="re-run: create starts (or adopts) the rehearsal server",
                                    step="wait-available")
        ep = Endpoint("127.0.0.1", server.port, False)
        r = redis_client(ep.host, ep.port)
        deadline = time.monotonic() + plan.target.wait_delay_seconds * plan.target.wait_max_attempts
        with redis_errors("wait-available", ProvisioningError, ep.url()):
            while True:
                try:
                    if int(r.info("persistence").get("loading", 0)) == 0:
                        break
                except redis.BusyLoadingError:
                    pass  # LOADING: it is still reading the RDB
                except (redis.RedisError, OSError):
                    if time.monotonic() > deadline:
                        raise
                if time.monotonic() > deadline:
                    raise ProvisioningError(f"rehearsal target {ep.url()} still loading", step="wait-available")
                time.sleep(0.2)
        log.info("rehearsal target %s (%s %s) available", ep.url(), server.binary, server.version)
        return ep


def _alive(record: RehearsalRecord) -> bool:
    """Whether the recorded rehearsal server still runs and answers."""
    try:
        os.kill(record.pid, 0)
        return bool(redis_client("127.0.0.1", record.port, timeout=2).ping())
    except (OSError, redis.RedisError):  # gone, not ours, or not answering: not usable
        return False


def stop_rehearsal_target(workdir: Path) -> bool:
    """Stop the rehearsal server recorded in a migration's journal; True if one was stopped."""
    journal = Journal(workdir)
    detail = journal.read().rehearsal
    if not detail:
        return False
    try:
        redis_client("127.0.0.1", detail.port, timeout=2).shutdown(nosave=True)
    except (redis.RedisError, OSError):  # already gone, or SHUTDOWN closed the connection
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.waitpid(detail.pid, os.WNOHANG)  # reap it if it was our child
        except ChildProcessError:
            pass
        try:
            os.kill(detail.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    journal.update(rehearsal=None)
    return True
