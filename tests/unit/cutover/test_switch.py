"""The switch and the restore, on an in-memory backend: written once, journalled, put back exactly ("absent"
stays absent), a re-run that writes nothing, and a restore with nothing journalled that does nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import elasticache_migrate.cutover.switch as switch_module
from elasticache_migrate.cutover.switch import Switched, restore, switch
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import Endpoint
from tests.conftest import make_plan

LOG = logging.getLogger("t")
NEW = Endpoint("master.app.abc.use1.cache.amazonaws.com", 6379)
NEW_URL = "redis://master.app.abc.use1.cache.amazonaws.com:6379/0"


class Memory:
    """A config backend holding the value in memory; records every write."""

    def __init__(self, value: str | None, echo: str | None = None) -> None:
        self.value, self.echo = value, echo
        self.writes: list[str | None] = []

    def describe(self) -> str:
        return "memory:redis_url"

    def read(self) -> str | None:
        return self.echo if self.echo is not None and self.writes else self.value

    def write(self, value: str | None) -> None:
        self.writes.append(value)
        self.value = value


class StatefulMemory(Memory):
    """A backend whose value carries a TTL besides the string (like a Route 53 record)."""

    def __init__(self, value: str | None, ttl: int) -> None:
        super().__init__(value)
        self.ttl, self.ttl_for_write = ttl, 30

    def state(self) -> dict[str, Any]:
        return {"ttl": self.ttl}

    def use_state(self, state: dict[str, Any]) -> None:
        self.ttl_for_write = int(state["ttl"])

    def write(self, value: str | None) -> None:
        super().write(value)
        self.ttl = self.ttl_for_write


def plan_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: Memory | None) -> MigrationPlan:
    monkeypatch.setattr(switch_module, "config_backend", lambda _plan: backend)
    return make_plan(tmp_path=tmp_path, moto_endpoint="http://127.0.0.1:9", bucket="unused", source_port=6379,
                     cutover={"backend": "none" if backend is None else "dotenv", "dotenv_path": "/unused"})


def test_switch_writes_once_and_journals_the_old_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Memory("redis://old:6379/0")
    plan = plan_with(tmp_path, monkeypatch, backend)
    assert switch(plan, NEW, LOG) == Switched("memory:redis_url", "redis://old:6379/0", NEW_URL, True)
    assert backend.writes == [NEW_URL]
    recorded = Journal(plan.workdir).read().cutover
    assert recorded is not None and (recorded.previous, recorded.new) == ("redis://old:6379/0", NEW_URL)

    again = switch(plan, NEW, LOG)                      # a re-run: already switched, nothing written
    assert again == Switched("memory:redis_url", "redis://old:6379/0", NEW_URL, False)
    assert backend.writes == [NEW_URL]


@pytest.mark.parametrize("old", ["redis://old:6379/0", None], ids=["previous-value", "previously-absent"])
def test_restore_puts_back_what_was_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str | None) -> None:
    backend = Memory(old)
    plan = plan_with(tmp_path, monkeypatch, backend)
    switch(plan, NEW, LOG)
    assert restore(plan, LOG) is True
    assert backend.value == old and backend.writes == [NEW_URL, old]
    assert Journal(plan.workdir).read().cutover is None
    assert restore(plan, LOG) is False                  # nothing journalled: nothing to do
    assert backend.writes == [NEW_URL, old]


def test_restore_of_a_value_already_back_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Memory("redis://old:6379/0")
    plan = plan_with(tmp_path, monkeypatch, backend)
    switch(plan, NEW, LOG)
    backend.value = "redis://old:6379/0"                # someone put it back by hand
    assert restore(plan, LOG) is True and backend.writes == [NEW_URL]
    assert Journal(plan.workdir).read().cutover is None


def test_restore_hands_back_the_state_read_with_the_old_value(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    backend = StatefulMemory("old.example.com", ttl=900)
    plan = plan_with(tmp_path, monkeypatch, backend)
    switch(plan, NEW, LOG)
    assert backend.ttl == 30
    restore(plan, LOG)
    assert (backend.value, backend.ttl) == ("old.example.com", 900)


def test_a_value_that_does_not_read_back_fails_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Memory("redis://old:6379/0", echo="redis://someone-else:6379/0")
    plan = plan_with(tmp_path, monkeypatch, backend)
    with pytest.raises(CutoverError, match="does not read back the value just written") as err:
        switch(plan, NEW, LOG)
    assert err.value.step == "switch-config"
    assert Journal(plan.workdir).read().cutover is not None   # journalled before the write: the restore knows


def test_backend_none_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_with(tmp_path, monkeypatch, None)
    assert switch(plan, NEW, LOG) == Switched("(none)", None, NEW_URL, False)
    assert restore(plan, LOG) is False
    assert Journal(plan.workdir).read().cutover is None
