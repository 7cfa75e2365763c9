"""verify's pure half: one key's states on source and target, and the difference between them."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.verify.compare import KeyState, compare_key


def ks(t: str = "string", v: Any = b"v", pttl: int = -1) -> KeyState:
    return KeyState(t, v, pttl)


NONE = KeyState("none", None, -2)


def test_compare_key_equal() -> None:
    assert compare_key(0, b"k", ks(), ks(), 2000) is None
    assert compare_key(0, b"k", ks(pttl=60_000), ks(pttl=59_000), 2000) is None


@pytest.mark.parametrize(
    ("src", "tgt", "kind"),
    [
        (ks(), NONE, "missing"),
        (NONE, ks(), "extra"),
        (ks("string"), ks("list", [b"v"]), "type"),
        (ks(v=b"a"), ks(v=b"b"), "value"),
        (ks(pttl=60_000), ks(pttl=-1), "ttl"),       # target lost the expiry
        (ks(pttl=-1), ks(pttl=60_000), "ttl"),
        (ks(pttl=60_000), ks(pttl=50_000), "ttl"),   # beyond the tolerance
    ],
)
def test_compare_key_mismatches(src: KeyState, tgt: KeyState, kind: str) -> None:
    m = compare_key(3, b"user:1", src, tgt, 2000)
    assert m is not None
    assert (m.db, m.key, m.kind) == (3, "user:1", kind)


def test_compare_key_expiring_during_verify_is_not_a_mismatch() -> None:
    assert compare_key(0, b"k", ks(pttl=1500), NONE, 2000) is None   # expired on the target first
    assert compare_key(0, b"k", NONE, ks(pttl=800), 2000) is None    # expired on the source first
    assert compare_key(0, b"k", ks(pttl=5000), NONE, 2000) is not None


def test_compare_key_long_binary_key_is_shown_readably() -> None:
    m = compare_key(0, b"\xff" + b"x" * 200, ks(), NONE, 0)
    assert m is not None and m.key.startswith("\\xff") and len(m.key) <= 80
