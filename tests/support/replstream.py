"""Record a master's replication stream the simplest way: a raw socket doing ``PSYNC ? -1``, the RDB skipped.

For the online applier's tests; the real pseudo-replica link of the product is elsewhere.
"""

from __future__ import annotations

import socket
import threading
import time

__all__ = ["StreamCapture"]


class StreamCapture:
    """Attach to ``host:port`` as a replica; :attr:`chunks` collects (bytes, received_ms) after the RDB."""

    def __init__(self, host: str, port: int, password: str | None = None) -> None:
        self._sock = socket.create_connection((host, port), timeout=10)
        self._buf = b""
        if password:
            self._sock.sendall(f"AUTH {password}\r\n".encode())
            assert self._line().startswith(b"+OK")
        self._sock.sendall(b"PSYNC ? -1\r\n")
        line = self._line()
        while not line:                 # newlines the master sends while it makes the RDB
            line = self._line()
        _, self.replid, offset = line.decode().split()
        self.start_offset = int(offset)
        header = self._line()
        while not header:
            header = self._line()
        assert header.startswith(b"$"), header
        self._skip(int(header[1:]))
        self.chunks: list[tuple[bytes, int]] = []
        if self._buf:
            self.chunks.append((self._buf, int(time.time() * 1000)))
        self.received = self.start_offset + len(self._buf)
        self._stop = threading.Event()
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _line(self) -> bytes:
        while b"\n" not in self._buf:
            self._buf += self._recv()
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r")

    def _recv(self) -> bytes:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("the master closed the link")
        return data

    def _skip(self, n: int) -> None:
        while len(self._buf) < n:
            self._buf += self._recv()
        self._buf = self._buf[n:]

    def _run(self) -> None:
        last_ack = 0.0
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                data = None
            if data == b"":
                return
            if data:
                self.chunks.append((data, int(time.time() * 1000)))
                self.received += len(data)
            if time.monotonic() - last_ack >= 1:
                ack = str(self.received).encode()
                self._sock.sendall(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n" % (len(ack), ack))
                last_ack = time.monotonic()

    def wait_for(self, offset: int, timeout: float = 10) -> None:
        """Until every byte up to the master's ``offset`` was received."""
        deadline = time.monotonic() + timeout
        while self.received < offset:
            if time.monotonic() > deadline:
                raise TimeoutError(f"captured up to {self.received}, the master is at {offset}")
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
