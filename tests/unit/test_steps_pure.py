"""The pure halves of the steps: each decision a task makes, checked without any server.

snapshot · quiesce · elasticache request · verify · dotenv · redact · approval · errors · retry.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import boto3.exceptions
import botocore.exceptions
import docker.errors
import pytest
import redis
import requests
from prefect.states import Completed, Failed
from redis._parsers.resp2 import _RESP2Parser

from elasticache_migrate.aws import aws_errors
from elasticache_migrate.containers import docker_errors
from elasticache_migrate.cutover.base import redact
from elasticache_migrate.cutover.dotenv import get_value, set_value
from elasticache_migrate.errors import (
    ExtractError,
    MigrationError,
    PlanError,
    ProvisioningError,
    QuiesceError,
    SnapshotError,
    SourceError,
    TransferError,
    is_retryable,
)
from elasticache_migrate.plan import MigrationPlan, validate_plan
from elasticache_migrate.source.connection import Endpoint, redis_errors
from elasticache_migrate.targets.elasticache import (
    build_replication_group_request,
    parameter_group_family,
    primary_endpoint,
    slot_ranges,
)
from tasks.approval import approver_allowed
from tasks.bgsave_wait import bgsave_finished
from tasks.quiesce import REFUSE_WRITES_REPLICAS, blocking_clients, pause_mode, refuse_writes_settings
from tasks.retry import retry_only_io
from tasks.verify import KeyState, compare_key

MID = "orders-2024"


def plan(**sections: dict[str, Any]) -> MigrationPlan:
    """A valid plan; each keyword replaces fields of one section."""
    data: dict[str, Any] = {
        "migration_id": MID,
        "source": {"kind": "host"},
        "staging": {"bucket": "stage"},
        "target": {"replication_group_id": "app-cache"},
    }
    for name, fields in sections.items():
        data[name] = {**copy.deepcopy(data.get(name, {})), **fields}
    return validate_plan(data)


# ---- snapshot.bgsave_finished ----------------------------------------------------------------------------------

def test_bgsave_in_progress_is_not_finished() -> None:
    before = {"rdb_saves": 3, "rdb_last_save_time": 100}
    info = {"rdb_bgsave_in_progress": 1, "rdb_saves": 4, "rdb_last_save_time": 200, "rdb_last_bgsave_status": "ok"}
    assert bgsave_finished(before, info) is False


def test_bgsave_error_raises_with_remedy() -> None:
    info = {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "err", "rdb_saves": 3}
    with pytest.raises(SnapshotError) as ei:
        bgsave_finished({"rdb_saves": 3}, info)
    assert "rdb_last_bgsave_status:err" in ei.value.message
    assert "disk space" in ei.value.remedy and "overcommit" in ei.value.remedy
    assert ei.value.step == "bgsave-wait"


def test_bgsave_done_when_rdb_saves_grew() -> None:
    before = {"rdb_saves": 3, "rdb_last_save_time": 100}
    assert bgsave_finished(before, {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "ok", "rdb_saves": 4,
                                    "rdb_last_save_time": 100}) is True
    # same count: the save we asked for has not happened yet, even if LASTSAVE moved (someone else's save)
    assert bgsave_finished(before, {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "ok", "rdb_saves": 3,
                                    "rdb_last_save_time": 101}) is False


def test_bgsave_old_server_uses_last_save_time() -> None:
    before = {"rdb_bgsave_in_progress": 0, "rdb_last_save_time": 1_700_000_000}  # Redis < 7: no rdb_saves
    assert bgsave_finished(before, {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "ok",
                                    "rdb_last_save_time": 1_700_000_000}) is False
    assert bgsave_finished(before, {"rdb_bgsave_in_progress": 0, "rdb_last_bgsave_status": "ok",
                                    "rdb_last_save_time": 1_700_000_001}) is True


# ---- quiesce -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("version", "mode"),
    [((7, 0, 15), "client-pause-write"), ((6, 2, 0), "client-pause-write"), ((6, 0, 9), "refuse-writes"),
     ((5, 0, 10), "refuse-writes"), ((3, 2, 6), "refuse-writes")],
)
def test_pause_mode(version: tuple[int, int, int], mode: str) -> None:
    assert pause_mode(version) == mode


@pytest.mark.parametrize(
    ("version", "prefix"), [((3, 2, 6), "min-slaves"), ((4, 0, 14), "min-slaves"), ((5, 0, 10), "min-replicas"),
                            ((6, 0, 9), "min-replicas")],
)
def test_refuse_writes_settings_names(version: tuple[int, int, int], prefix: str) -> None:
    got = refuse_writes_settings(version, {f"{prefix}-to-write": "0", f"{prefix}-max-lag": "10"})
    assert got == {f"{prefix}-to-write": str(REFUSE_WRITES_REPLICAS)}


def test_refuse_writes_settings_turns_on_max_lag() -> None:
    # With max-lag 0 Redis skips the min-slaves check entirely: writes would still be accepted.
    got = refuse_writes_settings((3, 2, 6), {"min-slaves-to-write": "0", "min-slaves-max-lag": "0"})
    assert got == {"min-slaves-to-write": str(REFUSE_WRITES_REPLICAS), "min-slaves-max-lag": "10"}
    assert int(got["min-slaves-to-write"]) > 1000  # above any real replica count


def client(**kw: Any) -> dict[str, Any]:
    return {"id": "1", "addr": "10.0.0.5:51234", "name": "", "flags": "N", "cmd": "get", **kw}


def test_blocking_clients_keeps_only_application_clients() -> None:
    app = client(addr="10.0.0.5:51234", name="", flags="N")
    app_named = client(addr="10.0.0.6:40000", name="sidekiq-worker", flags="N")
    clients = [
        client(name=f"elasticache-migrate:{MID}"),               # this run
        client(name="elasticache-migrate:other-run"),             # a previous run of this tool
        client(addr="10.0.0.9:6379", flags="S"),                   # a replica
        client(flags="O", cmd="monitor"),                          # MONITOR
        client(name="sentinel-1a2b3c4d-cmd", flags="N"),           # Sentinel
        client(name="prometheus-exporter"),                        # allow-listed by name
        client(addr="10.0.9.1:3333"),                              # allow-listed by address prefix
        app,
        app_named,
    ]
    left = blocking_clients(clients, MID, allowed=["prometheus-exporter", "10.0.9."])
    assert left == [app, app_named]


def test_blocking_clients_empty_allow_list() -> None:
    app = client(name="exporter")
    assert blocking_clients([app], MID, allowed=[]) == [app]


# ---- elasticache request ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shards", [1, 2, 3, 7, 90, 500])
def test_slot_ranges_cover_all_slots_once(shards: int) -> None:
    ranges = [tuple(int(x) for x in r.split("-")) for r in slot_ranges(shards)]
    assert len(ranges) == shards
    assert ranges[0][0] == 0 and ranges[-1][1] == 16383
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        assert start == end + 1
    sizes = [end - start + 1 for start, end in ranges]
    assert sum(sizes) == 16384 and max(sizes) - min(sizes) <= 1


def test_slot_ranges_values() -> None:
    assert slot_ranges(1) == ["0-16383"]
    assert slot_ranges(3) == ["0-5461", "5462-10922", "10923-16383"]
    with pytest.raises(ValueError):
        slot_ranges(0)


@pytest.mark.parametrize(
    ("engine", "version", "family"),
    [("redis", "7.1", "redis7"), ("redis", "7.0", "redis7"), ("redis", "6.2", "redis6.x"),
     ("redis", "5.0.6", "redis5.0"), ("redis", "4.0.10", "redis4.0"), ("valkey", "7.2", "valkey7"),
     ("valkey", "8.0", "valkey8")],
)
def test_parameter_group_family(engine: str, version: str, family: str) -> None:
    assert parameter_group_family(engine, version) == family


ARN = "arn:aws:s3:::stage/redis-migrations/orders-2024/dump.rdb"


def test_request_cluster_mode_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EC_TOKEN", "s3cret-token-value-123")
    p = plan(target={"replication_group_id": "app-cache", "engine": "redis", "engine_version": "7.1",
                     "node_type": "cache.r7g.xlarge", "replicas": 2, "multi_az": True,
                     "subnet_group": "cache-subnets", "security_group_ids": ["sg-1", "sg-2"],
                     "tags": {"team": "payments", "migration-id": "spoofed"},
                     "transit_encryption": True, "auth_token_secret": "env:EC_TOKEN"})
    req = build_replication_group_request(p, ARN)
    assert req["ReplicationGroupId"] == "app-cache"
    assert req["SnapshotArns"] == [ARN]
    assert req["NumCacheClusters"] == 3
    assert req["CacheNodeType"] == "cache.r7g.xlarge"
    assert (req["Engine"], req["EngineVersion"]) == ("redis", "7.1")
    assert req["AutomaticFailoverEnabled"] is True and req["MultiAZEnabled"] is True
    assert req["TransitEncryptionEnabled"] is True
    assert req["CacheSubnetGroupName"] == "cache-subnets"
    assert req["SecurityGroupIds"] == ["sg-1", "sg-2"]
    tags = {t["Key"]: t["Value"] for t in req["Tags"]}
    assert tags["migration-id"] == MID  # a user tag cannot spoof the adoption tag
    assert tags["team"] == "payments"
    assert "NodeGroupConfiguration" not in req and "ClusterMode" not in req
    assert "CacheParameterGroupName" not in req  # the engine default
    assert "AuthToken" not in req
    assert "s3cret-token-value-123" not in repr(req)


def test_request_no_replicas_no_failover() -> None:
    req = build_replication_group_request(plan(target={"replication_group_id": "c", "replicas": 0}), ARN)
    assert req["NumCacheClusters"] == 1
    assert req["AutomaticFailoverEnabled"] is False
    assert "CacheSubnetGroupName" not in req and "SecurityGroupIds" not in req


def test_request_cluster_mode_on() -> None:
    p = plan(target={"replication_group_id": "c", "cluster_mode": True, "shards": 3, "replicas": 1,
                     "engine_version": "7.1"})
    req = build_replication_group_request(p, ARN)
    assert req["ClusterMode"] == "enabled"
    assert req["NumNodeGroups"] == 3
    assert [g["Slots"] for g in req["NodeGroupConfiguration"]] == slot_ranges(3)
    assert {g["ReplicaCount"] for g in req["NodeGroupConfiguration"]} == {1}
    assert len({g["NodeGroupId"] for g in req["NodeGroupConfiguration"]}) == 3
    assert req["CacheParameterGroupName"] == "default.redis7.cluster.on"
    assert req["AutomaticFailoverEnabled"] is True
    assert "NumCacheClusters" not in req


def test_request_cluster_mode_on_keeps_named_parameter_group() -> None:
    p = plan(target={"replication_group_id": "c", "cluster_mode": True, "parameter_group": "my-params",
                     "engine": "valkey", "engine_version": "8.0"})
    assert build_replication_group_request(p, ARN)["CacheParameterGroupName"] == "my-params"
    p = plan(target={"replication_group_id": "c", "cluster_mode": True, "engine": "valkey", "engine_version": "8.0"})
    assert build_replication_group_request(p, ARN)["CacheParameterGroupName"] == "default.valkey8.cluster.on"


def test_primary_endpoint_prefers_configuration_endpoint() -> None:
    group = {
        "ConfigurationEndpoint": {"Address": "clustercfg.c.abc.use1.cache.amazonaws.com", "Port": 6379},
        "NodeGroups": [{"PrimaryEndpoint": {"Address": "master.c.abc.use1.cache.amazonaws.com", "Port": 6379}}],
    }
    assert primary_endpoint(group, tls=True) == Endpoint("clustercfg.c.abc.use1.cache.amazonaws.com", 6379, True)


def test_primary_endpoint_falls_back_to_primary() -> None:
    group = {"NodeGroups": [{"NodeGroupId": "0001"},
                            {"PrimaryEndpoint": {"Address": "master.c.abc.use1.cache.amazonaws.com", "Port": "6380"}}]}
    assert primary_endpoint(group, tls=False) == Endpoint("master.c.abc.use1.cache.amazonaws.com", 6380, False)
    assert primary_endpoint({"Status": "creating", "NodeGroups": []}, tls=False) is None


# ---- verify.compare_key -----------------------------------------------------------------------------------------

def ks(t: str = "string", v: Any = b"v", pttl: int = -1) -> KeyState:
    return KeyState(t, v, pttl)


NONE = KeyState("none", None, -2)


def test_compare_key_equal() -> None:
    assert compare_key(0, b"k", ks(), ks(), 2000) is None
    assert compare_key(0, b"k", ks(pttl=60_000), ks(pttl=59_000), 2000) is None


@pytest.mark.parametrize(
    ("src", "tgt", "kind"),
    [
        (ks(), NONE, "missing"),
        (NONE, ks(), "extra"),
        (ks("string"), ks("list", [b"v"]), "type"),
        (ks(v=b"a"), ks(v=b"b"), "value"),
        (ks(pttl=60_000), ks(pttl=-1), "ttl"),       # target lost the expiry
        (ks(pttl=-1), ks(pttl=60_000), "ttl"),
        (ks(pttl=60_000), ks(pttl=50_000), "ttl"),   # beyond the tolerance
    ],
)
def test_compare_key_mismatches(src: KeyState, tgt: KeyState, kind: str) -> None:
    m = compare_key(3, b"user:1", src, tgt, 2000)
    assert m is not None
    assert (m.db, m.key, m.kind) == (3, "user:1", kind)


def test_compare_key_expiring_during_verify_is_not_a_mismatch() -> None:
    assert compare_key(0, b"k", ks(pttl=1500), NONE, 2000) is None   # expired on the target first
    assert compare_key(0, b"k", NONE, ks(pttl=800), 2000) is None    # expired on the source first
    assert compare_key(0, b"k", ks(pttl=5000), NONE, 2000) is not None


def test_compare_key_long_binary_key_is_shown_readably() -> None:
    m = compare_key(0, b"\xff" + b"x" * 200, ks(), NONE, 0)
    assert m is not None and m.key.startswith("\\xff") and len(m.key) <= 80


# ---- cutover: dotenv and redact ---------------------------------------------------------------------------------

ENV = "# app\nAPP_ENV=production\nREDIS_URL=redis://old:6379/0\nWORKERS=4\n"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('REDIS_URL="redis://old:6379/0"\n', "redis://old:6379/0"),
        ("REDIS_URL='redis://old:6379/0'\n", "redis://old:6379/0"),
        ("export REDIS_URL=redis://old:6379/0\n", "redis://old:6379/0"),
        ("  REDIS_URL = redis://old:6379/0\n", "redis://old:6379/0"),
        ("REDIS_URL=redis://old:6379/0\r\nX=1\r\n", "redis://old:6379/0"),
        ("REDIS_URL=a\nREDIS_URL=b\n", "b"),                       # last assignment wins
        ("REDIS_URL_OLD=x\nMY_REDIS_URL=y\n", None),
        ("", None),
        ("REDIS_URL=\nWORKERS=4\n", ""),                           # empty value: not the next line
    ],
)
def test_dotenv_get_value(text: str, value: str | None) -> None:
    assert get_value(text, "REDIS_URL") == value


def test_dotenv_set_value_changes_only_that_line() -> None:
    new = set_value(ENV, "REDIS_URL", "redis://master.c.abc.use1.cache.amazonaws.com:6379/0")
    assert new == "# app\nAPP_ENV=production\nREDIS_URL=redis://master.c.abc.use1.cache.amazonaws.com:6379/0\nWORKERS=4\n"


def test_dotenv_set_value_keeps_export_and_crlf() -> None:
    text = "A=1\r\nexport REDIS_URL=\"redis://old:6379/0\"\r\nB=2\r\n"
    new = set_value(text, "REDIS_URL", "rediss://new:6379/0")
    assert new == "A=1\r\nexport REDIS_URL=rediss://new:6379/0\r\nB=2\r\n"
    assert get_value(new, "REDIS_URL") == "rediss://new:6379/0"


def test_dotenv_set_value_quotes_when_needed() -> None:
    new = set_value(ENV, "REDIS_URL", "redis://h:6379/0 # x")
    assert 'REDIS_URL="redis://h:6379/0 # x"\n' in new
    assert get_value(new, "REDIS_URL") == "redis://h:6379/0 # x"


def test_dotenv_set_value_after_empty_assignment_keeps_next_line() -> None:
    new = set_value("REDIS_URL=\nWORKERS=4\n", "REDIS_URL", "redis://new:6379/0")
    assert new == "REDIS_URL=redis://new:6379/0\nWORKERS=4\n"


def test_dotenv_set_value_none_removes_only_its_lines() -> None:
    text = "A=1\n\nREDIS_URL=x\n  export REDIS_URL=y\nB=2\n"
    assert set_value(text, "REDIS_URL", None) == "A=1\n\nB=2\n"
    assert set_value("A=1\n", "REDIS_URL", None) == "A=1\n"


def test_dotenv_append_and_remove_round_trip() -> None:
    # Rollback when the key was absent: append at cutover, remove at rollback, file byte-identical again.
    for original in ["A=1\n", "A=1", "A=1\n\n", ""]:
        added = set_value(original, "REDIS_URL", "redis://new:6379/0")
        assert get_value(added, "REDIS_URL") == "redis://new:6379/0"
        assert added.startswith(original)
        restored = set_value(added, "REDIS_URL", None)
        assert restored.rstrip("\n") == original.rstrip("\n")
        if original.endswith("\n") or not original:
            assert restored == original


def test_dotenv_append_without_trailing_newline() -> None:
    assert set_value("A=1", "REDIS_URL", "redis://new:6379/0") == "A=1\nREDIS_URL=redis://new:6379/0\n"
    assert set_value("", "REDIS_URL", "redis://new:6379/0") == "REDIS_URL=redis://new:6379/0\n"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("redis://:hunter2@old:6379/0", "redis://:***@old:6379/0"),
        ("redis://app:hunter2@old:6379/0", "redis://app:***@old:6379/0"),
        ("rediss://default:p@ss@word@old:6380", "rediss://default:***@old:6380"),  # raw '@' in the password
        ("redis://old:6379/0", "redis://old:6379/0"),
        ("redis://user@old:6379", "redis://user@old:6379"),
        (None, "(absent)"),
    ],
)
def test_redact(value: str | None, shown: str) -> None:
    assert redact(value) == shown


# ---- approval ---------------------------------------------------------------------------------------------------

def test_approver_allowed_case_insensitive() -> None:
    p = plan(approval={"approvers": ["Alice", " U024BE7LH "]})
    assert approver_allowed(p, "alice") is True
    assert approver_allowed(p, "ALICE ") is True
    assert approver_allowed(p, "u024be7lh") is True
    assert approver_allowed(p, "mallory") is False
    assert approver_allowed(p, "") is False


def test_approver_allowed_empty_list_allows_anyone() -> None:
    assert approver_allowed(plan(), "anyone-at-all") is True


# ---- the seams' error mapping (by class) / is_retryable / retry_only_io ------------------------------------------

def client_error(code: str, message: str = "m") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, "PutObject")


Seam = Callable[[str, type[MigrationError], str], AbstractContextManager[None]]


def map_(exc: BaseException, error: type[MigrationError] = TransferError, what: str = "s3://stage/k",
         seam: Seam = aws_errors) -> MigrationError:
    with pytest.raises(MigrationError) as ei, seam("upload", error, what):
        raise exc
    assert ei.value.__cause__ is exc  # nothing hidden
    return ei.value


def test_mapped_no_such_bucket() -> None:
    err = map_(client_error("NoSuchBucket", "The specified bucket does not exist"))
    assert type(err) is TransferError
    assert err.remedy == "create the bucket (same region as the target) or fix staging.bucket"
    assert err.retryable is False
    assert str(err) == ("[upload] s3://stage/k: AWS said NoSuchBucket: The specified bucket does not exist — what to "
                        "do: create the bucket (same region as the target) or fix staging.bucket")


def test_mapped_acls_disabled_names_object_ownership() -> None:
    err = map_(client_error("AccessControlListNotSupported"))
    assert "BucketOwnerPreferred" in err.remedy


@pytest.mark.parametrize("code", ["Throttling", "SlowDown", "RequestTimeout"])
def test_mapped_throttling_is_retryable(code: str) -> None:
    assert map_(client_error(code)).retryable is True


def test_mapped_s3_upload_failed_is_classified_by_the_client_error_inside() -> None:
    try:
        try:
            raise client_error("SlowDown")
        except botocore.exceptions.ClientError as inner:
            raise boto3.exceptions.S3UploadFailedError("Failed to upload: SlowDown") from inner
    except boto3.exceptions.S3UploadFailedError as outer:
        err = map_(outer)
    assert type(err) is TransferError and err.retryable is True and "SlowDown" in err.message


def test_mapped_endpoint_connection_error_is_retryable() -> None:
    err = map_(botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"))
    assert type(err) is TransferError and err.retryable is True


def test_mapped_redis_connection_error_is_retryable() -> None:
    err = map_(redis.ConnectionError("Connection refused"), SourceError, "source", redis_errors)
    assert type(err) is SourceError and err.retryable is True


def test_mapped_redis_auth_error_is_not_retryable() -> None:
    err = map_(redis.AuthenticationError("invalid password"), ProvisioningError, "target", redis_errors)
    assert type(err) is SourceError
    assert err.retryable is False
    assert "password secret" in err.remedy


def test_mapped_redis_wrongpass_response_is_auth() -> None:
    # redis-py's parser turns the server's WRONGPASS reply into its class; the seam maps the class
    reply = _RESP2Parser(65536).parse_error("WRONGPASS invalid username-password pair")
    err = map_(reply, SourceError, "source", redis_errors)
    assert err.retryable is False and "authentication" in err.message


def test_mapped_docker_not_found_is_extract_error() -> None:
    err = map_(docker.errors.NotFound("No such container: web-redis"), SourceError, "container web-redis",
               docker_errors)
    assert type(err) is ExtractError
    assert "container name" in err.remedy and "source.docker_host" in err.remedy


def test_mapped_docker_api_error_is_retryable() -> None:
    response = requests.Response()
    response.status_code = 500
    err = map_(docker.errors.APIError("500 Server Error", response=response), ExtractError, "container",
               docker_errors)
    assert type(err) is ExtractError and err.retryable is True


def test_mapped_keeps_migration_errors_and_fills_step() -> None:
    original = QuiesceError("clients still connected")
    with pytest.raises(QuiesceError) as ei, redis_errors("quiesce", SourceError):
        raise original
    assert ei.value is original and ei.value.step == "quiesce"


@pytest.mark.parametrize("seam", [aws_errors, redis_errors, docker_errors])
def test_an_exception_no_seam_knows_propagates_unchanged_and_is_not_retried(seam: Seam) -> None:
    bug = KeyError("x")
    with pytest.raises(KeyError) as ei, seam("upload", TransferError, "s3://stage/k"):
        raise bug
    assert ei.value is bug and is_retryable(ei.value) is False


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (SourceError("down"), True),
        (TransferError("s3 5xx"), True),
        (PlanError("bad"), False),
        (QuiesceError("clients"), False),
        (SnapshotError("bgsave err"), False),
        (ProvisioningError("restore-failed"), False),
        (ProvisioningError("x", retryable=True), True),
        (ConnectionResetError(), False),   # a foreign exception no seam mapped is a bug: never retried
        (ValueError("bug"), False),
        (KeyError("bug"), False),
    ],
)
def test_is_retryable(exc: BaseException, retry: bool) -> None:
    assert is_retryable(exc) is retry


def test_retry_only_io_with_prefect_states() -> None:
    assert retry_only_io(None, None, Failed(data=SourceError("connection reset"))) is True
    assert retry_only_io(None, None, Failed(data=redis.ConnectionError("refused"))) is False  # not mapped: a bug
    assert retry_only_io(None, None, Failed(data=PlanError("bad plan"))) is False
    assert retry_only_io(None, None, Failed(data=ProvisioningError("restore-failed"))) is False
    assert retry_only_io(None, None, Completed(data=42)) is False
