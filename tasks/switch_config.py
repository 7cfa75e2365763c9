"""switch-config: point the application at the new endpoint, keeping the old value to restore.

Each backend (one module) can read and write the value; this module chooses it from the plan, writes
the new value once (a re-run that finds it already switched does nothing), and registers the restore as
the task's rollback hook: if verify fails inside the same Prefect transaction, the previous value comes
back. After every write, switch and restore alike, the app containers the plan names are restarted
(:mod:`elasticache_migrate.cutover.restart`), whatever the backend. This step is never retried blindly: it changes what
clients see.

Backends: ``ssm`` (:mod:`.ssm`), ``secretsmanager`` (:mod:`.secretsmanager`), ``route53`` (:mod:`.route53`),
``dotenv`` (:mod:`.dotenv`), ``yaml`` (:mod:`.yamlfile`), ``webhook`` (:mod:`.webhook`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.transactions import Transaction, get_transaction

from elasticache_migrate.cutover.base import ConfigBackend, StatefulBackend, redact, render_value
from elasticache_migrate.cutover.restart import check_containers, restart_containers
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import Endpoint
from elasticache_migrate.state import CutoverRecord
from tasks.log import run_logger

__all__ = ["Switched", "config_backend", "switch_config", "restore_config"]


@dataclass(frozen=True)
class Switched:
    """What switch-config did."""

    where: str
    previous: str | None
    new: str
    changed: bool


_BACKENDS = {
    "ssm": ("elasticache_migrate.cutover.ssm", "SsmParameter"),
    "secretsmanager": ("elasticache_migrate.cutover.secretsmanager", "SecretField"),
    "route53": ("elasticache_migrate.cutover.route53", "Route53Cname"),
    "dotenv": ("elasticache_migrate.cutover.dotenv", "DotenvFile"),
    "yaml": ("elasticache_migrate.cutover.yamlfile", "YamlFile"),
    "webhook": ("elasticache_migrate.cutover.webhook", "Webhook"),
}


def config_backend(plan: MigrationPlan) -> ConfigBackend | None:
    """The backend the plan names (None for backend 'none'); its module is imported only when chosen."""
    import importlib

    if plan.cutover.backend not in _BACKENDS:
        return None
    module, cls = _BACKENDS[plan.cutover.backend]
    backend: ConfigBackend = getattr(importlib.import_module(module), cls)(plan)
    return backend


def _state(backend: ConfigBackend) -> dict[str, Any] | None:
    return backend.state() if isinstance(backend, StatefulBackend) else None


@task(name="switch-config", retries=0)
def switch_config(plan: MigrationPlan, endpoint: Endpoint) -> Switched:
    """Write the new endpoint where the app reads its Redis address; remember the old value; restart the app.

    Raises:
        CutoverError: the value could not be read or written, or an app container is missing or did not
            come back after its restart.
    """
    log = run_logger()
    backend = config_backend(plan)
    new = render_value(plan, endpoint)
    if backend is None:
        log.info("cutover.backend is 'none': point the app at %s yourself", redact(new))
        return Switched("(none)", None, new, False)
    journal = Journal(plan.workdir)
    current = backend.read()
    recorded = journal.read().cutover
    # A re-run after a crash: the journal knows the value from before the first switch.
    rerun = recorded is not None and current == recorded.new
    entry = CutoverRecord(where=backend.describe(), previous=recorded.previous if recorded and rerun else current,
                          new=new, previous_state=recorded.previous_state if recorded and rerun else _state(backend),
                          restarted=bool(recorded and rerun and recorded.restarted))
    previous = entry.previous
    journal.update(cutover=entry)
    txn = get_transaction()
    if txn is not None:
        txn.set("cutover_plan", plan)
    if current == new:
        log.info("%s already holds %s: not writing it again", backend.describe(), redact(new))
        if rerun and not entry.restarted:  # the earlier run wrote it but stopped before the restart
            _restart(plan, journal, entry, log)
        return Switched(backend.describe(), previous, new, False)
    check_containers(plan)  # a missing container fails before the config changes
    backend.write(new)
    if backend.read() != new:
        raise CutoverError(f"{backend.describe()} does not read back the value just written",
                           remedy="check for another writer of that config", step="switch-config")
    log.info("switched %s: %s -> %s", backend.describe(), redact(previous), redact(new))
    _restart(plan, journal, entry, log)
    return Switched(backend.describe(), previous, new, True)


def _restart(plan: MigrationPlan, journal: Journal, entry: CutoverRecord, log: Any) -> None:
    """Restart the app containers (if any) and note it, so a re-run knows they run the new value."""
    if restart_containers(plan, log.info):
        journal.update(cutover=dataclasses.replace(entry, restarted=True))


@switch_config.on_rollback
def _rollback_switch(txn: Transaction) -> None:
    """Transaction rollback: put the previous value back."""
    plan = txn.get("cutover_plan")
    restore_config(plan)


def restore_config(plan: MigrationPlan) -> bool:
    """Put back the value switch-config replaced (from the journal), restart the app; True if restored."""
    log = run_logger()
    journal = Journal(plan.workdir)
    recorded = journal.read().cutover
    backend = config_backend(plan)
    if not recorded or backend is None:
        return False
    current = backend.read()
    if current == recorded.previous:
        log.info("%s already holds the previous value", backend.describe())
        if recorded.restarted:  # the containers were restarted onto the new value: back to the old
            restart_containers(plan, log.info)
    else:
        if recorded.previous_state and isinstance(backend, StatefulBackend):
            backend.use_state(recorded.previous_state)
        backend.write(recorded.previous)
        log.warning("restored %s to %s", backend.describe(), redact(recorded.previous))
        restart_containers(plan, log.info)
    journal.update(cutover=None)
    return True
