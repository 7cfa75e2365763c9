"""Faults injected for real, each ending in a state a user can check (issue "Nothing lost", parts 3–5).

Nothing is simulated inside the code under test: the flow's own process is SIGKILLed, an HTTP proxy of
our own sits between the flow and moto's S3 and holds or fails requests, the source redis-server is
restarted, a real dockerd is restarted. ElastiCache throttling is the one fault played by
``botocore.stub.Stubber`` (moto never throttles); the Stubber checks every request against the real
ElastiCache API model and every canned reply against its output shape.

The end state asserted is always one of the two a user may see: a verified cutover (config switched, the
target holds the data, nothing done twice), or a clean rollback (config untouched or restored, the source
accepting writes with all its data).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml

from elasticache_migrate.cutover.dotenv import get_value
from elasticache_migrate.errors import VerificationError
from elasticache_migrate.journal import Journal
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_client
from elasticache_migrate.targets.rehearsal import stop_rehearsal_target
from elasticache_migrate.testing.docker_engine import run_redis_container
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.testing.sample_data import load_sample
from flows.migrate import migrate_redis
from tasks.approval import resume_run
from tests.conftest import REGION, free_port, make_plan
from tests.support.outcomes import journaled_copy, migrated, rehearsal_target
from tests.support.prefect_server import settled_task_runs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------- the S3 proxy

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your '
            b'request rate.</Message><RequestId>FAULT0000000000</RequestId><HostId>fault-proxy</HostId></Error>')
_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length", "proxy-connection", "te",
        "upgrade", "trailer"}


@dataclass
class Seen:
    """One request the proxy received, and what it did with it."""

    method: str
    path: str            # path and query, as sent
    status: int          # what the client got (0: none, the request was held)
    injected: bool       # True: answered by the proxy (503 or held), never reached moto


class S3FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of moto; the plan's ``aws.endpoint_url`` points at it.

    Modes, armed per test: pass everything; hold the first request carrying the staged object's data
    (PutObject, or the first UploadPart) until released, then drop it unanswered and unforwarded (its client
    is dead by then); or answer ``n`` requests with S3's ``503 SlowDown``, from the upload's first request
    (PutObject, CreateMultipartUpload or UploadPart) on. ``seen`` logs every request and its outcome.
    """

    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.seen: list[Seen] = []
        self.upload_started = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._key: str | None = None
        self._mode = "pass"
        self._fail_left = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for botocore's Expect header

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def hold_upload(self, key: str) -> None:
        with self._lock:
            self._mode, self._key = "hold", key

    def fail_after_upload_starts(self, key: str, n: int) -> None:
        with self._lock:
            self._mode, self._key, self._fail_left = "fail", key, n

    def pass_all(self) -> None:
        with self._lock:
            self._mode = "pass"
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def object_puts(self, key: str, since: int = 0) -> list[Seen]:
        """Requests carrying the object's data (PutObject or UploadPart) seen from index ``since`` on."""
        return [s for s in self.seen[since:] if self._carries_data(s.method, s.path, key)]

    @staticmethod
    def _carries_data(method: str, path: str, key: str) -> bool:
        p = urlsplit(path)
        return method == "PUT" and p.path.endswith("/" + key) and (not p.query or "partNumber=" in p.query)

    @classmethod
    def _starts_upload(cls, method: str, path: str, key: str) -> bool:
        """PutObject, CreateMultipartUpload or an UploadPart of the object."""
        p = urlsplit(path)
        return cls._carries_data(method, path, key) or (
            method == "POST" and p.path.endswith("/" + key) and p.query.startswith("uploads"))

    def _decide(self, method: str, path: str) -> str:
        with self._lock:
            key = self._key
            if key is None:
                return "pass"
            if self._mode == "hold" and self._carries_data(method, path, key):
                self._mode = "pass-after-hold"
                self.upload_started.set()
                return "hold"
            if self._mode == "fail":
                if self._starts_upload(method, path, key):
                    self.upload_started.set()
                if self.upload_started.is_set() and self._fail_left > 0:
                    self._fail_left -= 1
                    return "fail"
            return "pass"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = _read_body(h)
        verdict = self._decide(h.command, h.path)
        if verdict == "hold":
            self.seen.append(Seen(h.command, h.path, 0, True))
            self._release.wait(300)
            h.close_connection = True  # never answered, never forwarded: the upload did not happen
            return
        if verdict == "fail":
            self.seen.append(Seen(h.command, h.path, 503, True))
            h.send_response(503, "Slow Down")
            h.send_header("Content-Type", "application/xml")
            h.send_header("x-amz-request-id", "FAULT0000000000")
            h.send_header("Content-Length", "0" if h.command == "HEAD" else str(len(SLOWDOWN)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(SLOWDOWN)
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in h.headers.items():
                if k.lower() not in _HOP:
                    conn.putheader(k, v)
            if body or h.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            self.seen.append(Seen(h.command, h.path, resp.status, False))
            h.send_response_only(resp.status, resp.reason)
            length = str(len(data))
            for k, v in resp.getheaders():
                if k.lower() == "content-length" and h.command == "HEAD":
                    length = v  # a HEAD tells the object's size, with no body
                elif k.lower() not in _HOP:
                    h.send_header(k, v)
            h.send_header("Content-Length", length)
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
        finally:
            conn.close()


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(h.rfile.read(size))
            h.rfile.readline()
    n = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(n) if n else b""


@pytest.fixture
def s3_proxy(moto_endpoint: str) -> Iterator[S3FaultProxy]:
    proxy = S3FaultProxy(moto_endpoint)
    yield proxy
    proxy.close()


# ---------------------------------------------------------------------------------- helpers

def _persistence(port: int) -> dict[str, Any]:
    """INFO persistence of a server, on a connection closed at once (quiesce waits for app clients to leave)."""
    r = redis_client("127.0.0.1", port, timeout=5)
    try:
        return dict(r.info("persistence"))
    finally:
        r.close()


def _writable(port: int) -> bool:
    """Whether the server takes a write now: one try, a paused server times out in 1 s (no redis-py retries)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    r = redis.Redis(port=port, protocol=2, socket_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        return bool(r.set("probe:writable", "1"))
    except redis.RedisError:
        return False
    finally:
        r.close()


def _redis_url(env_file: Path) -> str | None:
    return get_value(env_file.read_text(), "REDIS_URL")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rehearsal_pids(plan: MigrationPlan) -> list[int]:
    """Live server processes of this migration's rehearsal target: those running in its directory (the
    server rewrites its command line, so the working directory is what tells them apart)."""
    home = (plan.workdir / "rehearsal-target").resolve()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "cwd")) == home and "redis" in (entry / "comm").read_text():
                    pids.append(int(entry.name))
    return pids


def _start_flow_process(plan: MigrationPlan, tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    """``python -m flows.migrate plan.yaml`` in its own process, reporting to the test's Prefect server."""
    from prefect.settings import PREFECT_API_URL

    plan_file = tmp_path / f"{name}.yaml"
    plan_file.write_text(yaml.safe_dump(plan.model_dump(mode="json"), sort_keys=False))
    log = tmp_path / f"{name}.log"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(REPO),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": REGION}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows.migrate", str(plan_file)], cwd=REPO, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def _wait_for(what: str, cond: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None = None,
              log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the flow process exited ({proc.returncode}) before {what}:\n"
                        + (log.read_text()[-4000:] if log else ""))
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f}s" + (f":\n{log.read_text()[-4000:]}" if log else ""))
        time.sleep(0.05)


def _runs_of(migration_id: str, state: str | None = None) -> list[Any]:
    """This migration's flow runs on the Prefect server (optionally only those in ``state``: PAUSED, RUNNING…)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    flt = (FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(state)])))
           if state else None)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=flt, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=200)
    return [r for r in runs if (r.parameters.get("plan") or {}).get("migration_id") == migration_id]


def _paused_run(migration_id: str, exclude: frozenset[Any] = frozenset(), timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in _runs_of(migration_id, "PAUSED") if r.id not in exclude]
        if runs:
            return runs[0].id
        time.sleep(0.3)
    raise TimeoutError(f"no paused run of {migration_id} within {timeout}s")


class _Approver(threading.Thread):
    """Approves this migration's next pause (not the orphaned one of a killed process) from another thread."""

    def __init__(self, migration_id: str, exclude: frozenset[Any]) -> None:
        super().__init__(daemon=True)
        self.migration_id, self.exclude = migration_id, exclude
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            resume_run(_paused_run(self.migration_id, self.exclude), "approve", "alice", "after the crash")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def _force_state(run_id: Any, state: Any) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, state, force=True)


def _load_sample(server: LocalRedisServer) -> dict[int, int]:
    """The sample dataset (sessions, queues, caches… in db0 and db1), written by a client that then leaves."""
    r, r1 = server.client(), server.client(db=1)
    try:
        return load_sample(r, db1=r1).keys
    finally:
        r.close()
        r1.close()


# ---------------------------------------------------------------------------------- 1. kill during upload

def _object_sha256(s3: Any, bucket: str, key: str) -> str | None:
    """The SHA-256 the object carries: metadata (staged upload) or tag (streaming upload, known only at the end)."""
    from elasticache_migrate.staging.s3 import sha_tag

    meta = s3.head_object(Bucket=bucket, Key=key).get("Metadata") or {}
    return meta.get("sha256") or sha_tag(s3, bucket, key)


@pytest.mark.parametrize("transfer", ["staged", "stream", "sync"])
def test_process_killed_during_upload_resumes_to_a_verified_cutover(
        tmp_path: Path, bucket: str, s3: Any, s3_proxy: S3FaultProxy, source: LocalRedisServer,
        app_env: Path, transfer: str) -> None:
    """The flow's process is SIGKILLed while the object's upload (PutObject / first UploadPart) is in flight;
    the re-run (same migration id) ends in a verified cutover: the object uploaded once, from the extracted
    file; one rehearsal target; the config switched.

    staged: extract had finished and journaled the local copy, so with the source unchanged the re-run reuses
    it: no second BGSAVE (rdb_saves unchanged). stream: the local copy is journaled only once the whole pass
    (upload included) has finished, so a kill mid-upload leaves no reusable copy and the re-run snapshots
    again (exactly one more BGSAVE). Nothing can be lost by that either: the source stayed paused since the
    first quiesce, the new snapshot postdates the re-run's quiesce, and verify compares against it. sync: as
    stream, and the snapshot record itself is journaled with the copy and the object, at the end. The killed
    run's SYNC was disk-based (save rules and writes since the last save: the master's own BGSAVE); that save
    left no change behind, so the re-run snapshots again diskless: no further save.
    """
    keys = _load_sample(source)
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=s3_proxy.url, bucket=bucket, source_port=source.port,
                     staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": transfer},
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    s3_proxy.hold_upload(plan.object_key)
    proc, log = _start_flow_process(plan, tmp_path, "killed-in-upload")
    killed_run = None
    try:
        _wait_for("the object's upload at the proxy", s3_proxy.upload_started.is_set, 120, proc, log)
        proc.send_signal(signal.SIGKILL)   # mid-upload: no except/finally of the flow runs, nothing is rolled back
        proc.wait(10)
        killed_run = (_runs_of(plan.migration_id, "RUNNING") or [None])[0]
        s3_proxy.pass_all()                # the held request is dropped unanswered; everything else passes now

        journal = Journal(plan.workdir).read()
        assert (journal.snapshot is not None) is (transfer != "sync") and journal.staged is None, journal
        assert (journal.extracted is not None) is (transfer == "staged")
        assert not s3.list_objects_v2(Bucket=bucket).get("Contents")   # nothing visible in S3
        saves_before = _persistence(source.port)["rdb_saves"]
        seen_before = len(s3_proxy.seen)

        state = migrate_redis(plan, return_state=True)   # the operator re-runs the same migration
        assert state.is_completed(), state.message
        result = migrated(state.result())

        extracted = journaled_copy(plan)
        assert _sha256(Path(extracted.path)) == extracted.sha256 == result.rdb.sha256
        assert _object_sha256(s3, bucket, plan.object_key) == extracted.sha256
        assert len(s3_proxy.object_puts(plan.object_key, since=seen_before)) == 1   # the data sent once (1 part)
        target = rehearsal_target(plan)
        assert _rehearsal_pids(plan) == [target.pid]                     # exactly one rehearsal target
        assert _redis_url(app_env) == f"redis://127.0.0.1:{target.port}/0"
        assert result.keys_verified == sum(keys.values())
        new_snapshots = _persistence(source.port)["rdb_saves"] - saves_before
        assert new_snapshots == {"staged": 0, "stream": 1, "sync": 0}[transfer], new_snapshots
        assert extracted.origin.endswith("diskless)") is (transfer == "sync")   # sync: snapshotted again
    finally:
        if proc.poll() is None:
            proc.kill()
        if killed_run is not None:  # hygiene: a killed process never reports; the server would show it Running
            from prefect.states import Crashed

            _force_state(killed_run.id, Crashed(message="the flow's process was killed (fault test)"))
        stop_rehearsal_target(plan.workdir)


# ---------------------------------------------------------------------------------- 2. kill while paused

def test_process_killed_while_paused_for_approval_adopts_everything(
        tmp_path: Path, bucket: str, s3_proxy: S3FaultProxy, source: LocalRedisServer, app_env: Path) -> None:
    """The flow's process is SIGKILLed while it waits for approval. The re-run takes no second snapshot,
    uploads nothing, ADOPTS the rehearsal target the dead process started (same pid), and after approval
    writes the config once; running the same migration yet again leaves the file alone."""
    _load_sample(source)
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=s3_proxy.url, bucket=bucket, source_port=source.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)},
                     approval={"enabled": True, "timeout_seconds": 120})
    before = app_env.read_bytes()
    proc, log = _start_flow_process(plan, tmp_path, "killed-while-paused")
    orphan = None
    try:
        orphan = _paused_run(plan.migration_id, timeout=120)
        target_before = rehearsal_target(plan)
        assert len(s3_proxy.object_puts(plan.object_key)) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert app_env.read_bytes() == before               # nothing switched before approval
        saves_before = _persistence(source.port)["rdb_saves"]
        seen_before = len(s3_proxy.seen)

        decider = _Approver(plan.migration_id, exclude=frozenset({orphan}))
        state = migrate_redis(plan, return_state=True)
        decider.join(10)
        assert decider.error is None and state.is_completed(), decider.error or state.message
        result = migrated(state.result())

        assert _persistence(source.port)["rdb_saves"] == saves_before               # no second snapshot
        assert s3_proxy.object_puts(plan.object_key, since=seen_before) == []       # no second upload
        target = rehearsal_target(plan)
        assert target.pid == target_before.pid and _rehearsal_pids(plan) == [target.pid]  # adopted
        url = f"redis://127.0.0.1:{target.port}/0"
        assert _redis_url(app_env) == url and result.config_changed is True
        written = app_env.stat()

        decider = _Approver(plan.migration_id, exclude=frozenset({orphan, state.state_details.flow_run_id}))
        again = migrate_redis(plan, return_state=True)        # the same migration once more, after success
        decider.join(10)
        assert decider.error is None and again.is_completed(), decider.error or again.message
        assert migrated(again.result()).config_changed is False
        after = app_env.stat()
        assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)  # not written again
        assert _redis_url(app_env) == url
        assert [r.id for r in _runs_of(plan.migration_id, "PAUSED")] == [orphan]
    finally:
        if proc.poll() is None:
            proc.kill()
        if orphan is not None and any(r.id == orphan for r in _runs_of(plan.migration_id, "PAUSED")):
            # The killed process's run stays Paused on the server for ever: nothing will resume it (its process
            # is gone; resuming it would only mark it Running). A user cancels it in the UI (or
            # `prefect flow-run cancel <id>`) once the re-run has finished; the re-run took over its work.
            from prefect.states import Cancelled

            _force_state(orphan, Cancelled(message="orphaned by a killed process; the re-run completed the "
                                                   "migration"))
        stop_rehearsal_target(plan.workdir)


# ---------------------------------------------------------------------------------- 3. S3 SlowDown

@pytest.mark.parametrize("transfer", ["staged", "stream"])
def test_s3_slowdown_during_upload_is_retried_until_the_run_completes(
        tmp_path: Path, bucket: str, s3: Any, s3_proxy: S3FaultProxy, source: LocalRedisServer,
        app_env: Path, transfer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 answers 503 SlowDown (S3's XML error body) to the first 7 requests once the upload starts.

    The upload's first request (CreateMultipartUpload: every path uploads through the one multipart sink) is
    refused 6 times: botocore's standard mode with ``max_attempts: 5`` (retries, so 6 attempts) gives up, the task
    fails with a retryable TransferError and Prefect runs it again 2 s later; there the 7th refusal meets
    botocore's retry once more. The run completes and every refused request was sent again.

    botocore's backoff for throttling (up to 1, 2, 4, 8, 16 s, jittered) is scaled down 20x here to keep
    the test short; which errors it retries and how often are untouched.
    """
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale", 0.05)
    _load_sample(source)
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=s3_proxy.url, bucket=bucket, source_port=source.port,
                     staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": transfer},
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    injected = 7
    s3_proxy.fail_after_upload_starts(plan.object_key, injected)
    step = {"staged": "upload", "stream": "extract-upload"}[transfer]
    try:
        state = migrate_redis(plan, return_state=True)
        assert state.is_completed(), state.message
        failures = [(i, s) for i, s in enumerate(s3_proxy.seen) if s.injected]
        assert len(failures) == injected and all(s.status == 503 for _, s in failures)
        not_retried = [s for i, s in failures
                       if not any((t.method, t.path) == (s.method, s.path) for t in s3_proxy.seen[i + 1:])]
        assert not not_retried, f"refused and never sent again: {not_retried}"
        first = failures[0][1]
        assert [(s.method, s.path) for _, s in failures[:6]] == [(first.method, first.path)] * 6  # botocore's 6
        runs = settled_task_runs(state.state_details.flow_run_id)
        assert {t.name.rsplit("-", 1)[0]: t.run_count for t in runs}[step] == 2     # Prefect: one more run
        assert _object_sha256(s3, bucket, plan.object_key) == journaled_copy(plan).sha256
        assert _redis_url(app_env) == f"redis://127.0.0.1:{rehearsal_target(plan).port}/0"
    finally:
        stop_rehearsal_target(plan.workdir)


# ---------------------------------------------------------------------------------- 4. ElastiCache throttling

def test_elasticache_throttling_on_create_and_describe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ThrottlingException once on describe and once on create, then success: the create task ends with the
    group created exactly once. botocore's own retries never run under a Stubber (it answers in
    ``before-call``, before the HTTP layer that retries), so each throttle reaches the task and Prefect's
    retry policy (retry_only_io: ThrottlingException is retryable) runs it again. Then wait-available meets a
    throttled describe between creating and available and keeps polling.

    The Stubber validates each request against the real ElastiCache API model (param validation runs
    before ``before-call``) and each canned reply against the operation's output shape. The task's retry
    delays (2, 10, 30 s) are shortened here with ``with_options``; the retry count and condition are the
    task's own.
    """
    from botocore.stub import Stubber
    from prefect import flow

    import elasticache_migrate.targets.elasticache as ec_module
    from elasticache_migrate.aws import aws_client
    from elasticache_migrate.state import StagedObject
    from elasticache_migrate.targets.elasticache import build_replication_group_request
    from tasks.create import create
    from tasks.wait_available import wait_available

    gid = "app-cache-throttled"
    plan = make_plan(tmp_path=tmp_path, moto_endpoint="http://127.0.0.1:9", bucket="staging-bucket",
                     source_port=6379, target={"kind": "elasticache", "replication_group_id": gid,
                                               "engine": "redis", "engine_version": "7.1", "replicas": 1,
                                               "wait_delay_seconds": 1, "wait_max_attempts": 10})
    obj = StagedObject(bucket="staging-bucket", key=plan.object_key, size=1234, sha256="a" * 64, etag="e",
                       rdb_version=10, magic="REDIS", uploaded=True)
    client = aws_client(plan, "elasticache")   # the real client: standard mode, max_attempts 5 = 6 attempts
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    stub = Stubber(client)
    arn = f"arn:aws:elasticache:{REGION}:123456789012:replicationgroup:{gid}"
    ask = {"ReplicationGroupId": gid}
    req = build_replication_group_request(plan, obj.arn, obj.sha256)

    def group(status: str) -> dict[str, Any]:
        return {"ReplicationGroups": [{"ReplicationGroupId": gid, "Status": status, "ARN": arn, "NodeGroups": [
            {"NodeGroupId": "0001", "Status": status,
             "PrimaryEndpoint": {"Address": f"{gid}.abc123.ng.0001.use1.cache.amazonaws.com", "Port": 6379}}]}]}

    throttle = {"service_error_code": "ThrottlingException", "service_message": "Rate exceeded",
                "http_status_code": 400}
    # create, attempt 1: describe throttled. attempt 2: not found, create throttled. attempt 3: created.
    stub.add_client_error("describe_replication_groups", expected_params=ask, **throttle)
    stub.add_client_error("describe_replication_groups", "ReplicationGroupNotFoundFault", "not found", 404,
                          expected_params=ask)
    stub.add_client_error("create_replication_group", expected_params=req, **throttle)
    stub.add_client_error("describe_replication_groups", "ReplicationGroupNotFoundFault", "not found", 404,
                          expected_params=ask)
    stub.add_response("create_replication_group",
                      {"ReplicationGroup": {"ReplicationGroupId": gid, "Status": "creating", "ARN": arn}},
                      expected_params=req)
    # wait-available: creating, throttled, modifying (the seed), available; then the endpoint is read.
    stub.add_response("describe_replication_groups", group("creating"), ask)
    stub.add_client_error("describe_replication_groups", expected_params=ask, **throttle)
    stub.add_response("describe_replication_groups", group("modifying"), ask)
    stub.add_response("describe_replication_groups", group("available"), ask)
    stub.add_response("describe_replication_groups", group("available"), ask)

    calls: list[str] = []
    client.meta.events.register("after-call.elasticache.CreateReplicationGroup",
                                lambda parsed, **_: calls.append(parsed.get("Error", {}).get("Code", "created")))
    monkeypatch.setattr(ec_module, "aws_client", lambda _plan, _service: client)

    @flow(name="faults-elasticache-throttled")
    def provision() -> tuple[Any, Any]:
        made = create.with_options(retry_delay_seconds=0.2)(plan, obj, return_state=True)
        ready = wait_available(plan, made.result(), return_state=True)
        return made, ready

    with stub:
        made, ready = provision()
        stub.assert_no_pending_responses()
    handle, endpoint = made.result(), ready.result()
    assert calls == ["ThrottlingException", "created"]          # created exactly once
    assert handle.id == gid and handle.adopted is False
    assert endpoint.host.startswith(gid) and endpoint.port == 6379
    assert _task_run_count(made) == 3                              # two throttles, two Prefect retries
    assert _task_run_count(ready) == 1                             # the throttled poll did not fail the task


def _task_run_count(state: Any) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return int(client.read_task_run(state.state_details.task_run_id).run_count)


# ---------------------------------------------------------------------------------- 5. source restart

def test_source_restarted_during_verify_rolls_back_then_a_rerun_completes(
        tmp_path: Path, moto_endpoint: str, bucket: str, redis70: Any, app_env: Path) -> None:
    """The source redis-server is restarted while verify reads it. Its write pause died with the process and
    the restart shows as a new LASTSAVE/rdb_saves, so the tool can no longer prove no write reached the
    source after the snapshot: verify fails and the run rolls back (config untouched, the source serving all
    its keys). The app writes again; the next run of the same migration takes a new snapshot, replaces the
    rehearsal target seeded from the old one, and completes with the app's new write on the target.

    200,000 small keys, so that verify reads the source for over a second; the restart comes when a
    connection named ``elasticache-migrate:<id>`` is seen running verify's reads (CLIENT LIST ``cmd``)."""
    n = 200_000
    src = LocalRedisServer(redis70, port=free_port(), workdir=tmp_path / "source").start()
    r = src.client()
    for start in range(0, n, 20_000):
        p = r.pipeline(transaction=False)
        for i in range(start, start + 20_000):
            p.set(f"user:{i}", i)
        p.execute()
    r.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    before = app_env.read_bytes()
    restarted: list[str] = []

    def restart_during_verify() -> None:
        watcher = redis.Redis(port=src.port, protocol=2, socket_timeout=5)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                if Journal(plan.workdir).read().rehearsal:    # past create: the reads now are verify's
                    for c in watcher.client_list():
                        if (str(c.get("name", "")).startswith("elasticache-migrate:")
                                and c.get("cmd") in {"scan", "type", "get", "mget", "pttl"}):
                            watcher.close()
                            src.stop()
                            src.start()
                            restarted.append(c["cmd"])
                            return
                time.sleep(0.01)
        finally:
            watcher.close()

    watcher = threading.Thread(target=restart_during_verify, daemon=True)
    try:
        watcher.start()
        state = migrate_redis(plan, return_state=True)
        watcher.join(30)
        assert restarted, "verify was never seen reading the source"
        assert state.is_failed()
        with pytest.raises(VerificationError, match="the source changed after the snapshot"):
            state.result()
        assert app_env.read_bytes() == before                 # config untouched
        assert _writable(src.port)                            # unpaused (the pause died with the old process)
        r = src.client()
        assert r.dbsize() == n + 1 and r.get("user:123") == b"123"   # every key, plus the probe write
        r.set("app:after-rollback", "written while the app ran on the source again")
        r.close()
        saves = _persistence(src.port)
        first_target = rehearsal_target(plan)      # kept for inspection by the rollback

        again = migrate_redis(plan, return_state=True)
        assert again.is_completed(), again.message
        result = migrated(again.result())
        assert _persistence(src.port)["rdb_saves"] == saves["rdb_saves"] + 1   # a new snapshot
        second_target = rehearsal_target(plan)
        assert second_target.pid != first_target.pid      # the stale target was replaced, not adopted
        assert _rehearsal_pids(plan) == [second_target.pid]
        target = redis_client("127.0.0.1", second_target.port)
        assert target.get("app:after-rollback") is not None and target.dbsize() == n + 2
        assert result.keys_verified == n + 2
        assert _redis_url(app_env) == result.endpoint.url() + "/0"
    finally:
        watcher.join(30)
        stop_rehearsal_target(plan.workdir)
        src.stop()


# ---------------------------------------------------------------------------------- 6. dockerd restart

@pytest.mark.docker
def test_docker_engine_restarted_during_extract_rolls_back(
        tmp_path: Path, moto_endpoint: str, bucket: str, docker_engine: Any, redis_image: str,
        app_env: Path) -> None:
    """The Docker engine is restarted while extract reads the RDB through its archive stream.

    What the code does (and this asserts): dockerd's shutdown first drains the API requests in flight, so
    the archive stream is read to its end and the extract (streamed to the local copy and S3 at once)
    finishes with the whole snapshot, CRC-64 intact. Only then does dockerd stop the container: Redis saves
    and exits, and its write pause dies with it; the restarted engine starts the container again (restart
    policy unless-stopped) from that save. When verify asks the source it is a new process, with a new
    LASTSAVE and rdb_saves 0: the tool can no longer prove that no write reached the source after the
    snapshot, so the run rolls back. It never resumes to a cutover: the snapshot was fine, but the pause
    that made it the source's final state is gone. End state: run Failed with VerificationError (source
    changed), config untouched, the source (restarted by its policy) serving all its keys, accepting writes.
    """
    client = docker_engine.client()
    port = free_port()
    container = run_redis_container(client, redis_image, name=f"faults-src-{port}", port=port)
    container.update(restart_policy={"Name": "unless-stopped"})   # what an operator's container has
    r = redis_client("127.0.0.1", port)
    values = 1500
    for start in range(0, values, 100):   # ~150 MB of incompressible values (RDB's LZF gains nothing)
        p = r.pipeline(transaction=False)
        for i in range(start, start + 100):
            p.set(f"blob:{i}", os.urandom(100_000))
        p.execute()
    r.close()
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=port,
                     source={"kind": "docker", "container": container.name, "docker_host": docker_engine.base_url,
                             "redis": {"host": "127.0.0.1", "port": port}},
                     staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": "staged"},  # extract
                     cutover={"backend": "dotenv", "dotenv_path": str(app_env)})
    before = app_env.read_bytes()
    part = plan.workdir / "dump.rdb.part"
    old_pid = docker_engine.pid
    try:
        # The flow runs in a worker thread; the main thread (which started dockerd, whose parent-death signal
        # is tied to it) restarts the engine.
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(migrate_redis, plan, return_state=True)
            _wait_for("extract streaming (dump.rdb.part growing)",
                      lambda: running.done() or (part.exists() and part.stat().st_size > 0), 120)
            assert not running.done(), running.result()
            streamed_at_restart = part.stat().st_size
            docker_engine.restart()
            state = running.result(timeout=300)
        assert docker_engine.pid != old_pid
        assert 0 < streamed_at_restart < 140_000_000   # the restart began while the stream was being read
        extracted = journaled_copy(plan)
        # the drained stream gave the whole, intact file
        assert extracted and extracted.size > 150_000_000 and extracted.crc64_stored == extracted.crc64_computed
        assert state.is_failed()
        with pytest.raises(VerificationError, match="the source changed after the snapshot"):
            state.result()
        assert app_env.read_bytes() == before
        container.reload()
        assert container.status == "running"
        r = redis_client("127.0.0.1", port)
        _wait_for("source loaded", lambda: int(r.info("persistence").get("loading", 0)) == 0, 60)
        assert r.dbsize() == values and len(r.get("blob:7") or b"") == 100_000
        assert _writable(port)
        r.close()
    finally:
        stop_rehearsal_target(plan.workdir)
        container.remove(force=True)
        client.close()
