"""``python -m approval_service --host 127.0.0.1 --port 3000``: serve Slack's Approve / Reject clicks.

Environment: SLACK_SIGNING_SECRET (required), PREFECT_API_URL (the server the migration runs report to),
SLACK_APPROVERS (optional: comma-separated Slack user ids allowed on top of each plan's approval.approvers),
SLACK_RESPONSE_URL_PREFIX (optional, default https://hooks.slack.com/).
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from approval_service.app import Settings, create_app

    ap = argparse.ArgumentParser(prog="python -m approval_service",
                                 description="Slack interactivity endpoint that approves/rejects paused migrations.")
    ap.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; put TLS in front)")
    ap.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = ap.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"approval_service: {exc}", file=sys.stderr)
        return 2
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:  # else Prefect's client would start an empty ephemeral server
        print("approval_service: PREFECT_API_URL is not set (e.g. http://127.0.0.1:4200/api)", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # request lines would print Slack's response URLs
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
