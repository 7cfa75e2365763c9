"""Config backend: an AWS SSM Parameter Store parameter (String or SecureString, type preserved)."""

from __future__ import annotations

from typing import Any

from elasticache_migrate.aws import aws_client, aws_errors
from elasticache_migrate.errors import CutoverError
from elasticache_migrate.plan import MigrationPlan

__all__ = ["SsmParameter"]


class SsmParameter:
    """The app reads its Redis URL from an SSM parameter."""

    def __init__(self, plan: MigrationPlan) -> None:
        assert plan.cutover.ssm_parameter
        self.name = plan.cutover.ssm_parameter
        self.ssm: Any = aws_client(plan, "ssm")
        self._type = "String"

    def describe(self) -> str:
        return f"ssm:{self.name}"

    def read(self) -> str | None:
        with aws_errors("switch-config", CutoverError, self.describe()):
            try:
                p = self.ssm.get_parameter(Name=self.name, WithDecryption=True)["Parameter"]
            except self.ssm.exceptions.ParameterNotFound:
                return None
        self._type = p.get("Type", "String")
        return str(p["Value"])

    def write(self, value: str | None) -> None:
        with aws_errors("switch-config", CutoverError, self.describe()):
            if value is None:
                try:
                    self.ssm.delete_parameter(Name=self.name)
                except self.ssm.exceptions.ParameterNotFound:
                    pass
                return
            self.ssm.put_parameter(Name=self.name, Value=value, Type=self._type, Overwrite=True)
