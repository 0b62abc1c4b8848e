"""The spill: batched rows that could not wait in memory, in an append-only file per process and kind of row.

The batch writer (:mod:`voidllm.usage.batches`) spills a batch when its memory cap is reached (the store is
down, or slower than the arrivals) and, at shutdown, what it could not write in time. Rules:

- Metadata only: a line is one row exactly as it would be inserted (``row_of(item)``), as JSON. Usage
  events, MCP tool-call rows and audit rows (redacted already) carry no prompt or response content.
- One file per process and kind: ``<directory>/<table>.<pid>-<token>.jsonl`` (the token tells a new
  process from a dead one that had the same pid, as in containers). The owner holds an exclusive
  ``flock`` on it for its whole life, so "nobody holds the lock" means "its process is dead".
- Append-only and durable per batch: one ``write`` of whole lines, then ``fsync``, before the batch counts
  as spilled. A line without its newline (the process died inside the ``write``) is ignored on replay.
- Bounded: a batch that would take this process's file over ``max_bytes`` is refused; the writer counts
  its items as dropped and logs an error. The file is truncated once fully replayed, so the budget is
  free again after an outage.
- Replayed in order (dead processes' files first, oldest first, then this process's own) in batches, with
  the row ids unchanged: :func:`voidllm.usage.batches.insert_rows` skips ids already written, so a replay
  cut short by a crash writes each row once when the next process replays the file again.
- At start (:meth:`SpillFile.adopt_orphans`), files of this kind whose lock is free belong to dead
  processes; this process locks and replays them, then deletes them.

The methods block (file I/O, ``fsync``): the writer calls them in a worker thread, one at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import orjson
import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["SpillBatch", "SpillFile", "spill_directory"]

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
"""Bytes read at a time when replaying."""

E = TypeVar("E")


@attrs.frozen
class SpillBatch:
    """Rows read from a spill file, and where the file's replay stands once they are written."""

    path: Path
    end: int  # byte offset after the last row read
    rows: list[dict[str, Any]]
    broken: int = 0  # lines that could not be decoded (skipped, counted as dropped)


@attrs.define(eq=False)
class _Source:
    path: Path
    file: IO[bytes]  # open and locked
    offset: int = 0  # replayed up to here


@attrs.define(eq=False)
class SpillFile(Generic[E]):
    """This process's spill file for one table, and the files of dead processes it adopted."""

    directory: Path
    table: sa.Table
    row_of: Callable[[E], dict[str, Any]]
    max_bytes: int
    _own: _Source | None = attrs.field(default=None, init=False)
    _size: int = attrs.field(default=0, init=False)  # bytes in the own file
    _orphans: list[_Source] = attrs.Factory(list)
    _datetimes: frozenset[str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._datetimes = frozenset(
            column.name
            for column in self.table.columns
            if isinstance(getattr(column.type, "impl", column.type), sa.DateTime)
        )

    def pending(self) -> bool:
        """Whether rows wait to be replayed (own or adopted)."""
        return bool(self._orphans) or (self._own is not None and self._own.offset < self._size)

    def adopt_orphans(self) -> int:
        """Lock the files of dead processes for replay; returns how many (empty ones are deleted)."""
        if not self.directory.is_dir():
            return 0
        own = self._own.path if self._own else None
        for path in sorted(self.directory.glob(f"{self.table.name}.*.jsonl"), key=_mtime):
            if path == own or any(source.path == path for source in self._orphans):
                continue
            source = _lock(path)
            if source is None:
                continue  # a live process's file
            if path.stat().st_size == 0:
                _remove(source)
                continue
            self._orphans.append(source)
        if self._orphans:
            log.warning(
                "replaying spill files of stopped processes",
                extra={"table": self.table.name, "files": len(self._orphans)},
            )
        return len(self._orphans)

    def append(self, items: Sequence[E]) -> bool:
        """Write ``items`` as rows and ``fsync``; ``False`` (nothing written) if over the budget.

        Raises:
            OSError: the file could not be created or written.
        """
        data = b"".join(orjson.dumps(self.row_of(item)) + b"\n" for item in items)
        if self._size + len(data) > self.max_bytes:
            return False
        own = self._own or self._create()
        os.write(own.file.fileno(), data)
        os.fsync(own.file.fileno())
        self._size += len(data)
        return True

    def read(self, limit: int) -> SpillBatch:
        """The next at most ``limit`` whole rows to replay, oldest source first."""
        source = self._orphans[0] if self._orphans else self._own
        if source is None:
            raise RuntimeError("nothing to replay")
        rows: list[dict[str, Any]] = []
        broken, end = 0, source.offset
        for line in _lines(source.file.fileno(), source.offset, limit):
            end += len(line)
            try:
                rows.append(self._decode(line))
            except (orjson.JSONDecodeError, TypeError, ValueError):
                broken += 1
        return SpillBatch(source.path, end, rows, broken)

    def advance(self, batch: SpillBatch) -> None:
        """Mark ``batch`` written: a finished adopted file is deleted, a finished own file truncated."""
        if self._orphans and self._orphans[0].path == batch.path:
            source = self._orphans[0]
            source.offset = batch.end
            if not batch.rows and not batch.broken:  # nothing more (a torn last line at most)
                self._orphans.pop(0)
                _remove(source)
            return
        if self._own is None or self._own.path != batch.path:
            return
        self._own.offset = batch.end
        if self._own.offset >= self._size or not (batch.rows or batch.broken):
            os.ftruncate(self._own.file.fileno(), 0)
            self._own.offset = self._size = 0

    def close(self) -> None:
        """Release the files: an empty own file is deleted; one with rows stays for the next start."""
        for source in self._orphans:
            source.file.close()
        self._orphans.clear()
        if self._own is not None:
            if self._own.offset >= self._size:
                _remove(self._own)
            else:
                self._own.file.close()
            self._own = None
            self._size = 0

    def _create(self) -> _Source:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.table.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
        file = path.open("a+b")
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._own = _Source(path, file)
        return self._own

    def _decode(self, line: bytes) -> dict[str, Any]:
        row: dict[str, Any] = orjson.loads(line)
        for name in self._datetimes & row.keys():
            if row[name] is not None:
                row[name] = datetime.fromisoformat(row[name])
        return row


def spill_directory(setting: str, *, driver: str, dsn: str) -> Path:
    """``settings.usage.spill_dir``, or its default: ``spill`` next to the SQLite file, else
    ``voidllm-spill/<digest of the DSN>`` in the system's temporary directory (PostgreSQL, an in-memory
    SQLite), so gateways of different databases on one machine never replay each other's rows. A directory
    set explicitly must likewise serve one database only."""
    if setting:
        return Path(setting)
    if driver == "sqlite" and dsn and ":memory:" not in dsn and not dsn.startswith("file:"):
        return Path(dsn).resolve().parent / "spill"
    return Path(tempfile.gettempdir()) / "voidllm-spill" / hashlib.sha256(dsn.encode()).hexdigest()[:16]


def _lines(fd: int, offset: int, limit: int) -> list[bytes]:
    """Up to ``limit`` whole lines (with their newline) from ``offset``; ``pread``, so no stale buffer."""
    lines: list[bytes] = []
    rest = b""
    while len(lines) < limit:
        data = os.pread(fd, READ_CHUNK, offset)
        if not data:
            break
        offset += len(data)
        *whole, rest = (rest + data).split(b"\n")
        lines.extend(line + b"\n" for line in whole)
    return lines[:limit]


def _lock(path: Path) -> _Source | None:
    """Open and lock ``path`` unless another process holds its lock."""
    try:
        file = path.open("r+b")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    return _Source(path, file)


def _remove(source: _Source) -> None:
    with contextlib.suppress(FileNotFoundError):
        source.path.unlink()
    source.file.close()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
