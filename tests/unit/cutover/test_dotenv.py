"""The dotenv backend's text edits: read and set one variable, keeping every other byte of the file."""

from __future__ import annotations

import pytest

from elasticache_migrate.cutover.dotenv import get_value, set_value

ENV = "# app\nAPP_ENV=production\nREDIS_URL=redis://old:6379/0\nWORKERS=4\n"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('REDIS_URL="redis://old:6379/0"\n', "redis://old:6379/0"),
        ("REDIS_URL='redis://old:6379/0'\n", "redis://old:6379/0"),
        ("export REDIS_URL=redis://old:6379/0\n", "redis://old:6379/0"),
        ("  REDIS_URL = redis://old:6379/0\n", "redis://old:6379/0"),
        ("REDIS_URL=redis://old:6379/0\r\nX=1\r\n", "redis://old:6379/0"),
        ("REDIS_URL=a\nREDIS_URL=b\n", "b"),                       # last assignment wins
        ("REDIS_URL_OLD=x\nMY_REDIS_URL=y\n", None),
        ("", None),
        ("REDIS_URL=\nWORKERS=4\n", ""),                           # empty value: not the next line
    ],
)
def test_dotenv_get_value(text: str, value: str | None) -> None:
    assert get_value(text, "REDIS_URL") == value


def test_dotenv_set_value_changes_only_that_line() -> None:
    new = set_value(ENV, "REDIS_URL", "redis://master.c.abc.use1.cache.amazonaws.com:6379/0")
    assert new == "# app\nAPP_ENV=production\nREDIS_URL=redis://master.c.abc.use1.cache.amazonaws.com:6379/0\nWORKERS=4\n"


def test_dotenv_set_value_keeps_export_and_crlf() -> None:
    text = "A=1\r\nexport REDIS_URL=\"redis://old:6379/0\"\r\nB=2\r\n"
    new = set_value(text, "REDIS_URL", "rediss://new:6379/0")
    assert new == "A=1\r\nexport REDIS_URL=rediss://new:6379/0\r\nB=2\r\n"
    assert get_value(new, "REDIS_URL") == "rediss://new:6379/0"


def test_dotenv_set_value_quotes_when_needed() -> None:
    new = set_value(ENV, "REDIS_URL", "redis://h:6379/0 # x")
    assert 'REDIS_URL="redis://h:6379/0 # x"\n' in new
    assert get_value(new, "REDIS_URL") == "redis://h:6379/0 # x"


def test_dotenv_set_value_after_empty_assignment_keeps_next_line() -> None:
    new = set_value("REDIS_URL=\nWORKERS=4\n", "REDIS_URL", "redis://new:6379/0")
    assert new == "REDIS_URL=redis://new:6379/0\nWORKERS=4\n"


def test_dotenv_set_value_none_removes_only_its_lines() -> None:
    text = "A=1\n\nREDIS_URL=x\n  export REDIS_URL=y\nB=2\n"
    assert set_value(text, "REDIS_URL", None) == "A=1\n\nB=2\n"
    assert set_value("A=1\n", "REDIS_URL", None) == "A=1\n"


def test_dotenv_append_and_remove_round_trip() -> None:
    # Rollback when the key was absent: append at cutover, remove at rollback, file byte-identical again.
    for original in ["A=1\n", "A=1", "A=1\n\n", ""]:
        added = set_value(original, "REDIS_URL", "redis://new:6379/0")
        assert get_value(added, "REDIS_URL") == "redis://new:6379/0"
        assert added.startswith(original)
        restored = set_value(added, "REDIS_URL", None)
        assert restored.rstrip("\n") == original.rstrip("\n")
        if original.endswith("\n") or not original:
            assert restored == original


def test_dotenv_append_without_trailing_newline() -> None:
    assert set_value("A=1", "REDIS_URL", "redis://new:6379/0") == "A=1\nREDIS_URL=redis://new:6379/0\n"
    assert set_value("", "REDIS_URL", "redis://new:6379/0") == "REDIS_URL=redis://new:6379/0\n"
