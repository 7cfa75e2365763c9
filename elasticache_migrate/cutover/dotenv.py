"""Config backend: a ``KEY=value`` env file on the host (docker compose ``.env``, systemd EnvironmentFile).

Only the one line is changed; every other byte of the file, its mode and owner stay as they were, and
the rewrite is atomic (temp file + rename) so the app never reads a half-written file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from elasticache_migrate.errors import CutoverError
from elasticache_migrate.plan import MigrationPlan

__all__ = ["DotenvFile", "get_value", "set_value", "key_spans", "settings", "read_file", "replace_file"]


def _pattern(key: str) -> re.Pattern[str]:
    # [ \t], not \s: \s also matches newlines, so `KEY=` (empty) would take the next line as its value,
    # and removing a key would also remove the blank lines before it.
    return re.compile(rf"^([ \t]*(?:export[ \t]+)?{re.escape(key)}[ \t]*=[ \t]*)(.*?)(\r?)$", re.MULTILINE)


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def get_value(text: str, key: str) -> str | None:
    """The value of ``key`` in env-file text (last assignment wins, quotes removed), None if absent."""
    found = None
    for m in _pattern(key).finditer(text):
        found = _unquote(m.group(2))
    return found


def set_value(text: str, key: str, value: str | None) -> str:
    """``text`` with ``key`` set to ``value`` (None removes its lines); other lines untouched."""
    pat = _pattern(key)
    if value is None:
        return re.sub(rf"{pat.pattern}\n?", "", text, flags=re.MULTILINE)
    quoted = value if re.fullmatch(r"[A-Za-z0-9_:/.@%+=,-]*", value) else '"' + value.replace('"', '\\"') + '"'
    if pat.search(text):
        return pat.sub(lambda m: f"{m.group(1)}{quoted}{m.group(3)}", text)
    sep = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{sep}{key}={quoted}\n"


def key_spans(text: str, key: str) -> list[tuple[int, int]]:
    """Where ``key``'s assignment lines sit in ``text`` (each whole line with its line break)."""
    return [(m.start(), _next_line(text, m.end())) for m in _pattern(key).finditer(text)]


def _next_line(text: str, i: int) -> int:
    nl = text.find("\n", i)
    return len(text) if nl < 0 else nl + 1


_LINE = re.compile(r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*(.*?)\r?$", re.MULTILINE)


def settings(text: str) -> dict[str, str]:
    """Every ``KEY=value`` of env-file text (last assignment wins, quotes removed)."""
    return {m.group(1): _unquote(m.group(2)) for m in _LINE.finditer(text)}


class DotenvFile:
    """The app reads its Redis URL from an env file on this host."""

    def __init__(self, plan: MigrationPlan) -> None:
        assert plan.cutover.dotenv_path
        self.path = Path(plan.cutover.dotenv_path).expanduser()
        self.key = plan.cutover.dotenv_key

    def describe(self) -> str:
        return f"file:{self.path}#{self.key}"

    def _text(self) -> str:
        try:
            return read_file(self.path)
        except FileNotFoundError as exc:
            raise CutoverError(f"env file {self.path} does not exist",
                               remedy="fix cutover.dotenv_path (the file the app reads)", step="switch-config") from exc

    def read(self) -> str | None:
        return get_value(self._text(), self.key)

    def write(self, value: str | None) -> None:
        replace_file(self.path, set_value(self._text(), self.key, value))

    # several settings at once (elasticache_migrate.cutover.settings)
    def text(self) -> str:
        return self._text()

    def get(self, text: str, key: str) -> str | None:
        return get_value(text, key)

    def set(self, text: str, key: str, value: str | None) -> str:
        return set_value(text, key, value)

    def spans(self, text: str, key: str) -> list[tuple[int, int]]:
        return key_spans(text, key)

    def replace(self, text: str) -> None:
        replace_file(self.path, text)


def read_file(path: Path) -> str:
    """The file's text exactly as stored: UTF-8, line endings untranslated (CRLF stays CRLF)."""
    with path.open(encoding="utf-8", newline="") as f:
        return f.read()


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + fsync + rename), keeping its mode and owner.

    The app sees the old file or the new one, never half of one. A rename gives the path a new inode: a
    container must bind-mount the file's *directory* to see it (a bind-mounted file keeps the old inode).
    """
    st = os.stat(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, st.st_mode & 0o7777)
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError:
            pass
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
