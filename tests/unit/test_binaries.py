"""elasticache_migrate.testing.binaries without downloads: version parsing, cache layout, and the errors an operator
sees."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from elasticache_migrate.testing import binaries
from elasticache_migrate.testing.binaries import (
    KNOWN_BINARIES,
    BinaryUnavailable,
    ServerBinary,
    available_binaries,
    cache_dir,
    cached_path,
    find_binary,
    parse_version_output,
)

# Real `--version` output of each binary the catalogue provides, captured on this machine.
REAL_OUTPUTS = {
    "redis-3.0": ("Redis server v=3.0.5 sha=00000000:0 malloc=libc bits=64 build=b21e0cdd9bcea1f8\n", "3.0.5"),
    "redis-3.2": ("Redis server v=3.2.6 sha=00000000:0 malloc=libc bits=64 build=d4009b23c6a47bc1\n", "3.2.6"),
    "redis-5.0": (
        "Redis server v=5.0.10 sha=00000000:0 malloc=jemalloc-5.1.0 bits=64 build=a42d795f7709a571\n",
        "5.0.10",
    ),
    "redis-6.0": (
        "Redis server v=6.0.9 sha=00000000:0 malloc=jemalloc-5.1.0 bits=64 build=1b1a12af8ca361c9\n",
        "6.0.9",
    ),
    "redis-6.2": ("Redis server v=6.2.14 sha=40305114:0 malloc=libc bits=64 build=dff95a8e7a99d269\n", "6.2.14"),
    "redis-7.0": (
        "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0\n",
        "7.0.15",
    ),
    "valkey-8.1": ("Valkey server v=8.1.8 sha=00000000:1 malloc=libc bits=64 build=7eb4ebc9d7e91f4e\n", "8.1.8"),
    "valkey-9.1": ("Valkey server v=9.1.2 sha=00000000:1 malloc=libc bits=64 build=1536df31c0395150\n", "9.1.2"),
}


@pytest.mark.parametrize("name", sorted(REAL_OUTPUTS))
def test_parses_real_version_output(name: str) -> None:
    output, version = REAL_OUTPUTS[name]
    assert parse_version_output(output) == (name.split("-")[0], version)


def test_parses_pre_2_6_format() -> None:
    assert parse_version_output("Redis server version 2.4.10 (00000000:0)") == ("redis", "2.4.10")


@pytest.mark.parametrize(
    "output",
    [
        "",
        "redis-cli 7.0.15",
        "KeyDB server v=6.3.4 sha=00000000:0 malloc=jemalloc-5.2.1 bits=64",
        "Usage: ./redis-server [/path/to/redis.conf] [options]",
    ],
)
def test_rejects_other_output(output: str) -> None:
    with pytest.raises(ValueError, match="not a Redis/Valkey"):
        parse_version_output(output)


def test_version_info_compares_numerically() -> None:
    old = ServerBinary("redis-3.2", "redis", "3.2.6", Path("/x"))
    new = ServerBinary("redis-3.10", "redis", "3.10.0", Path("/y"))
    assert old.version_info == (3, 2, 6)
    assert old.version_info < new.version_info


def test_catalogue_is_oldest_first() -> None:
    series = [tuple(int(p) for p in name.split("-")[1].split(".")) for name in KNOWN_BINARIES]
    assert series == sorted(series)
    assert len(set(KNOWN_BINARIES)) == len(KNOWN_BINARIES)
    assert set(KNOWN_BINARIES) == set(REAL_OUTPUTS)


def test_cache_dir_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_MIGRATE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


@pytest.mark.parametrize("value", [None, ""])
def test_cache_dir_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("REDIS_MIGRATE_CACHE", raising=False)
    else:
        monkeypatch.setenv("REDIS_MIGRATE_CACHE", value)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "redis-elasticache-migrate"


def test_cached_path_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_MIGRATE_CACHE", str(tmp_path))
    assert cached_path("redis-3.2") == tmp_path / "bin" / "redis-3.2" / "redis-server"
    assert cached_path("valkey-8.1") == tmp_path / "bin" / "valkey-8.1" / "valkey-server"
    # Debian's package is used in place, never copied (its redis-server is a symlink named for its role)
    assert cached_path("redis-7.0") == Path("/usr/bin/redis-server")


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(BinaryUnavailable) as caught:
        find_binary("redis-4.0")
    assert caught.value.name == "redis-4.0"
    assert "redis-3.2" in caught.value.remedy and "valkey-9.1" in caught.value.remedy


def _fake_server(path: Path, output: str) -> Path:
    """A shell script that answers --version like a server would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output.strip()}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("REDIS_MIGRATE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_missing_from_cache_without_install_says_how_to_fetch(empty_cache: Path) -> None:
    with pytest.raises(BinaryUnavailable) as caught:
        find_binary("redis-3.2", install=False)
    assert caught.value.remedy == "python -m elasticache_migrate.testing.binaries fetch redis-3.2"


def test_cached_binary_is_found_without_installing(empty_cache: Path) -> None:
    path = _fake_server(cached_path("redis-3.2"), REAL_OUTPUTS["redis-3.2"][0])
    found = find_binary("redis-3.2", install=False)
    assert found == ServerBinary("redis-3.2", "redis", "3.2.6", path)


def test_cached_binary_of_the_wrong_series_is_not_trusted(empty_cache: Path) -> None:
    _fake_server(cached_path("redis-3.2"), REAL_OUTPUTS["redis-3.0"][0])
    with pytest.raises(BinaryUnavailable, match="not in the cache"):
        find_binary("redis-3.2", install=False)


def test_available_binaries_keeps_catalogue_order_and_skips_missing(empty_cache: Path) -> None:
    for name in ("valkey-9.1", "redis-3.0"):
        _fake_server(cached_path(name), REAL_OUTPUTS[name][0])
    names = [b.name for b in available_binaries(["valkey-9.1", "redis-5.0", "redis-3.0"])]
    assert names == ["redis-3.0", "valkey-9.1"]


def test_building_without_compiler_says_install_build_essential(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty_path = tmp_path / "no-tools"
    empty_path.mkdir()
    monkeypatch.setenv("PATH", str(empty_path))
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    with pytest.raises(BinaryUnavailable) as caught:
        find_binary("redis-3.0", install=True)
    assert "apt-get install build-essential" in caught.value.remedy
    assert "make" in caught.value.reason
    assert not (empty_cache / "tmp").exists()  # refused before downloading anything


def test_cli_list_prints_name_version_path(empty_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _fake_server(cached_path("valkey-8.1"), REAL_OUTPUTS["valkey-8.1"][0])
    assert binaries.main(["list"]) == 0
    lines = {line.split("\t")[0]: line.split("\t") for line in capsys.readouterr().out.splitlines()}
    assert lines["valkey-8.1"] == ["valkey-8.1", "8.1.8", str(path)]
    assert lines["redis-3.2"][1] == "-" and "fetch redis-3.2" in lines["redis-3.2"][2]
    assert set(lines) == set(KNOWN_BINARIES)


def test_install_is_atomic_rename(tmp_path: Path) -> None:
    built = _fake_server(tmp_path / "build" / "redis-server", REAL_OUTPUTS["redis-6.0"][0])
    final = tmp_path / "cache" / "bin" / "redis-6.0" / "redis-server"
    binaries._install(built, final)
    assert os.access(final, os.X_OK)
    assert sorted(p.name for p in final.parent.iterdir()) == ["redis-server"]  # no partial file left behind
