"""Findings and the report made of them (the artifact's markdown and the terminal's text)."""

from __future__ import annotations

import pytest

from elasticache_migrate.preflight.findings import Finding, blocking, report_markdown, report_text

FINDINGS = [
    Finding("source", "info", "source 127.0.0.1:6379 is redis 7.0.15"),
    Finding("bucket", "block", "s3://b is in eu-west-1, the target in us-east-1",
            "ElastiCache reads only from its own region: use a bucket in us-east-1"),
    Finding("clients", "warn", "2 application client(s) | sidekiq", "maintenance mode"),
]


def test_severity_is_checked() -> None:
    with pytest.raises(ValueError, match="severity must be one of"):
        Finding("x", "fatal", "seen")


def test_blocking_keeps_only_blocks() -> None:
    assert blocking(FINDINGS) == [FINDINGS[1]]
    assert blocking([]) == []


def test_report_markdown_lists_blocks_first_and_escapes_cells() -> None:
    md = report_markdown("Preflight for m", FINDINGS)
    lines = md.splitlines()
    assert lines[0] == "## Preflight for m: **1 blocking problem(s)**"
    assert lines[2] == "| severity | check | seen | what to do |"
    assert [line.split(" | ")[0] for line in lines[4:]] == ["| block", "| warn", "| info"]
    assert "2 application client(s) / sidekiq" in md  # a | would end the cell


def test_report_markdown_without_blocks() -> None:
    assert report_markdown("T", FINDINGS[:1]).startswith("## T: no blocking problem")


def test_report_text_shows_the_remedy_under_each_finding() -> None:
    text = report_text("Preflight for m", FINDINGS)
    lines = text.splitlines()
    assert lines[0] == "Preflight for m: 1 BLOCKING PROBLEM(S)"
    assert lines[1] == "  [BLOCK] bucket: s3://b is in eu-west-1, the target in us-east-1"
    assert lines[2] == "          → ElastiCache reads only from its own region: use a bucket in us-east-1"
    assert lines[-1] == "  [INFO ] source: source 127.0.0.1:6379 is redis 7.0.15"
    assert report_text("T", []) == "T: no blocking problem"
