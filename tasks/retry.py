"""Retry policy shared by the tasks: only idempotent I/O, only failures a retry can fix."""

from __future__ import annotations

from typing import Any

from elasticache_migrate.errors import is_retryable

__all__ = ["IO_RETRIES", "retry_only_io"]


def retry_only_io(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry connection/throttling errors, never plan or preflight ones."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - we only classify it
        return is_retryable(exc)
    return False


IO_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": retry_only_io,
}
