"""One rule for a component a test needs: skipped where it is missing, a failure under CI (``CI=true``).

Every "is X here?" check of the suite goes through :func:`require`, so a CI run can never pass by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["under_ci", "require", "missing"]


def under_ci() -> bool:
    """Whether this is a CI run, where nothing may be skipped."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str) -> NoReturn:
    """Skip the test because ``what`` is unavailable here; fail it under CI."""
    if under_ci():
        pytest.fail(f"{what} — unavailable under CI, where nothing may be skipped", pytrace=False)
    pytest.skip(f"{what} — skipped here")


def require(available: bool, what: str) -> None:
    """Go on when ``available``; else skip (here) or fail (under CI), naming ``what`` is missing and why."""
    if not available:
        missing(what)
