"""Benchmark: what common Redis clients experience in each window mode, measured on real servers.

    .venv/bin/python benchmarks/client_behaviour.py              # 7.0 + 6.2 (block, refuse, fence), 3.2 (refuse)
    .venv/bin/python benchmarks/client_behaviour.py --quick      # 7.0 only, 1 s window, three clients (the test)
    .venv/bin/python benchmarks/client_behaviour.py --window 3 --servers redis-7.0 --json out.json

The window modes, as server commands (sent by this script itself, never through the engine):

- **block**: ``CLIENT PAUSE <ms> WRITE`` (>= 6.2) opens the window, ``CLIENT UNPAUSE`` ends it: writes wait.
- **refuse**: ``CONFIG SET min-replicas-to-write 1000000`` + ``min-replicas-max-lag 10`` (``min-slaves-*`` before
  5.0) opens it, the old values put back end it: every write fails at once with ``NOREPLICAS``.
- **fence** (the cutover, after a block window): while writes are held by ``CLIENT PAUSE WRITE``, the refuse config
  is set, every application client is closed with ``CLIENT KILL ID <id>`` (all but this script's admin
  connection), then ``CLIENT UNPAUSE``. The old source then refuses every write for good (it is not lifted here).

The clients: redis-py 8.1 as ``redis.Redis(host=, port=)`` (its defaults: socket_timeout 5 s, connect timeout 5 s,
``Retry(ExponentialWithJitterBackoff, 10)`` on connection and timeout errors, RESP3, so ``protocol=2`` is added on
Redis < 6, which does not know HELLO); redis-py with ``socket_timeout=5`` and no retry; redis-py with an explicit
``Retry(ExponentialBackoff(cap=1, base=0.1), 3)`` and ``socket_timeout=1``; a Celery worker (``-P solo``) + producer
(``send_task``) and an RQ ``SimpleWorker`` + ``Queue.enqueue`` on kombu's / redis-py's defaults.

For each (server, mode, client) it measures: what a write issued 0.2 s into the window gets (the result or the
exception, how long the call took, how many times the client reconnected = retried, counted by the server's
``total_connections_received``); whether that write landed (the key on the server, or the job ran, recorded in a
separate *sink* Redis that is never paused); and after the window: how long until the same client (or worker)
works again, or, after the fence, what it gets. Each Celery/RQ row starts its own worker process. It prints a
Markdown table of what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project's packages are importable
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from redis.backoff import ExponentialBackoff, NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from elasticache_migrate.testing.binaries import find_binary  # noqa: E402
from elasticache_migrate.testing.localredis import LocalRedisServer  # noqa: E402

__all__ = ["Row", "run", "main", "CLIENTS", "MODES"]

MODES = ("block", "refuse", "fence")
REDIS_PY = ("redis-py defaults", "redis-py socket_timeout=5", "redis-py Retry(3)")
CLIENTS = (*REDIS_PY, "celery", "rq")
ISSUE_AFTER = 0.2          # the app's write is issued this long after the window opens
CALL_CAP = 150.0           # a call still blocked after this long is reported as such
RECOVER_CAP = 30.0         # how long to wait for a client / worker to work again after the window
REFUSE = 1_000_000


@dataclass
class Row:
    """One measurement: a client's write during one window on one server, and the client after the window."""

    server: str
    mode: str
    window_s: float
    client: str
    result: str               # what the write issued during the window got
    call_s: float | None      # how long that call took (None: still blocked after CALL_CAP)
    reconnects: int           # new connections the client opened during that call (its retries)
    landed: str               # where that write ended up
    after: str                # after the window: works again in … / what it gets after the fence


# ------------------------------------------------------------------------------------------ the window


class Window:
    """The server side: opens and ends a window of one mode with the raw commands, through an admin connection."""

    def __init__(self, server: LocalRedisServer) -> None:
        self.version = server.binary.version_info
        self.admin = redis.Redis(host="127.0.0.1", port=server.port, protocol=2, socket_timeout=30)
        self.admin.client_setname("cb-admin")
        self.admin_id = int(self.admin.client_id()) if self.version >= (5, 0, 0) else None
        prefix = "min-replicas" if self.version >= (5, 0, 0) else "min-slaves"
        self.refuse_keys = (f"{prefix}-to-write", f"{prefix}-max-lag")
        self.saved = {k: str(self.admin.config_get(k)[k]) for k in self.refuse_keys}

    def open(self, mode: str) -> None:
        if mode in ("block", "fence"):
            self.admin.execute_command("CLIENT", "PAUSE", 3_600_000, "WRITE")
        else:
            self._refuse()

    def close(self, mode: str) -> None:
        """End the window: unpause (block), put the config back (refuse), or fence then unpause (fence)."""
        if mode == "block":
            self.admin.execute_command("CLIENT", "UNPAUSE")
        elif mode == "refuse":
            self._restore()
        else:
            self._refuse()
            self.kill_app_clients()
            self.admin.execute_command("CLIENT", "UNPAUSE")

    def kill_app_clients(self) -> int:
        """CLIENT KILL ID for every normal client but the admin connection; how many."""
        killed = 0
        for c in self.admin.client_list():
            cid = int(c["id"])
            if cid != self.admin_id and c.get("name") != "cb-admin" and "N" in c.get("flags", "N"):
                with contextlib.suppress(redis.ResponseError):  # it may just have gone
                    self.admin.execute_command("CLIENT", "KILL", "ID", cid)
                    killed += 1
        return killed

    def _refuse(self) -> None:
        to_write, lag = self.refuse_keys
        self.admin.config_set(to_write, REFUSE)
        self.admin.config_set(lag, 10)

    def _restore(self) -> None:
        for k, v in self.saved.items():
            self.admin.config_set(k, v)

    def reset(self) -> None:
        """Between measurements: no pause, the original config, no app client, an empty keyspace."""
        if self.version >= (6, 2, 0):
            self.admin.execute_command("CLIENT", "UNPAUSE")
        self._restore()
        self.kill_app_clients()
        self.admin.flushall()

    def connections(self) -> int:
        return int(self.admin.info("stats")["total_connections_received"])


# ------------------------------------------------------------------------------------------- helpers


def _describe(exc: BaseException) -> str:
    """``Type: message`` kept short; a Redis error code buried in a pipeline's message is brought forward."""
    text = " ".join(str(exc).split())
    code = next((c for c in ("NOREPLICAS", "unknown command") if c in text and not text.startswith(c)), None)
    short = text[:60] + ("…" if len(text) > 60 else "")
    return f"{type(exc).__name__} ({code}): {short}" if code else f"{type(exc).__name__}: {short}"


@dataclass
class Call:
    """A call made in a thread: what it returned or raised, and when."""

    started: float = 0.0
    ended: float | None = None
    value: Any = None
    error: BaseException | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    def outcome(self) -> str:
        if self.ended is None:
            return f"still blocked after {CALL_CAP:.0f} s"
        return "ok" if self.error is None else _describe(self.error)


def _call_in_thread(fn: Callable[[], Any]) -> tuple[Call, threading.Thread]:
    call = Call()

    def run() -> None:
        call.started = time.monotonic()
        try:
            call.value = fn()
        except Exception as exc:  # noqa: BLE001 - a benchmark records whatever the client raises
            call.error = exc
        call.ended = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return call, t


def _wait_until(check: Callable[[], bool], cap: float, poll: float = 0.05) -> float | None:
    """Seconds until ``check()`` holds (None: not within ``cap``)."""
    start = time.monotonic()
    while time.monotonic() - start < cap:
        if check():
            return time.monotonic() - start
        time.sleep(poll)
    return None


def _redis_py(name: str, port: int, old: bool) -> redis.Redis:
    extra: dict[str, Any] = {"protocol": 2} if old else {}
    if name == "redis-py defaults":
        return redis.Redis(host="127.0.0.1", port=port, **extra)
    if name == "redis-py socket_timeout=5":
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0), **extra)
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1,
                       retry=Retry(ExponentialBackoff(cap=1, base=0.1), 3), **extra)


# ------------------------------------------------------------------------------------------ redis-py


def measure_redis_py(server: LocalRedisServer, window: Window, mode: str, seconds: float, name: str) -> Row:
    old = window.version < (6, 0, 0)
    client = _redis_py(name, server.port, old)
    label = f"{server.binary.name} {server.binary.version}"
    shown = f"{name} +protocol=2" if old else name  # redis-py 8 speaks RESP3 (HELLO) by default: Redis < 6 refuses
    try:
        client.set("warm", 1)
        conns = window.connections()
        window.open(mode)
        opened = time.monotonic()
        time.sleep(ISSUE_AFTER)
        call, thread = _call_in_thread(lambda: client.set("during", "1"))
        time.sleep(max(0.0, opened + seconds - time.monotonic()))
        window.close(mode)
        ended = time.monotonic()
        thread.join(CALL_CAP)
        reconnects = window.connections() - conns
        landed = "on the source" if window.admin.get("during") == b"1" else "nowhere (dropped)"
        after = _after_redis_py(client, mode, ended)
        return Row(label, mode, seconds, shown, call.outcome(), call.seconds, reconnects, landed, after)
    finally:
        client.close()
        window.reset()


def _after_redis_py(client: redis.Redis, mode: str, ended: float) -> str:
    if mode == "fence":
        call, thread = _call_in_thread(lambda: client.set("after", "1"))
        thread.join(CALL_CAP)
        return f"{call.outcome()} ({call.seconds or 0:.2f} s)"

    def works() -> bool:
        try:
            client.set("after", "1")
            return True
        except redis.RedisError:
            return False

    took = _wait_until(works, RECOVER_CAP)
    if took is None:
        return f"not within {RECOVER_CAP:.0f} s"
    return f"works {max(0.0, time.monotonic() - ended):.2f} s after the window"


# ------------------------------------------------------------------------------------------ workers


class Worker:
    """A Celery or RQ worker process on the server (broker), recording its jobs in the sink."""

    def __init__(self, kind: str, broker_url: str, sink_url: str, logdir: Path) -> None:
        self.kind = kind
        env = {**os.environ, "CB_BROKER_URL": broker_url, "CB_SINK_URL": sink_url, "PYTHONPATH": str(ROOT)}
        if kind == "celery":
            args = [sys.executable, "-m", "celery", "-A", "benchmarks.client_jobs:celery_app", "worker", "-P", "solo",
                    "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
        else:
            args = [sys.executable, "-c", "from rq.cli import main; main()", "worker", "--url", broker_url,
                    "--worker-class", "rq.worker.SimpleWorker", "--logging_level", "WARNING"]
        self.log = logdir / f"{kind}-{uuid.uuid4().hex[:6]}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-600:]

    def last_error(self) -> str:
        """The last line of its log that names an error (shortened)."""
        lines = [ln.strip() for ln in self.log.read_text(errors="replace").splitlines() if "Error" in ln]
        return (lines[-1][:90] + "…") if lines else "(no error in its log)"


class Producer:
    """Sends one job the way the app would: Celery's ``send_task`` / RQ's ``Queue.enqueue``, library defaults."""

    def __init__(self, kind: str, port: int, old: bool) -> None:
        self.kind = kind
        url = f"redis://127.0.0.1:{port}/0"
        if kind == "celery":
            from celery import Celery

            self.app = Celery("cb-producer", broker=url)
        else:
            from rq import Queue

            self.conn = redis.Redis(host="127.0.0.1", port=port, protocol=2) if old else \
                redis.Redis(host="127.0.0.1", port=port)  # the defaults (RESP3 needs HELLO, Redis >= 6)
            self.queue = Queue("default", connection=self.conn)

    def send(self, marker: str) -> None:
        if self.kind == "celery":
            self.app.send_task("cb.record", args=[marker])
        else:
            self.queue.enqueue("benchmarks.client_jobs.rq_record", marker)

    def close(self) -> None:
        if self.kind == "celery":
            self.app.close()
        else:
            self.conn.close()


def measure_worker(server: LocalRedisServer, sink: redis.Redis, window: Window, mode: str, seconds: float,
                   kind: str, logdir: Path) -> Row:
    old = window.version < (6, 0, 0)
    label = f"{server.binary.name} {server.binary.version}"
    broker = f"redis://127.0.0.1:{server.port}/0" + ("?protocol=2" if old else "")
    sink_url = f"redis://127.0.0.1:{sink.connection_pool.connection_kwargs['port']}/0"
    sink.delete("ran")
    worker = Worker(kind, broker, sink_url, logdir)
    producer = None
    try:
        producer = Producer(kind, server.port, old)
        ran = lambda m: sink.hexists("ran", m)  # noqa: E731
        try:
            producer.send("warm")
        except Exception as exc:  # noqa: BLE001 - reported as the row's result
            return Row(label, mode, seconds, kind, f"cannot send a job at all: {_describe(exc)}", None, 0, "-", "-")
        if _wait_until(lambda: ran("warm"), 60) is None:
            return Row(label, mode, seconds, kind, "the worker never ran a job before the window", None, 0, "-",
                       f"worker log: {' '.join(worker.tail().split())[-150:]}")
        conns = window.connections()
        window.open(mode)
        opened = time.monotonic()
        time.sleep(ISSUE_AFTER)
        call, thread = _call_in_thread(lambda: producer.send("during"))
        time.sleep(max(0.0, opened + seconds - time.monotonic()))
        window.close(mode)
        ended = time.monotonic()
        thread.join(CALL_CAP)
        reconnects = window.connections() - conns
        if call.ended is not None and call.error is None:
            took = _wait_until(lambda: ran("during"), RECOVER_CAP)
            landed = ("never ran (lost)" if took is None
                      else f"ran {time.monotonic() - ended:.2f} s after the window")
        else:
            landed = "ran anyway" if ran("during") else "nowhere (not queued)"
        after = _after_worker(producer, worker, ran, mode, ended)
        return Row(label, mode, seconds, kind, call.outcome(), call.seconds, reconnects, landed, after)
    finally:
        if producer is not None:
            producer.close()
        worker.stop()
        window.reset()


def _after_worker(producer: Producer, worker: Worker, ran: Callable[[str], bool], mode: str, ended: float) -> str:
    call, thread = _call_in_thread(lambda: producer.send("after"))
    thread.join(CALL_CAP)
    if call.error is not None or call.ended is None:
        state = "worker process alive" if worker.alive() else f"worker exited ({worker.proc.returncode})"
        return f"send: {call.outcome()}; {state}"
    took = _wait_until(lambda: ran("after") or not worker.alive(), RECOVER_CAP)
    if took is None or not ran("after"):
        state = "alive" if worker.alive() else f"exited with code {worker.proc.returncode}: {worker.last_error()}"
        return f"a job sent after the window did not run (worker {state})"
    note = " (old source accepted it!)" if mode == "fence" else ""
    return f"a new job runs {time.monotonic() - ended:.2f} s after the window{note}"


# ------------------------------------------------------------------------------------------- driver


def _plan(quick: bool, servers: list[str] | None) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(server, modes, clients) to measure."""
    if quick:
        return [("redis-7.0", MODES, ("redis-py defaults", "celery", "rq"))]
    out: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    for name in servers or ["redis-7.0", "redis-6.2", "redis-3.2"]:
        version = find_binary(name).version_info
        modes = MODES if version >= (6, 2, 0) else ("refuse",)
        out.append((name, modes, CLIENTS))
    return out


def run(*, quick: bool = False, windows: list[float] | None = None, servers: list[str] | None = None,
        long_window: float = 0.0, progress: Callable[[str], None] = print) -> list[Row]:
    """Measure every (server, mode, client) of the plan for each window length; the rows in order."""
    windows = windows or ([1.0] if quick else [8.0])
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="client-behaviour-") as tmp:
        tmpdir = Path(tmp)
        sink_server = LocalRedisServer(find_binary("redis-7.0"), workdir=tmpdir / "sink").start()
        sink = redis.Redis(host="127.0.0.1", port=sink_server.port, protocol=2)
        try:
            for name, modes, clients in _plan(quick, servers):
                server = LocalRedisServer(find_binary(name), workdir=tmpdir / name, config={"save": ""}).start()
                window = Window(server)
                try:
                    for seconds in windows:
                        for mode in modes:
                            for client in clients:
                                progress(f"  {name} {mode} {seconds:g} s {client} …")
                                if client in REDIS_PY:
                                    rows.append(measure_redis_py(server, window, mode, seconds, client))
                                else:
                                    rows.append(measure_worker(server, sink, window, mode, seconds, client, tmpdir))
                    if long_window and name == "redis-7.0":
                        progress(f"  {name} block {long_window:g} s redis-py defaults (the long window) …")
                        rows.append(measure_redis_py(server, window, "block", long_window, "redis-py defaults"))
                finally:
                    window.admin.close()
                    server.stop()
        finally:
            sink.close()
            sink_server.stop()
    return rows


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    head = ("| server | mode | window | client | write during the window gets | call took | reconnects | "
            "landed | after the window |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        took = "-" if r.call_s is None else f"{r.call_s:.2f} s"
        cells = [r.server, r.mode, f"{r.window_s:g} s", r.client, r.result, took, str(r.reconnects), r.landed,
                 r.after]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="7.0 only, 1 s window, redis-py defaults + Celery + RQ")
    ap.add_argument("--window", type=float, nargs="+", help="window lengths in seconds (default 8; quick 1)")
    ap.add_argument("--servers", nargs="+", help="server binaries (default redis-7.0 redis-6.2 redis-3.2)")
    ap.add_argument("--long-window", type=float, default=None,
                    help="also one block window this long for redis-py defaults on 7.0 (default 70; quick: none)")
    ap.add_argument("--json", type=Path, help="also write the rows here as JSON")
    args = ap.parse_args(argv)
    long_window = args.long_window if args.long_window is not None else (0.0 if args.quick else 70.0)
    print(f"# client behaviour in the window — {platform.platform()}, Python {platform.python_version()}, "
          f"redis-py {redis.__version__}", flush=True)
    rows = run(quick=args.quick, windows=args.window, servers=args.servers, long_window=long_window,
               progress=lambda s: print(s, file=sys.stderr, flush=True))
    print(table(rows), flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
