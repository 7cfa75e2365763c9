"""verify-cutover: after the switch, the app's config holds the new endpoint, and that endpoint serves the
verified data.

Every key was compared before approval, while nothing could write to either side. Here the app may already
be writing to the target, so the check is one that app traffic cannot fail: the config reads back, the
endpoint is a loaded primary, and each database still holds at least 90 % of the verified key count (a
flushed, replaced or wrong server fails it).
"""

from __future__ import annotations

from elasticache_migrate.cutover import config_backend
from elasticache_migrate.cutover.base import redact, render_value
from elasticache_migrate.errors import MigrationError, VerificationError
from elasticache_migrate.log import Log, logger
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import redis_errors, target_client
from elasticache_migrate.state import Endpoint
from elasticache_migrate.verify.read import keyspace_dbs
from elasticache_migrate.verify.report import VerifyReport

__all__ = ["KEPT_SHARE", "check_cutover"]

KEPT_SHARE = 0.9  # each db must still hold this share of the keys verified before the switch


def check_cutover(plan: MigrationPlan, endpoint: Endpoint, expected: VerifyReport, log: Log = logger) -> str:
    """The config reads back the new endpoint, which answers as a loaded primary holding the verified dbs.

    Returns:
        One line saying what was found.

    Raises:
        VerificationError: the config does not read back, or the endpoint does not answer or is not a loaded
            master with the verified databases.
    """
    backend = config_backend(plan)
    want = render_value(plan, endpoint)
    if backend is not None:
        got = backend.read()
        if got != want:
            raise VerificationError(f"{backend.describe()} reads {redact(got)}, expected {redact(want)}",
                                    remedy="another process changed the app's config; check it, then re-run",
                                    step="verify-cutover")
    try:
        with redis_errors("verify-cutover", VerificationError, endpoint.url()):
            r = target_client(plan, endpoint, timeout=10)
            info = r.info()
            counts = keyspace_dbs(r)
    except MigrationError as exc:  # unreachable, refused, or its secret missing: the endpoint is the finding
        cause = exc.__cause__ if exc.__cause__ is not None else exc.message
        raise VerificationError(f"the new endpoint {endpoint.url()} does not answer: {cause}",
                                remedy="check the target and the network path from the app", step="verify-cutover",
                                ) from exc
    if info.get("role") != "master" or int(info.get("loading", 0)):
        raise VerificationError(f"{endpoint.url()} is {info.get('role')} (loading={info.get('loading')}), not a "
                                "loaded primary", step="verify-cutover")
    short = {db: (counts.get(db, 0), src) for db, (src, _t) in expected.dbs.items()
             if counts.get(db, 0) < src * KEPT_SHARE}
    if short:
        detail = ", ".join(f"db{db}: {have} keys, {want} verified" for db, (have, want) in sorted(short.items()))
        raise VerificationError(f"{endpoint.url()} no longer holds the verified data ({detail})",
                                remedy="the target lost data or the config points at another server; inspect it "
                                "before trying again", step="verify-cutover")
    msg = f"app config {redact(want)} answers as a loaded primary with dbs {sorted(counts)}"
    log.info("cutover verified: %s", msg)
    return msg
