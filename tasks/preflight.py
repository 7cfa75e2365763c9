"""preflight: read-only checks that refuse a migration that would fail, before anything is changed.

Every check returns findings (block / warn / info: what was seen, what to do). The flow runs them first;
any ``block`` stops the run with all findings listed, before quiesce touches the source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task

from tasks.aws import aws_client
from tasks.compat import engine_loads, lowest_engine_loading, rdb_version_written_by
from tasks.connect import server_version, source_client
from tasks.errors import PreflightError
from tasks.plan import MigrationPlan

__all__ = ["Finding", "CHECKS", "run_checks", "report_markdown", "preflight"]


@dataclass(frozen=True)
class Finding:
    """One preflight result."""

    check: str
    severity: str      # block | warn | info
    seen: str
    todo: str = ""


def _source(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The source answers, and which server it is."""
    try:
        r = source_client(plan, timeout=10)
        r.ping()
        flavor, version = server_version(r)
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return [Finding("source", "block", f"cannot reach the source {plan.source.redis.host}:"
                        f"{plan.source.redis.port}: {type(exc).__name__}: {exc}",
                        "check source.redis (host, port, TLS) and its password secret")]
    facts["source_flavor"], facts["source_version"] = flavor, version
    v = ".".join(map(str, version))
    return [Finding("source", "info", f"source is {flavor} {v}")]


def _engine(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The target engine can load the RDB the source writes."""
    if "source_version" not in facts:
        return []
    v = ".".join(map(str, facts["source_version"]))
    rdb = rdb_version_written_by(facts["source_flavor"], v)
    facts["rdb_version"] = rdb
    t = plan.target
    if rdb is None:
        return [Finding("engine", "warn", f"unknown RDB version for {facts['source_flavor']} {v}",
                        "the extracted file's header is checked again before upload")]
    if engine_loads(t.engine, t.engine_version, rdb):
        return [Finding("engine", "info", f"{t.engine} {t.engine_version} loads RDB {rdb} (written by {v})")]
    low = lowest_engine_loading(rdb)
    todo = (f"set target.engine/engine_version to {low[0]} {low[1]} or newer" if low else
            "no ElastiCache engine loads this RDB version: write the data with an older server (e.g. replicate "
            "into Redis 7.0 and snapshot that)")
    return [Finding("engine", "block", f"{t.engine} {t.engine_version} cannot load RDB {rdb} written by "
                    f"{facts['source_flavor']} {v}", todo)]


def _container(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The container holding the RDB exists."""
    if plan.source.kind != "docker":
        return []
    try:
        import docker

        client = (docker.DockerClient(base_url=plan.source.docker_host) if plan.source.docker_host
                  else docker.from_env())
        c = client.containers.get(plan.source.container)
    except Exception as exc:  # noqa: BLE001
        name = type(exc).__name__
        if name == "NotFound":
            return [Finding("container", "block", f"no container named {plan.source.container!r} on "
                            f"{plan.source.docker_host or 'the default Docker engine'}",
                            "fix source.container (see `docker ps -a`) or source.docker_host")]
        return [Finding("container", "block", f"cannot reach the Docker engine "
                        f"{plan.source.docker_host or '(default)'}: {name}: {exc}",
                        "start the engine or fix source.docker_host; the worker needs access to its socket")]
    return [Finding("container", "info", f"container {c.name} is {c.status}")]


def _bucket(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The staging bucket exists, in the target's region, with ACLs enabled."""
    s3 = aws_client(plan, "s3")
    b = plan.staging.bucket
    try:
        loc = s3.get_bucket_location(Bucket=b).get("LocationConstraint") or "us-east-1"
    except Exception as exc:  # noqa: BLE001
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))
        if code in {"NoSuchBucket", "404"}:
            return [Finding("bucket", "block", f"bucket s3://{b} does not exist",
                            f"create it in {plan.aws.region} (aws s3 mb s3://{b} --region {plan.aws.region}) or fix "
                            "staging.bucket")]
        return [Finding("bucket", "block", f"cannot read bucket s3://{b}: {code}",
                        "give the worker s3:GetBucketLocation, s3:PutObject, s3:GetObjectAcl, s3:PutObjectAcl")]
    out = []
    if loc != plan.aws.region:
        out.append(Finding("bucket", "block", f"s3://{b} is in {loc}, the target in {plan.aws.region}",
                           f"ElastiCache reads only from its own region: use a bucket in {plan.aws.region}"))
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"]
        ownership = rules[0]["ObjectOwnership"] if rules else "ObjectWriter"
    except Exception:  # noqa: BLE001 - no ownership controls = ACLs enabled (legacy)
        ownership = "ObjectWriter"
    from tasks.grant import grant_route

    if ownership == "BucketOwnerEnforced" and grant_route(plan.aws.region) == "acl":
        out.append(Finding("bucket", "block", f"s3://{b} has ACLs disabled (Object Ownership: BucketOwnerEnforced)",
                           f"aws s3api put-bucket-ownership-controls --bucket {b} --ownership-controls "
                           "'Rules=[{ObjectOwnership=BucketOwnerPreferred}]', or use a staging bucket that "
                           "allows ACLs"))
    if not out:
        out.append(Finding("bucket", "info", f"s3://{b} in {loc}, object ownership {ownership}"))
    return out


def _target(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The replication group id is free (or ours); the rehearsal has a server binary."""
    t = plan.target
    if t.kind == "rehearsal":
        from tasks.binaries import find_binary
        from tasks.rehearsal import rehearsal_binary_name

        name = t.rehearsal_binary or rehearsal_binary_name(t.engine, t.engine_version)
        if not name:
            return [Finding("target", "block", f"no local server stands in for {t.engine} {t.engine_version}",
                            "set target.rehearsal_binary")]
        try:
            b = find_binary(name)
        except Exception as exc:  # noqa: BLE001
            return [Finding("target", "block", f"rehearsal server {name} unavailable: {exc}",
                            "python -m tasks.binaries fetch " + name)]
        return [Finding("target", "info", f"rehearsal target: {b.flavor} {b.version} ({b.name})")]
    from tasks.elasticache import ElastiCacheTarget

    ec = aws_client(plan, "elasticache")
    tgt = ElastiCacheTarget()
    try:
        group = tgt._describe(ec, t.replication_group_id)
        owner = tgt._migration_tag(ec, group) if group else None
    except Exception as exc:  # noqa: BLE001
        return [Finding("target", "warn", f"cannot look up replication group {t.replication_group_id}: {exc}",
                        "give the worker elasticache:DescribeReplicationGroups and ListTagsForResource")]
    if group and owner != plan.migration_id:
        return [Finding("target", "block", f"replication group {t.replication_group_id} exists and is not this "
                        f"migration's (migration-id tag {owner!r})", "choose another target.replication_group_id")]
    if group:
        return [Finding("target", "info", f"replication group {t.replication_group_id} exists from an earlier run "
                        "of this migration: it will be adopted")]
    return [Finding("target", "info", f"replication group id {t.replication_group_id} is free")]


def _cutover(plan: MigrationPlan, facts: dict[str, Any]) -> list[Finding]:
    """The app's config can be read where the plan says it lives."""
    from tasks.cutover import config_backend
    from tasks.cutover.base import redact

    try:
        backend = config_backend(plan)
        if backend is None:
            return [Finding("cutover", "warn", "cutover.backend is 'none'",
                            "the app will have to be pointed at the new endpoint by hand")]
        value = backend.read()
    except Exception as exc:  # noqa: BLE001
        return [Finding("cutover", "block", f"cannot read the app's config: {exc}",
                        "fix the cutover settings or the worker's access to them")]
    return [Finding("cutover", "info", f"{backend.describe()} currently {redact(value)}")]


CHECKS: list[Callable[[MigrationPlan, dict[str, Any]], list[Finding]]] = [
    _source, _engine, _container, _bucket, _target, _cutover,
]


def run_checks(plan: MigrationPlan) -> list[Finding]:
    """Run every read-only check; a check that crashes becomes a 'block' finding naming it."""
    facts: dict[str, Any] = {}
    out: list[Finding] = []
    for check in CHECKS:
        try:
            out.extend(check(plan, facts))
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            out.append(Finding(check.__name__.strip("_"), "block", f"check failed: {type(exc).__name__}: {exc}",
                               "fix the cause named, then re-run"))
    return out


def report_markdown(plan: MigrationPlan, findings: list[Finding]) -> str:
    """Findings as a markdown table, blocks first."""
    order = {"block": 0, "warn": 1, "info": 2}
    rows = sorted(findings, key=lambda f: order[f.severity])
    blocks = sum(f.severity == "block" for f in findings)
    head = f"## Preflight for `{plan.migration_id}`: " + (f"**{blocks} blocking problem(s)**" if blocks else "ready")
    lines = [head, "", "| severity | check | seen | what to do |", "|---|---|---|---|"]
    lines += [f"| {f.severity} | {f.check} | {f.seen.replace('|', '/')} | {f.todo.replace('|', '/')} |" for f in rows]
    return "\n".join(lines)


@task(name="preflight")
def preflight(plan: MigrationPlan) -> list[Finding]:
    """Run the read-only checks; stop the run (nothing changed) if any finding blocks.

    Raises:
        PreflightError: listing every blocking finding with what to do.
    """
    from prefect.artifacts import create_markdown_artifact

    log = get_run_logger()
    findings = run_checks(plan)
    md = report_markdown(plan, findings)
    create_markdown_artifact(key=f"preflight-{plan.migration_id}", markdown=md, description="Preflight report")
    for f in findings:
        (log.warning if f.severity != "info" else log.info)("preflight %s %s: %s%s", f.severity, f.check, f.seen,
                                                             f" → {f.todo}" if f.todo else "")
    blocks = [f for f in findings if f.severity == "block"]
    if blocks:
        text = "\n".join(f"  - {f.check}: {f.seen} → {f.todo}" for f in blocks)
        raise PreflightError(f"{len(blocks)} blocking problem(s), nothing was changed:\n{text}",
                             remedy="fix each problem listed, then run again", step="preflight")
    return findings
