"""Switch the app's config to the new endpoint and put the old value back: the engine of switch-config and
restore-config.

The switch writes the new value once (a re-run that finds it already switched writes nothing) and journals
the value it replaced; after every write, switch and restore alike, the app containers the plan names are
restarted (:mod:`.restart`), whatever the backend. The restore puts back the journalled value exactly (with
its state, e.g. a Route 53 TTL; "absent" stays absent). Neither is retried blindly: they change what clients
see. The one rollback path is the flow's: on any failure after the switch it runs restore-config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from elasticache_migrate.cutover import config_backend
from elasticache_migrate.cutover.base import ConfigBackend, StatefulBackend, redact, render_value
from elasticache_migrate.cutover.restart import check_containers, restart_containers
from elasticache_migrate.cutover.settings import SettingsFile, Switch, render_extras, restored_text, switched_text
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.journal import Journal
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import CutoverRecord, Endpoint

__all__ = ["Switched", "switch", "mark_verified", "cutover_verified", "restore"]


@dataclass(frozen=True)
class Switched:
    """What switch-config did."""

    where: str
    previous: str | None
    new: str
    changed: bool


def _state(backend: ConfigBackend) -> dict[str, Any] | None:
    return backend.state() if isinstance(backend, StatefulBackend) else None


def switch(plan: MigrationPlan, endpoint: Endpoint, log: Log = logger) -> Switched:
    """Write the new endpoint where the app reads its Redis address; remember the old value; restart the app.

    Raises:
        CutoverError: the value could not be read or written, or an app container is missing or did not
            come back after its restart.
    """
    backend = config_backend(plan)
    new = render_value(plan, endpoint)
    if backend is None:
        log.info("cutover.backend is 'none': point the app at %s yourself", redact(new))
        return Switched("(none)", None, new, False)
    journal = Journal(plan.workdir)
    settings = _settings_file(plan, backend)
    text = settings.text() if settings else None
    current = settings.get(text, settings.key) if settings and text is not None else backend.read()
    recorded = journal.read().cutover
    # A re-run after a crash: the journal knows the value from before the first switch.
    rerun = recorded is not None and current == recorded.new
    entry = CutoverRecord(where=backend.describe(), previous=recorded.previous if recorded and rerun else current,
                          new=new, previous_state=recorded.previous_state if recorded and rerun else _state(backend),
                          restarted=bool(recorded and rerun and recorded.restarted))
    together = None
    if settings and text is not None:  # the main value with extra_values and clear_keys, in one rewrite
        together = switched_text(settings, text, new, render_extras(plan, endpoint), plan.cutover.clear_keys)
        if recorded and rerun:  # the file is switched already (one rewrite did it all): keep what it replaced
            entry = dataclasses.replace(entry, previous_others=recorded.previous_others, cleared=recorded.cleared,
                                        no_final_newline=recorded.no_final_newline)
        else:
            entry = dataclasses.replace(entry, previous_others=together.previous_others, cleared=together.cleared,
                                        no_final_newline=together.no_final_newline)
    previous = entry.previous
    journal.update(cutover=entry)
    if current == new and (together is None or together.text == text):
        log.info("%s already holds %s: not writing it again", backend.describe(), redact(new))
        if rerun and not entry.restarted:  # the earlier run wrote it but stopped before the restart
            _restart(plan, journal, entry, log)
        return Switched(backend.describe(), previous, new, False)
    check_containers(plan)  # a missing container fails before the config changes
    if settings and together is not None:
        settings.replace(together.text)
        log.info("with it: %s", _together_text(plan, together))
    else:
        backend.write(new)
    if backend.read() != new:
        raise CutoverError(f"{backend.describe()} does not read back the value just written",
                           remedy="check for another writer of that config", step="switch-config")
    log.info("switched %s: %s -> %s", backend.describe(), redact(previous), redact(new))
    _restart(plan, journal, entry, log)
    return Switched(backend.describe(), previous, new, True)


def _settings_file(plan: MigrationPlan, backend: ConfigBackend) -> SettingsFile | None:
    """The file backend when the plan switches several of its settings together (extra_values, clear_keys)."""
    if (plan.cutover.extra_values or plan.cutover.clear_keys) and isinstance(backend, SettingsFile):
        return backend
    return None


def _together_text(plan: MigrationPlan, together: Switch) -> str:
    parts = [f"{k} set" for k in plan.cutover.extra_values]
    parts += [f"{k} removed" for k in plan.cutover.clear_keys]
    return ", ".join(parts) + f" ({len(together.cleared)} line block(s) cut, put back by a rollback)"


def _restart(plan: MigrationPlan, journal: Journal, entry: CutoverRecord, log: Log) -> None:
    """Restart the app containers (if any) and note it, so a re-run knows they run the new value."""
    if restart_containers(plan, log.info):
        journal.update(cutover=dataclasses.replace(entry, restarted=True))


def mark_verified(plan: MigrationPlan) -> None:
    """Journal that verify-cutover passed: from here the app stays on the target whatever happens to the run."""
    journal = Journal(plan.workdir)
    with Journal.lock:
        recorded = journal.read().cutover
        if recorded is not None:
            journal.update(cutover=dataclasses.replace(recorded, verified=True))


def cutover_verified(plan: MigrationPlan) -> bool:
    """True when this migration's journal says its cutover was verified (see :func:`mark_verified`)."""
    recorded = Journal(plan.workdir).read().cutover
    return recorded is not None and recorded.verified


def restore(plan: MigrationPlan, log: Log = logger) -> bool:
    """Put back the value switch-config replaced (from the journal), restart the app; True if restored.

    A no-op (False) unless a switch is journalled and not yet restored.

    Raises:
        CutoverError: the value could not be read or written, or an app container did not come back.
    """
    journal = Journal(plan.workdir)
    recorded = journal.read().cutover
    backend = config_backend(plan)
    if not recorded or backend is None:
        return False
    current = backend.read()
    # what the switch journaled decides, not today's plan: every setting it changed goes back
    together = bool(recorded.previous_others or recorded.cleared)
    settings = backend if together and isinstance(backend, SettingsFile) else None
    if settings is not None:
        text = settings.text()
        back = restored_text(settings, text, recorded.previous, recorded.previous_others, recorded.cleared,
                             recorded.no_final_newline) if current != recorded.previous else text
        if back != text:
            settings.replace(back)
            log.warning("restored %s to %s, and the settings switched with it (%s)", backend.describe(),
                        redact(recorded.previous), ", ".join([*recorded.previous_others,
                                                               *(plan.cutover.clear_keys or ["cleared ones"])]))
            restart_containers(plan, log.info)
        else:
            log.info("%s already holds the previous value", backend.describe())
            if recorded.restarted:
                restart_containers(plan, log.info)
    elif current == recorded.previous:
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
