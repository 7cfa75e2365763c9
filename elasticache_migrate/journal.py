"""One migration's journal: what a re-run needs to know of what an earlier run did, as one typed model.

It lives in the staging workdir (``<workdir>/<migration_id>/journal.json``) and holds only facts that are not
secret: the pause and the config values it replaced, the snapshot, its local copy and the staged object, the
SYNC transfer's temporary config, the rehearsal target, the config value switch-config replaced, the worker
containers stopped for the window. Every write is atomic (temp file + rename), and this class is the only writer.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elasticache_migrate.state import (
    CutoverRecord,
    Extracted,
    QuiesceState,
    RehearsalRecord,
    SetHold,
    Snapshot,
    StagedObject,
    StoppedWorkers,
    SyncSource,
    version_tuple,
)

__all__ = ["Journal", "JournalData"]


class JournalData(BaseModel):
    """The journal's sections; a section is None until the step that owns it has written it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    quiesce: QuiesceState | None = Field(None, description="quiesce: how writes are paused, what to restore")
    snapshot: Snapshot | None = Field(None, description="bgsave-wait / sync-upload: the snapshot record")
    extracted: Extracted | None = Field(None, description="extract / sync-upload: the checked local copy")
    staged: StagedObject | None = Field(None, description="upload / sync-upload: the object in S3")
    sync_config: dict[str, str] | None = Field(
        None, alias="sync-config", description="sync-upload: source config values replaced for the transfer")
    sync_source: SyncSource | None = Field(
        None, alias="sync-source", description="sync-upload: the source's run_id as first seen after the pause")
    rehearsal: RehearsalRecord | None = Field(None, description="create (rehearsal): the local target server")
    cutover: CutoverRecord | None = Field(None, description="switch-config: the value replaced")
    sentinel_set: SetHold | None = Field(
        None, alias="sentinel-set", description="quiesce (Sentinel set): the master paused, the replicas held "
        "(priority 0), the Sentinels' monitors removed at decommission")
    workers: StoppedWorkers | None = Field(
        None, description="stop-workers: the worker containers stopped for the window (start-workers starts them)")

    @model_validator(mode="before")
    @classmethod
    def _older_layouts(cls, data: Any) -> Any:
        """Journals written before the typed model: quiesce's server was a string ("redis 7.0.15")."""
        if isinstance(data, dict) and isinstance(data.get("quiesce"), dict):
            q = dict(data["quiesce"])
            if isinstance(q.get("server"), str):
                flavor, _, version = q["server"].partition(" ")
                q["server"] = {"flavor": flavor or "redis", "version": version_tuple(version)}
            q.pop("config_names", None)
            data = {**data, "quiesce": q}
        return data


class Journal:
    """Read and update one migration's journal.

    ``lock`` serialises read-modify-write cycles between the threads of one process (the flow and the pause's
    renewal, which journals each renewal): hold it around a :meth:`read` whose result feeds an :meth:`update`.
    """

    lock: ClassVar[threading.RLock] = threading.RLock()

    def __init__(self, workdir: Path | str) -> None:
        self.path = Path(workdir) / "journal.json"

    def read(self) -> JournalData:
        """The whole journal (every section None when there is none yet)."""
        try:
            return JournalData.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return JournalData()

    def update(self, **sections: Any) -> JournalData:
        """Set the named sections (None removes one) and write the journal atomically; returns the new journal.

        Raises:
            TypeError: a name that is not a section.
        """
        unknown = set(sections) - set(JournalData.model_fields)
        if unknown:
            raise TypeError(f"not journal sections: {sorted(unknown)}")
        with self.lock:
            data = JournalData.model_validate({**self.read().model_dump(), **sections})  # checked as sections
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".journal-")
            with os.fdopen(fd, "w") as f:
                # absent sections are left out; a None inside one (pause_expires_at, rdb_saves before 7.0) is kept
                f.write(data.model_dump_json(by_alias=True, exclude={k for k, v in data if v is None}, indent=2))
            os.replace(tmp, self.path)
        return data
