"""The source seam's error mapping, the parts the raw sockets use: the lazily named operation, the link's remedy
for transient failures, a TLS session cut as transient. No server."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest

from elasticache_migrate.errors import MigrationError, SourceError
from elasticache_migrate.source.connection import redis_errors


def _mapped(exc: Exception, what: str | Callable[[], str], remedy: str | None = None) -> MigrationError:
    with pytest.raises(MigrationError) as e, redis_errors("sync-upload", SourceError, what, remedy=remedy):
        raise exc
    assert e.value.__cause__ is exc
    return e.value


def test_what_may_be_asked_only_when_something_failed() -> None:
    progress = {"bytes": 0}
    asked: list[int] = []

    def what() -> str:
        asked.append(1)
        return f"the connection failed after {progress['bytes']:,} bytes"

    with redis_errors("sync-upload", SourceError, what):
        progress["bytes"] = 10
    assert asked == []  # nothing failed: never formatted
    progress["bytes"] = 1_048_576
    err = _mapped(ConnectionResetError(104, "Connection reset by peer"), what=what)
    assert err.message == "the connection failed after 1,048,576 bytes: ConnectionResetError: [Errno 104] Connection " \
                          "reset by peer"
    assert err.retryable and err.step == "sync-upload"


@pytest.mark.parametrize("exc", [TimeoutError("timed out"), ssl.SSLEOFError(8, "EOF occurred in violation"),
                                 ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed")])
def test_a_timeout_or_a_cut_tls_session_is_transient_with_the_given_remedy(exc: Exception) -> None:
    err = _mapped(exc, what="SYNC from h:1", remedy="check the link; the task is retried")
    assert err.retryable and err.remedy == "check the link; the task is retried"
    assert err.message.startswith(f"SYNC from h:1: {type(exc).__name__}: ")


def test_a_tls_failure_is_not_retried_and_keeps_the_default_remedy() -> None:
    err = _mapped(ssl.SSLCertVerificationError(1, "certificate verify failed"), what="SYNC from h:1",
                  remedy="check the link; the task is retried")
    assert not err.retryable and err.remedy == SourceError.default_remedy
