"""Preflight on the app's config: does it find Redis through Sentinel, and would the plan switch all of that?

An app that reads ``REDIS_SENTINELS`` + a master name (or a ``redis+sentinel://`` URL) keeps asking the old Sentinels
when only ``REDIS_URL`` is rewritten; ElastiCache (cluster mode disabled) is not a Sentinel. This check reads every
setting of the config the cutover backend points at (an env file, a YAML file, a Secrets Manager secret's fields;
SSM, Route 53 and a webhook show only the one value), finds the Sentinel-style ones, and blocks when the plan would
leave some of them pointing at the old set: each must be the main value, in ``cutover.clear_keys`` (removed at the
switch, put back by a rollback) or in ``cutover.extra_values``. Pure rules (:func:`sentinel_settings`) beside the
read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from elasticache_migrate.cutover import config_backend
from elasticache_migrate.cutover.base import ConfigBackend, redact
from elasticache_migrate.errors import MigrationError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.preflight.facts import PreflightFacts
from elasticache_migrate.preflight.findings import Finding
from elasticache_migrate.source.sentinel import format_address, sentinel_addresses

__all__ = ["SENTINEL_URL", "app_config_findings", "app_settings", "sentinel_settings", "setting_name"]

CHECK = "app-config"
SENTINEL_URL = re.compile(r"^\s*(?:redis\+sentinel|rediss\+sentinel|redis-sentinel|sentinel)s?://", re.IGNORECASE)
_SENTINEL_KEY = re.compile(r"sentinel", re.IGNORECASE)
_MASTER_NAME_KEY = re.compile(r"master[_.-]?(?:name|set|group)|(?:^|[_.-])master$", re.IGNORECASE)


def setting_name(key: str, dotted: bool) -> str:
    """The setting a (flattened) key belongs to: for a YAML path, up to its first Sentinel-ish segment
    (``redis.sentinel.hosts.0.host`` → ``redis.sentinel``); an env variable is itself."""
    if not dotted:
        return key
    parts = key.split(".")
    for i, part in enumerate(parts):
        if _SENTINEL_KEY.search(part) or _MASTER_NAME_KEY.search(part):
            return ".".join(parts[: i + 1])
    return key


def sentinel_settings(settings: Mapping[str, str], *, addresses: list[str], master_name: str | None,
                      dotted: bool = False) -> dict[str, str]:
    """The settings that look like Sentinel configuration, with why: named like one (``*SENTINEL*``, a master
    name), a ``redis+sentinel://`` / ``sentinel://`` URL, or a value naming one of the plan's Sentinels.

    Args:
        settings: Key → value (a YAML file flattened to dotted paths).
        addresses: The plan's Sentinels as ``host:port``.
        master_name: ``source.redis.sentinel_master``.
        dotted: Keys are YAML paths: report the setting (see :func:`setting_name`).
    """
    out: dict[str, str] = {}
    for key, value in settings.items():
        why = None
        if SENTINEL_URL.match(value):
            why = "a Sentinel URL"
        elif _SENTINEL_KEY.search(key):
            why = "named like a Sentinel setting"
        elif any(a in value for a in addresses):
            why = "names one of the plan's Sentinels"
        elif _MASTER_NAME_KEY.search(key) and (value.strip() == master_name if master_name
                                               else re.search("redis", key, re.IGNORECASE)):
            why = "the Sentinel master name" if master_name else "named like a Sentinel master name"
        if why:
            out.setdefault(setting_name(key, dotted), why)
    return out


def app_settings(backend: ConfigBackend) -> tuple[dict[str, str], bool]:
    """Every setting the backend's config holds that preflight can see, and whether keys are YAML paths."""
    from elasticache_migrate.cutover.dotenv import DotenvFile, settings
    from elasticache_migrate.cutover.yamlfile import YamlFile, flatten

    if isinstance(backend, DotenvFile):
        return settings(backend.text()), False
    if isinstance(backend, YamlFile):
        return flatten(backend.text()), True
    fields = getattr(backend, "fields", None)  # secretsmanager: the secret's other fields
    if callable(fields):
        return dict(fields()), False
    value = backend.read()
    return ({backend.describe(): value} if value is not None else {}), False


def _main_key(plan: MigrationPlan, backend: ConfigBackend) -> str:
    c = plan.cutover
    return {"dotenv": c.dotenv_key, "yaml": c.yaml_key, "secretsmanager": c.secret_field}.get(
        c.backend, backend.describe())


def _covered(key: str, handled: list[str], dotted: bool) -> bool:
    return any(key == h or (dotted and (key.startswith(h + ".") or h.startswith(key + "."))) for h in handled)


def app_config_findings(plan: MigrationPlan, facts: PreflightFacts) -> list[Finding]:
    """Sentinel-style settings in the app's config: all switched (main value, clear_keys, extra_values), or block."""
    del facts
    try:
        backend = config_backend(plan)
        if backend is None:
            return []
        settings, dotted = app_settings(backend)
    except (MigrationError, OSError, ValueError):
        return []  # the cutover check says it cannot read the config
    conn = plan.source.redis
    addresses = [format_address(a) for a in sentinel_addresses(conn)] if conn.sentinel_master else []
    found = sentinel_settings(settings, addresses=addresses, master_name=conn.sentinel_master, dotted=dotted)
    c = plan.cutover
    main = _main_key(plan, backend)
    out: list[Finding] = []
    for key in c.clear_keys:
        if not any(_covered(k, [key], dotted) for k in settings):
            out.append(Finding(CHECK, "warn", f"cutover.clear_keys names {key}, which {backend.describe()} does not "
                               "hold: nothing to remove", "fix the name (a typo leaves the real setting in place)"))
    if not found:
        return out
    if main in found:
        value = settings.get(main, "")
        if SENTINEL_URL.match(value):
            out.append(Finding(CHECK, "warn", f"{main} is a Sentinel URL ({redact(value)}); the switch writes a plain "
                               f"{c.value_template!r} there", "check that the app's client takes a redis:// URL in "
                               "that setting (kombu/Celery broker_url does); else switch the app to a plain URL "
                               "setting first"))
        else:
            out.append(Finding(CHECK, "block", f"{backend.describe()} is a Sentinel setting ({found[main]}): writing "
                               "the ElastiCache address there makes the app ask it as if it were a Sentinel, which it "
                               "is not", "point the cutover at the app's plain Redis URL setting (e.g. REDIS_URL) and "
                               f"put {main} in cutover.clear_keys, if the app uses the URL when it is absent"))
    handled = [main, *c.clear_keys, *c.extra_values]
    left = {k: why for k, why in found.items() if k != main and not _covered(k, handled, dotted)}
    switched = [k for k in found if k != main and k not in left]
    if switched:
        out.append(Finding(CHECK, "info", f"the app's Sentinel settings {', '.join(switched)} are switched with "
                           f"{main} (cutover.clear_keys / extra_values) and put back by a rollback"))
    if left:
        named = ", ".join(f"{k} ({why})" for k, why in left.items())
        how = (f"add them to cutover.clear_keys (removed at the switch, put back on rollback) when the app then uses "
               f"{main}, or to cutover.extra_values" if c.backend in ("dotenv", "yaml") else
               "switch them by hand in the same change, or move the app's Redis settings to an env/YAML file the "
               "plan can switch together (cutover.clear_keys / extra_values)")
        out.append(Finding(CHECK, "block", f"{backend.describe()} also holds Sentinel settings the plan would leave "
                           f"pointing at the old set: {named}. ElastiCache is not a Sentinel: an app that reads them "
                           "keeps finding the old master", how))
    return out
