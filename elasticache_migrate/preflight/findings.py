"""A preflight finding (block / warn / info: what was seen, what to do) and the report made of them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding", "PreflightReport", "SEVERITIES", "blocking", "report_markdown", "report_text"]

SEVERITIES = ("block", "warn", "info")


@dataclass(frozen=True)
class Finding:
    """One preflight result."""

    check: str
    severity: str      # block | warn | info
    seen: str
    todo: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")


@dataclass(frozen=True)
class PreflightReport:
    """What a plan-only run hands back: every finding (none of them blocking, or the run would have failed)."""

    migration_id: str
    findings: list[Finding]


def blocking(findings: list[Finding]) -> list[Finding]:
    """The findings that stop a migration."""
    return [f for f in findings if f.severity == "block"]


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def report_markdown(title: str, findings: list[Finding]) -> str:
    """Findings as a markdown table, blocks first (the Prefect artifact)."""
    blocks = len(blocking(findings))
    head = f"## {title}: " + (f"**{blocks} blocking problem(s)**" if blocks else "no blocking problem")
    lines = [head, "", "| severity | check | seen | what to do |", "|---|---|---|---|"]
    for f in _sorted(findings):
        lines.append(f"| {f.severity} | {f.check} | {_cell(f.seen)} | {_cell(f.todo)} |")
    return "\n".join(lines)


def report_text(title: str, findings: list[Finding]) -> str:
    """Findings as plain text for a terminal (the same content as the artifact)."""
    blocks = len(blocking(findings))
    out = [f"{title}: " + (f"{blocks} BLOCKING PROBLEM(S)" if blocks else "no blocking problem")]
    for f in _sorted(findings):
        out.append(f"  [{f.severity.upper():5}] {f.check}: {f.seen}")
        if f.todo:
            out.append(f"          → {f.todo}")
    return "\n".join(out)


def _cell(s: str) -> str:
    return s.replace("|", "/").replace("\n", " ")
