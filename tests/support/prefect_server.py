"""A real Prefect server and a real process worker, each its own subprocess, for the deployment tests.

Both run the installed ``prefect`` (``python -m prefect …``) on 127.0.0.1 with an environment built here from
scratch for Prefect: every ``PREFECT_*`` variable of the test session is dropped first, so the session's
``prefect_test_harness`` (conftest's ``prefect_server``) can neither leak into these processes nor be changed by
them. Each process gets its own session (process group): stopping it stops its children too (uvicorn,
the worker's flow-run processes and what they started).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = ["ManagedProcess", "PrefectServer", "ROOT", "prefect_env", "start_prefect_server"]

ROOT = Path(__file__).resolve().parents[2]


def prefect_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without any ``PREFECT_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(extra or {})
    return env


@dataclass
class ManagedProcess:
    """A subprocess in its own process group, its output in a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, name: str, argv: list[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> ManagedProcess:
        log = open(log_path, "ab")
        proc = subprocess.Popen(argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        return cls(name, proc, log_path, log)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 4000) -> str:
        """The end of the process's output (for failure messages)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the process group, SIGKILL to what is left of it, or of its descendants, after ``timeout``.

        Descendants are remembered before the group is signalled: a worker starts each flow run in a session of
        its own (outside the group), and a flow run paused when a test fails would otherwise outlive the test.
        """
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        family = _descendants(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        while (_group_alive(pgid) or any(_same_process(p) for p in family)) and time.monotonic() < deadline:
            time.sleep(0.2)  # children (uvicorn, flow runs) shutting down after the leader
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        for pid, started in family:
            if _same_process((pid, started)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, from /proc; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":  # a zombie has already exited
        return None
    return int(fields[1]), int(fields[19])


def _descendants(root: int) -> list[tuple[int, int]]:
    """Every live descendant of ``root`` as (pid, start time): the start time tells a reused pid apart."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[0], []).append((int(entry.name), st[1]))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _same_process(proc: tuple[int, int]) -> bool:
    st = _stat(proc[0])
    return st is not None and st[1] == proc[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class PrefectServer:
    """A running ``prefect server start`` and how to talk to it."""

    url: str  # the UI, e.g. http://127.0.0.1:4321
    home: Path
    process: ManagedProcess

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for a Prefect client process (CLI, worker) talking to this server only."""
        return prefect_env({"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.home / "client"),
                            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **(extra or {})})

    def cli(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 180,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """``python -m prefect ARGS`` in the repository root against this server; output in the error."""
        run_env = self.env(env)
        run_env["PWD"] = str(ROOT)  # prefect.yaml's pull step is "{{ $PWD }}", read from the environment
        done = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=ROOT, env=run_env, text=True,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"prefect {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done

    def api(self, method: str, path: str, **kw: Any) -> Any:
        """One REST call to this server's API; the decoded JSON."""
        r = httpx.request(method, f"{self.api_url}{path}", timeout=30, **kw)
        r.raise_for_status()
        return r.json() if r.content else None

    def ensure_work_pool(self, name: str, kind: str = "process") -> None:
        """``prefect work-pool create NAME --type KIND`` unless the pool exists (as scripts/deploy.sh does)."""
        if httpx.get(f"{self.api_url}/work_pools/{name}", timeout=30).status_code == 404:
            self.cli("work-pool", "create", name, "--type", kind)

    def start_worker(self, pool: str, log_path: Path, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """A real process worker for ``pool``; its flow runs inherit ``env`` and run in the repository root."""
        worker_env = self.env({"PREFECT_WORKER_QUERY_SECONDS": "1", "PWD": str(ROOT), **(env or {})})
        return ManagedProcess.start(
            "worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process",
                       "--name", f"test-worker-{os.getpid()}"],
            env=worker_env, cwd=ROOT, log_path=log_path)


@contextlib.contextmanager
def start_prefect_server(home: Path, port: int, timeout: float = 120,
                         settings: Mapping[str, str] | None = None) -> Iterator[PrefectServer]:
    """``prefect server start`` on 127.0.0.1:``port`` with the UI, its database under ``home``; stopped after.

    ``settings``: more ``PREFECT_SERVER_*`` variables for the server (e.g. a short concurrency lease)."""
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    env = prefect_env({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_UI_API_URL": f"{url}/api",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        **(settings or {}),
    })
    process = ManagedProcess.start(
        "prefect-server", [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                           "--port", str(port)],
        env=env, cwd=home, log_path=home / "server.log")
    try:
        deadline = time.monotonic() + timeout
        while True:
            if not process.alive():
                raise RuntimeError(f"prefect server exited {process.proc.returncode}:\n{process.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server not healthy within {timeout:.0f}s:\n{process.tail()}")
            time.sleep(0.5)
        yield PrefectServer(url=url, home=home, process=process)
    finally:
        process.stop()


def settled_task_runs(flow_run_id: Any, wait: float = 30) -> list[Any]:
    """The task runs of a finished flow run, once the server has recorded each one's final state.

    Prefect 3 reports task-run states as events that the server's recorder writes a moment later, so a read
    right after the flow returns can still see a task Running. This waits for the record, not for the work."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + wait
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        if all(r.state is not None and r.state.is_final() for r in runs) or time.monotonic() > deadline:
            return list(runs)
        time.sleep(0.2)
