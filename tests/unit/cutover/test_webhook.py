"""The webhook backend: what the app's config endpoint may answer."""

from __future__ import annotations

import pytest

from elasticache_migrate.cutover.webhook import parse_value


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
