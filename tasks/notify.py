"""notify: one message per phase to Slack, or to the run's log only (see :mod:`elasticache_migrate.notify`).

Called by the flow with the run's logger; :func:`notify_flow_failure` is the flow's failure hook, which runs
outside the flow's body and logs through the failed run's own logger. Nothing here ever raises into the flow.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.logging.loggers import flow_run_logger

from elasticache_migrate import notify as engine
from elasticache_migrate.errors import PlanError
from elasticache_migrate.plan import MigrationPlan, validate_plan

__all__ = ["notify", "notify_flow_failure"]


def notify(plan: MigrationPlan, event: str, text: str) -> bool:
    """Send one phase message from the flow; True if Slack accepted it (False: logged only, or Slack failed)."""
    return engine.notify(plan, event, text, get_run_logger())


def notify_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure/on_crashed hook: tell the channel the run failed and why."""
    try:
        plan = validate_plan(dict(flow_run.parameters["plan"]))
    except (KeyError, TypeError, ValueError, PlanError):  # no plan (or not one) to notify with
        return
    engine.notify(plan, "failed", f"run {flow_run.name} ended {state.type.value}: {state.message or ''}",
                  flow_run_logger(flow_run, flow))
