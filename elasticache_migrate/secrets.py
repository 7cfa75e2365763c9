"""Resolve secret references (``env:NAME`` / ``prefect:BLOCK``) at run time.

The plan only names where a secret lives; the value is fetched here, used to build a client, and never
returned to the flow's parameters, results or logs.
"""

from __future__ import annotations

import os

from elasticache_migrate.errors import PlanError

__all__ = ["resolve_secret"]


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
    if kind == "env":
        value = os.environ.get(name)
        if value is None:
            raise PlanError(f"the {purpose} should be in environment variable {name}, which is not set",
                            remedy=f"export {name} in the worker's environment (never put it in the plan)")
        return value
    if kind == "prefect":
        from prefect.blocks.system import Secret

        try:
            block = Secret.load(name)
        except (ValueError, RuntimeError) as exc:
            raise PlanError(f"the {purpose} should be in Prefect Secret block {name!r}, which was not found",
                            remedy=f"create it: Secret(value=...).save({name!r}) or in the UI under Blocks"
                            ) from exc
        return str(block.get())  # type: ignore[union-attr]  # sync context: a Secret, not a coroutine
    raise PlanError(f"secret reference for the {purpose} must look like env:NAME or prefect:BLOCK",
                    remedy="fix the *_secret field of the plan")
