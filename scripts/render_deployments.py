"""``python -m scripts.render_deployments [--check]``: copy deployments/<name>.yaml into prefect.yaml
(see :mod:`deployments.render`)."""

from deployments.render import main

if __name__ == "__main__":
    raise SystemExit(main())
