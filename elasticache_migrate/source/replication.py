"""The RDB straight from the source's replication protocol, as ``redis-cli --rdb`` reads it: the snapshot is
uploaded while the source is still writing it (the ``sync`` transfer, :func:`tasks.transfer.sync_and_upload`).

::

    → AUTH (when a password is set), CLIENT SETNAME, REPLCONF capa eof, REPLCONF rdb-only 1      +OK each
    → SYNC
    ← "\\n" keepalives while the master gets ready, then either
        $<length>\\r\\n<payload>                    disk-based: the master's BGSAVE, sent once it is written
        $EOF:<40-byte mark>\\r\\n<payload><mark>    diskless: the fork writes the RDB to us as it goes
      and the master closes the link (rdb-only: no command stream follows; Redis/Valkey >= 7.0)

The framing (:class:`SyncReply`, :class:`HandshakeReplies`) is pure and tested without a server;
:class:`ReplicationStream` is the socket around it. Measured on Redis 7.0.15 and Valkey 8.1.8, which shaped the
rest (tests/functional/test_replsync.py keeps these true):

- ``repl-diskless-sync-delay`` (default 5 s) is waited in full before the fork even when we are the only
  replica: 4.8 s of a 50 MB transfer's 5.2 s. With the delay at 0 the master forks at SYNC (first byte after
  0.02 s); ``repl-diskless-sync-max-replicas 1`` instead waits for the next replication cron tick (about 1 s,
  so it is left alone). The delay is set to 0 for the transfer, its value journaled first, and put back as soon
  as the payload starts (the fork has happened); a run killed in between has it restored by the re-run
  (:func:`restore_sync_config`, called on resume). Without CONFIG (renamed, or not granted) the delay is waited.
- The master writes 16 KiB at a time; reading each as it comes costs ~65,000 reads per GiB and their Python
  overhead downstream, so during the payload the socket wakes us for 128 KiB at least (``SO_RCVLOWAT``), or
  after 0.5 s for whatever is there: a third of this process's CPU at 300 MB.
- A diskless transfer leaves LASTSAVE, ``rdb_saves`` and ``rdb_changes_since_last_save`` as they were; a
  disk-based one is a BGSAVE like bgsave-wait's. verify proves no write followed the snapshot with exactly those
  counters, and ``save`` rules keep firing while writes are paused: after a diskless snapshot of a source with
  changes since its last save, the next automatic save would reset the counter and move LASTSAVE, and verify
  would fail the run. So in that case the master is asked for a disk-based transfer (``repl-diskless-sync no``
  until it answers), a BGSAVE streamed once written: slower, still no extract (:func:`sync_strategy`).
- Only sources >= 7.0 are offered this path: ``REPLCONF rdb-only`` (3.x answers "Unrecognized REPLCONF option")
  makes the master close the link after the payload instead of turning us into a replica; and before 6.2
  quiesce pauses writes with ``min-replicas-to-write``, which a replica connection could satisfy.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import hiredis

from elasticache_migrate.errors import MigrationError, SnapshotError, SourceError
from elasticache_migrate.journal import Journal
from elasticache_migrate.state import QuiesceState, ServerInfo, Snapshot, SyncSource, info_int

__all__ = [
    "CHUNK",
    "EOF_MARK_LEN",
    "SYNC_MIN_VERSION",
    "HandshakeReplies",
    "SyncReply",
    "SyncStrategy",
    "ReplicationStream",
    "encode_command",
    "handshake_commands",
    "refusal",
    "transfer_mode",
    "sync_strategy",
    "synced_snapshot",
    "restarted_since_pause",
    "SYNC_CONFIG",
    "sync_permission",
    "read_sync_config",
    "tune_config",
    "restore_sync_config",
    "stream_for",
]

CHUNK = 1 << 20                   # the read buffer
BATCH = 128 << 10                 # during the payload, wake up for reads of at least this much (SO_RCVLOWAT)
_BATCH_WAIT = 0.5                 # ... or after this long, for whatever is there
EOF_MARK_LEN = 40                 # CONFIG_RUN_ID_SIZE: the diskless end mark is 40 random hex characters
SYNC_MIN_VERSION = (7, 0, 0)      # REPLCONF rdb-only
SYNC_CONFIG = ("repl-diskless-sync", "repl-diskless-sync-delay", "save")
_MAX_LINE = 1024                  # a reply line longer than this is not the protocol we speak


def encode_command(*args: str | bytes) -> bytes:
    """One command as a RESP array of bulk strings (hiredis packs it, as for verify's connections)."""
    packed: tuple[Any, ...] = args  # hiredis' stub types the tuple too narrowly
    return hiredis.pack_command(packed)


def handshake_commands(username: str | None, password: str | None, name: str) -> list[tuple[str, ...]]:
    """The commands before SYNC: AUTH first (when a password is set), a client name quiesce knows as ours,
    then the capabilities: the diskless EOF framing and rdb-only (no command stream after the payload)."""
    cmds: list[tuple[str, ...]] = []
    if password:
        cmds.append(("AUTH", username, password) if username else ("AUTH", password))
    cmds += [("CLIENT", "SETNAME", name), ("REPLCONF", "capa", "eof"), ("REPLCONF", "rdb-only", "1")]
    return cmds


class HandshakeReplies:
    """Splits the handshake's line replies (``+OK`` / ``-ERR …``) out of the bytes read."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[str]:
        """The complete reply lines in ``data`` (with what came before), each without its CRLF."""
        self._buf += data
        lines = []
        while (i := self._buf.find(b"\r\n")) >= 0:
            lines.append(self._buf[:i].decode("utf-8", "replace"))
            self._buf = self._buf[i + 2:]
        if len(self._buf) > _MAX_LINE:
            raise SourceError(f"the source answered the replication handshake with {self._buf[:60]!r}…",
                              remedy="check source.redis host/port: is it a Redis/Valkey server?", step="sync")
        return lines


class SyncReply:
    """The master's answer to SYNC, fed as it arrives; :meth:`feed` returns the RDB payload's pieces.

    Keepalive newlines before the reply are counted and skipped; ``$<len>`` starts a disk-based payload of
    that length, ``$EOF:<mark>`` a diskless one ending with the mark (held back: the last 40 bytes seen are
    only passed on once more bytes follow them). An error line raises, naming what the master said.
    """

    def __init__(self, user: str | None = None) -> None:
        self.user = user                    # the ACL user, to name in a refusal
        self.framing: str | None = None     # "disk" | "diskless", once the header is read
        self.size: int | None = None        # payload length (disk-based only)
        self.received = 0                   # payload bytes passed on
        self.keepalives = 0
        self.done = False
        self._line = b""
        self._mark = b""
        self._tail = b""                    # diskless: the last bytes seen, possibly the mark
        self._left = 0                      # disk-based: payload bytes still to come

    @property
    def remaining(self) -> int | None:
        """Payload bytes still to come (disk-based), None when unknown (diskless, or before the header)."""
        return self._left if self.framing == "disk" else None

    @property
    def started(self) -> bool:
        """Whether the header has been read (the master has forked)."""
        return self.framing is not None

    def feed(self, data: bytes | memoryview) -> list[memoryview]:
        """The payload bytes in ``data``, in order (views on ``data`` where possible, never copies of it).

        Raises:
            SourceError: the master answered with an error line (see :func:`refusal`) or not in this protocol.
        """
        mv = memoryview(data)
        if self.done:
            return []  # a master without rdb-only would go on with its command stream: not ours to read
        if self.framing is None:
            mv = self._header(mv)
            if self.framing is None:
                return []
        if self.framing == "disk":
            n = min(len(mv), self._left)
            self._left -= n
            self.received += n
            self.done = self._left == 0
            return [mv[:n]] if n else []
        return self._diskless(mv)

    def _header(self, mv: memoryview) -> memoryview:
        """Consume keepalives and the header line; what follows it is payload."""
        i = 0
        while not self._line and i < len(mv) and mv[i] == 0x0A:
            self.keepalives += 1
            i += 1
        rest = bytes(mv[i:i + _MAX_LINE + 2 - len(self._line)])
        end = (self._line + rest).find(b"\r\n")
        if end < 0:
            self._line += rest
            if len(self._line) > _MAX_LINE:
                raise SourceError(f"the source answered SYNC with {self._line[:60]!r}…",
                                  remedy="check source.redis host/port: is it a Redis/Valkey master?", step="sync")
            return mv[len(mv):]
        used = end + 2 - len(self._line)
        line, self._line = (self._line + rest)[:end].decode("utf-8", "replace"), b""
        if line.startswith("$EOF:") and len(line) == 5 + EOF_MARK_LEN:
            self.framing, self._mark = "diskless", line[5:].encode()
        elif line.startswith("$") and line[1:].isdigit():
            self.framing, self.size = "disk", int(line[1:])
            self._left = self.size
            self.done = self.size == 0
        elif line.startswith("-"):
            raise refusal("SYNC", line[1:], self.user)
        else:
            raise SourceError(f"the source answered SYNC with {line[:80]!r}, not an RDB transfer",
                              remedy="point source.redis at a Redis/Valkey master >= 7.0, or set staging.transfer: "
                              "staged", step="sync", retryable=False)
        return mv[i + used:]

    def _diskless(self, mv: memoryview) -> list[memoryview]:
        """Pass on all but the last 40 bytes seen; the transfer ends when those are the mark."""
        k = EOF_MARK_LEN
        if len(mv) >= k:
            out = [memoryview(self._tail)] if self._tail else []
            last = mv[len(mv) - k:]
            body = mv[:len(mv) - k]
            if last == self._mark:
                self.done = True
                self._tail = b""
            else:
                self._tail = bytes(last)
            if len(body):
                out.append(body)
        else:  # a short read: combine it with the held-back tail (at most 80 bytes)
            joined = self._tail + bytes(mv)
            cut = max(0, len(joined) - k)
            out = [memoryview(joined[:cut])] if cut else []
            self._tail = joined[cut:]
            if len(self._tail) == k and self._tail == self._mark:
                self.done, self._tail = True, b""
        self.received += sum(len(p) for p in out)
        return out


def refusal(command: str, text: str, user: str | None = None) -> MigrationError:
    """The error for a master's refusal of the handshake or SYNC, with what to do about it."""
    who = user or "default"
    upper = text.upper()
    if upper.startswith("NOPERM") or "NO PERMISSIONS" in upper:
        return SourceError(f"the source's ACL user {who!r} may not run {command}: {text}",
                           remedy=f"grant it on the source: ACL SETUSER {who} +sync +replconf (or set "
                           "staging.transfer: staged to snapshot with BGSAVE instead)", step="sync", retryable=False)
    if upper.startswith(("NOAUTH", "WRONGPASS")) or "AUTHENTICATION" in upper or "PASSWORD" in upper:
        return SourceError(f"the source refused authentication for {command}: {text}",
                           remedy="set the password secret named in source.redis.password_secret (and username)",
                           step="sync", retryable=False)
    if "RDB-ONLY" in upper or "UNRECOGNIZED REPLCONF" in upper:
        return SourceError(f"the source does not support REPLCONF rdb-only ({text}): it is older than 7.0",
                           remedy="set staging.transfer: staged (or auto) for this source", step="sync",
                           retryable=False)
    if "UNKNOWN COMMAND" in upper:
        return SourceError(f"{command} is not available on the source ({text}): renamed or disabled",
                           remedy="set staging.transfer: staged, or allow the command for the migration",
                           step="sync", retryable=False)
    if upper.startswith(("LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN")):
        return SourceError(f"the source is not ready for {command}: {text}", step="sync", retryable=True)
    return SnapshotError(f"the source refused {command}: {text}",
                         remedy="read the source's log; set staging.transfer: staged to snapshot with BGSAVE instead",
                         step="sync", retryable=False)


def transfer_mode(setting: str, server: ServerInfo) -> str:
    """The data path for this run: ``auto`` is ``sync`` on a source >= 7.0 (rdb-only), ``staged`` before it.

    ``sync`` is kept as asked for any version; the task refuses an older source with a clear error.
    """
    if setting != "auto":
        return setting
    return "sync" if server.version >= SYNC_MIN_VERSION else "staged"


@dataclass(frozen=True)
class SyncStrategy:
    """How to take the snapshot through SYNC (see the module docstring)."""

    at_risk: bool                                       # a diskless snapshot could be voided by an automatic save
    presave: bool                                       # so BGSAVE first (the master cannot be asked for disk-based)
    tune: dict[str, str] = field(default_factory=dict)  # CONFIG SET for the transfer, restored once it starts
    why: str = ""


def sync_strategy(changes: int, config: dict[str, str | None]) -> SyncStrategy:
    """Decide the CONFIG tuning (and a presave) from the source's ``rdb_changes_since_last_save`` and config.

    ``config`` holds :data:`SYNC_CONFIG` as CONFIG GET returned them, None for what could not be read.

    - No save rules (``save ""``), or no change since the last save (rules need one, and writes are paused): the
      master streams diskless; ``repl-diskless-sync-delay`` is set to 0 for it.
    - Save rules and changes, and a diskless master: ``repl-diskless-sync no`` for the transfer, so the master's
      SYNC is its own BGSAVE (the counter reset, LASTSAVE moved, as bgsave-wait leaves them), streamed once written.
      Slower (writing and uploading do not overlap) but verify's proof holds. If that CONFIG SET is refused, the
      task runs a BGSAVE first instead (``presave``).
    - CONFIG unavailable: rules and framing unknown; with changes, a BGSAVE first.
    """
    diskless = {"yes": True, "no": False}.get(str(config.get("repl-diskless-sync")))
    save = config.get("save")
    at_risk = changes > 0 and save != "" and diskless is not False
    tune: dict[str, str] = {}
    why = ""
    if at_risk:
        rules = f"save rules {save!r}" if save is not None else "save rules unknown (CONFIG unavailable)"
        why = (f"{changes} change(s) since the source's last save and {rules}: an automatic save after a diskless "
               "snapshot would void verify's proof that no write came after it, so ")
        if diskless:
            tune["repl-diskless-sync"] = "no"
            why += "the master is asked for a disk-based SYNC (its own BGSAVE, streamed once written)"
        else:
            why += "a BGSAVE runs first"
    elif diskless and config.get("repl-diskless-sync-delay") not in (None, "0"):
        tune["repl-diskless-sync-delay"] = "0"
    return SyncStrategy(at_risk=at_risk, presave=at_risk and diskless is None, tune=tune, why=why)


def restarted_since_pause(quiesced: QuiesceState | None, server: dict[str, Any], seen: SyncSource | None,
                          now: float) -> str | None:
    """Why the source has evidently restarted since quiesce paused its writes (the pause died with the process), or
    None. ``quiesced`` is quiesce's journal entry, ``server`` INFO server now, ``seen`` what an earlier attempt of
    this run recorded (``{"paused_at", "run_id"}``). A restart is seen by a new run_id since that attempt, or
    by an uptime shorter than the time since the pause (2 s of slack for clocks and rounding)."""
    if not quiesced:
        return None
    paused_at, run_id = quiesced.paused_at, str(server.get("run_id", ""))
    if seen and seen.paused_at == paused_at and seen.run_id not in (None, run_id):
        return f"its run_id changed since this run's first look ({str(seen.run_id)[:8]}… → {run_id[:8]}…)"
    uptime = int(server.get("uptime_in_seconds", 1 << 62))
    if uptime < now - paused_at - 2:
        return f"it has been up {uptime}s, writes were paused {now - paused_at:.0f}s ago"
    return None


def synced_snapshot(framing: str, base: Snapshot, after: dict[str, Any], seconds: float) -> Snapshot:
    """The snapshot record verify and resume compare the source against, after the transfer.

    ``base`` is the record from before SYNC (the presave's, or INFO persistence then); ``after`` is INFO
    persistence once the payload was read. A disk-based transfer was the master's own BGSAVE: recorded like
    bgsave-wait's. A diskless one changed no counter: ``base`` still holds, if nothing saved meanwhile.

    Raises:
        SnapshotError: (retryable) a save ran during the transfer, or the disk-based one left no trace.
    """
    saves, lastsave = info_int(after, "rdb_saves"), int(after.get("rdb_last_save_time", 0))
    changes = int(after.get("rdb_changes_since_last_save", 0))
    if framing == "disk":
        if saves is not None and base.rdb_saves is not None and saves <= base.rdb_saves:
            raise SnapshotError("the source sent a disk-based RDB but INFO shows no new save",
                                remedy="re-run; if it persists set staging.transfer: staged", step="sync-upload",
                                retryable=True)
        return Snapshot.from_info(after, seconds)
    moved = lastsave != base.last_save_time or (saves is not None and base.rdb_saves is not None
                                                and saves != base.rdb_saves)
    if moved or changes != base.changes_since_save:
        raise SnapshotError(f"the source saved or changed during the transfer (rdb_saves {base.rdb_saves} → {saves}, "
                            f"changes since last save {base.changes_since_save} → {changes})",
                            remedy="another client's BGSAVE or a replica's sync ran meanwhile: the task takes the "
                            "snapshot again", step="sync-upload", retryable=True)
    return replace(base, seconds=round(seconds, 3))


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def sync_permission(r: Any, username: str | None) -> tuple[bool | None, str]:
    """Whether the plan's user may run REPLCONF and SYNC, by ``ACL DRYRUN`` (7.0+): (True | False | None, why).

    None when it cannot be told (DRYRUN itself not granted): SYNC's own answer will say.
    """
    user = username or "default"
    for cmd in (("REPLCONF", "capa", "eof"), ("SYNC",)):
        try:
            answer = _text(r.execute_command("ACL", "DRYRUN", user, *cmd))
        except Exception as exc:  # noqa: BLE001 - redis ResponseError: classified by its text
            text = str(exc)
            if "not found" in text.lower():  # DRYRUN's answer for a renamed/disabled command
                return False, f"{cmd[0]} is not available on the source ({text})"
            return None, f"ACL DRYRUN is not available to {user!r} ({text})"
        if answer != "OK":
            return False, answer
    return True, f"ACL user {user!r} may run REPLCONF and SYNC"


def read_sync_config(r: Any) -> dict[str, str | None]:
    """:data:`SYNC_CONFIG` as CONFIG GET reports them; None for each when CONFIG is renamed or not granted."""
    out: dict[str, str | None] = {}
    for name in SYNC_CONFIG:
        try:
            got = {_text(k): _text(v) for k, v in dict(r.config_get(name)).items()}
            out[name] = got.get(name)
        except Exception:  # noqa: BLE001 - renamed / NOPERM: unknown
            out[name] = None
    return out


def tune_config(plan: Any, r: Any, tune: dict[str, str], log: Any) -> dict[str, str]:
    """CONFIG SET ``tune`` for the transfer, the values it replaces journaled first; returns those values.

    A refusal (CONFIG SET not granted) is logged and the transfer goes on untuned.
    """
    if not tune:
        return {}
    current = read_sync_config(r)
    saved = {k: str(current[k]) for k in tune if current.get(k) is not None}  # never set what cannot be put back
    if not saved:
        return {}
    journal = Journal(plan.workdir)
    earlier = journal.read().sync_config or {}
    journal.update(sync_config={**saved, **earlier})  # a crashed run's originals win
    try:
        for k in saved:
            r.config_set(k, tune[k])
    except Exception as exc:  # noqa: BLE001 - not granted: handled by the caller (slower, or a BGSAVE first)
        log.warning("CONFIG SET %s refused (%s): going on without it", " ".join(f"{k} {v}" for k, v in tune.items()),
                    exc)
        journal.update(sync_config=earlier or None)  # nothing was changed
        return {}
    log.info("for the transfer: CONFIG SET %s (was %s; put back as soon as the master answers SYNC)",
             " ".join(f"{k} {v}" for k, v in tune.items()), saved)
    return saved


def restore_sync_config(plan: Any, r: Any = None, log: Any = None) -> dict[str, str]:
    """Put back what :func:`tune_config` changed (also after a crash: it is in the journal); returns it."""
    journal = Journal(plan.workdir)
    saved = journal.read().sync_config or {}
    if not saved:
        return {}
    if r is None:
        from elasticache_migrate.source.connection import source_client

        r = source_client(plan)
    for k, v in saved.items():
        r.config_set(k, v)
    journal.update(sync_config=None)
    if log is not None:
        log.info("source config restored: %s", " ".join(f"{k} {v}" for k, v in saved.items()))
    return dict(saved)


def stream_for(plan: Any, r: Any, *, on_start: Callable[[SyncReply], Any] | None = None,
               timeout: float = 60) -> ReplicationStream:
    """A :class:`ReplicationStream` to the server, user, password and TLS setting of the source client ``r``
    (elasticache_migrate.source.connection resolved Sentinel and the password secret for it)."""
    from elasticache_migrate.source.connection import client_name
    from elasticache_migrate.source.resp import connection_settings

    c = connection_settings(r)
    return ReplicationStream(c["host"], c["port"], tls=c["tls"], username=c["username"], password=c["password"],
                             name=client_name(plan.migration_id), timeout=timeout, on_start=on_start)


class ReplicationStream:
    """The RDB payload of one SYNC, chunk by chunk: iterate it once.

    Memory is one read buffer (``chunk`` bytes, reused) plus at most 80 held-back bytes. ``on_start`` is called once
    the header has been read (the master has forked or finished its BGSAVE): config changed for the transfer
    is put back there. :meth:`open` goes as far as the header (so a refusal is known before anything is
    uploaded); iterating opens it if that was not done.
    """

    def __init__(self, host: str, port: int, *, tls: bool = False, username: str | None = None,
                 password: str | None = None, name: str, timeout: float = 60, chunk: int = CHUNK,
                 on_start: Callable[[SyncReply], Any] | None = None) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self._password, self.name = username, password, name
        self.timeout, self.chunk, self.on_start = timeout, chunk, on_start
        self.reply = SyncReply(username)
        self.first_byte_s: float | None = None   # seconds from SYNC to the payload header
        self.seconds: float = 0.0                # seconds from SYNC to the end mark / last byte
        self._sock: socket.socket | None = None
        self._pending: list[bytes] = []
        self._buf = bytearray(chunk)  # every read lands here: no allocation per read (malloc would fragment)
        self._lowat = 1
        self._t0 = 0.0

    def describe(self) -> str:
        return f"SYNC from {self.host}:{self.port}"

    def _fail(self, what: str, exc: BaseException | None = None) -> SourceError:
        r = self.reply
        if r.started:
            of = f" of {r.size:,}" if r.size is not None else ""
            what = f"{what} after {r.received:,}{of} bytes of the {r.framing} RDB transfer"
        return SourceError(f"{self.describe()}: {what}" + (f" ({type(exc).__name__}: {exc})" if exc else ""),
                           remedy="check the network and the source's log (repl-timeout, client-output-buffer-"
                           "limit replica); the task is retried", step="sync-upload", retryable=True)

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=min(self.timeout, 10))
            sock.settimeout(self.timeout)
            if self.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            raise self._fail("cannot connect", exc) from exc
        return sock

    def _handshake(self, sock: socket.socket) -> None:
        cmds = handshake_commands(self.username, self._password, self.name)
        sock.sendall(b"".join(encode_command(*c) for c in cmds))
        parser, replies = HandshakeReplies(), list[str]()
        while len(replies) < len(cmds):
            data = sock.recv(4096)
            if not data:
                raise self._fail("the source closed the connection during the handshake")
            replies += parser.feed(data)
        for cmd, reply in zip(cmds, replies, strict=False):
            if reply.startswith("-") and cmd[:2] != ("CLIENT", "SETNAME"):  # the name is a courtesy
                raise refusal(" ".join(cmd[:2]) if cmd[0] != "AUTH" else "AUTH", reply[1:], self.username)

    def open(self) -> None:
        """Connect, authenticate, send SYNC and read up to the payload's header (the master has forked).

        Raises:
            SourceError: refused (see :func:`refusal`), or the connection failed; nothing was sent anywhere.
            SnapshotError: the master refused SYNC for another reason.
        """
        self._sock = self._connect()
        try:
            try:
                self._handshake(self._sock)
                self._sock.sendall(encode_command("SYNC"))
            except OSError as exc:
                raise self._fail("the connection failed during the handshake", exc) from exc
            self._t0 = time.monotonic()
            while not self.reply.started:
                self._pending += [bytes(p) for p in self.reply.feed(self._recv())]
            self.first_byte_s = time.monotonic() - self._t0
            if self.on_start is not None:
                self.on_start(self.reply)
        except BaseException:
            self.close()
            raise

    def _recv(self) -> memoryview:
        """The next bytes from the master, in the stream's one read buffer (valid until the next read)."""
        assert self._sock is not None
        waited = 0.0
        while True:
            try:
                n = self._sock.recv_into(self._buf)
                break
            except TimeoutError as exc:
                if self._lowat > 1:  # less than a batch came within _BATCH_WAIT: take what there is
                    waited += _BATCH_WAIT
                    self._set_lowat(1)
                    continue
                waited += self._sock.gettimeout() or 0.0
                if waited < self.timeout:
                    continue
                raise self._fail(f"nothing came for {waited:.0f}s", exc) from exc
            except OSError as exc:  # a reset, or a timeout (no byte, not even a keepalive, for `timeout` seconds)
                raise self._fail("the connection failed", exc) from exc
        if not n:
            raise self._fail("the source closed the connection" if self.reply.started else
                             "the source closed the connection before sending the RDB (its fork or BGSAVE failed? "
                             "see its log)")
        return memoryview(self._buf)[:n]

    def _set_lowat(self, n: int) -> None:
        """Wake up only once ``n`` bytes are ready. The master writes 16 KiB at a time: read one by one, that is
        ~65,000 reads per GiB, each with its Python overhead downstream; batched, ~8,000."""
        if n != self._lowat and self._sock is not None and not self.tls:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, n)
            self._lowat = n

    def __iter__(self) -> Iterator[bytes | memoryview]:
        """The payload's pieces. A memoryview piece is valid until the next one is asked for: consume it, or copy it.
        """
        if self._sock is None:
            self.open()
        assert self._sock is not None
        try:
            yield from self._pending
            self._pending = []
            reply = self.reply
            if not self.tls:
                self._sock.settimeout(_BATCH_WAIT)
            while not reply.done:
                left = reply.remaining
                self._set_lowat(BATCH if left is None else max(1, min(BATCH, left)))
                yield from reply.feed(self._recv())
            self.seconds = time.monotonic() - self._t0
        finally:
            self.close()

    def close(self) -> None:
        """Close the replication link (the master forgets this replica)."""
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
