"""``python -m scripts.create_failure_automation``: the Prefect automation that alerts when a migration run fails
or crashes (see :mod:`deployments.automation`)."""

from deployments.automation import main

if __name__ == "__main__":
    raise SystemExit(main())
