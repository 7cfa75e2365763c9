"""flows/cancel.py's SIGTERM shield: a rollback is never cut short by a second SIGTERM (the runner's)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from flows.cancel import cancel_reason, sigterm_deferred


class Terminated(Exception):
    pass


@pytest.fixture
def raising_sigterm() -> Any:
    """A SIGTERM handler that raises, as Prefect's does (TerminationSignal)."""
    def raise_(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_during_the_block_is_delivered_after_it(raising_sigterm: None) -> None:
    done = []
    with pytest.raises(Terminated):
        with sigterm_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("rolled back")  # not interrupted
    assert done == ["rolled back"]


def test_while_handling_a_cancellation_the_second_sigterm_is_dropped(raising_sigterm: None) -> None:
    with sigterm_deferred(redeliver=False):
        os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(Terminated):
        os.kill(os.getpid(), signal.SIGTERM)


def test_without_a_watch_the_reason_names_sigterm() -> None:
    assert "SIGTERM" in cancel_reason(None)
