"""switch-config: point the application at the new endpoint, keeping the old value to restore.

Each backend (one module) can read and write the value; this module chooses it from the plan, writes
the new value once (a re-run that finds it already switched does nothing), and registers the restore as
the task's rollback hook: if verify fails inside the same Prefect transaction, the previous value comes
back. This step is never retried blindly: it changes what clients see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.transactions import Transaction, get_transaction

from tasks.connect import Endpoint
from tasks.cutover.base import ConfigBackend, redact, render_value
from tasks.errors import CutoverError
from tasks.journal import Journal
from tasks.plan import MigrationPlan

__all__ = ["Switched", "config_backend", "switch_config", "restore_config"]


@dataclass(frozen=True)
class Switched:
    """What switch-config did."""

    where: str
    previous: str | None
    new: str
    changed: bool


def config_backend(plan: MigrationPlan) -> ConfigBackend | None:
    """The backend the plan names (None for backend 'none')."""
    kind = plan.cutover.backend
    if kind == "ssm":
        from tasks.cutover.ssm import SsmParameter

        return SsmParameter(plan)
    if kind == "dotenv":
        from tasks.cutover.dotenv import DotenvFile

        return DotenvFile(plan)
    return None


@task(name="switch-config", retries=0)
def switch_config(plan: MigrationPlan, endpoint: Endpoint) -> Switched:
    """Write the new endpoint where the app reads its Redis address; remember the old value.

    Raises:
        CutoverError: the value could not be read or written.
    """
    log = get_run_logger()
    backend = config_backend(plan)
    new = render_value(plan, endpoint)
    if backend is None:
        log.info("cutover.backend is 'none': point the app at %s yourself", redact(new))
        return Switched("(none)", None, new, False)
    journal = Journal(plan.workdir)
    current = backend.read()
    recorded = journal.get("cutover")
    # A re-run after a crash: the journal knows the value from before the first switch.
    previous = recorded["previous"] if recorded and current == recorded.get("new") else current
    journal.put("cutover", {"where": backend.describe(), "previous": previous, "new": new})
    txn = get_transaction()
    if txn is not None:
        txn.set("cutover_plan", plan)
    if current == new:
        log.info("%s already holds %s: not writing it again", backend.describe(), redact(new))
        return Switched(backend.describe(), previous, new, False)
    backend.write(new)
    if backend.read() != new:
        raise CutoverError(f"{backend.describe()} does not read back the value just written",
                           remedy="check for another writer of that config", step="switch-config")
    log.info("switched %s: %s -> %s", backend.describe(), redact(previous), redact(new))
    return Switched(backend.describe(), previous, new, True)


@switch_config.on_rollback
def _rollback_switch(txn: Transaction) -> None:
    """Transaction rollback: put the previous value back."""
    plan = txn.get("cutover_plan")
    restore_config(plan)


def restore_config(plan: MigrationPlan) -> bool:
    """Put back the value switch-config replaced (from the journal); True if something was restored."""
    log: Any
    try:
        log = get_run_logger()
    except Exception:  # noqa: BLE001 - outside a run context
        import logging

        log = logging.getLogger("redis-migrate")
    journal = Journal(plan.workdir)
    recorded = journal.get("cutover")
    backend = config_backend(plan)
    if not recorded or backend is None:
        return False
    current = backend.read()
    if current == recorded["previous"]:
        log.info("%s already holds the previous value", backend.describe())
    else:
        backend.write(recorded["previous"])
        log.warning("restored %s to %s", backend.describe(), redact(recorded["previous"]))
    journal.put("cutover", None)
    return True
