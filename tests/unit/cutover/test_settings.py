"""Several settings of one file switched together (cutover.extra_values / clear_keys) and restored byte for byte:
a Sentinel-aware app's env file or YAML config (real files in tmp_path, no server)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from elasticache_migrate.cutover.switch import restore, switch
from elasticache_migrate.errors import PlanError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.state import Endpoint
from tests.conftest import make_plan

LOG = logging.getLogger("t")
NEW = Endpoint("master.app.abc.use1.cache.amazonaws.com", 6379)

ENV = ("# app\nAPP_ENV=production\nREDIS_SENTINELS=10.0.0.11:26379,10.0.0.12:26379,10.0.0.13:26379\n"
       "export REDIS_MASTER_NAME='mymaster'\nREDIS_URL=redis://10.0.0.11:6379/0\nREDIS_SENTINELS=dup:26379\r\n"
       "WORKERS=4")

YAML = """\
# app config
redis:
  url: redis://10.0.0.11:6379/0   # fallback
  sentinel:
    master_name: mymaster
    hosts:
      - host: 10.0.0.11
        port: 26379
      - {host: 10.0.0.12, port: 26379}
  pool: 5
cache:
  host: 10.0.0.11
"""


def _plan(tmp_path: Path, **cutover: object) -> MigrationPlan:
    return make_plan(tmp_path=tmp_path, moto_endpoint="http://127.0.0.1:9", bucket="unused", source_port=6379,
                     cutover=cutover)


def test_dotenv_sentinel_settings_cleared_and_put_back_exactly(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_bytes(ENV.encode())
    plan = _plan(tmp_path, backend="dotenv", dotenv_path=str(env), clear_keys=["REDIS_SENTINELS", "REDIS_MASTER_NAME"],
                 extra_values={"REDIS_HOST": "{host}"})
    done = switch(plan, NEW, LOG)
    assert done.changed and done.previous == "redis://10.0.0.11:6379/0"
    text = env.read_text()
    assert "SENTINEL" not in text and "MASTER_NAME" not in text
    assert "REDIS_URL=redis://master.app.abc.use1.cache.amazonaws.com:6379/0\n" in text
    assert text.endswith("WORKERS=4\nREDIS_HOST=master.app.abc.use1.cache.amazonaws.com\n")
    record = Journal(plan.workdir).read().cutover
    assert record is not None and record.previous_others == {"REDIS_HOST": None} and len(record.cleared) == 3
    assert switch(plan, NEW, LOG).changed is False  # a re-run finds it switched and keeps what it replaced
    assert restore(plan, LOG)
    assert env.read_bytes() == ENV.encode()


def test_yaml_sentinel_block_cleared_and_put_back_exactly(tmp_path: Path) -> None:
    cfg = tmp_path / "app.yaml"
    cfg.write_text(YAML)
    plan = _plan(tmp_path, backend="yaml", yaml_path=str(cfg), yaml_key="redis.url",
                 clear_keys=["redis.sentinel"], extra_values={"cache.host": "{host}"})
    switch(plan, NEW, LOG)
    text = cfg.read_text()
    assert "sentinel" not in text and "26379" not in text and "pool: 5" in text
    assert "url: redis://master.app.abc.use1.cache.amazonaws.com:6379/0   # fallback" in text
    assert "host: master.app.abc.use1.cache.amazonaws.com" in text
    assert restore(plan, LOG)
    assert cfg.read_text() == YAML


def test_clear_keys_need_a_file_backend_and_distinct_keys(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="need backend dotenv or yaml"):
        _plan(tmp_path, backend="ssm", ssm_parameter="/app/redis", clear_keys=["REDIS_SENTINELS"])
    with pytest.raises(PlanError, match="REDIS_URL named twice"):
        _plan(tmp_path, backend="dotenv", dotenv_path="/x", clear_keys=["REDIS_URL"])
    with pytest.raises(PlanError, match="not a variable name"):
        _plan(tmp_path, backend="dotenv", dotenv_path="/x", clear_keys=["REDIS SENTINELS"])
    with pytest.raises(PlanError, match="may use only"):
        _plan(tmp_path, backend="dotenv", dotenv_path="/x", extra_values={"REDIS_HOST": "{hostname}"})


def test_a_file_edited_since_the_switch_gets_its_settings_back_without_splitting_a_line(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text("A=1\nREDIS_SENTINELS=s1:26379\nREDIS_URL=redis://old:6379/0\n")
    plan = _plan(tmp_path, backend="dotenv", dotenv_path=str(env), clear_keys=["REDIS_SENTINELS"])
    switch(plan, NEW, LOG)
    env.write_text("A=1 # edited by hand, longer now\n" + env.read_text().split("\n", 1)[1])
    restore(plan, LOG)
    assert env.read_text() == ("A=1 # edited by hand, longer now\nREDIS_URL=redis://old:6379/0\n"
                               "REDIS_SENTINELS=s1:26379\n")


def test_the_summary_names_the_settings_switched_together(tmp_path: Path) -> None:
    from elasticache_migrate.cutover.base import where

    plan = _plan(tmp_path, backend="dotenv", dotenv_path="/srv/app.env", clear_keys=["REDIS_SENTINELS"],
                 extra_values={"REDIS_HOST": "{host}"}, restart_containers=["web"])
    assert where(plan) == ("`/srv/app.env` (REDIS_URL) (setting REDIS_HOST and removing REDIS_SENTINELS in the same "
                           "rewrite), then restart web")
