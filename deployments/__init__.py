"""The deployments: plan files (``<name>.yaml``), the renderer that copies them into ``prefect.yaml``
(:mod:`deployments.render`) and the server-side failure alert (:mod:`deployments.automation`)."""
