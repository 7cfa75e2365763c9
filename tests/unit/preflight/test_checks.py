"""The preflight checks without servers: the order, a crashing check, what each check needs from the ones before
it (PreflightFacts), the pure RDB verdicts, and the AWS checks against botocore's Stubber (which validates each
request against the real API model; it cannot show what AWS answers in a given account or region)."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import docker.errors
import pytest
from botocore.stub import Stubber

from elasticache_migrate.errors import ExtractError
from elasticache_migrate.plan import MigrationPlan, validate_plan
from elasticache_migrate.preflight import aws_checks, checks
from elasticache_migrate.preflight.aws_checks import (
    bucket_findings,
    grant_findings,
    rehearsal_binary_refusal,
    target_findings,
)
from elasticache_migrate.preflight.checks import CHECKS, container_findings, run_checks
from elasticache_migrate.preflight.facts import ExpectedRdb, PreflightFacts
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.rdb_checks import engine_findings, file_absent, header_label, rdb_findings
from elasticache_migrate.preflight.source_checks import (
    cluster_findings,
    sizing_findings,
    sync_findings,
    version_engine_findings,
)
from elasticache_migrate.rdb import RdbHeader, RdbSummary
from elasticache_migrate.state import ServerInfo


def plan(**sections: dict[str, Any]) -> MigrationPlan:
    """A valid plan; each keyword replaces fields of one section."""
    data: dict[str, Any] = {
        "migration_id": "orders-2024",
        "source": {"kind": "host"},
        "staging": {"bucket": "stage"},
        "target": {"replication_group_id": "app-cache", "engine": "redis", "engine_version": "7.0"},
    }
    for name, fields in sections.items():
        data[name] = {**copy.deepcopy(data.get(name, {})), **fields}
    return validate_plan(data)


def summary(**over: Any) -> RdbSummary:
    """A scanned RDB as scan_rdb reports a healthy Redis 7.0 dump; ``over`` replaces fields."""
    fields: dict[str, Any] = {
        "header": RdbHeader("REDIS", 10, b"REDIS0010"), "size": 4096, "aux": {"redis-ver": "7.0.15",
                                                                              "used-mem": "2097152"},
        "dbs": {0: 30}, "key_types": {"string": 30}, "expires": 0, "module_types": [], "functions": 0,
        "stored_checksum": 0x1234, "computed_checksum": 0x1234, "checksum_ok": True,
    }
    fields.update(over)
    return RdbSummary(**fields)


# ---- run_checks ------------------------------------------------------------------------------------------------

def test_checks_run_in_the_documented_order() -> None:
    assert [c.__name__ for c in CHECKS] == [
        "source_findings", "sentinel_findings", "replica_findings", "sync_findings", "rdb_host_findings",
        "container_findings", "_existing_rdb", "version_engine_findings", "cluster_findings", "sizing_findings",
        "bucket_findings", "grant_findings", "target_findings", "cutover_findings", "app_config_findings",
        "worker_findings"]


def test_a_crashing_check_becomes_a_block_naming_it_and_the_others_still_run() -> None:
    seen: list[PreflightFacts] = []

    def _broken(p: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
        raise KeyError("Rules")

    def after(p: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
        seen.append(facts)
        return [Finding("after", "info", "ran")]

    out = run_checks(plan(), [_broken, after])
    assert out[0] == Finding("broken", "block", "check failed: KeyError: 'Rules'", "fix the cause named, then re-run")
    assert out[1] == Finding("after", "info", "ran")
    assert isinstance(seen[0], PreflightFacts)


def test_each_run_starts_from_fresh_facts() -> None:
    runs: list[PreflightFacts] = []

    def learn(p: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
        assert facts.container_ok is False
        facts.container_ok = True
        runs.append(facts)
        return []

    run_checks(plan(), [learn])
    run_checks(plan(), [learn])
    assert runs[0] is not runs[1]


# ---- what the checks need from the checks before them -------------------------------------------------------------

def test_checks_needing_the_source_skip_when_it_did_not_answer() -> None:
    facts = PreflightFacts()
    assert sync_findings(plan(staging={"transfer": "sync"}), facts) == []
    assert version_engine_findings(plan(), facts) == []
    assert cluster_findings(plan(target={"cluster_mode": True}), facts) == []
    assert checks._existing_rdb(plan(), facts) == []           # no answer and no source.rdb_path
    assert checks._existing_rdb(plan(source={"kind": "docker", "container": "redis"}), facts) == []  # no container


def test_sync_is_not_looked_at_for_the_staged_transfer() -> None:
    facts = PreflightFacts(server=ServerInfo("redis", (7, 0, 15)))
    assert sync_findings(plan(staging={"transfer": "staged"}), facts) == []


def test_engine_from_the_source_version() -> None:
    facts = PreflightFacts(server=ServerInfo("redis", (7, 0, 15)))
    (ok,) = version_engine_findings(plan(), facts)
    assert ok.severity == "info" and ok.seen.startswith("redis 7.0 loads RDB 10 (what the running server (redis "
                                                        "7.0.15) writes; there is no dump on disk")
    (old,) = version_engine_findings(plan(target={"engine_version": "6.2"}), facts)
    assert old.severity == "block" and "cannot load RDB 10 (what the running server (redis 7.0.15)" in old.seen
    assert old.todo == "choose target.engine redis with engine_version 7.0 or newer"
    (valkey9,) = version_engine_findings(plan(), PreflightFacts(server=ServerInfo("valkey", (9, 1, 0))))
    assert valkey9.severity == "block" and "cannot load VALKEY080" in valkey9.seen
    assert valkey9.todo == "choose target.engine valkey with engine_version 9.0 or newer"
    (on_valkey9,) = version_engine_findings(plan(target={"engine": "valkey", "engine_version": "9.0"}),
                                            PreflightFacts(server=ServerInfo("valkey", (9, 1, 0))))
    assert on_valkey9.severity == "info" and on_valkey9.seen.startswith("valkey 9.0 loads VALKEY080")
    (unknown,) = version_engine_findings(plan(), PreflightFacts(server=ServerInfo("keydb", (6, 3, 4))))
    assert unknown.severity == "warn" and "unknown RDB version for keydb 6.3.4" in unknown.seen


def test_a_stale_dump_does_not_decide_when_the_running_server_writes_newer() -> None:
    """Issue 11, item 7: a Redis 7.0 server with an RDB 9 file left from before its upgrade, for a 6.2 target."""
    stale = summary(header=RdbHeader("REDIS", 9, b"REDIS0009"), aux={"redis-ver": "6.2.14", "ctime": "1700000000"})
    facts = PreflightFacts(server=ServerInfo("redis", (7, 0, 15)), rdb_summary=stale,
                           rdb_origin="current /data/dump.rdb")
    (f,) = version_engine_findings(plan(target={"engine_version": "6.2"}), facts)
    assert f.severity == "block"
    assert ("the running server (redis 7.0.15) writes RDB 10; current /data/dump.rdb is RDB 9 saved 2023-11-14 "
            "22:13 UTC, older than the server") in f.seen
    assert f.todo == "choose target.engine redis with engine_version 7.0 or newer"
    assert facts.expected_rdb is not None and (facts.expected_rdb.magic, facts.expected_rdb.version) == ("REDIS", 10)


def test_a_dump_newer_than_the_server_decides_and_says_so() -> None:
    newer = summary(header=RdbHeader("REDIS", 11, b"REDIS0011"), aux={})
    facts = PreflightFacts(server=ServerInfo("redis", (7, 0, 15)), rdb_summary=newer)
    (f,) = version_engine_findings(plan(target={"engine_version": "7.0"}), facts)
    assert f.severity == "block" and "the dump on disk is RDB 11, newer than the RDB 10 the running server" in f.seen
    assert "source.rdb_path" in f.seen


def test_dump_and_server_agree() -> None:
    facts = PreflightFacts(server=ServerInfo("redis", (7, 0, 15)), rdb_summary=summary())
    (f,) = version_engine_findings(plan(target={"engine_version": "7.0"}), facts)
    assert f == Finding("engine", "info", "redis 7.0 loads RDB 10 (the running server (redis 7.0.15) writes RDB 10, "
                        "as the dump on disk is RDB 10)")


def test_without_the_source_the_dump_alone_decides() -> None:
    facts = PreflightFacts(rdb_summary=summary())
    assert version_engine_findings(plan(), facts) == []     # the current-RDB check's own engine finding stands
    assert facts.expected_rdb is not None and "the source did not answer" in facts.expected_rdb.why


def test_sizing_without_a_source_uses_the_dump_or_says_it_cannot_tell() -> None:
    (unknown,) = sizing_findings(plan(), PreflightFacts())
    assert unknown == Finding("sizing", "warn", "the source's memory use is unknown", "size target.node_type by hand")
    (from_rdb,) = sizing_findings(plan(), PreflightFacts(rdb_summary=summary()))
    assert from_rdb.severity == "info" and from_rdb.seen.startswith("RDB used-mem 2.00 MiB")


# ---- the container (through the Docker seam) --------------------------------------------------------------------

class FakeContainers:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, name: str) -> Any:
        if self.error:
            raise self.error
        return type("Container", (), {"name": name, "status": "running"})()


class FakeDocker:
    def __init__(self, error: Exception | None = None) -> None:
        self.containers = FakeContainers(error)
        self.closed = False

    def close(self) -> None:
        self.closed = True


DOCKER = {"kind": "docker", "container": "web-redis"}


def test_container_only_for_a_docker_source() -> None:
    assert container_findings(plan(), PreflightFacts()) == []


def test_container_found(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeDocker()
    monkeypatch.setattr(checks, "docker_client", lambda host: client)
    facts = PreflightFacts()
    assert container_findings(plan(source=DOCKER), facts) == [Finding("container", "info",
                                                                      "container web-redis is running")]
    assert facts.container_ok is True and client.closed


@pytest.mark.parametrize(("error", "seen", "todo"), [
    (docker.errors.NotFound("No such container: web-redis"), "no container named 'web-redis' on tcp://h:2375",
     "fix source.container (see `docker ps -a`) or source.docker_host"),
    (docker.errors.DockerException("Error while fetching server API version"),
     "cannot reach the Docker engine tcp://h:2375: DockerException: Error while fetching server API version",
     "start the engine or fix source.docker_host; the worker needs access to its socket"),
])
def test_container_missing_or_engine_unreachable_blocks(monkeypatch: pytest.MonkeyPatch, error: Exception, seen: str,
                                                        todo: str) -> None:
    monkeypatch.setattr(checks, "docker_client", lambda host: FakeDocker(error))
    facts = PreflightFacts()
    (f,) = container_findings(plan(source={**DOCKER, "docker_host": "tcp://h:2375"}), facts)
    assert f == Finding("container", "block", seen, todo)
    assert facts.container_ok is False


def test_container_engine_that_does_not_answer_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(host: str | None) -> Any:
        raise docker.errors.DockerException("Error while fetching server API version: Connection refused")

    monkeypatch.setattr(checks, "docker_client", refuse)
    (f,) = container_findings(plan(source=DOCKER), PreflightFacts())
    assert f.severity == "block" and f.seen.startswith("cannot reach the Docker engine (default): DockerException")


# ---- the RDB verdicts ------------------------------------------------------------------------------------------

def test_a_missing_file_is_told_by_class() -> None:
    try:
        try:
            open("/nonexistent/dump.rdb", "rb")
        except FileNotFoundError as exc:
            raise ExtractError("RDB file /nonexistent/dump.rdb does not exist on this host", step="extract") from exc
    except ExtractError as mapped:
        assert file_absent(mapped)
    assert file_absent(docker.errors.NotFound("Could not find the file /data/dump.rdb in container"))
    assert not file_absent(ExtractError("/data/dump.rdb is not a regular file"))
    assert not file_absent(PermissionError(13, "Permission denied"))


@pytest.mark.parametrize(("header", "engine", "version", "severity", "text"), [
    (RdbHeader("REDIS", 10, b"REDIS0010"), "redis", "7.0", "info", "redis 7.0 loads REDIS0010 (dump)"),
    (RdbHeader("REDIS", 10, b"REDIS0010"), "redis", "6.2", "block", "redis 6.2 cannot load REDIS0010 (dump)"),
    (RdbHeader("VALKEY", 80, b"VALKEY080"), "valkey", "8.1", "block", "valkey 8.1 cannot load VALKEY080 (dump)"),
    (RdbHeader("VALKEY", 80, b"VALKEY080"), "valkey", "9.0", "info", "valkey 9.0 loads VALKEY080 (dump)"),
    (RdbHeader("REDIS", 12, b"REDIS0012"), "valkey", "9.1", "block", "valkey 9.1 cannot load REDIS0012 (dump)"),
])
def test_engine_findings_from_the_header(header: RdbHeader, engine: str, version: str, severity: str,
                                         text: str) -> None:
    (f,) = engine_findings(header, engine, version, "dump")
    assert f.severity == severity and f.seen.startswith(text)
    assert header_label(header) == header.raw.decode()


def test_rdb_findings_of_a_healthy_dump() -> None:
    out = rdb_findings(summary(), plan(), "current host:/d/dump.rdb")
    assert [(f.check, f.severity) for f in out] == [("engine", "info"), ("rdb-integrity", "info"), ("rdb", "info")]
    assert out[-1].seen == ("current host:/d/dump.rdb: 4,096 bytes, 30 keys in 1 db(s), written by 7.0.15, "
                            "used-mem 2,097,152 bytes")


def test_rdb_findings_of_a_damaged_dump() -> None:
    bad = summary(checksum_ok=False, computed_checksum=0x99, module_types=["ReJSON-RL"], complete=False,
                  stop_reason="module type", trailing_bytes=12, dbs={0: 3, 2: 5})
    out = rdb_findings(bad, plan(target={"cluster_mode": True}), "f")
    by = {(f.check, f.severity): f for f in out}
    assert "CRC-64 mismatch (stored 0x0000000000001234, computed 0x0000000000000099)" in by[
        ("rdb-integrity", "block")].seen
    assert by[("modules", "block")].seen == "f holds module types ReJSON-RL"
    assert by[("rdb-integrity", "warn")].seen == "f: 12 bytes after the checksum"  # not "not read to the end"
    assert by[("cluster-mode", "block")].seen == "f has keys outside db0: db2: 5"


def test_rdb_findings_without_a_checksum_warn() -> None:
    out = rdb_findings(summary(checksum_ok=None, stored_checksum=0), plan(), "f")
    (warn,) = [f for f in out if f.severity == "warn"]
    assert "carries no checksum" in warn.seen and "rdbchecksum yes" in warn.todo


# ---- AWS, against botocore's Stubber ----------------------------------------------------------------------------

def stubbed(monkeypatch: pytest.MonkeyPatch, **services: Stubber) -> None:
    monkeypatch.setattr(aws_checks, "aws_client", lambda p, service: services[service].client)


def stub(service: str) -> Stubber:
    s = Stubber(boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"))
    s.activate()
    return s


@pytest.mark.parametrize(("code", "seen", "todo"), [
    ("NoSuchBucket", "bucket s3://stage does not exist", "create it in us-east-1"),
    ("AccessDenied", "cannot read bucket s3://stage: AccessDenied", "give the worker s3:GetBucketLocation"),
])
def test_bucket_that_cannot_be_read_blocks(monkeypatch: pytest.MonkeyPatch, code: str, seen: str, todo: str) -> None:
    s3 = stub("s3")
    s3.add_client_error("get_bucket_location", service_error_code=code, http_status_code=404)
    stubbed(monkeypatch, s3=s3)
    (f,) = bucket_findings(plan(), PreflightFacts())
    assert f.severity == "block" and f.seen == seen and f.todo.startswith(todo)


def test_bucket_in_another_region_with_acls_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = stub("s3")
    s3.add_response("get_bucket_location", {"LocationConstraint": "eu-west-1"}, {"Bucket": "stage"})
    s3.add_response("get_bucket_ownership_controls", {"OwnershipControls": {"Rules": [
        {"ObjectOwnership": "BucketOwnerEnforced"}]}}, {"Bucket": "stage"})
    s3.add_client_error("get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError")
    stubbed(monkeypatch, s3=s3)
    facts = PreflightFacts()
    out = bucket_findings(plan(), facts)
    assert [f.severity for f in out] == ["block", "block"]
    assert out[0].seen == "s3://stage is in eu-west-1, the target in us-east-1"
    assert "BucketOwnerEnforced" in out[1].seen and facts.bucket_ownership == "BucketOwnerEnforced"
    s3.assert_no_pending_responses()


def test_bucket_without_ownership_controls_is_a_legacy_acl_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = stub("s3")
    s3.add_response("get_bucket_location", {}, {"Bucket": "stage"})  # us-east-1: no constraint
    s3.add_client_error("get_bucket_ownership_controls", "OwnershipControlsNotFoundError")
    s3.add_response("get_bucket_encryption", {"ServerSideEncryptionConfiguration": {"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}}, {"Bucket": "stage"})
    stubbed(monkeypatch, s3=s3)
    facts = PreflightFacts()
    assert bucket_findings(plan(), facts) == [Finding("bucket", "info",
                                                      "s3://stage in us-east-1, object ownership ObjectWriter")]
    assert facts.bucket_ownership == "ObjectWriter"


def test_grant_route_by_region() -> None:
    (policy,) = grant_findings(plan(aws={"region": "ap-east-1"}), PreflightFacts())
    assert "ap-east-1.elasticache-snapshot.amazonaws.com" in policy.seen
    (acl,) = grant_findings(plan(), PreflightFacts())
    assert "READ + READ_ACP" in acl.seen and "partition aws " in acl.seen


@pytest.mark.parametrize(("sg_code", "sg_severity"), [("InvalidGroup.NotFound", "block"),
                                                      ("UnauthorizedOperation", "warn")])
def test_target_network_findings_by_error_code(monkeypatch: pytest.MonkeyPatch, sg_code: str,
                                               sg_severity: str) -> None:
    ec, ec2 = stub("elasticache"), stub("ec2")
    ec.add_client_error("describe_replication_groups", "ReplicationGroupNotFoundFault")
    ec.add_response("describe_cache_engine_versions", {"CacheEngineVersions": [
        {"Engine": "redis", "EngineVersion": "7.0.7"}]}, {"Engine": "redis"})
    ec.add_client_error("describe_cache_subnet_groups", "CacheSubnetGroupNotFoundFault")
    ec2.add_client_error("describe_security_groups", sg_code)
    stubbed(monkeypatch, elasticache=ec, ec2=ec2)
    p = plan(target={"kind": "elasticache", "subnet_group": "app-subnets", "security_group_ids": ["sg-0abc"]})
    out = target_findings(p, PreflightFacts())
    assert [(f.check, f.severity) for f in out] == [("target", "info"), ("engine", "info"), ("network", "block"),
                                                    ("network", sg_severity)]
    assert out[0].seen == "replication group id app-cache is free"
    assert out[2].seen == "cache subnet group app-subnets: CacheSubnetGroupNotFoundFault"
    if sg_severity == "block":
        assert out[3].seen == "security group(s) sg-0abc do not exist in us-east-1"
    else:
        assert out[3].seen == "cannot check security groups: UnauthorizedOperation"
    ec.assert_no_pending_responses()
    ec2.assert_no_pending_responses()


def test_target_group_lookup_refused_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    ec = stub("elasticache")
    ec.add_client_error("describe_replication_groups", "AccessDenied")
    stubbed(monkeypatch, elasticache=ec)
    (f,) = target_findings(plan(target={"kind": "elasticache"}), PreflightFacts())
    assert f == Finding("target", "warn", "cannot look up replication group app-cache: AccessDenied",
                        "give the worker elasticache:DescribeReplicationGroups and ListTagsForResource")


# ---- the rehearsal binary, checked like an engine (issue 11, item 8) ----------------------------------------------

def test_a_rehearsal_binary_older_than_the_snapshot_is_refused_with_one_that_loads_it() -> None:
    rdb10 = ExpectedRdb("REDIS", 10, "what the running server (redis 7.0.15) writes")
    f = rehearsal_binary_refusal("redis-6.2", "redis 6.2.14", rdb10, "Can't handle RDB format version 10",
                                 chosen=True, default="redis-7.0")
    assert f.severity == "block" and f.check == "target"
    assert f.seen.startswith("the rehearsal server redis-6.2 (redis 6.2.14) cannot load RDB 10 (what the running")
    assert "Can't handle RDB format version 10" in f.seen and "target.rehearsal_binary (redis-6.2)" in f.seen
    assert f.todo == ("set target.rehearsal_binary: redis-7.0 (a redis 7.0 server loads RDB 10), or leave it empty: "
                      "the engine's own stand-in loads it")


def test_the_oldest_binary_that_loads_it_when_the_engines_own_does_not() -> None:
    valkey9 = ExpectedRdb("VALKEY", 80, "what the running server (valkey 9.1.2) writes")
    f = rehearsal_binary_refusal("valkey-8.1", "valkey 8.1.8", valkey9, "Can't handle RDB format version 80",
                                 chosen=False, default="valkey-8.1")
    assert "(empty: valkey-8.1 stands in for the engine)" in f.seen
    assert f.todo == "set target.rehearsal_binary: valkey-9.1 (a valkey 9.1 server loads VALKEY080)"
    redis74 = ExpectedRdb("REDIS", 12, "the dump on disk is RDB 12")
    none = rehearsal_binary_refusal("valkey-9.1", "valkey 9.1.2", redis74, "Can't handle RDB format version 12",
                                    chosen=True, default="redis-7.0")
    assert none.todo.startswith("no rehearsal binary loads RDB 12")
