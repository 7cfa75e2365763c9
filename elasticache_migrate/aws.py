"""boto3 clients built from the plan (region, endpoint override); credentials come from boto3's chain."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from elasticache_migrate.plan import MigrationPlan

__all__ = ["aws_client"]


def aws_client(plan: MigrationPlan, service: str) -> Any:
    """A boto3 client for ``service`` in the plan's region (with the plan's endpoint override, if any).

    boto3's own retry mode "standard" handles throttling with backoff; credentials are never in the plan.
    """
    cfg = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60)
    return boto3.client(service, region_name=plan.aws.region, endpoint_url=plan.aws.endpoint_url, config=cfg)
