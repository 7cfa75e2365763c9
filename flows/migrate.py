"""The runbook, as a Prefect flow: move a self-hosted Redis to ElastiCache (or rehearse it locally).

    window-lock → preflight → [stop workers] → quiesce → stage (sync-upload: SYNC into S3; or bgsave-wait → extract
      → upload; the object is completed in S3 only after the RDB's structure walk and engine verdict) → grant
      → create → wait-available → verify → [pause for approval] → fence-source → switch-config → verify-cutover
      → finish → [start workers]
    the write pause is renewed while the run lives; fence-source makes the old source refuse every write, proves
    it took none since the snapshot, closes the app's connections, then the config moves.
    a Sentinel set is held still from quiesce on (no replica can be promoted); its master is checked at verify,
    fence-source and verify-cutover (a failover rolls back); finish decommissions it (its Sentinels stop
    monitoring it), so stopping the old master promotes nothing.
    any failure after quiesce, a rejection, a timeout or a cancellation (UI/API): config back, source serving
      again, workers started, notify. One window per source: a second run is refused at window-lock, changing
      nothing.

Read top to bottom; each step is one task in ``tasks/``.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.logging.loggers import flow_run_logger
from prefect.states import Cancelled

from elasticache_migrate import notify as notify_engine
from elasticache_migrate.cutover.base import where as cutover_where
from elasticache_migrate.cutover.switch import cutover_verified, restore
from elasticache_migrate.cutover.workers import start_workers as start_worker_containers
from elasticache_migrate.errors import ApprovalRejected, MigrationError, PlanError, RunCancelled, WindowLocked
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log
from elasticache_migrate.plan import MigrationPlan, validate_plan
from elasticache_migrate.preflight.findings import PreflightReport
from elasticache_migrate.source.decommission import retire
from elasticache_migrate.source.lock import WindowLock
from elasticache_migrate.source.quiesce import PauseRenewal, unpause, window_deadlines
from elasticache_migrate.state import Extracted, MigrationResult, QuiesceState, StagedObject
from elasticache_migrate.targets import TargetHandle
from elasticache_migrate.verify.report import VerifyReport
from flows.cancel import CancelWatch, cancel_reason, is_cancellation, sigterm_deferred
from flows.stage import stage_snapshot
from tasks.approval import request_approval
from tasks.create import create, delete_target
from tasks.fence import fence_source
from tasks.grant import grant
from tasks.notify import notify, notify_flow_failure
from tasks.preflight import preflight
from tasks.quiesce import finish_source, quiesce, start_workers, stop_workers, unquiesce
from tasks.switch_config import restore_config, switch_config
from tasks.verify import verify, verify_cutover
from tasks.wait_available import wait_available
from tasks.window_lock import window_lock

__all__ = ["migrate_redis", "approval_summary"]


def roll_back_after_kill(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_cancellation/on_crashed hook, the backstop when the run's process could not roll back itself
    (killed by the worker, or crashed): the source's service and the config back, from the journal.

    Under a worker it runs in the worker's process after the run's process is gone. It takes the source's window
    lock first, as this run: when another run holds the window, the journal is that run's to act on, not ours.
    A no-op when nothing is paused or stopped (the run rolled back itself, or never quiesced).
    """
    try:
        plan = validate_plan(dict(flow_run.parameters["plan"]))
    except (KeyError, TypeError, ValueError, PlanError):  # no plan (or not one): nothing of ours to undo
        return
    journal = Journal(plan.workdir).read()
    if flow_run.parameters.get("plan_only") or (journal.quiesce is None and journal.workers is None):
        return  # nothing paused or stopped: the run rolled back itself, or never got that far
    log = flow_run_logger(flow_run, flow)
    why = f"run {flow_run.name} ended {state.type.value} before it could roll back"
    verified = cutover_verified(plan)
    if verified:
        why = f"run {flow_run.name} ended {state.type.value} after its verified cutover"
    try:
        with WindowLock(plan, str(flow_run.id), log=log):
            _roll_back(plan, RunCancelled(why), None, direct=True, log=log)
    except WindowLocked as exc:
        log.warning("not rolling back the journal of %s: %s", plan.migration_id, exc)
        return
    except MigrationError as exc:
        notify_engine.notify(plan, "failed", f"{why}; the rollback failed: {exc}", log)
        return
    if verified:
        notify_engine.notify(plan, "succeeded", f"{why}; the app stays on the target, the old source stays fenced",
                             log)
        return
    notify_engine.notify(plan, "rolled-back", f"{why}; config restored, the source serves again", log)


@flow(name="migrate-redis", on_failure=[notify_flow_failure], on_crashed=[notify_flow_failure, roll_back_after_kill],
      on_cancellation=[roll_back_after_kill])
def migrate_redis(plan: MigrationPlan, plan_only: bool = False) -> MigrationResult | PreflightReport:
    """Move a self-hosted Redis (Docker container or host) to ElastiCache, or rehearse it on a local target.

    Preflight refuses a plan that would fail before anything changes. The source's writes are paused, an RDB
    snapshot is taken, copied out, checked, uploaded to S3, granted to ElastiCache and used to seed the new cluster.
    Every key is compared before a human approves the cutover; then the app's config is switched and checked.
    A rejection, a timeout or any failure restores the config and the source's service.

    Args:
        plan: the whole migration (source, staging bucket, target, cutover, approval); no secrets.
        plan_only: run only the read-only preflight checks and report (days before the window).

    Returns:
        The migration's outcome (endpoint, snapshot and RDB facts, the staged object, verify counts, what was
        switched, who approved), or with ``plan_only`` the preflight findings.
    """
    log = get_run_logger()
    if plan_only:
        # raises (run Failed) when anything blocks; changes nothing either way
        return PreflightReport(migration_id=plan.migration_id, findings=preflight(plan))
    lock = window_lock(plan)  # one window per source: a second run fails here, having changed nothing
    try:
        return _window(plan, lock, log)
    finally:
        lock.release()


def _window(plan: MigrationPlan, lock: WindowLock, log: Log) -> MigrationResult:
    """The window itself, run while this run holds the source's window lock."""
    notify(plan, "started", f"{plan.source.kind} source → {plan.target.kind} {plan.target.replication_group_id}")
    preflight(plan)

    # worker containers (quiesce.stop_containers) stop before the drain-wait, so they leave the source
    try:
        stop_workers(plan)
        quiesced = quiesce(plan)
    except BaseException:
        start_workers(plan)  # the window never opened: the workers run again as they did
        raise
    renewal = PauseRenewal(plan, quiesced, log).start()  # fence: the pause lasts while this run lives
    target = None
    watch = CancelWatch().start()  # cancelled from the UI/API from here on: the rollback below runs
    try:
        staged_snapshot = stage_snapshot(plan, quiesced, log)  # resume, path choice, sync→staged fallback
        snapshot, rdb, staged = staged_snapshot.snapshot, staged_snapshot.rdb, staged_snapshot.staged
        grant(plan, staged)
        target = create(plan, staged)
        endpoint = wait_available(plan, target)
        report = verify(plan, endpoint, snapshot)

        notify(plan, "approval-requested", f"{endpoint.url()} holds all {report.keys_checked} keys")
        decision = request_approval(plan, approval_summary(plan, rdb, staged, endpoint.url(), report, quiesced))
        if not decision.approved:
            raise ApprovalRejected(f"cutover rejected by {decision.approver}"
                                   f"{': ' + decision.note if decision.note else ''}", step="approval")

        lock.check()  # the window is still this run's (nobody took it while its connection was down)
        renewal.stop()  # fence: from here the old source refuses every write, until the end or the rollback
        fenced = fence_source(plan, snapshot, quiesced)  # re-check: writes since the snapshot → roll back
        switched = switch_config(plan, endpoint)
        verify_cutover(plan, endpoint, report)  # on failure the rollback below runs restore-config
        notify(plan, "cutover", f"{switched.where} now points at {endpoint.url()}")
    except BaseException as exc:
        watch.stop()
        renewal.stop()  # fence: nothing may pause the source again once the rollback gives it back
        cancelled = is_cancellation(exc, watch)
        with sigterm_deferred(redeliver=not cancelled):  # a worker's SIGTERM must not cut the rollback short
            _roll_back(plan, exc, target, direct=cancelled)
            if cancelled:
                reason = cancel_reason(watch)
                notify(plan, "cancelled", f"{reason}; config restored, the source serves again")
        if cancelled:
            return Cancelled(message=f"{reason}; config restored, source serving")  # type: ignore[return-value]
        if isinstance(exc, ApprovalRejected):
            notify(plan, "rejected", f"{exc.message}; the source serves again, config untouched")
            return Cancelled(message=f"{exc.message}; source unpaused, config untouched")  # type: ignore[return-value]
        notify(plan, "rolled-back", f"{type(exc).__name__}: {exc}; config restored, the source serves again")
        raise

    watch.stop()
    try:
        finished = finish_source(plan, fenced.state)
    finally:
        start_workers(plan)  # a start reads the config again: the workers come up on the new endpoint
    notify(plan, "succeeded", f"app now on {endpoint.url()}; {report.keys_checked} keys verified; {finished}")
    log.info("migration %s done: %s", plan.migration_id, endpoint.url())
    return MigrationResult(
        migration_id=plan.migration_id, endpoint=endpoint, snapshot=snapshot, rdb=rdb, staged=staged,
        keys_verified=report.keys_checked, dbs=dict(report.dbs), switched_where=switched.where,
        config_changed=switched.changed, approved_by=decision.approver,
    )


def _roll_back(plan: MigrationPlan, exc: BaseException, target: TargetHandle | None, *, direct: bool = False,
               log: Log | None = None) -> None:
    """Every path that does not end in a verified cutover: config back (if switched), source serving.

    The source's data is never touched. A target this run created is kept for inspection unless
    ``target.delete_on_rollback`` says otherwise. ``direct``: the run is no longer Running (cancelled, or this
    is the backstop hook), so the server would abort tasks; the same steps run as plain calls of the engine.
    """
    log = log or get_run_logger()
    if cutover_verified(plan):  # the app already runs on the verified target: moving it back would lose writes
        log.warning("after a verified cutover (%s): the config stays on the target, the old source stays fenced",
                    str(exc) or type(exc).__name__)
        _finish_direct(plan, log)
        return
    log.error("rolling back after: %s", str(exc) or type(exc).__name__)
    try:
        if direct:
            restore(plan, log)
        else:
            restore_config(plan)  # no-op unless a switch is recorded and not yet restored
    finally:
        try:
            if direct:
                unpause(plan, log=log)
            else:
                unquiesce(plan)
        finally:
            if direct:
                start_worker_containers(plan, log=log)
            else:
                start_workers(plan)  # the worker containers stopped for the window, on the old config
    if target is not None:
        if plan.target.delete_on_rollback and not target.adopted:
            (delete_target.fn if direct else delete_target)(plan, target)
        else:
            log.info("the %s target %s is kept for inspection", target.kind, target.id)


def _finish_direct(plan: MigrationPlan, log: Log) -> None:
    """finish-source and start-workers as plain engine calls (the run may no longer be Running)."""
    try:
        quiesced = Journal(plan.workdir).read().quiesce
        if quiesced is not None:
            retire(plan, quiesced, log=log)
    finally:
        start_worker_containers(plan, log=log)


def approval_summary(plan: MigrationPlan, rdb: Extracted, staged: StagedObject, endpoint: str,
                     report: VerifyReport, quiesced: QuiesceState | None = None, now: float | None = None) -> str:
    """The facts shown with the approval form (Prefect UI) and the Approve / Reject buttons (Slack), with both
    deadlines: the approval's and the write pause's."""
    counts = ", ".join(f"db{db}: {s} keys" for db, (s, _t) in sorted(report.dbs.items())) or "empty"
    where = cutover_where(plan)
    return "\n".join([
        f"### Approve cutover of `{plan.migration_id}`?",
        "",
        f"- **Snapshot**: {rdb.size:,} bytes, {rdb.magic} RDB v{rdb.rdb_version}, from {rdb.origin}",
        f"- **Staged**: `{staged.uri}`",
        f"- **Target**: {plan.target.kind} `{plan.target.replication_group_id}` "
        f"({plan.target.engine} {plan.target.engine_version}) at `{endpoint}`",
        f"- **Keys**: {counts}",
        f"- **Verify**: {report.keys_checked} keys equal by type, value and TTL "
        f"({report.mismatch_count} mismatches)",
        *window_deadlines(plan, quiesced, time.time() if now is None else now),
        f"- **On approve**: the old source is fenced (refuses every write), re-checked for writes since the "
        f"snapshot, then {where} is switched to the new endpoint",
        "- **On reject**: the source accepts writes again, config untouched",
        *([f"- **Sentinel set** `{plan.source.redis.sentinel_master}`: held still (no replica can be promoted; "
           "a failover anyway rolls back); after the verified switch its Sentinels stop monitoring it"]
          if plan.source.redis.sentinel_master else []),
    ])


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.migrate PLAN.yaml``: run one migration from a plan file (no deployment needed)."""
    import argparse

    from elasticache_migrate.errors import MigrationError
    from elasticache_migrate.plan import load_plan

    ap = argparse.ArgumentParser(description="Run the Redis → ElastiCache migration flow for a plan file.")
    ap.add_argument("plan", help="plan YAML (see deployments/production-example.yaml)")
    ap.add_argument("--plan-only", action="store_true", help="only the read-only preflight checks and report")
    args = ap.parse_args(argv)
    try:
        plan = load_plan(args.plan)
    except MigrationError as exc:
        print(exc)
        return 2
    state = migrate_redis(plan, plan_only=args.plan_only, return_state=True)
    print(f"{state.type.value}: {state.message or ''}")
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
