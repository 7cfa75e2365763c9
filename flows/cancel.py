"""Cancellation = rollback: how a run cancelled from the Prefect UI/API reaches the flow's one rollback path.

Prefect 3.8.8 does not stop a cancelled run by itself unless a worker (runner) runs it: the pause loop of
``pause_flow_run`` only looks for Running, so an ephemeral run cancelled while paused waits until its pause
times out, and a running ephemeral run goes on. On a worker the runner sends SIGTERM, which Prefect turns into
``TerminationSignal`` in the flow's main thread. :class:`CancelWatch` makes both cases the same: it polls the
run's state and, once it is Cancelling or Cancelled, interrupts the main thread the way the runner would
(a simulated SIGTERM), so the flow's ``except`` runs the rollback. Tasks cannot run in a run that is no longer
Running (the server aborts them), so that rollback calls the engine directly; :func:`sigterm_deferred` keeps a
second SIGTERM (the runner's, arriving while we roll back) from cutting the rollback short.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectNotFound, TerminationSignal

from elasticache_migrate.log import logger

__all__ = ["CancelWatch", "cancel_reason", "is_cancellation", "sigterm_deferred"]

_PHASES = {"PAUSED": "paused for approval", "RUNNING": "running after quiesce"}


def is_cancellation(exc: BaseException, watch: CancelWatch | None) -> bool:
    """Whether the flow is unwinding because the run was cancelled (UI/API, or the process got SIGTERM)."""
    return isinstance(exc, TerminationSignal) or (watch is not None and watch.reason is not None)


def cancel_reason(watch: CancelWatch | None) -> str:
    """Why the run stops, for its final state and the notification."""
    if watch is not None and (watch.reason or watch.cancelled_on_server()):
        return watch.reason or f"cancelled by the Prefect API/UI while {watch.last_phase}"
    return "cancelled (the process got SIGTERM: cancelled from the Prefect UI/API, or the worker is stopping)"


class CancelWatch:
    """Polls this flow run's state; on Cancelling/Cancelled, interrupts the flow's main thread once.

    Args:
        interval: seconds between two reads of the run's state.
    """

    def __init__(self, interval: float = 1.0) -> None:
        ctx = FlowRunContext.get()
        self.run_id: uuid.UUID | None = ctx.flow_run.id if ctx and ctx.flow_run else None
        self.interval = interval
        self.reason: str | None = None
        self.last_phase = "running after quiesce"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CancelWatch:
        """Start watching (a no-op outside a flow run, or when the flow does not run in the main thread)."""
        if self.run_id is None or threading.current_thread() is not threading.main_thread():
            return self
        context = contextvars.copy_context()  # the run's settings (API URL) and client context
        self._thread = threading.Thread(target=context.run, args=(self._watch,), name="cancel-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the rollback or the end of the run)."""
        self._stop.set()

    def cancelled_on_server(self) -> bool:
        """Whether the run is Cancelling/Cancelled on the server now (a worker's SIGTERM came before our look)."""
        from prefect.client.orchestration import get_client

        if self.run_id is None:
            return False
        try:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(self.run_id).state
                cancelled = state is not None and state.type.value in ("CANCELLING", "CANCELLED")
                if cancelled:
                    self._phase_before_cancel(client)
        except (ObjectNotFound, httpx.HTTPError):
            return False
        return cancelled

    def _phase_before_cancel(self, client: Any) -> None:
        """What the run was doing when it was cancelled: the state before its first Cancelling, from its history."""
        assert self.run_id is not None
        try:
            history = sorted(client.read_flow_run_states(self.run_id), key=lambda st: st.timestamp)
        except (ObjectNotFound, httpx.HTTPError):
            return
        before = None
        for st in history:
            if st.type.value in ("CANCELLING", "CANCELLED"):
                break
            before = st.type.value
        if before in _PHASES:
            self.last_phase = _PHASES[before]

    def _watch(self) -> None:
        from prefect.client.orchestration import get_client

        assert self.run_id is not None
        with get_client(sync_client=True) as client:
            while not self._stop.wait(self.interval):
                try:
                    state = client.read_flow_run(self.run_id).state
                except (ObjectNotFound, httpx.HTTPError) as exc:  # the API away for a moment: look again
                    logger.debug("cancel watch: %s", exc)
                    continue
                if state is None:
                    continue
                kind = state.type.value
                if kind in _PHASES:
                    self.last_phase = _PHASES[kind]
                if kind in ("CANCELLING", "CANCELLED") and not self._stop.is_set():
                    self._phase_before_cancel(client)
                    self.reason = f"cancelled by the Prefect API/UI while {self.last_phase}"
                    self._stop.set()
                    _interrupt_main_thread()
                    return


def _interrupt_main_thread() -> None:
    """What the runner's SIGTERM does: Prefect's handler raises TerminationSignal in the main thread.

    A real signal to the main thread (not ``_thread.interrupt_main``, which waits for a blocking call to return):
    a sleep or a socket read is interrupted at once. Without a Python SIGTERM handler (which would let SIGTERM
    kill the process) the main thread gets a KeyboardInterrupt instead.
    """
    import _thread

    main = threading.main_thread().ident
    if callable(signal.getsignal(signal.SIGTERM)) and main is not None:
        signal.pthread_kill(main, signal.SIGTERM)
    else:
        _thread.interrupt_main(signal.SIGINT)


@contextlib.contextmanager
def sigterm_deferred(redeliver: bool = True) -> Iterator[None]:
    """SIGTERM held back during the block (the rollback must finish), then delivered again after it — unless
    ``redeliver`` is False (the block already handles a cancellation: the run ends Cancelled right after).

    Only in the main thread (where signal handlers live); elsewhere the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, _frame: Any) -> None:
        received.append(signum)
        logger.warning("SIGTERM received during the rollback: delivered once the rollback is done")

    previous = signal.signal(signal.SIGTERM, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if received and redeliver:
            os.kill(os.getpid(), signal.SIGTERM)
