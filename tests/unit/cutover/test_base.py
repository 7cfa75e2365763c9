"""The backend registry, the value each backend gets, the summary of where the app reads its address, and
config values made safe to log."""

from __future__ import annotations

import pytest

from elasticache_migrate.cutover import config_backend
from elasticache_migrate.cutover.base import redact, render_value, where
from elasticache_migrate.source.connection import Endpoint
from tests.unit.cutover.plans import plan

CUTOVERS = {
    "ssm": ({"ssm_parameter": "/app/redis_url"}, "SsmParameter", "SSM parameter `/app/redis_url`"),
    "secretsmanager": ({"secret_id": "app/prod"}, "SecretField", "field `REDIS_URL` of secret `app/prod`"),
    "route53": ({"route53_zone_id": "Z1", "route53_record": "redis.example.com"}, "Route53Cname",
                "CNAME `redis.example.com` (zone Z1)"),
    "dotenv": ({"dotenv_path": "/srv/app/.env"}, "DotenvFile", "`/srv/app/.env` (REDIS_URL)"),
    "yaml": ({"yaml_path": "/srv/app/config.yaml"}, "YamlFile", "`/srv/app/config.yaml` (redis.url)"),
    "webhook": ({"webhook_url": "https://u:pw@app.internal/cfg"}, "Webhook", "webhook https://u:***@app.internal"),
}


@pytest.mark.parametrize("kind", list(CUTOVERS))
def test_every_backend_is_registered_summarised_and_gets_its_value(kind: str) -> None:
    fields, cls, summary = CUTOVERS[kind]
    p = plan(backend=kind, restart_containers=["shop-web", "shop-worker"], **fields)
    assert type(config_backend(p)).__name__ == cls
    assert summary in where(p) and where(p).endswith(", then restart shop-web, shop-worker")
    ep = Endpoint("master.x.cache.amazonaws.com", 6380, tls=True)
    expected = ep.host if kind == "route53" else "rediss://master.x.cache.amazonaws.com:6380/0"
    assert render_value(p, ep) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("redis://:hunter2@old:6379/0", "redis://:***@old:6379/0"),
        ("redis://app:hunter2@old:6379/0", "redis://app:***@old:6379/0"),
        ("rediss://default:p@ss@word@old:6380", "rediss://default:***@old:6380"),  # raw '@' in the password
        ("redis://old:6379/0", "redis://old:6379/0"),
        ("redis://user@old:6379", "redis://user@old:6379"),
        (None, "(absent)"),
    ],
)
def test_redact(value: str | None, shown: str) -> None:
    assert redact(value) == shown
