"""Run a real Redis/Valkey server process on 127.0.0.1: the rehearsal target, and the tests' source/target.

    with LocalRedisServer(find_binary("redis-3.2"), workdir=tmp) as server:
        server.client().set("k", "v")

The server reads a config file written into ``workdir`` (every version since 2.6 takes one) with ``dir`` and
``dbfilename`` pointing there, so a ``dump.rdb`` placed in ``workdir`` before `LocalRedisServer.start` is
loaded, and SAVE/BGSAVE write there. Config differences between versions that matter here:

- Redis < 6.2 forgets its built-in ``save`` rules as soon as it is given a config file (checked: 3.0.5, 3.2.6,
  5.0.10, 6.0.9 report ``save ""``; 6.2.14, 7.0.15 and Valkey keep them). Unless the caller sets ``save``, the
  built-in rules (3600 1, 300 100, 60 10000) are written out so every version snapshots alike.
- ``protected-mode`` (3.2+) and ``enable-debug-command`` / ``enable-module-command`` /
  ``enable-protected-configs`` (7.0+) are rejected by older servers ("Bad directive"). A caller value that
  only restates what an older server does anyway (protected-mode no; DEBUG allowed) is left out for it;
  any other value raises `UnsupportedOption`.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from elasticache_migrate.testing.binaries import ServerBinary, describe_binary
from elasticache_migrate.testing.ports import free_port

__all__ = [
    "DEFAULT_SAVE",
    "LocalRedisServer",
    "ServerStartError",
    "UnsupportedOption",
    "render_config",
]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_SAVE = "3600 1 300 100 60 10000"
"""The ``save`` rules compiled into Redis 3.0 … 7.x and Valkey 8/9 (``CONFIG GET save``, no config file)."""

# option -> (first version that knows it, values an older server behaves as if it had)
_NEWER_OPTIONS: dict[str, tuple[tuple[int, ...], frozenset[str]]] = {
    "protected-mode": ((3, 2), frozenset({"no"})),
    "enable-debug-command": ((7, 0), frozenset({"yes", "local"})),
    "enable-module-command": ((7, 0), frozenset({"yes", "local"})),
    "enable-protected-configs": ((7, 0), frozenset({"yes", "local"})),
}
# set by LocalRedisServer itself; callers use the constructor arguments instead
_RESERVED = frozenset({"bind", "port", "daemonize", "dir", "dbfilename", "logfile", "requirepass", "include"})
_PORT_ATTEMPTS = 3


class ServerStartError(RuntimeError):
    """The server process exited or did not answer PING in time; the message ends with its log tail."""


class UnsupportedOption(ValueError):
    """A config option (or value) the server's version does not support."""


def terminate(proc: subprocess.Popen[Any] | None, timeout: float) -> bool:
    """SIGTERM ``proc``, then SIGKILL if it lingers past ``timeout``; nothing when it is absent or gone.

    Returns:
        True when it had to be killed.
    """
    if proc is None or proc.poll() is not None:
        return False
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True
    return False


def _quote(value: str) -> str:
    """Quote a value for the config file (sdssplitargs syntax, understood by every version)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_config(
    version: tuple[int, ...],
    *,
    port: int,
    workdir: Path,
    dbfilename: str,
    logfile: Path,
    password: str | None = None,
    config: Mapping[str, str] | None = None,
) -> str:
    """Return the text of a server config file for a server of ``version``.

    Args:
        version: The server version, e.g. ``(3, 0, 5)``.
        port: The TCP port to listen on (127.0.0.1 only).
        workdir: The server's ``dir``: where it loads and saves ``dbfilename``.
        dbfilename: The RDB file name inside ``workdir``.
        logfile: Where the server logs.
        password: ``requirepass``, if any.
        config: Further options, written verbatim after the option name (``{"save": "900 1"}``,
            ``{"maxmemory": "100mb"}``). An empty value is written as ``""`` (``{"save": ""}`` turns snapshots
            off). ``save`` with several rules is split into one line per rule, which every version accepts.

    Returns:
        The config file text.

    Raises:
        UnsupportedOption: A reserved option (set through the arguments instead), a line break in a value, or
            an option the version lacks with a value it cannot honour.
    """
    options = {key.lower(): value for key, value in (config or {}).items()}
    reserved = sorted(_RESERVED & set(options))
    if reserved:
        raise UnsupportedOption(f"set {', '.join(reserved)} through LocalRedisServer's arguments, not config")
    lines = [
        f"bind {HOST}",
        f"port {port}",
        "daemonize no",
        f"dir {_quote(str(workdir))}",
        f"dbfilename {_quote(dbfilename)}",
        f"logfile {_quote(str(logfile))}",
    ]
    if password is not None:
        lines.append(f"requirepass {_quote(password)}")
    options = {"appendonly": "no", "save": DEFAULT_SAVE, **options}
    for key, value in options.items():
        if any(ch in key + value for ch in "\r\n"):
            raise UnsupportedOption(f"line break in config option {key!r}")
        newer = _NEWER_OPTIONS.get(key)
        if newer is not None and version < newer[0]:
            if value.lower() in newer[1]:
                continue  # an older server already behaves this way
            raise UnsupportedOption(
                f"{key} {value} needs a server >= {_dotted(newer[0])}, this one is {_dotted(version)}"
            )
        if key == "save" and value.strip():
            rules = value.split()
            if len(rules) % 2:
                raise UnsupportedOption(f"save needs pairs of <seconds> <changes>, got {value!r}")
            lines += [f"save {rules[i]} {rules[i + 1]}" for i in range(0, len(rules), 2)]
        else:
            lines.append(f"{key} {value}" if value.strip() else f'{key} ""')
    return "\n".join(lines) + "\n"


def _dotted(version: tuple[int, ...]) -> str:
    """``(3, 0, 5)`` -> ``"3.0.5"``."""
    return ".".join(map(str, version))


def _read_tail(path: Path, n: int, start: int = 0) -> str:
    """The last ``n`` lines of ``path`` after byte offset ``start``; empty if it does not exist."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-n:])


class LocalRedisServer:
    """A real ``redis-server``/``valkey-server`` child process bound to 127.0.0.1, not daemonized.

    Args:
        binary: The server to run; a bare path is described by running it with ``--version``.
        port: TCP port; 0 picks a free one at `start`.
        workdir: Directory for the config file, the log and the RDB (created if missing). Put a ``dump.rdb``
            (or ``dbfilename``) here before `start` to seed the server.
        dbfilename: RDB file name inside ``workdir``.
        config: Extra config options; see `render_config`. ``save`` defaults to Redis's built-in rules.
        password: ``requirepass``; `client` authenticates with it.
    """

    def __init__(
        self,
        binary: ServerBinary | Path,
        *,
        port: int = 0,
        workdir: Path,
        dbfilename: str = "dump.rdb",
        config: dict[str, str] | None = None,
        password: str | None = None,
    ) -> None:
        self.binary = binary if isinstance(binary, ServerBinary) else describe_binary(Path(binary))
        self.workdir = Path(workdir).resolve()
        self.dbfilename = dbfilename
        self.config = dict(config or {})
        self.password = password
        self._requested_port = port
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        # validate options now, not at start(): the caller learns about a bad option at once
        render_config(
            self.binary.version_info,
            port=port or 1,
            workdir=self.workdir,
            dbfilename=dbfilename,
            logfile=self.logfile,
            password=password,
            config=self.config,
        )

    # --- properties ---------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return HOST

    @property
    def port(self) -> int:
        """The TCP port (0 until `start` picked one when constructed with ``port=0``)."""
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` — without the password, so it can be logged."""
        return f"redis://{HOST}:{self._port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def logfile(self) -> Path:
        """The server's log file (appended to across restarts in the same workdir)."""
        return self.workdir / f"{self.binary.flavor}-server.log"

    @property
    def config_file(self) -> Path:
        """The config file written at `start`."""
        return self.workdir / f"{self.binary.flavor}-server.conf"

    @property
    def stdout_file(self) -> Path:
        """Where the process's stdout/stderr go: config errors are printed there before the log opens."""
        return self.workdir / f"{self.binary.flavor}-server.stdout"

    @property
    def rdb_path(self) -> Path:
        """Where the server loads its RDB from and saves it to."""
        return self.workdir / self.dbfilename

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.pid is not None

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self, timeout: float = 20, *, keep_config: bool = False) -> LocalRedisServer:
        """Start the server and wait until it answers PING (it keeps answering LOADING while it reads an RDB).

        Args:
            timeout: Seconds to wait for PING, including the RDB load.
            keep_config: Restart from the config file as it is now (what CONFIG REWRITE, e.g. a Sentinel's,
                left in it), as a real restart does; needs a fixed port and a config file from an earlier start.

        Returns:
            ``self``, to allow ``server = LocalRedisServer(...).start()``.

        Raises:
            ServerStartError: The process exited (bad option, unloadable RDB, port taken) or did not answer
                in time; the message carries the tail of its log and stderr.
        """
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        attempts = _PORT_ATTEMPTS if self._requested_port == 0 and not keep_config else 1
        for attempt in range(1, attempts + 1):
            try:
                self._launch(timeout, keep_config=keep_config and self.config_file.exists())
                return self
            except ServerStartError as exc:
                if attempt == attempts or "in use" not in str(exc):
                    raise
                log.info("port %d was taken meanwhile; picking another", self._port)
        raise AssertionError("unreachable")

    def _launch(self, timeout: float, *, keep_config: bool = False) -> None:
        """Write the config (unless kept), spawn the process and wait for PING once."""
        if keep_config and not self._port:
            raise ValueError("keep_config needs the port the config file names (start it once first)")
        self._port = self._port if keep_config else (self._requested_port or free_port())
        if not keep_config:
            self.config_file.write_text(
                render_config(
                    self.binary.version_info,
                    port=self._port,
                    workdir=self.workdir,
                    dbfilename=self.dbfilename,
                    logfile=self.logfile,
                    password=self.password,
                    config=self.config,
                )
            )
        self._log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        stdout_offset = self.stdout_file.stat().st_size if self.stdout_file.exists() else 0
        with open(self.stdout_file, "ab") as out:
            self._proc = subprocess.Popen(
                [str(self.binary.path), str(self.config_file)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        probe = self._control_client(timeout=2)
        try:
            while True:
                if self._proc.poll() is not None:
                    raise ServerStartError(self._failure(f"exited with code {self._proc.returncode}", stdout_offset))
                try:
                    if probe.ping():
                        log.info(
                            "%s %s listening on %s:%d (pid %d)",
                            self.binary.flavor,
                            self.binary.version,
                            HOST,
                            self._port,
                            self._proc.pid,
                        )
                        return
                except redis.BusyLoadingError:
                    pass  # loading the RDB: keep waiting
                except (redis.ConnectionError, redis.TimeoutError):
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    self._terminate(5)
                    raise ServerStartError(self._failure(f"did not answer PING within {timeout:.0f} s", stdout_offset))
                time.sleep(0.05)
        finally:
            probe.close()

    def _failure(self, what: str, stdout_offset: int) -> str:
        """A start-failure message with the tails of this run's log and stderr."""
        parts = [f"{self.binary.name} ({self.binary.path}, {self.binary.version}) on {HOST}:{self._port} {what}"]
        log_tail = _read_tail(self.logfile, 30, self._log_offset)
        err_tail = _read_tail(self.stdout_file, 15, stdout_offset)
        if err_tail:
            parts.append(f"--- stderr ({self.stdout_file}):\n{err_tail}")
        if log_tail:
            parts.append(f"--- log ({self.logfile}):\n{log_tail}")
        return "\n".join(parts)

    def stop(self, timeout: float = 10) -> None:
        """Stop the server without saving (SHUTDOWN NOSAVE, then SIGTERM, then SIGKILL); safe to repeat.

        Args:
            timeout: Seconds to wait for each of the polite steps.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            with self._control_client(timeout) as conn:
                conn.shutdown(nosave=True)
        except redis.RedisError as exc:
            log.debug("SHUTDOWN NOSAVE failed (%s); terminating pid %d", exc, proc.pid)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._terminate(timeout)

    def _terminate(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL if the process lingers."""
        terminate(self._proc, timeout)

    # --- access ---------------------------------------------------------------------------------------------

    def client(self, **kw: Any) -> redis.Redis:
        """A redis-py client for this server; ``kw`` overrides the defaults.

        ``protocol=2`` by default: redis-py 8 otherwise opens with HELLO, which Redis < 6 rejects.
        """
        params: dict[str, Any] = {"host": HOST, "port": self._port, "protocol": 2, "password": self.password}
        params.update(kw)
        return redis.Redis(**params)

    def _control_client(self, timeout: float) -> redis.Redis:
        """A client without redis-py's retries: PING before the port opens and SHUTDOWN must fail fast."""
        return self.client(socket_connect_timeout=min(timeout, 1), socket_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def tail_log(self, n: int = 30) -> str:
        """The last ``n`` lines of the server's log file."""
        return _read_tail(self.logfile, n)

    def __enter__(self) -> LocalRedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<LocalRedisServer {self.binary.name} {self.binary.version} {HOST}:{self._port} {state}>"
