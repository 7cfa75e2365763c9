"""verify's report as shown: the markdown, the table of counts, the first mismatches, and what a clean sample says."""

from __future__ import annotations

from elasticache_migrate.verify.compare import Mismatch
from elasticache_migrate.verify.report import VerifyReport, count_rows, first_mismatches, report_markdown
from elasticache_migrate.verify.run import sample_confidence


def test_report_keeps_the_first_mismatches_and_counts_them_all() -> None:
    report = VerifyReport()
    for i in range(4):
        report.add(Mismatch(0, f"k{i}", "value", "a|b"), limit=2)
    assert report.mismatch_count == 4 and [m.key for m in report.mismatches] == ["k0", "k1"]
    assert not report.ok
    assert first_mismatches(report) == "db0 k0: value (a|b); db0 k1: value (a|b)"


def test_markdown_and_table() -> None:
    report = VerifyReport(dbs={1: (5, 5), 0: (10, 9)}, keys_checked=15, seconds=0.5,
                          confidence="all 15 keys compared", probes=["`user:*`: 3 keys on source, 3 on target"],
                          source_state="rdb_changes_since_last_save=0")
    report.add(Mismatch(0, "k", "missing", "string | missing on target"), limit=20)
    md = report_markdown(report)
    assert md.splitlines()[:4] == ["| db | source keys | target keys |", "|---:|---:|---:|", "| 0 | 10 | 9 |",
                                   "| 1 | 5 | 5 |"]
    assert "15 keys compared by type, value and TTL in 0.5s (30 keys/s): **1 mismatch(es)**" in md
    assert "Coverage: all 15 keys compared." in md and "Probes: `user:*`" in md
    assert "Source since the snapshot: rdb_changes_since_last_save=0" in md
    assert "| 0 | `k` | missing | string / missing on target |" in md   # a pipe in the detail cannot break the row
    assert count_rows(report) == [{"db": 0, "source keys": 10, "target keys": 9},
                                  {"db": 1, "source keys": 5, "target keys": 5}]
    assert count_rows(VerifyReport()) == [{"db": 0, "source keys": 0, "target keys": 0}]
    assert "**all keys equal**" in report_markdown(VerifyReport(keys_checked=3))


def test_sample_confidence() -> None:
    assert sample_confidence(100, 100, 0) == "all 100 keys compared"
    assert sample_confidence(10, 1000, 2).startswith("2 of 10 sampled keys differ: the target is NOT a faithful copy")
    clean = sample_confidence(3000, 1_000_000, 0)
    assert "3000 of 1000000 keys sampled at random, none differs" in clean
    assert "fewer than 0.100% of keys (≈1,000) differ" in clean
