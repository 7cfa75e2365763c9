"""Which of the app's settings are Sentinel configuration (pure rules; the live check is in
tests/functional/test_preflight_sentinel.py)."""

from __future__ import annotations

from elasticache_migrate.preflight.app_config import sentinel_settings, setting_name

ADDRS = ["10.0.0.11:26379", "10.0.0.12:26379"]


def test_sentinel_style_settings_are_found_with_why() -> None:
    env = {"REDIS_URL": "redis://10.0.0.11:6379/0", "REDIS_SENTINELS": "10.0.0.11:26379,10.0.0.12:26379",
           "REDIS_MASTER_NAME": "mymaster", "CELERY_BROKER_URL": "sentinel://10.0.0.13:26379;sentinel://x:26379",
           "CACHE_NODES": "10.0.0.12:26379", "DB_MASTER": "db.internal", "APP_ENV": "production"}
    found = sentinel_settings(env, addresses=ADDRS, master_name="mymaster")
    assert found == {"REDIS_SENTINELS": "named like a Sentinel setting",
                     "REDIS_MASTER_NAME": "the Sentinel master name",
                     "CELERY_BROKER_URL": "a Sentinel URL",
                     "CACHE_NODES": "names one of the plan's Sentinels"}
    # without a Sentinel source in the plan, a key named like a master name still counts
    assert "SENTINEL_MASTER" in sentinel_settings({"SENTINEL_MASTER": "m"}, addresses=[], master_name=None)
    assert sentinel_settings({"URL": "redis+sentinel://h:26379/mymaster/0"}, addresses=[], master_name=None)
    assert sentinel_settings({"DB_MASTER": "db", "REDIS_MASTER_NAME": "m"}, addresses=[], master_name=None) == {
        "REDIS_MASTER_NAME": "named like a Sentinel master name"}


def test_yaml_paths_are_reported_as_the_setting_holding_them() -> None:
    flat = {"redis.url": "redis://h:6379/0", "redis.sentinel.hosts.0.host": "10.0.0.11",
            "redis.sentinel.hosts.0.port": "26379", "redis.sentinel.master_name": "mymaster"}
    assert sentinel_settings(flat, addresses=ADDRS, master_name="mymaster", dotted=True) == {
        "redis.sentinel": "named like a Sentinel setting"}
    assert setting_name("redis.master_name", True) == "redis.master_name"
