"""The pure parts of the config backends: text edits of JSON secrets and YAML files, Route 53 record handling
(and its INSYNC waiter against botocore's Stubber, which checks every request against the real API model),
the webhook's answers, container readiness, and the value/summary each backend gets. No server runs here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.stub import Stubber

from elasticache_migrate.cutover.base import render_value, where
from elasticache_migrate.cutover.restart import docker_host, readiness
from elasticache_migrate.cutover.route53 import Route53Cname, change_batch, cname_record, normalize_name
from elasticache_migrate.cutover.secretsmanager import get_field, set_field
from elasticache_migrate.cutover.webhook import parse_value
from elasticache_migrate.cutover.yamlfile import get_value, set_value
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.source.connection import Endpoint
from tasks.switch_config import config_backend
from tests.conftest import make_plan

NEW = "redis://master.app.abc.use1.cache.amazonaws.com:6379/0"


def plan(**cutover: Any) -> Any:
    return make_plan(tmp_path=Path("/tmp/unused"), moto_endpoint="http://127.0.0.1:9", bucket="unused-bucket",
                     source_port=6379, cutover=cutover)


# ---- Secrets Manager: one JSON field, the rest to the byte ------------------------------------------------------

SECRETS = [
    '{"DB_URL":"postgres://u:pw@db/app","REDIS_URL":"redis://old:6379/0","RATE":1.50}',
    '{\n  "DB_URL": "postgres://u:pw@db/app",\n  "BIG": 1e400,\n  "NAN": NaN\n}',
    "{}",
    ' { "REDIS_URL" : "redis://old:6379/0" } ',
    '{"REDIS_URL":"a","X":{"REDIS_URL":1},"REDIS_URL":"b"}',
    '{"Ünïcode": "\\u00e9", "list": [1, 2.0, {"a": null}]}',
]


@pytest.mark.parametrize("text", SECRETS)
def test_secret_field_switch_and_restore_give_back_the_same_string(text: str) -> None:
    old = get_field(text, "REDIS_URL")
    switched = set_field(text, "REDIS_URL", NEW)
    assert get_field(switched, "REDIS_URL") == NEW
    rest = {k: v for k, v in json.loads(switched, parse_constant=str).items() if k != "REDIS_URL"}
    assert rest == {k: v for k, v in json.loads(text, parse_constant=str).items() if k != "REDIS_URL"}
    assert set_field(switched, "REDIS_URL", old) == text


def test_secret_field_edits_in_place_with_the_layout_of_the_secret() -> None:
    assert set_field('{"A":1.50,"REDIS_URL":"x"}', "REDIS_URL", NEW) == f'{{"A":1.50,"REDIS_URL":"{NEW}"}}'
    assert set_field('{\n  "A": 1\n}', "REDIS_URL", NEW) == f'{{\n  "A": 1,\n  "REDIS_URL": "{NEW}"\n}}'
    assert set_field('{"A": 1, "B": 2}', "REDIS_URL", NEW) == f'{{"A": 1, "B": 2, "REDIS_URL": "{NEW}"}}'
    assert set_field('{"REDIS_URL": "x", "A": 1}', "REDIS_URL", None) == '{"A": 1}'
    assert set_field('{"a":"REDIS_URL"}', "REDIS_URL", None) == '{"a":"REDIS_URL"}'  # a value, not the field


@pytest.mark.parametrize("text", ["redis://:hunter2@old:6379/0", '["hunter2"]', '"hunter2"', '{"a": "hunter2"} x',
                                  '{"REDIS_URL": 5, "p": "hunter2"}', ""])
def test_secret_that_is_not_an_object_of_strings_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(ValueError) as err:
        get_field(text, "REDIS_URL")
        set_field(text, "REDIS_URL", NEW)
    assert "hunter2" not in str(err.value)


def test_secret_absent_or_null_field_reads_as_none() -> None:
    assert get_field('{"A": "x"}', "REDIS_URL") is None
    assert get_field('{"REDIS_URL": null}', "REDIS_URL") is None


# ---- YAML file: a line edit where possible, ruamel.yaml's round trip otherwise ----------------------------------

DOC = """\
# shop config
app:
  name: shop   # shown in logs
redis:
  # where the cache lives
  url: redis://old:6379/0  # keep it short
  pool: 10

# logging
log:
  level: info
"""


def only_lines_inserted(before: str, after: str) -> bool:
    """Whether ``after`` is ``before`` with whole lines inserted (a last line without newline gets one)."""
    import difflib

    a, b = (t if t.endswith("\n") or not t else t + "\n" for t in (before, after))
    ops = difflib.SequenceMatcher(a=a.splitlines(True), b=b.splitlines(True)).get_opcodes()
    return all(op in ("equal", "insert") for op, *_ in ops)


def test_yaml_switch_changes_only_the_value_and_keeps_comments() -> None:
    new = set_value(DOC, "redis.url", NEW)
    assert new == DOC.replace("redis://old:6379/0", NEW)
    assert set_value(new, "redis.url", "redis://old:6379/0") == DOC


@pytest.mark.parametrize(("old", "new"), [
    ('  url: "redis://old:6379/0"\n', f'  url: "{NEW}"\n'),
    ("  url: 'redis://old:6379/0'\n", f"  url: '{NEW}'\n"),
    ("  url: redis://old:6379/0\n", f"  url: {NEW}\n"),
])
def test_yaml_keeps_the_quoting_style(old: str, new: str) -> None:
    assert set_value(f"redis:\n{old}", "redis.url", NEW) == f"redis:\n{new}"


@pytest.mark.parametrize("value", ["redis://h:6379/0 # not a comment", "yes", "123", "", "a: b", "- x", "it's"])
def test_yaml_values_that_plain_yaml_would_misread_are_quoted(value: str) -> None:
    out = set_value("redis:\n  url: old\n", "redis.url", value)
    assert yaml.safe_load(out)["redis"]["url"] == value


@pytest.mark.parametrize("text", [
    "redis:\n  pool: 10\nother: 1\n",                          # the key is missing
    "# only comments\napp:\n  name: x\n  list:\n    - a\n    - b\n# end\n",  # the parent is missing
    "",                                                        # empty file
    "redis:\r\n  pool: 1\r\n",                                 # CRLF
    "redis:\n  pool: 1",                                       # no newline at the end
    "redis:\n    pool: 1\nsrv:\n    a:\n        b: 1\n",       # 4-space indentation
    "redis:\n  note: |\n    hello\n\n# c\nx: 1\n",             # a block scalar before the insertion point
])
def test_yaml_absent_value_is_added_and_a_restore_of_absent_gives_the_file_back(text: str) -> None:
    added = set_value(text, "redis.url", NEW)
    assert get_value(added, "redis.url") == NEW
    assert only_lines_inserted(text, added)
    assert set_value(added, "redis.url", None) == text


def test_yaml_line_edit_follows_the_file_indentation() -> None:
    added = set_value("app:\n    name: x\n", "redis.url", NEW)
    assert added == f"app:\n    name: x\nredis:\n    url: {NEW}\n"


def test_yaml_flow_mapping_goes_through_ruamel_and_keeps_comments() -> None:
    text = "# top\nredis: {pool: 3}  # flow\nz: 1  # zed\n"
    added = set_value(text, "redis.url", NEW)
    assert yaml.safe_load(added) == {"redis": {"pool": 3, "url": NEW}, "z": 1}
    assert "# top" in added and "# flow" in added and "# zed" in added
    assert yaml.safe_load(set_value(added, "redis.url", None)) == yaml.safe_load(text)


def test_yaml_flow_mapping_value_is_replaced_in_place() -> None:
    text = "redis: {url: 'redis://old:6379/0', pool: 3}  # flow\n"
    assert set_value(text, "redis.url", NEW) == f"redis: {{url: '{NEW}', pool: 3}}  # flow\n"


def test_yaml_merge_key_value_is_overridden_not_the_anchor() -> None:
    text = "defaults: &d\n  url: redis://old:6379/0\nredis:\n  <<: *d\n"
    out = set_value(text, "redis.url", NEW)
    assert yaml.safe_load(out) == {"defaults": {"url": "redis://old:6379/0"}, "redis": {"url": NEW}}


@pytest.mark.parametrize(("text", "msg"), [
    ("- a\n- b\n", "not a mapping"),
    ("redis: just-a-string\n", "redis is not a mapping"),
    ("redis:\n  url:\n    nested: 1\n", "redis.url is not a string"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ("redis: [unclosed\n", "not valid YAML"),
])
def test_yaml_refuses_what_it_cannot_change_safely(text: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        set_value(text, "redis.url", NEW)


# ---- Route 53 ------------------------------------------------------------------------------------------------

def rr(name: str, value: str = "old.example.com", ttl: int = 300, **more: Any) -> dict[str, Any]:
    return {"Name": name, "Type": "CNAME", "TTL": ttl, "ResourceRecords": [{"Value": value}], **more}


def test_route53_names_compare_like_route53() -> None:
    assert normalize_name("Redis.Example.COM.") == normalize_name("redis.example.com") == "redis.example.com"
    assert normalize_name("\\052.example.com.") == "*.example.com"


def test_route53_picks_the_cname_and_refuses_routing_policies() -> None:
    sets = [{"Name": "redis.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]},
            rr("redis.example.com."), rr("redis2.example.com.")]
    assert cname_record(sets, "redis.example.com") == sets[1]
    assert cname_record(sets[2:], "redis.example.com") is None
    with pytest.raises(ValueError, match="routing policy"):
        cname_record([rr("redis.example.com.", SetIdentifier="a", Weight=1)], "redis.example.com")
    assert change_batch("UPSERT", "r.example.com", "h", 60, "c")["Changes"][0]["ResourceRecordSet"] == {
        "Name": "r.example.com", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "h"}]}


def _route53(monkeypatch: pytest.MonkeyPatch, attempts: int = 3) -> tuple[Route53Cname, Stubber]:
    import elasticache_migrate.cutover.route53 as route53

    monkeypatch.setattr(route53, "WAIT_DELAY_SECONDS", 0)
    monkeypatch.setattr(route53, "WAIT_MAX_ATTEMPTS", attempts)
    backend = config_backend(plan(backend="route53", route53_zone_id="/hostedzone/Z123", route53_ttl=30,
                                  route53_record="redis.example.com"))
    assert isinstance(backend, Route53Cname)
    return backend, Stubber(backend.r53)


def _change(status: str) -> dict[str, Any]:
    return {"ChangeInfo": {"Id": "/change/C1", "Status": status, "SubmittedAt": "2026-01-01T00:00:00Z"}}


def test_route53_upsert_waits_through_pending_until_insync(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, stub = _route53(monkeypatch)
    stub.add_response("change_resource_record_sets", _change("PENDING"), {
        "HostedZoneId": "Z123", "ChangeBatch": change_batch("UPSERT", "redis.example.com", "new.cache.amazonaws.com",
                                                            30, backend.comment)})
    stub.add_response("get_change", _change("PENDING"), {"Id": "/change/C1"})
    stub.add_response("get_change", _change("INSYNC"), {"Id": "/change/C1"})
    with stub:
        backend.write("new.cache.amazonaws.com")
    stub.assert_no_pending_responses()


def test_route53_never_insync_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, stub = _route53(monkeypatch, attempts=2)
    stub.add_response("change_resource_record_sets", _change("PENDING"))
    stub.add_response("get_change", _change("PENDING"))
    stub.add_response("get_change", _change("PENDING"))
    with stub, pytest.raises(CutoverError, match="change /change/C1 not INSYNC"):
        backend.write("new.cache.amazonaws.com")


def test_route53_restore_puts_back_the_old_target_and_ttl_as_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, stub = _route53(monkeypatch)
    listing = {"ResourceRecordSets": [rr("redis.example.com.", "old.example.com.", 900)], "IsTruncated": False,
               "MaxItems": "10"}
    stub.add_response("list_resource_record_sets", listing)
    with stub:
        assert backend.read() == "old.example.com"          # trailing dot dropped for comparisons
    assert backend.state() == {"ttl": 900, "target": "old.example.com."}
    backend.use_state(backend.state())
    stub.add_response("change_resource_record_sets", _change("INSYNC"), {
        "HostedZoneId": "Z123", "ChangeBatch": change_batch("UPSERT", "redis.example.com", "old.example.com.", 900,
                                                            backend.comment)})
    stub.add_response("get_change", _change("INSYNC"))
    with stub:
        backend.write("old.example.com")
    stub.assert_no_pending_responses()


def test_route53_delete_sends_the_record_exactly_as_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, stub = _route53(monkeypatch)
    record = rr("redis.example.com.", "new.cache.amazonaws.com", 30)
    stub.add_response("list_resource_record_sets", {"ResourceRecordSets": [record], "IsTruncated": False,
                                                    "MaxItems": "10"})
    stub.add_response("change_resource_record_sets", _change("INSYNC"), {"HostedZoneId": "Z123", "ChangeBatch": {
        "Comment": backend.comment, "Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}})
    stub.add_response("get_change", _change("INSYNC"))
    with stub:
        backend.write(None)
    stub.assert_no_pending_responses()


# ---- webhook answers, container readiness, value and summary per backend --------------------------------------

@pytest.mark.parametrize(("status", "body", "value"), [
    (200, b'{"value": "redis://h:6379/0"}', "redis://h:6379/0"),
    (200, b'{"value": null}', None),
    (404, b"", None),
])
def test_webhook_answers(status: int, body: bytes, value: str | None) -> None:
    assert parse_value(status, body) == value


@pytest.mark.parametrize(("status", "body", "msg"), [
    (500, b"oops", "HTTP 500"), (200, b"<html>", "did not answer JSON"), (200, b'{"url": "x"}', '"value" key'),
    (200, b'{"value": 5}', "not a string"), (200, b"[1]", '"value" key'),
])
def test_webhook_bad_answers(status: int, body: bytes, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        parse_value(status, body)


@pytest.mark.parametrize(("state", "verdict"), [
    ({"Status": "running", "StartedAt": "t0"}, "wait"),                                   # not restarted yet
    ({"Status": "running", "StartedAt": "t1"}, "ready"),
    ({"Status": "running", "StartedAt": "t1", "Health": {"Status": "starting"}}, "wait"),
    ({"Status": "running", "StartedAt": "t1", "Health": {"Status": "healthy"}}, "ready"),
    ({"Status": "running", "StartedAt": "t1", "Health": {"Status": "unhealthy"}}, "its healthcheck reports unhealthy"),
    ({"Status": "exited", "StartedAt": "t1", "ExitCode": 3}, "it exited with code 3 after the restart"),
    ({"Status": "restarting", "StartedAt": "t1"}, "wait"),
])
def test_container_readiness(state: dict[str, Any], verdict: str) -> None:
    assert readiness(state, "t0") == verdict


def test_docker_host_prefers_the_cutover_engine() -> None:
    p = plan(backend="none")
    assert docker_host(p) is None
    p.source.docker_host = "unix:///src.sock"
    assert docker_host(p) == "unix:///src.sock"
    p.cutover.docker_host = "unix:///app.sock"
    assert docker_host(p) == "unix:///app.sock"


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
