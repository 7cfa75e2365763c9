"""Approve or reject a paused migration from Slack: a small ASGI app that turns a signed button click into
a typed resume of the Prefect flow run. Run it with ``python -m approval_service`` (see ``__main__``).

A package of its own, not a module of ``tasks/``: it is a separate long-running process, deployed next to
the Prefect server (it needs the API and a URL Slack can reach), while ``tasks/`` are steps run by a worker.
"""

from approval_service.app import Outcome, Settings, create_app, decide
from approval_service.interaction import BadInteraction, Click, parse_interaction

__all__ = ["BadInteraction", "Click", "Outcome", "Settings", "create_app", "decide", "parse_interaction"]
