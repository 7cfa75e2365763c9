"""The Secrets Manager backend's text edits: one JSON field of the secret, the rest to the byte."""

from __future__ import annotations

import json

import pytest

from elasticache_migrate.cutover.secretsmanager import get_field, set_field
from tests.unit.cutover.plans import NEW

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
