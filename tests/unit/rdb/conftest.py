"""The every-type RDB file shared by the walker, scan and CRC tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.rdb.rdb_writer import every_type_body, rdb


@pytest.fixture(scope="module")
def every_type(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rdb") / "every.rdb"
    path.write_bytes(rdb(every_type_body(), version=12))
    return path
