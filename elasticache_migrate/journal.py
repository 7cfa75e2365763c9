"""A small JSON journal per migration id, so a re-run can find what an earlier run did.

It lives in the staging workdir (``<workdir>/<migration_id>/journal.json``) and holds only facts that
are not secret: the quiesce mode and the config values it replaced, the staged object, the target id.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["Journal"]


class Journal:
    """Read/update one migration's journal; every write is atomic (temp file + rename)."""

    def __init__(self, workdir: Path) -> None:
        self.path = Path(workdir) / "journal.json"

    def read(self) -> dict[str, Any]:
        """The whole journal ({} when there is none yet)."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def get(self, key: str, default: Any = None) -> Any:
        """One entry."""
        return self.read().get(key, default)

    def put(self, key: str, value: Any) -> None:
        """Set one entry (None removes it)."""
        data = self.read()
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".journal-")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
        os.replace(tmp, self.path)
