"""The jobs the client-behaviour benchmark's Celery and RQ workers run (:mod:`benchmarks.client_behaviour`).

Each job only records, in the *sink* Redis (never paused or fenced), that it ran and when, so the benchmark can
tell whether a job sent during the window ran at all, and when. The workers import this module: the broker and
the sink come from the environment (``CB_BROKER_URL``, ``CB_SINK_URL``).
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

__all__ = ["celery_app", "record", "rq_record", "mark", "RAN_KEY"]

RAN_KEY = "ran"
celery_app = Celery("client_behaviour", broker=os.environ.get("CB_BROKER_URL", "redis://127.0.0.1:6379/0"))
celery_app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False,
                       broker_connection_retry_on_startup=True, worker_prefetch_multiplier=1)


def mark(marker: str) -> None:
    """Record in the sink that the job ``marker`` ran, with the time."""
    sink = redis.Redis.from_url(os.environ["CB_SINK_URL"], protocol=2)
    try:
        sink.hset(RAN_KEY, marker, repr(time.time()))
    finally:
        sink.close()


@celery_app.task(name="cb.record")
def record(marker: str) -> None:
    """The Celery job."""
    mark(marker)


def rq_record(marker: str) -> None:
    """The RQ job."""
    mark(marker)
