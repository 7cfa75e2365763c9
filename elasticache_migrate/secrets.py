"""Resolve secret references (``env:NAME`` / ``prefect:BLOCK``) at run time.

The plan only names where a secret lives; the value is fetched here, used to build a client, and never
returned to the flow's parameters, results or logs. The engine knows environment variables itself; the flow's
task layer registers the resolver for Prefect Secret blocks (:func:`register_resolver`), so this package never
imports Prefect.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from elasticache_migrate.errors import PlanError

__all__ = ["Resolver", "register_resolver", "resolve_secret"]

Resolver = Callable[[str, str], str]
"""(name, purpose) -> the secret; raises PlanError naming what to do when it is not there."""


def _from_env(name: str, purpose: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise PlanError(f"the {purpose} should be in environment variable {name}, which is not set",
                        remedy=f"export {name} in the worker's environment (never put it in the plan)")
    return value


_RESOLVERS: dict[str, Resolver] = {"env": _from_env}


def register_resolver(kind: str, resolver: Resolver) -> None:
    """Make ``kind:NAME`` references resolvable (the task layer registers ``prefect``)."""
    _RESOLVERS[kind] = resolver


def resolve_secret(ref: str | None, *, purpose: str) -> str | None:
    """Return the secret that ``ref`` points to, or None when ``ref`` is empty.

    Args:
        ref: ``env:NAME`` (an environment variable of the worker) or ``prefect:BLOCK`` (a Secret block).
        purpose: what the secret is for, named in errors ("source Redis password").

    Raises:
        PlanError: the reference is malformed or points to nothing.
    """
    if not ref:
        return None
    kind, _, name = ref.partition(":")
    if kind == "prefect" and kind not in _RESOLVERS:
        raise PlanError(f"the {purpose} is a Prefect Secret block ({name!r}), readable only inside the flow",
                        remedy="run it through the flow (python -m flows.migrate or a deployment), or use env:NAME")
    resolver = _RESOLVERS.get(kind)
    if resolver is None or not name:
        raise PlanError(f"secret reference for the {purpose} must look like env:NAME or prefect:BLOCK",
                        remedy="fix the *_secret field of the plan")
    return resolver(name, purpose)
