"""The sync transfer against real servers (Redis 7.0, Valkey 8.1) and moto's S3: the RDB read over the
replication protocol lands in S3 byte-valid, loads in a server of the target's line with every key equal
(the project's verify, including its proof that the source did not change after the snapshot record),
in both framings; refusals leave nothing in S3; a cut link aborts the multipart upload; the whole flow.
"""

from __future__ import annotations

import hashlib
import logging
import random
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from elasticache_migrate.aws import aws_client
from elasticache_migrate.errors import QuiesceError, SourceError, SyncUnavailable
from elasticache_migrate.journal import Journal
from elasticache_migrate.source.connection import Endpoint
from elasticache_migrate.source.quiesce import pause, unpause
from elasticache_migrate.staging.sync import sync_and_upload
from elasticache_migrate.testing.localredis import LocalRedisServer
from elasticache_migrate.verify.run import verify_endpoints
from tests.conftest import free_port, make_plan, need
from tests.support.servers import sample_keys as _sample

MiB = 1 << 20


LOG = logging.getLogger("test-replsync")


def _persistence(server: LocalRedisServer) -> dict[str, Any]:
    with server.client() as r:
        return dict(r.info("persistence"))


def _as_migrator(port: int) -> dict[str, Any]:
    """The plan's source section for ACL user ``migrator`` (password in $MIGRATOR_PASSWORD)."""
    return {"kind": "host", "redis": {"host": "127.0.0.1", "port": port, "username": "migrator",
                                      "password_secret": "env:MIGRATOR_PASSWORD"}}


def _nothing_in(s3: Any, bucket: str) -> bool:
    return not s3.list_objects_v2(Bucket=bucket).get("KeyCount") and not s3.list_multipart_uploads(
        Bucket=bucket).get("Uploads")


@pytest.mark.parametrize("binary, config, password, acl, framing, saves", [
    # no save rules: diskless, the delay set to 0 meanwhile
    ("redis-7.0", {"save": ""}, None, None, "diskless", 0),
    # save rules and writes since the last save: the master's own BGSAVE, disk-based
    ("redis-7.0", {}, None, None, "disk", 1),
    # the same without CONFIG for the user: a BGSAVE first, then diskless after the master's own delay (1 s here)
    ("redis-7.0", {"repl-diskless-sync-delay": "1"}, "pw", "-config", "diskless", 1),
    # a disk-based master, AUTH with a password
    ("valkey-8.1", {"repl-diskless-sync": "no"}, "s3cret pass", None, "disk", 1),
])
def test_the_synced_rdb_in_s3_loads_with_every_key_equal(tmp_path: Path, moto_endpoint: str, bucket: str, s3: Any,
                                                         monkeypatch: pytest.MonkeyPatch, binary: str,
                                                         config: dict[str, str], password: str | None,
                                                         acl: str | None, framing: str, saves: int) -> None:
    src = LocalRedisServer(need(binary), workdir=tmp_path / "source", config=config, password=password).start()
    try:
        keys = _sample(src)
        with src.client() as r:
            saves_before = r.info("persistence")["rdb_saves"]
            delay_before = r.config_get("repl-diskless-sync-delay")
            if acl:
                r.execute_command("ACL", "SETUSER", "migrator", "on", f">{password}", "~*", "&*", "+@all", acl)
        redis_conf: dict[str, Any] = {"host": "127.0.0.1", "port": src.port}
        if password:
            monkeypatch.setenv("SOURCE_REDIS_PASSWORD", password)
            redis_conf["password_secret"] = "env:SOURCE_REDIS_PASSWORD"
            redis_conf["username"] = "migrator" if acl else None
        engine, version = binary.split("-")  # the target's line: the sync step's verdict checks the RDB against it
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                         source={"kind": "host", "redis": redis_conf},
                         staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": "sync"},
                         target={"engine": engine, "engine_version": version})
        state = pause(plan)
        try:
            got = sync_and_upload(plan, LOG)
        finally:
            unpause(plan, state)
        assert got is not None
        snapshot, ex, staged = got
        assert ex.origin.endswith(f"{framing})") and ex.checksum_ok is True

        body = s3.get_object(Bucket=bucket, Key=plan.object_key)["Body"].read()
        journaled = Journal(plan.workdir).read().staged
        assert journaled and hashlib.sha256(body).hexdigest() == ex.sha256 == staged.sha256 == journaled.sha256
        assert Path(ex.path).read_bytes() == body  # the local copy, for the structure check and resume

        # what the snapshot record says about the source, and what the transfer left behind
        with src.client() as r:
            after = r.info("persistence")
            assert r.config_get("repl-diskless-sync-delay") == delay_before               # put back
            assert r.config_get("repl-diskless-sync") == {"repl-diskless-sync": config.get("repl-diskless-sync",
                                                                                           "yes")}
        assert after["rdb_saves"] == saves_before + saves
        assert snapshot.rdb_saves == after["rdb_saves"] and snapshot.last_save_time == after["rdb_last_save_time"]
        assert Journal(plan.workdir).read().sync_config is None

        # the object seeds a server of the target's line; verify finds every key equal and the source unchanged
        home = tmp_path / "target"
        home.mkdir()
        (home / "dump.rdb").write_bytes(body)
        with LocalRedisServer(need(binary), workdir=home, config={"save": ""}) as target:
            report = verify_endpoints(plan, Endpoint("127.0.0.1", target.port), snapshot)
        assert report.ok, report.mismatches[:3]
        assert report.keys_checked == keys
    finally:
        src.stop()


@pytest.mark.parametrize("transfer, acl", [
    ("sync", "-acl"),    # ACL DRYRUN not granted either: SYNC's own NOPERM says it (config changed, put back)
    ("sync", ""),        # refused by ACL DRYRUN before anything is done
    ("auto", ""),        # auto: nothing done, the flow takes the staged path (it catches SyncUnavailable)
])
def test_a_user_without_sync_is_told_what_to_grant_and_nothing_reaches_s3(
        tmp_path: Path, moto_endpoint: str, bucket: str, s3: Any, source: LocalRedisServer,
        monkeypatch: pytest.MonkeyPatch, transfer: str, acl: str) -> None:
    _sample(source)
    with source.client() as r:
        r.execute_command("ACL", "SETUSER", "migrator", "on", ">pw", "~*", "&*", "+@all", "-sync", "-psync",
                          *([acl] if acl else []))
    monkeypatch.setenv("MIGRATOR_PASSWORD", "pw")
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=source.port,
                     source=_as_migrator(source.port),
                     staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": transfer})
    if transfer == "auto":
        with pytest.raises(SyncUnavailable):
            sync_and_upload(plan, LOG)
    else:
        with pytest.raises(SourceError) as e:
            sync_and_upload(plan, LOG)
        assert isinstance(e.value, SyncUnavailable)
        assert "'migrator' may not run" in e.value.message or "'sync' command" in e.value.message
        assert "ACL SETUSER migrator +" in e.value.remedy and not e.value.retryable
    assert _nothing_in(s3, bucket)
    with source.client() as r:
        assert r.config_get("repl-diskless-sync*") == {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "5",
                                                       "repl-diskless-sync-max-replicas": "0"}


class _CuttingProxy:
    """A TCP proxy to the source that cuts any connection once ``limit`` bytes went to the client."""

    def __init__(self, port: int, limit: int) -> None:
        self.upstream, self.limit = port, limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.limit), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := a.recv(65536):
                b.sendall(data)
                sent += len(data)
                if limit is not None and sent > limit:
                    self.cut.set()
                    break
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("save, framing", [("", "diskless"), ("3600 1", "disk")])
def test_a_link_cut_mid_transfer_aborts_the_multipart_upload(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                            s3: Any, monkeypatch: pytest.MonkeyPatch, redis70: Any,
                                                            save: str, framing: str) -> None:
    source = LocalRedisServer(redis70, workdir=tmp_path / "source", config={"save": save}).start()
    with source.client() as r:
        for i in range(24):
            r.set(f"blob:{i}", random.Random(i).randbytes(MiB))  # LZF cannot shrink them: a 24 MiB RDB
    proxy = _CuttingProxy(source.port, limit=12 * MiB)  # after the first 8 MiB part went to S3
    created: list[str] = []
    import elasticache_migrate.staging.sink as sink

    def counting_client(plan: Any, service: str) -> Any:
        c = sink_aws_client(plan, service)
        c.meta.events.register("after-call.s3.CreateMultipartUpload", lambda **kw: created.append("x"))
        return c

    sink_aws_client = aws_client
    monkeypatch.setattr(sink, "aws_client", counting_client)
    plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=proxy.port,
                     staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": "sync"})
    try:
        with pytest.raises(SourceError, match=rf"(closed the connection|connection failed) after [\d,]+ (of [\d,]+ )?"
                           rf"bytes of the {framing} RDB transfer") as e:
            sync_and_upload(plan, LOG)
    finally:
        proxy.close()
        source.stop()
    assert e.value.retryable and proxy.cut.is_set() and created == ["x"]
    assert _nothing_in(s3, bucket)  # the multipart upload that had a part was aborted
    assert not (plan.workdir / "dump.rdb").exists() and not (plan.workdir / "dump.rdb.part").exists()
    assert Journal(plan.workdir).read().staged is None


def test_a_source_restarted_since_the_pause_is_not_snapshotted(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                                s3: Any, redis70: Any) -> None:
    """A retry after a cut link must not snapshot a source whose pause died with its process."""
    src = LocalRedisServer(redis70, port=free_port(), workdir=tmp_path / "source", config={"save": ""}).start()
    try:
        _sample(src)
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                         staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": "sync"})
        pause(plan)
        assert sync_and_upload(plan, LOG) is not None   # the first attempt notes the process it snapshots
        s3.delete_object(Bucket=bucket, Key=plan.object_key)
        src.stop()
        src.start()                                    # same port, a new process: writes are no longer paused
        with pytest.raises(QuiesceError, match="restarted after its writes were paused") as e:
            sync_and_upload(plan, LOG)
        assert "run the migration again" in e.value.remedy and not e.value.retryable
        assert _nothing_in(s3, bucket)
    finally:
        src.stop()


@pytest.mark.parametrize("binary, transfer, acl, severity, seen, todo", [
    ("redis-7.0", "auto", "+sync", "info", "read over SYNC and uploaded as redis 7.0.15 writes it", ""),
    ("redis-7.0", "auto", "-sync", "warn", "auto will fall back to BGSAVE", "ACL SETUSER migrator +replconf +sync"),
    ("redis-7.0", "sync", "-sync", "block", "cannot be read over SYNC", "ACL SETUSER migrator +replconf +sync"),
    ("redis-6.2", "auto", "+sync", "info", "older than 7.0: auto takes the snapshot with BGSAVE", ""),
    ("redis-6.2", "sync", "+sync", "block", "needs a source >= 7.0", "staging.transfer: auto"),
])
def test_preflight_says_what_the_sync_transfer_will_do(tmp_path: Path, moto_endpoint: str, bucket: str,
                                                       monkeypatch: pytest.MonkeyPatch, binary: str, transfer: str,
                                                       acl: str, severity: str, seen: str, todo: str) -> None:
    from elasticache_migrate.preflight.checks import run_checks

    with LocalRedisServer(need(binary), workdir=tmp_path / "source") as src, src.client() as r:
        r.execute_command("ACL", "SETUSER", "migrator", "on", ">pw", "~*", "&*", "+@all", acl, "-psync")
        monkeypatch.setenv("MIGRATOR_PASSWORD", "pw")
        plan = make_plan(tmp_path=tmp_path, moto_endpoint=moto_endpoint, bucket=bucket, source_port=src.port,
                         source=_as_migrator(src.port),
                         staging={"bucket": bucket, "workdir": str(tmp_path / "work"), "transfer": transfer})
        findings = [f for f in run_checks(plan) if f.check == "sync"]
    assert any(f.severity == severity and seen in f.seen and todo in f.todo for f in findings), findings
    if binary == "redis-7.0" and acl == "+sync":  # the default diskless delay, and what is done about it
        assert any("repl-diskless-sync-delay 5s is set to 0" in f.seen for f in findings), findings


