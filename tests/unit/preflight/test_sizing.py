"""elasticache_migrate.preflight.sizing without a server: the node table, usable memory, and the findings a user
reads."""

from __future__ import annotations

import re

import pytest

from elasticache_migrate.preflight.sizing import (
    DATA_TIERING_SSD_GIB,
    GIB,
    NODE_TYPES,
    memory_usage,
    needed_bytes,
    node_family,
    size_findings,
    smallest_fitting,
    usable_bytes,
    used_memory_from_rdb_aux,
)

MIB = 1 << 20
SIZES = ["micro", "small", "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
         "24xlarge"]


def test_table_is_well_formed_and_grows_within_each_family() -> None:
    families: dict[str, list[tuple[int, float]]] = {}
    for name, gib in NODE_TYPES.items():
        assert re.fullmatch(r"cache\.[a-z0-9]+\.[a-z0-9]+", name), name
        assert 0 < gib < 1000
        families.setdefault(node_family(name), []).append((SIZES.index(name.rsplit(".", 1)[1]), gib))
    for family, rows in families.items():
        gibs = [g for _, g in sorted(rows)]
        assert gibs == sorted(gibs) and len(set(gibs)) == len(gibs), family
    for fam in ("cache.t3", "cache.t4g", "cache.m5", "cache.m6g", "cache.m7g", "cache.r5", "cache.r6g", "cache.r7g",
                "cache.r6gd", "cache.c7gn"):
        assert fam in families
    assert set(DATA_TIERING_SSD_GIB) == {n for n in NODE_TYPES if n.startswith("cache.r6gd.")}


def test_known_rows_from_the_aws_page() -> None:
    # spot checks against "Supported node types" (Memory (GiB) column)
    assert NODE_TYPES["cache.t4g.micro"] == 0.5
    assert NODE_TYPES["cache.r7g.large"] == 13.07
    assert NODE_TYPES["cache.m5.24xlarge"] == 314.32
    assert NODE_TYPES["cache.c7gn.16xlarge"] == 105.81


def test_usable_bytes_subtracts_reserved_percent() -> None:
    assert usable_bytes("cache.t4g.micro") == 384 * MIB              # 0.5 GiB less 25 %
    assert usable_bytes("cache.t4g.micro", 50) == 256 * MIB
    assert usable_bytes("cache.r7g.large", 0) == int(13.07 * GIB)
    with pytest.raises(KeyError):
        usable_bytes("cache.nope.large")
    with pytest.raises(ValueError):
        usable_bytes("cache.r7g.large", 100)


def test_needed_bytes() -> None:
    assert needed_bytes(1000) == 1300
    assert needed_bytes(1000, 0) == 1000
    assert needed_bytes(3, 0.5) == 5  # rounded up
    with pytest.raises(ValueError):
        needed_bytes(1, -0.1)


def test_smallest_fitting_lists_ties_and_skips_data_tiering() -> None:
    assert smallest_fitting(300 * MIB) == ["cache.t3.micro", "cache.t4g.micro"]
    assert smallest_fitting(9 * GIB, family="cache.r7g") == ["cache.r7g.large"]      # 9.80 GiB usable
    assert smallest_fitting(10 * GIB, family="cache.r7g") == ["cache.r7g.xlarge"]
    # 12.93 GiB m*.xlarge (9.70 usable) is smaller than 13.07 GiB r*.large (9.80 usable)
    assert smallest_fitting(9 * GIB) == ["cache.m5.xlarge", "cache.m6g.xlarge", "cache.m7g.xlarge"]
    assert smallest_fitting(15 * GIB, family="cache.r6gd") == ["cache.r6gd.xlarge"]
    assert not any(n.startswith("cache.r6gd") for n in smallest_fitting(15 * GIB))
    assert smallest_fitting(10_000 * GIB) == []


def test_fits_is_info() -> None:
    (f,) = size_findings(20 * MIB, "cache.r7g.large")
    assert f.severity == "info"
    assert f.seen.startswith("used_memory 20.00 MiB + 30% headroom = 26.00 MiB fits: 0% of the 9.80 GiB")
    assert "cache.r7g.large holds (13.07 GiB maxmemory less 25% reserved-memory-percent)" in f.seen


def test_over_80_percent_warns_with_a_bigger_node() -> None:
    # 0.5 GiB t4g.micro holds 384 MiB; 240 MiB * 1.3 = 312 MiB = 81 %
    (f,) = size_findings(240 * MIB, "cache.t4g.micro", dataset=200 * MIB)
    assert f.severity == "warn" and "fills 81% of the 384.00 MiB" in f.seen
    assert "(dataset 200.00 MiB)" in f.seen
    assert "reserved-memory-percent up to 50% on micro" in f.seen
    assert "cache.t4g.small" in f.todo


def test_no_room_to_grow_blocks() -> None:
    (f,) = size_findings(350 * MIB, "cache.t4g.micro")
    assert f.severity == "block" and f.seen.startswith("no room to grow")
    assert "leaves 34.00 MiB free, less than the 30% headroom" in f.seen
    assert "smallest cache.t4g that fits: cache.t4g.small" in f.todo


def test_data_that_does_not_fit_blocks_with_restore_failed() -> None:
    (f,) = size_findings(12 * GIB, "cache.m7g.large", source="RDB used-mem")
    assert f.severity == "block"
    assert f.seen.startswith("the data does not fit: RDB used-mem 12.00 GiB is more than the 4.78 GiB")
    assert "restore-failed" in f.seen
    # 12 GiB * 1.3 = 15.6 GiB: m7g.2xlarge (19.53 usable) in the family; r*.xlarge (19.74) … overall
    assert "smallest cache.m7g that fits: cache.m7g.2xlarge (19.53 GiB usable)" in f.todo
    assert "smallest overall: cache.m5.2xlarge, cache.m6g.2xlarge, cache.m7g.2xlarge" in f.todo


def test_capacity_table_is_a_parameter() -> None:
    table = {"cache.tiny.small": 0.01, "cache.tiny.large": 0.1, "cache.other.large": 0.05}
    (f,) = size_findings(20 * MIB, "cache.tiny.small", node_types=table)
    assert f.severity == "block" and "cache.tiny.small" in f.seen
    assert "smallest cache.tiny that fits: cache.tiny.large" in f.todo
    assert "smallest overall: cache.other.large" in f.todo


def test_too_big_for_any_node() -> None:
    (f,) = size_findings(1000 * GIB, "cache.r7g.16xlarge")
    assert f.severity == "block" and "no single node type holds it" in f.todo


def test_unknown_node_type_warns() -> None:
    (f,) = size_findings(20 * MIB, "cache.r9z.large")
    assert f.severity == "warn" and "cache.r9z.large is not in the sizing table" in f.seen
    assert "cache.t3.micro, cache.t4g.micro" in f.todo


def test_data_tiering_counts_ssd() -> None:
    (spill,) = size_findings(30 * GIB, "cache.r6gd.xlarge")
    assert spill.severity == "warn" and "data-tiering SSD" in spill.seen and "20%" in spill.todo
    (full,) = size_findings(130 * GIB, "cache.r6gd.xlarge")
    assert full.severity == "block" and "+ 99.33 GiB SSD (data tiering)" in full.seen
    assert size_findings(10 * GIB, "cache.r6gd.xlarge")[0].severity == "info"


def test_memory_usage_and_rdb_aux() -> None:
    assert memory_usage({"used_memory": 931064}) == (931064, None)  # Redis 3.2 has no used_memory_dataset
    assert memory_usage({"used_memory": 1249360, "used_memory_dataset": 335075}) == (1249360, 335075)
    assert used_memory_from_rdb_aux({"redis-ver": "7.0.15", "used-mem": "1249360"}) == 1249360
    assert used_memory_from_rdb_aux({b"used-mem": b"42"}) == 42
    assert used_memory_from_rdb_aux({"redis-ver": "3.0.5"}) is None   # 3.0 writes no aux fields
    assert used_memory_from_rdb_aux({"used-mem": "lots"}) is None
