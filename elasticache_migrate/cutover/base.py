"""The config-backend seam: where the application reads its Redis address.

A backend is one module with one class: ``describe()``, ``read()``, ``write(value)`` (None removes the
value, which restores "absent"). A backend whose value carries more than the string (a Route 53 record's
TTL) also has :class:`StatefulBackend`'s ``state()`` / ``use_state()``: switch-config journals the state read
with the old value and hands it back before a restore, so the old value comes back exactly.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.source.connection import Endpoint

__all__ = ["ConfigBackend", "StatefulBackend", "render_value", "redact", "where"]


class ConfigBackend(Protocol):
    """One place an app reads its Redis address from. ``write(None)`` removes the value."""

    def describe(self) -> str:
        """Where the value lives ("ssm:/app/redis_url")."""
        ...

    def read(self) -> str | None:
        """The current value, None if absent."""
        ...

    def write(self, value: str | None) -> None:
        """Set the value (None = remove it, which restores 'absent')."""
        ...


@runtime_checkable
class StatefulBackend(Protocol):
    """A backend with facts besides the string that a restore must put back (JSON-safe, never secret)."""

    def state(self) -> dict[str, Any]:
        """What the last ``read()`` saw besides the value (Route 53: the record's TTL)."""
        ...

    def use_state(self, state: dict[str, Any]) -> None:
        """Make the next ``write()`` put back the value with these facts (a restore)."""
        ...


def render_value(plan: MigrationPlan, endpoint: Endpoint) -> str:
    """The value to write for the new endpoint: cutover.value_template, or the bare host name for route53
    (the app keeps its URL and connects to the CNAME, which now resolves to the new endpoint)."""
    if plan.cutover.backend == "route53":
        return endpoint.host
    return plan.cutover.value_template.format(scheme="rediss" if endpoint.tls else "redis", host=endpoint.host,
                                              port=endpoint.port)


def redact(value: str | None) -> str:
    """A config value safe to log: any password in a URL is masked."""
    if value is None:
        return "(absent)"
    # Up to the *last* '@' of the authority, as URL parsers (redis-py included) read a raw '@' in a password.
    return re.sub(r"(://[^:/@]*:)[^/?#\s]*@", r"\1***@", value)


def where(plan: MigrationPlan) -> str:
    """Where the plan says the app reads its Redis address (for summaries; no I/O)."""
    c = plan.cutover
    return {
        "none": "nothing (switch by hand)",
        "ssm": f"SSM parameter `{c.ssm_parameter}`",
        "secretsmanager": f"field `{c.secret_field}` of secret `{c.secret_id}`",
        "route53": f"CNAME `{c.route53_record}` (zone {c.route53_zone_id})",
        "dotenv": f"`{c.dotenv_path}` ({c.dotenv_key})",
        "yaml": f"`{c.yaml_path}` ({c.yaml_key})",
        "webhook": f"the app's webhook {redact(c.webhook_url)}",
    }[c.backend] + _together(plan) + (f", then restart {', '.join(c.restart_containers)}" if c.restart_containers
                                      else "")


def _together(plan: MigrationPlan) -> str:
    """The settings switched with the main value (cutover.extra_values, clear_keys), for summaries."""
    c = plan.cutover
    parts = ([f"setting {', '.join(c.extra_values)}"] if c.extra_values else []) + \
        ([f"removing {', '.join(c.clear_keys)}"] if c.clear_keys else [])
    return f" ({' and '.join(parts)} in the same rewrite)" if parts else ""
