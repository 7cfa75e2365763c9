"""What verify found, and how it is shown: the markdown report and the table of key counts per db."""

from __future__ import annotations

from dataclasses import dataclass, field

from elasticache_migrate.verify.compare import Mismatch

__all__ = ["VerifyReport", "report_markdown", "count_rows", "first_mismatches"]


@dataclass
class VerifyReport:
    """What verify found."""

    dbs: dict[int, tuple[int, int]] = field(default_factory=dict)   # db -> (source keys, target keys)
    keys_checked: int = 0
    expired_during: int = 0
    mismatch_count: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0
    sampled: bool = False
    confidence: str = ""
    probes: list[str] = field(default_factory=list)
    source_state: str = ""

    @property
    def ok(self) -> bool:
        return self.mismatch_count == 0

    @property
    def keys_per_second(self) -> float:
        return self.keys_checked / self.seconds if self.seconds else 0.0

    def add(self, m: Mismatch, limit: int) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < limit:
            self.mismatches.append(m)


def report_markdown(report: VerifyReport) -> str:
    """The verify result as markdown (for the artifact and stdout)."""
    lines = ["| db | source keys | target keys |", "|---:|---:|---:|"]
    lines += [f"| {db} | {s} | {t} |" for db, (s, t) in sorted(report.dbs.items())]
    verdict = "**all keys equal**" if report.ok else f"**{report.mismatch_count} mismatch(es)**"
    lines += ["", f"{report.keys_checked} keys compared by type, value and TTL in {report.seconds}s "
              f"({report.keys_per_second:,.0f} keys/s): {verdict} ({report.expired_during} expired while checking).",
              f"Coverage: {report.confidence}."]
    if report.probes:
        lines += ["", "Probes: " + "; ".join(report.probes)]
    if report.source_state:
        lines += ["", f"Source since the snapshot: {report.source_state}"]
    if report.mismatches:
        lines += ["", "| db | key | kind | detail |", "|---:|---|---|---|"]
        lines += [f"| {m.db} | `{m.key}` | {m.kind} | {m.detail.replace('|', '/')} |" for m in report.mismatches]
    return "\n".join(lines)


def count_rows(report: VerifyReport) -> list[dict[str, int]]:
    """The key counts per db as table rows (one row of zeros when there is no db at all)."""
    rows = [{"db": db, "source keys": s, "target keys": t} for db, (s, t) in sorted(report.dbs.items())]
    return rows or [{"db": 0, "source keys": 0, "target keys": 0}]


def first_mismatches(report: VerifyReport, n: int = 5) -> str:
    """The first ``n`` mismatches on one line, for the error message."""
    return "; ".join(f"db{m.db} {m.key}: {m.kind} ({m.detail})" for m in report.mismatches[:n])
