"""A local Slack stand-in, Slack-style request signing, and an ASGI app served by uvicorn in a thread.

``SlackStandIn`` is a tiny HTTP server on 127.0.0.1 that answers like Slack for what this project calls:
``POST /api/chat.postMessage`` and ``/api/chat.update`` (bot token checked, ``{"ok": true, "ts": …}`` or
``{"ok": false, "error": …}``), an incoming webhook (``/services/…``: ``ok`` or ``invalid_payload``) and
response URLs (``/actions/…``). It records every request and checks the Block Kit limits Slack enforces
(it answers ``invalid_blocks`` as Slack does).

What it cannot show: Slack's real rendering of the blocks and the confirm dialog, delivery to people's
clients, Slack's own rate limits (HTTP 429) and retries, the real interactivity routing from a click to our
request URL, and whether Slack still accepts these payload shapes tomorrow.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

__all__ = ["Recorded", "SlackStandIn", "signed_headers", "click_body", "serve_asgi"]


@dataclass
class Recorded:
    """One request the stand-in received."""

    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON / form dict, or the raw text

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.body.get("blocks") if isinstance(self.body, dict) else None
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return list(blocks or [])


def _block_problems(blocks: Any) -> list[str]:
    """The Block Kit limits Slack enforces (https://docs.slack.dev/reference/block-kit/blocks)."""
    if blocks is None:
        return []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    problems = []
    if not isinstance(blocks, list) or len(blocks) > 50:
        return ["blocks must be a list of at most 50"]
    for b in blocks:
        kind = b.get("type")
        if kind not in {"section", "context", "actions", "header", "divider"}:
            problems.append(f"unknown block type {kind}")
        if kind == "section" and len((b.get("text") or {}).get("text", "")) > 3000:
            problems.append("section text over 3000")
        if kind == "actions":
            elements = b.get("elements") or []
            ids = [e.get("action_id") for e in elements]
            if not elements or len(elements) > 25 or len(set(ids)) != len(ids):
                problems.append("actions: 1-25 elements with unique action_id")
            for e in elements:
                if e.get("type") == "button" and (len(e["text"]["text"]) > 75 or len(e.get("value", "")) > 2000
                                                  or e.get("style") not in {None, "primary", "danger"}):
                    problems.append("button text/value/style out of limits")
    return problems


class SlackStandIn:
    """Slack's Web API, an incoming webhook and response URLs, on 127.0.0.1 (see the module docstring).

    ``mode``: "ok" (answer like Slack), "http500" (every request fails with 500), "not_ok" (the Web API answers
    ``ok: false``, the webhook ``403 action_prohibited``).
    """

    def __init__(self, token: str = "xoxb-standin-0000") -> None:
        self.token = token
        self.mode = "ok"
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._ts = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                ctype = self.headers.get("content-type", "")
                body: Any = raw
                if "json" in ctype:
                    body = json.loads(raw)
                elif "form" in ctype:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                with standin._lock:
                    standin.requests.append(Recorded(self.path, dict(self.headers.items()), body))
                status, answer = standin._answer(self.path, dict(self.headers.items()), body)
                data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain" if isinstance(answer, str) else "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------ addresses
    @property
    def api_url(self) -> str:
        return f"{self.base}/api"

    @property
    def webhook_url(self) -> str:
        return f"{self.base}/services/T0STANDIN/B0STANDIN/{uuid.uuid4().hex}"

    def response_url(self) -> str:
        return f"{self.base}/actions/T0STANDIN/{int(time.time())}/{uuid.uuid4().hex}"

    # ------------------------------------------------------------ lifecycle
    def start(self) -> SlackStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------ what was received
    def calls(self, prefix: str, **match: Any) -> list[Recorded]:
        """Requests whose path starts with ``prefix`` and whose body has every ``match`` item."""
        with self._lock:
            found = [r for r in self.requests if r.path.startswith(prefix)]
        return [r for r in found if all(isinstance(r.body, dict) and r.body.get(k) == v for k, v in match.items())]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 30, **match: Any) -> list[Recorded]:
        """Block until ``count`` matching requests arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls(prefix, **match)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"stand-in: {count} × {prefix} {match} not received within {timeout}s; "
                             f"got {[r.path for r in self.requests]}")

    # ------------------------------------------------------------ answers, as Slack gives them
    def _answer(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if self.mode == "http500":
            return 500, "internal_error"
        if path.startswith("/api/"):
            if self.mode == "not_ok":
                return 200, {"ok": False, "error": "not_in_channel"}
            if headers.get("Authorization") != f"Bearer {self.token}":
                return 200, {"ok": False, "error": "invalid_auth"}
            if not isinstance(body, dict) or not body.get("channel"):
                return 200, {"ok": False, "error": "channel_not_found"}
            if _block_problems(body.get("blocks")):
                return 200, {"ok": False, "error": "invalid_blocks", "errors": _block_problems(body.get("blocks"))}
            if path == "/api/chat.postMessage":
                with self._lock:
                    self._ts += 1
                    ts = f"{int(time.time())}.{self._ts:06d}"
                return 200, {"ok": True, "channel": body["channel"], "ts": ts, "message": {**body, "ts": ts}}
            if path == "/api/chat.update":
                if not body.get("ts"):
                    return 200, {"ok": False, "error": "message_not_found"}
                return 200, {"ok": True, "channel": body["channel"], "ts": body["ts"], "text": body.get("text")}
            return 200, {"ok": False, "error": "unknown_method"}
        if path.startswith("/services/"):
            if self.mode == "not_ok":
                return 403, "action_prohibited"
            if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                return 400, "invalid_payload"
            return (400, "invalid_blocks") if _block_problems(body.get("blocks")) else (200, "ok")
        if path.startswith("/actions/"):
            if not isinstance(body, dict) or _block_problems(body.get("blocks")):
                return 400, {"ok": False, "error": "invalid_blocks"}
            return 200, {"ok": True}
        return 404, "not_found"


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers exactly as Slack signs a request: v0=HMAC-SHA256(secret, "v0:{ts}:{raw body}")."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


def click_body(message: Recorded, action_id: str, *, user_id: str, user_name: str = "someone",
               response_url: str | None = None, **payload_over: Any) -> bytes:
    """The form body Slack sends when ``user_id`` clicks the button ``action_id`` of a posted message."""
    actions_block = next(b for b in message.blocks if b["type"] == "actions")
    button = next(e for e in actions_block["elements"] if e["action_id"] == action_id)
    channel = message.body["channel"]
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": "T0STANDIN"},
        "api_app_id": "A0STANDIN", "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": channel, "is_ephemeral": False},
        "trigger_id": "1.2.abc", "team": {"id": "T0STANDIN", "domain": "standin"},
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": "1.000001", "text": message.body.get("text"),
                    "blocks": message.blocks},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": actions_block.get("block_id"),
                     "text": button["text"], "value": button["value"], "style": button.get("style"),
                     "action_ts": f"{time.time():.6f}"}],
        **payload_over,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread; yield its base URL."""
    import uvicorn

    from elasticache_migrate.testing.ports import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_until(check: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    """Poll ``check`` until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")
