"""Preflight checks on AWS: the staging bucket, the grant ElastiCache needs, the target, the app's config."""

from __future__ import annotations

from typing import Any

import docker.errors
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from elasticache_migrate.aws import aws_client, error_code
from elasticache_migrate.cutover.base import redact
from elasticache_migrate.cutover.restart import check_containers
from elasticache_migrate.errors import MigrationError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.facts import ExpectedRdb, PreflightFacts
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.preflight.reachability import Source, parse_groups, reachability_findings, worker_addresses
from elasticache_migrate.rdb.compat import server_refusal
from elasticache_migrate.staging.grant import canonical_id, grant_route, partition_of
from elasticache_migrate.targets.elasticache import describe_group, group_migration_id
from elasticache_migrate.targets.rehearsal import rehearsal_binary_name
from elasticache_migrate.testing.binaries import KNOWN_BINARIES, BinaryUnavailable, find_binary

__all__ = [
    "bucket_findings", "grant_findings", "target_findings", "cutover_findings", "rehearsal_binary_refusal",
    "AWS_FAILURES",
]

AWS_FAILURES = (ClientError, BotoCoreError, ResponseParserError)
"""What an AWS call raises: AWS's answer (its error code says which, :func:`~elasticache_migrate.aws.error_code`),
botocore's own failure (no credentials, endpoint unreachable, …), or an answer that is not AWS's (an HTML error
page: moto lacks describe_cache_engine_versions)."""
BUCKET_MISSING = frozenset({"NoSuchBucket", "404"})
SUBNET_GROUP_MISSING = frozenset({"CacheSubnetGroupNotFoundFault"})
SECURITY_GROUP_MISSING = frozenset({"InvalidGroup.NotFound", "InvalidGroupId.NotFound"})
# Reading the app's config: the backends map their failures to CutoverError; a file they cannot read (permissions)
# and a value they cannot parse (ValueError, UnicodeDecodeError) come through as themselves.
_CONFIG_UNREADABLE = (MigrationError, OSError, ValueError)


def bucket_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The staging bucket exists, in the target's region, with ACLs usable, and what encryption it forces."""
    s3 = aws_client(plan, "s3")
    b, region = plan.staging.bucket, plan.aws.region
    try:
        loc = s3.get_bucket_location(Bucket=b).get("LocationConstraint") or "us-east-1"
    except AWS_FAILURES as exc:
        code = error_code(exc)
        if code in BUCKET_MISSING:
            return [Finding("bucket", "block", f"bucket s3://{b} does not exist",
                            f"create it in {region} (aws s3 mb s3://{b} --region {region}) or fix staging.bucket")]
        return [Finding("bucket", "block", f"cannot read bucket s3://{b}: {code}",
                        "give the worker s3:GetBucketLocation, s3:PutObject, s3:GetObjectAcl, s3:PutObjectAcl")]
    out = []
    if loc != region:
        out.append(Finding("bucket", "block", f"s3://{b} is in {loc}, the target in {region}",
                           f"ElastiCache reads only from its own region: use a bucket in {region}"))
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"]
        ownership = rules[0]["ObjectOwnership"] if rules else "ObjectWriter"
    except AWS_FAILURES:  # no ownership controls = ACLs enabled (legacy buckets)
        ownership = "ObjectWriter"
    facts.bucket_ownership = ownership
    if ownership == "BucketOwnerEnforced":
        if grant_route(region) == "acl":
            out.append(Finding("bucket", "block", f"s3://{b} has ACLs disabled (Object Ownership: "
                               "BucketOwnerEnforced), but ElastiCache in this region reads through an object ACL",
                               f"aws s3api put-bucket-ownership-controls --bucket {b} --ownership-controls "
                               "'Rules=[{ObjectOwnership=BucketOwnerPreferred}]', or use a bucket that allows ACLs"))
        else:
            out.append(Finding("bucket", "info", f"s3://{b} has ACLs disabled; {region} reads through the bucket "
                               "policy, which the grant step writes"))
    try:
        rules = s3.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"]
        algo = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if rules else None
    except AWS_FAILURES:  # no default encryption configured
        algo = None
    if algo and algo != "AES256":
        out.append(Finding("bucket", "info", f"s3://{b} encrypts with {algo} by default; ElastiCache cannot read "
                           "SSE-KMS objects, so the upload forces SSE-S3 (AES256) on the RDB",
                           "if a bucket policy demands KMS, allow AES256 for the migration prefix"))
    if "," in plan.object_key:
        out.append(Finding("bucket", "block", f"object key {plan.object_key} contains a comma",
                           "ElastiCache cannot read such keys: change staging.key_prefix / migration_id"))
    if not out:
        out.append(Finding("bucket", "info", f"s3://{b} in {loc}, object ownership {ownership}"))
    return out


def grant_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """How ElastiCache will be allowed to read the object in this region (the grant step uses the same rule)."""
    region = plan.aws.region
    if grant_route(region) == "policy":
        return [Finding("grant", "info", f"{region} is an opt-in region: the grant step adds a bucket-policy "
                        f"statement for {region}.elasticache-snapshot.amazonaws.com (s3:GetObject, s3:ListBucket, "
                        "s3:GetBucketAcl)", "the worker needs s3:GetBucketPolicy and s3:PutBucketPolicy")]
    return [Finding("grant", "info", f"the grant step adds READ + READ_ACP on the object for ElastiCache's canonical "
                    f"id in partition {partition_of(region)} ({canonical_id(region)[:12]}…)",
                    "the worker needs s3:GetObjectAcl and s3:PutObjectAcl")]


def target_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The target can be created: id free (or ours), network and engine version exist; rehearsal binary present."""
    t = plan.target
    if t.kind == "rehearsal":
        return _rehearsal_findings(plan, facts)
    ec = aws_client(plan, "elasticache")
    out: list[Finding] = []
    try:
        group = describe_group(ec, t.replication_group_id)
        owner = group_migration_id(ec, group) if group else None
    except AWS_FAILURES as exc:
        return [Finding("target", "warn", f"cannot look up replication group {t.replication_group_id}: "
                        f"{error_code(exc)}",
                        "give the worker elasticache:DescribeReplicationGroups and ListTagsForResource")]
    if group and owner != plan.migration_id:
        out.append(Finding("target", "block", f"replication group {t.replication_group_id} exists and is not this "
                           f"migration's (migration-id tag {owner!r})", "choose another target.replication_group_id"))
    elif group:
        out.append(Finding("target", "info", f"replication group {t.replication_group_id} exists from an earlier "
                           "run of this migration: it will be adopted"))
    else:
        out.append(Finding("target", "info", f"replication group id {t.replication_group_id} is free"))
    out.extend(_engine_version_offered(ec, plan))
    vpc_id: str | None = None
    if t.subnet_group:
        try:
            found = ec.describe_cache_subnet_groups(CacheSubnetGroupName=t.subnet_group)["CacheSubnetGroups"]
            vpc_id = found[0].get("VpcId") if found else None
            out.append(Finding("network", "info", f"cache subnet group {t.subnet_group} exists"
                               + (f" in {vpc_id}" if vpc_id else "")))
        except AWS_FAILURES as exc:
            code = error_code(exc)
            sev = "block" if code in SUBNET_GROUP_MISSING else "warn"
            out.append(Finding("network", sev, f"cache subnet group {t.subnet_group}: {code}",
                               "create it (subnets of the app's VPC) or fix target.subnet_group"))
    if t.security_group_ids:
        out.extend(_security_group_findings(plan, vpc_id))
    elif t.app_sources or t.worker_source:
        out.append(Finding("network", "warn", "target.security_group_ids is empty: ElastiCache attaches the VPC's "
                           "default security group, whose rules preflight does not check",
                           "name the groups the cluster is to have in target.security_group_ids"))
    return out


def _worker(plan: MigrationPlan) -> Source | None:
    """This worker as a source: target.worker_source, else its own interface addresses (any of them will do)."""
    if plan.target.worker_source:
        return Source(plan.target.worker_source, "this worker")
    mine = worker_addresses()
    return Source(mine[0], "this worker", tuple(mine[1:])) if mine else None


def _security_group_findings(plan: MigrationPlan, vpc_id: str | None) -> list[Finding]:
    """target.security_group_ids exist in the region (DescribeSecurityGroups), sit in the subnet group's VPC, and
    admit target.port from the app hosts and the worker (:mod:`~elasticache_migrate.preflight.reachability`)."""
    t = plan.target
    ids = t.security_group_ids
    try:
        ec2 = aws_client(plan, "ec2")
        groups = parse_groups(ec2.describe_security_groups(GroupIds=ids))
    except AWS_FAILURES as exc:
        code = error_code(exc)
        if code not in SECURITY_GROUP_MISSING:
            return [Finding("network", "warn", f"cannot check security groups: {code}",
                            "give the worker ec2:DescribeSecurityGroups")]
        groups = []
    found = {g.group_id: g for g in groups}
    missing = [g for g in ids if g not in found]
    if missing:
        return [Finding("network", "block", f"security group(s) {', '.join(missing)} do not exist in "
                        f"{plan.aws.region}", "fix target.security_group_ids")]
    out = [Finding("network", "info", f"security groups {', '.join(ids)} exist")]
    sources = [Source(s, "the app") for s in t.app_sources]
    worker = _worker(plan)
    if worker is not None:
        sources.append(worker)
    else:
        out.append(Finding("network", "warn", "cannot tell this worker's address (no IPv4 interface address)",
                           "set target.worker_source to the worker's CIDR or security group"))
    if not t.app_sources:
        out.append(Finding("network", "warn", f"target.app_sources is empty: whether the app hosts may connect to "
                           f"port {t.port} is not checked", "list the app hosts' CIDRs or security groups in "
                           "target.app_sources"))
    out.extend(reachability_findings([found[g] for g in ids], t.port, sources, vpc_id=vpc_id,
                                     subnet_group=t.subnet_group))
    return out


def _engine_version_offered(ec: Any, plan: MigrationPlan) -> list[Finding]:
    """describe_cache_engine_versions: is target.engine_version on offer in this region?"""
    t = plan.target
    try:
        versions = [v["EngineVersion"] for page in ec.get_paginator("describe_cache_engine_versions").paginate(
            Engine=t.engine) for v in page.get("CacheEngineVersions", [])]
    except AWS_FAILURES as exc:  # e.g. moto, which lacks this API
        return [Finding("engine", "warn", f"cannot list {t.engine} engine versions: {error_code(exc)}",
                        "check target.engine_version in the ElastiCache console")]
    if any(v == t.engine_version or v.startswith(t.engine_version + ".") for v in versions):
        return [Finding("engine", "info", f"{t.engine} {t.engine_version} is offered in {plan.aws.region}")]
    return [Finding("engine", "block", f"{t.engine} {t.engine_version} is not offered in {plan.aws.region} "
                    f"(offered: {', '.join(sorted(set(versions))) or 'none'})", "choose an offered engine_version")]


def _rehearsal_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The local server that stands in for the engine is available, and loads the RDB the snapshot will be."""
    t = plan.target
    name = t.rehearsal_binary or rehearsal_binary_name(t.engine, t.engine_version)
    if not name:
        return [Finding("target", "block", f"no local server stands in for {t.engine} {t.engine_version}",
                        "set target.rehearsal_binary (python -m elasticache_migrate.testing.binaries list)")]
    try:
        b = find_binary(name)  # runs `<binary> --version`: its real flavor and version
    except (BinaryUnavailable, OSError) as exc:
        return [Finding("target", "block", f"rehearsal server {name} unavailable: {exc}",
                        f"python -m elasticache_migrate.testing.binaries fetch {name}")]
    expected = facts.expected_rdb
    if expected is not None:
        refusal = server_refusal(b.flavor, b.version, expected.magic, expected.version)
        if refusal is not None:
            return [rehearsal_binary_refusal(b.name, f"{b.flavor} {b.version}", expected, refusal,
                                             chosen=bool(t.rehearsal_binary),
                                             default=rehearsal_binary_name(t.engine, t.engine_version))]
    loads = f", which loads {expected.label}" if expected is not None else ""
    return [Finding("target", "info", f"rehearsal target: {b.flavor} {b.version} ({b.name}) stands in for "
                    f"{t.engine} {t.engine_version}{loads}")]


def rehearsal_binary_refusal(name: str, server: str, expected: ExpectedRdb, refusal: str, *, chosen: bool,
                             default: str | None) -> Finding:
    """Block: the rehearsal binary ``name`` (``server``, e.g. "redis 6.2.14") would refuse the snapshot at create.

    The remedy names a catalogue binary that loads it: the engine's own stand-in when that one does, else the
    oldest that does (pure: the catalogue's series, `server_refusal`'s rules).
    """
    fits = [n for n in KNOWN_BINARIES if _series_loads(n, expected)]
    pick = default if default in fits else (fits[0] if fits else None)
    field = "target.rehearsal_binary" + (f" ({name})" if chosen else f" (empty: {name} stands in for the engine)")
    todo = (f"set target.rehearsal_binary: {pick} (a {pick.replace('-', ' ')} server loads {expected.label})"
            + (", or leave it empty: the engine's own stand-in loads it" if chosen and pick == default else "")
            if pick else f"no rehearsal binary loads {expected.label}: snapshot through a server that writes RDB ≤ 11")
    return Finding("target", "block", f"the rehearsal server {name} ({server}) cannot load {expected.label} "
                   f"({expected.why}): the rehearsal would stop at create with \"{refusal}\" — set by {field}",
                   todo)


def _series_loads(name: str, expected: ExpectedRdb) -> bool:
    """Whether catalogue binary ``name`` ("redis-6.2") loads ``expected``, judged by its series (x.y.0)."""
    flavor, _, series = name.partition("-")
    return server_refusal(flavor, f"{series}.0", expected.magic, expected.version) is None


def cutover_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """The app's config can be read where the plan says it lives."""
    from elasticache_migrate.cutover import config_backend

    try:
        backend = config_backend(plan)
        if backend is None:
            return [Finding("cutover", "warn", "cutover.backend is 'none'",
                            "the app will have to be pointed at the new endpoint by hand")]
        value = backend.read()
    except _CONFIG_UNREADABLE as exc:
        return [Finding("cutover", "block", f"cannot read the app's config: {exc}",
                        "fix the cutover settings or the worker's access to them")]
    if value is None and not plan.cutover.create_if_missing:
        return [Finding("cutover", "block", f"{backend.describe()} does not exist: the app cannot be reading its "
                        "Redis address there (a misspelled name?)", "fix the cutover setting to where the app reads "
                        "it, or set cutover.create_if_missing: true if the app will read a new one")]
    found = [Finding("cutover", "info", f"{backend.describe()} currently {redact(value)}")]
    if plan.cutover.restart_containers:
        try:
            check_containers(plan)
        except (MigrationError, docker.errors.DockerException) as exc:
            return found + [Finding("cutover", "block", f"cannot find the app containers to restart: {exc}",
                                    "fix cutover.restart_containers / cutover.docker_host")]
        found.append(Finding("cutover", "info", f"will restart {', '.join(plan.cutover.restart_containers)} "
                             "after the switch"))
    return found
