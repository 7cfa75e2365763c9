"""Where the application reads its Redis address, and how it is switched to the new endpoint and restored.

Each backend is one module with one class (:mod:`.base` says what it must do): ``ssm`` (:mod:`.ssm`),
``secretsmanager`` (:mod:`.secretsmanager`), ``route53`` (:mod:`.route53`), ``dotenv`` (:mod:`.dotenv`),
``yaml`` (:mod:`.yamlfile`), ``webhook`` (:mod:`.webhook`). :func:`config_backend` picks the one the plan
names and imports its module only then. The switch and the restore are in :mod:`.switch`; the app containers
restarted after each are in :mod:`.restart`; the worker containers stopped for the window are in :mod:`.workers`.
"""

from __future__ import annotations

import importlib

from elasticache_migrate.cutover.base import ConfigBackend
from elasticache_migrate.plan import MigrationPlan

__all__ = ["BACKENDS", "config_backend"]

BACKENDS: dict[str, tuple[str, str]] = {
    "ssm": ("elasticache_migrate.cutover.ssm", "SsmParameter"),
    "secretsmanager": ("elasticache_migrate.cutover.secretsmanager", "SecretField"),
    "route53": ("elasticache_migrate.cutover.route53", "Route53Cname"),
    "dotenv": ("elasticache_migrate.cutover.dotenv", "DotenvFile"),
    "yaml": ("elasticache_migrate.cutover.yamlfile", "YamlFile"),
    "webhook": ("elasticache_migrate.cutover.webhook", "Webhook"),
}
"""cutover.backend -> (module, class); 'none' has no backend."""


def config_backend(plan: MigrationPlan) -> ConfigBackend | None:
    """The backend the plan names (None for backend 'none'); its module is imported only when chosen."""
    if plan.cutover.backend not in BACKENDS:
        return None
    module, cls = BACKENDS[plan.cutover.backend]
    backend: ConfigBackend = getattr(importlib.import_module(module), cls)(plan)
    return backend
