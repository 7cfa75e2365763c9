"""The flow's steps: one thin Prefect task module per card step, each around calls into :mod:`elasticache_migrate`.

Importing this package also lets plans name Prefect Secret blocks (``prefect:BLOCK``) for their secrets.
"""

from __future__ import annotations

from elasticache_migrate.errors import PlanError
from elasticache_migrate.secrets import register_resolver


def _from_prefect_block(name: str, purpose: str) -> str:
    """The value of Prefect Secret block ``name``."""
    import httpx
    from prefect.blocks.system import Secret
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    try:
        block = Secret.load(name)
    except (ValueError, RuntimeError, ObjectNotFound) as exc:
        raise PlanError(f"the {purpose} should be in Prefect Secret block {name!r}, which was not found",
                        remedy=f"create it: Secret(value=...).save({name!r}) or in the UI under Blocks") from exc
    except (PrefectHTTPStatusError, httpx.HTTPError) as exc:
        raise PlanError(f"the {purpose} is in Prefect Secret block {name!r}, and the Prefect API did not give it: "
                        f"{type(exc).__name__}", remedy="check PREFECT_API_URL (and its credentials) on the worker",
                        retryable=True) from exc
    return str(block.get())  # type: ignore[union-attr]  # sync context: a Secret, not a coroutine


register_resolver("prefect", _from_prefect_block)
