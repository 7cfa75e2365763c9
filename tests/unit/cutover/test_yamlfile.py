"""The YAML backend's text edits: a line edit where possible, ruamel.yaml's round trip otherwise."""

from __future__ import annotations

import pytest
import yaml

from elasticache_migrate.cutover.yamlfile import get_value, set_value
from tests.unit.cutover.plans import NEW

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
