"""The logger type the engine writes to: the flow's tasks pass Prefect's run logger, scripts and tests a plain one."""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

__all__ = ["Log", "logger"]

Log: TypeAlias = "logging.Logger | logging.LoggerAdapter[Any]"

logger = logging.getLogger("elasticache_migrate")
