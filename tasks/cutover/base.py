"""The config-backend seam: where the application reads its Redis address."""

from __future__ import annotations

import re
from typing import Protocol

from tasks.connect import Endpoint
from tasks.plan import MigrationPlan

__all__ = ["ConfigBackend", "render_value", "redact", "where"]


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


def render_value(plan: MigrationPlan, endpoint: Endpoint) -> str:
    """The value to write for the new endpoint, from cutover.value_template."""
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
        "webhook": f"the app's webhook {c.webhook_url}",
    }[c.backend] + (f", then restart {', '.join(c.restart_containers)}" if c.restart_containers else "")
