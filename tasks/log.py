"""The run's logger inside Prefect, a plain logger outside (tasks' ``.fn`` in scripts and benchmarks)."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["run_logger"]


def run_logger() -> Any:
    """Prefect's run logger when called from a flow or task run, else the ``redis-migrate`` logger."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("redis-migrate")
