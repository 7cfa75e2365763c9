"""Config backend: an HTTP endpoint of the app that holds its Redis address.

The contract the app implements: ``GET url`` → 200 ``{"value": "redis://…"}`` (404, or ``"value": null``, when
unset); ``PUT url`` with ``{"value": "…"}`` sets it; ``DELETE url`` unsets it (a restore of "absent"). Any 2xx
answers a PUT or DELETE. A bearer token, when the plan names one, is sent on every request and never logged.
"""

from __future__ import annotations

from typing import Any

import httpx

from elasticache_migrate.cutover.base import redact
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.plan import MigrationPlan
from elasticache_migrate.secrets import resolve_secret

__all__ = ["Webhook", "parse_value"]

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def parse_value(status: int, body: bytes) -> str | None:
    """The value in a GET answer: the string in ``{"value": ...}``, None for 404 or null.

    Raises:
        ValueError: anything else (another status, not JSON, no ``value`` key, not a string).
    """
    import json

    if status == 404:
        return None
    if status != 200:
        raise ValueError(f"GET answered HTTP {status}")
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("GET did not answer JSON") from None
    if not isinstance(data, dict) or "value" not in data:
        raise ValueError('GET did not answer an object with a "value" key')
    value = data["value"]
    if value is not None and not isinstance(value, str):
        raise ValueError('"value" is not a string')
    return value


class Webhook:
    """The app exposes its Redis address over HTTP."""

    def __init__(self, plan: MigrationPlan) -> None:
        assert plan.cutover.webhook_url
        self.url = plan.cutover.webhook_url
        self._token_ref = plan.cutover.webhook_token_secret

    def describe(self) -> str:
        return f"webhook:{redact(self.url)}"

    def _request(self, method: str, json_body: Any = None) -> httpx.Response:
        token = resolve_secret(self._token_ref, purpose="cutover webhook token")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
                resp = client.request(method, self.url, headers=headers, json=json_body)
        except httpx.TimeoutException as exc:
            raise CutoverError(f"{method} {self.describe()} timed out ({type(exc).__name__})",
                               remedy="check that the app's config endpoint is up and answers quickly",
                               step="switch-config") from exc
        except httpx.HTTPError as exc:
            raise CutoverError(f"{method} {self.describe()} failed: {type(exc).__name__}: {exc}",
                               remedy="check cutover.webhook_url and that the app is reachable from the worker",
                               step="switch-config") from exc
        if resp.status_code in (401, 403):
            raise CutoverError(f"{method} {self.describe()} refused the request (HTTP {resp.status_code})",
                               remedy="set the token the app expects in the secret named by "
                               "cutover.webhook_token_secret", step="switch-config")
        return resp

    def _fail(self, method: str, resp: httpx.Response, why: str) -> CutoverError:
        snippet = redact(resp.text[:200].strip()) if resp.content else "(empty body)"
        return CutoverError(f"{method} {self.describe()}: {why}; the app answered: {snippet}",
                            remedy='the app must answer GET with {"value": "..."} and accept PUT {"value": "..."} '
                            "and DELETE", step="switch-config")

    def read(self) -> str | None:
        resp = self._request("GET")
        try:
            return parse_value(resp.status_code, resp.content)
        except ValueError as exc:
            raise self._fail("GET", resp, str(exc)) from None

    def write(self, value: str | None) -> None:
        method = "DELETE" if value is None else "PUT"
        resp = self._request(method, None if value is None else {"value": value})
        if resp.is_success or (value is None and resp.status_code == 404):
            return
        raise self._fail(method, resp, f"HTTP {resp.status_code}")
